/*
 * fuzz_headers.c - libFuzzer target for braze_header_line (csrc/headers.c).
 *
 * The input is one raw header line, handed over in a malloc'd buffer of
 * exactly its size (not NUL-terminated, as libcurl gives it). Checks:
 *   - the result is -2, -1 or a BRAZE_H_* index, -2 exactly for "HTTP/...";
 *   - for a wanted header, the value is NUL-terminated inside
 *     BRAZE_HEADER_VALUE_MAX bytes, holds no control byte (< 0x20, 0x7f),
 *     and equals what a naive reimplementation below makes of the line;
 *   - the index agrees with a case-insensitive name comparison of our own.
 * Build and run: fuzz/run.sh.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "headers.h"

static void die(const char *what, const uint8_t *data, size_t size) {
  fprintf(stderr, "\nfuzz_headers: %s (%zu bytes):\n", what, size);
  for (size_t i = 0; i < size && i < 512; i++) {
    unsigned c = data[i];
    if (c >= 0x20 && c < 0x7f && c != '\\') fputc((int)c, stderr);
    else fprintf(stderr, "\\x%02X", c);
  }
  fputc('\n', stderr);
  abort();
}

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }
static int blank(int c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* The index the line should get, computed the slow, obvious way. */
static int expected_index(const uint8_t *s, size_t n, size_t *colon) {
  if (n >= 5 && memcmp(s, "HTTP/", 5) == 0) return -2;
  size_t c = 0;
  while (c < n && s[c] != ':') c++;
  if (c == n) return -1;
  *colon = c;
  for (int h = 0; h < BRAZE_N_HEADERS; h++) {
    const char *want = braze_header_names[h];
    size_t k = 0;
    while (k < c && want[k] != '\0' && lower(s[k]) == want[k]) k++;
    if (k == c && want[k] == '\0') return h;
  }
  return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *line = malloc(size ? size : 1);
  char *value = malloc(BRAZE_HEADER_VALUE_MAX); /* exact size: ASan sees overruns */
  if (line == NULL || value == NULL) abort();
  memcpy(line, data, size);
  memset(value, 0xA5, BRAZE_HEADER_VALUE_MAX); /* no NUL unless written */

  int r = braze_header_line(line, size, value);

  size_t colon = 0;
  int want = expected_index(data, size, &colon);
  if (r != want) die("wrong header index", data, size);
  if (memcmp(line, data, size) != 0) die("the line was modified", data, size);

  if (r >= 0) {
    const char *nul = memchr(value, '\0', BRAZE_HEADER_VALUE_MAX);
    if (nul == NULL) die("value not NUL-terminated within BRAZE_HEADER_VALUE_MAX", data, size);
    size_t len = (size_t)(nul - value);
    if (len >= BRAZE_HEADER_VALUE_MAX) die("value too long", data, size);
    for (size_t i = 0; i < len; i++) {
      unsigned char c = (unsigned char)value[i];
      if (c < 0x20 || c == 0x7f) die("control byte in the value", data, size);
    }
    /* Trim, cut, and mask control bytes as '?': the documented behaviour. */
    size_t a = colon + 1, b = size;
    while (a < b && blank(data[a])) a++;
    while (b > a && blank(data[b - 1])) b--;
    if (b - a > BRAZE_HEADER_VALUE_MAX - 1) b = a + BRAZE_HEADER_VALUE_MAX - 1;
    if (len != b - a) die("value length differs from the trimmed value", data, size);
    for (size_t i = 0; i < len; i++) {
      unsigned char c = data[a + i];
      char e = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
      if (value[i] != e) die("value differs from the trimmed value", data, size);
    }
  }
  free(value);
  free(line);
  return 0;
}
