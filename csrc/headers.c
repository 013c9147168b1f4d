/*
 * headers.c - response header lines to the few values we keep. Pure C with
 * no Lua calls, so it runs inside libcurl's header callback and under the
 * fuzzer (fuzz/fuzz_headers.c) as it is.
 */
#include <string.h>
#include <strings.h>

#include "headers.h"

const char *const braze_header_names[BRAZE_N_HEADERS] = {
  "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset",
  "x-request-id", "content-type", "retry-after", "location", "content-length", "date",
};

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

int braze_header_line(const char *line, size_t n, char value[BRAZE_HEADER_VALUE_MAX]) {
  if (n >= 5 && memcmp(line, "HTTP/", 5) == 0) return -2;
  const char *colon = memchr(line, ':', n);
  if (colon == NULL) return -1;
  size_t name_len = (size_t)(colon - line);
  for (int i = 0; i < BRAZE_N_HEADERS; i++) {
    const char *want = braze_header_names[i];
    if (strlen(want) != name_len || strncasecmp(line, want, name_len) != 0) continue;
    const char *v = colon + 1, *e = line + n;
    while (v < e && is_blank(*v)) v++;
    while (e > v && is_blank(e[-1])) e--;
    size_t len = (size_t)(e - v);
    if (len >= BRAZE_HEADER_VALUE_MAX) len = BRAZE_HEADER_VALUE_MAX - 1;
    /* Control bytes (obs-fold, NUL) are not kept: values reach error messages. */
    size_t k = 0;
    for (size_t j = 0; j < len; j++) {
      unsigned char c = (unsigned char)v[j];
      value[k++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    value[k] = '\0';
    return i;
  }
  return -1;
}
