/*
 * fuzz_decode.c - libFuzzer target for braze_decode (csrc/decode.c).
 *
 * Each input is decoded, from a fresh malloc'd writable copy of exactly its
 * size (so ASan sees any read or write past it), with a few max_depth
 * values, inside lua_pcall: only a memory error may raise, and it must not
 * longjmp out of the harness. Beyond crashes and sanitizer reports it checks:
 *   - success agrees with ref_valid(), an independent strict validator
 *     (iterative, its own UTF-8 decoding, strtod only for the range check);
 *   - the stack holds exactly one more value on success, none on failure;
 *   - a failure has a message and a position in 1..len+1;
 *   - every string in the result (keys too) is valid UTF-8, every number is
 *     finite, and a document that is a lone number decodes to what
 *     strtoll/strtod make of it.
 * Build and run: fuzz/run.sh.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>

#include "decode.h"

/* Built against Lua 5.1 and LuaJIT too (fuzz/run.sh decode-5.1,
   decode-luajit): no integer subtype there, no lua_absindex in 5.1. */
#if LUA_VERSION_NUM < 503
#define lua_isinteger(l, i) 0
#endif
#if LUA_VERSION_NUM < 502
#define lua_absindex(l, i) ((i) > 0 || (i) <= LUA_REGISTRYINDEX ? (i) : lua_gettop(l) + (i) + 1)
#endif
#ifndef LUA_OK
#define LUA_OK 0
#endif

#define REF_MAX_DEPTH 10000

static void die(const char *what, const uint8_t *data, size_t size, int max_depth) {
  fprintf(stderr, "\nfuzz_decode: %s (max_depth %d, %zu bytes):\n", what, max_depth, size);
  for (size_t i = 0; i < size && i < 512; i++) {
    unsigned c = data[i];
    if (c >= 0x20 && c < 0x7f && c != '\\') fputc((int)c, stderr);
    else fprintf(stderr, "\\x%02X", c);
  }
  fputc('\n', stderr);
  abort();
}

/* ---- an independent validator ----------------------------------------- */

static int is_ws(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static int hexval(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c |= 0x20;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

/* Decodes one UTF-8 code point at s[*i] (lead byte >= 0x80) the long way. */
static int ref_utf8(const unsigned char *s, size_t n, size_t *i) {
  unsigned char c = s[*i];
  int len;
  uint32_t cp, min;
  if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; min = 0x80; }
  else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; min = 0x800; }
  else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; min = 0x10000; }
  else return 0;
  if (n - *i < (size_t)len) return 0;
  for (int k = 1; k < len; k++) {
    if ((s[*i + (size_t)k] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (s[*i + (size_t)k] & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  *i += (size_t)len;
  return 1;
}

/* A string whose opening quote is at s[*i]; leaves *i past the closing one. */
static int ref_string(const unsigned char *s, size_t n, size_t *i) {
  size_t k = *i + 1;
  int pending_high = 0; /* the last thing was a \u high surrogate */
  for (;;) {
    if (k >= n) return 0;
    unsigned char c = s[k];
    if (c == '\\') {
      if (k + 1 >= n) return 0;
      unsigned char e = s[k + 1];
      if (e == 'u') {
        if (n - k < 6) return 0;
        int v = 0;
        for (int j = 2; j < 6; j++) {
          int h = hexval(s[k + (size_t)j]);
          if (h < 0) return 0;
          v = v * 16 + h;
        }
        k += 6;
        if (pending_high) {
          if (v < 0xDC00 || v > 0xDFFF) return 0;
          pending_high = 0;
        } else if (v >= 0xDC00 && v <= 0xDFFF) {
          return 0;
        } else if (v >= 0xD800 && v <= 0xDBFF) {
          pending_high = 1;
        }
        continue;
      }
      if (pending_high) return 0;
      if (!strchr("\"\\/bfnrt", e) || e == 0) return 0;
      k += 2;
      continue;
    }
    if (pending_high) return 0;
    if (c == '"') { *i = k + 1; return 1; }
    if (c < 0x20) return 0;
    if (c < 0x80) { k++; continue; }
    if (!ref_utf8(s, n, &k)) return 0;
  }
}

/* A number at s[*i]: the RFC grammar, then strtod for the double range. */
static int ref_number(const unsigned char *s, size_t n, size_t *i) {
  size_t k = *i, start = *i;
  if (k < n && s[k] == '-') k++;
  if (k >= n || s[k] < '0' || s[k] > '9') return 0;
  if (s[k] == '0') k++;
  else while (k < n && s[k] >= '0' && s[k] <= '9') k++;
  if (k < n && s[k] == '.') {
    k++;
    if (k >= n || s[k] < '0' || s[k] > '9') return 0;
    while (k < n && s[k] >= '0' && s[k] <= '9') k++;
  }
  if (k < n && (s[k] == 'e' || s[k] == 'E')) {
    k++;
    if (k < n && (s[k] == '+' || s[k] == '-')) k++;
    if (k >= n || s[k] < '0' || s[k] > '9') return 0;
    while (k < n && s[k] >= '0' && s[k] <= '9') k++;
  }
  char *tmp = malloc(k - start + 1);
  if (tmp == NULL) abort();
  memcpy(tmp, s + start, k - start);
  tmp[k - start] = '\0';
  double v = strtod(tmp, NULL);
  free(tmp);
  if (isinf(v)) return 0;
  *i = k;
  return 1;
}

static int ref_literal(const unsigned char *s, size_t n, size_t *i, const char *word) {
  size_t len = strlen(word);
  if (n - *i < len || memcmp(s + *i, word, len) != 0) return 0;
  *i += len;
  return 1;
}

/* Iterative: an explicit stack of open containers instead of recursion. */
static int ref_valid(const unsigned char *s, size_t n, int max_depth) {
  static char open[REF_MAX_DEPTH + 1];
  int depth = 0;
  size_t i = 0;
  enum { VALUE, AFTER } want = VALUE;
  for (;;) {
    while (i < n && is_ws(s[i])) i++;
    if (want == VALUE) {
      if (i >= n) return 0;
      unsigned char c = s[i];
      int ok;
      if (c == '[' || c == '{') {
        if (++depth > max_depth) return 0;
        open[depth] = (char)c;
        i++;
        while (i < n && is_ws(s[i])) i++;
        if (i < n && s[i] == (c == '[' ? ']' : '}')) { i++; depth--; want = AFTER; continue; }
        if (c == '[') continue; /* want a VALUE */
        goto key;
      }
      if (c == '"') ok = ref_string(s, n, &i);
      else if (c == 't') ok = ref_literal(s, n, &i, "true");
      else if (c == 'f') ok = ref_literal(s, n, &i, "false");
      else if (c == 'n') ok = ref_literal(s, n, &i, "null");
      else ok = ref_number(s, n, &i);
      if (!ok) return 0;
      want = AFTER;
      continue;
    }
    /* AFTER a value */
    if (depth == 0) return i == n;
    if (i >= n) return 0;
    if (s[i] == (open[depth] == '[' ? ']' : '}')) { i++; depth--; continue; }
    if (s[i] != ',') return 0;
    i++;
    if (open[depth] == '[') { want = VALUE; continue; }
    while (i < n && is_ws(s[i])) i++;
  key:
    if (i >= n || s[i] != '"' || !ref_string(s, n, &i)) return 0;
    while (i < n && is_ws(s[i])) i++;
    if (i >= n || s[i] != ':') return 0;
    i++;
    want = VALUE;
  }
}

/* ---- checks on the decoded value -------------------------------------- */

static int valid_utf8(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    if (s[i] < 0x80) i++;
    else if (!ref_utf8(s, n, &i)) return 0;
  }
  return 1;
}

/* 1 when the value at idx (and everything in it) looks right. */
static int check_value(lua_State *l, int idx) {
  switch (lua_type(l, idx)) {
    case LUA_TSTRING: {
      size_t n;
      const char *s = lua_tolstring(l, idx, &n);
      return valid_utf8((const unsigned char *)s, n);
    }
    case LUA_TNUMBER:
      return lua_isinteger(l, idx) || isfinite(lua_tonumber(l, idx));
    case LUA_TBOOLEAN:
      return 1;
    case LUA_TLIGHTUSERDATA:
      return lua_touserdata(l, idx) == NULL;
    case LUA_TTABLE: {
      int t = lua_absindex(l, idx), ok = 1;
      if (!lua_checkstack(l, 3)) return 0;
      lua_pushnil(l);
      while (ok && lua_next(l, t)) {
        ok = check_value(l, -2) && check_value(l, -1);
        lua_pop(l, 1);
      }
      if (!ok) lua_pop(l, 1);
      return ok;
    }
    default:
      return 0;
  }
}

/* If the document is one number, returns 1 and its lexeme bounds. */
static int lone_number(const unsigned char *s, size_t n, size_t *a, size_t *b) {
  size_t i = 0, j = n;
  while (i < n && is_ws(s[i])) i++;
  while (j > i && is_ws(s[j - 1])) j--;
  if (i == j || !(s[i] == '-' || (s[i] >= '0' && s[i] <= '9'))) return 0;
  *a = i;
  *b = j;
  return 1;
}

static int check_number(lua_State *l, const unsigned char *s, size_t a, size_t b) {
  char tmp[512];
  if (b - a >= sizeof tmp) return 1; /* long lexemes: range-checked by ref_number only */
  memcpy(tmp, s + a, b - a);
  tmp[b - a] = '\0';
  int integer_lexeme = strpbrk(tmp, ".eE") == NULL;
#if !BRAZE_HAS_INTEGERS
  /* Doubles only: an integer lexeme within +-2^53 is that number; beyond,
     a string of its exact digits (csrc/decode.c). */
  if (integer_lexeme) {
    errno = 0;
    unsigned long long mag = strtoull(tmp + (tmp[0] == '-'), NULL, 10);
    int beyond = errno == ERANGE || mag > (1ull << 53);
    if (beyond) {
      size_t n;
      const char *got = lua_type(l, -1) == LUA_TSTRING ? lua_tolstring(l, -1, &n) : NULL;
      return got != NULL && n == b - a && memcmp(got, tmp, n) == 0;
    }
    double want = strtod(tmp, NULL);
    return lua_type(l, -1) == LUA_TNUMBER && (double)lua_tonumber(l, -1) == want;
  }
#endif
  if (integer_lexeme) {
    errno = 0;
    long long v = strtoll(tmp, NULL, 10);
    if (errno == 0) return lua_isinteger(l, -1) && lua_tointeger(l, -1) == (lua_Integer)v;
  }
  if (lua_isinteger(l, -1)) return 0;
  double want = strtod(tmp, NULL), got = (double)lua_tonumber(l, -1);
  return memcmp(&want, &got, sizeof want) == 0; /* bit for bit: -0.0 too */
}

/* ---- the harness ------------------------------------------------------ */

typedef struct {
  const uint8_t *data;
  size_t size;
  char *buf; /* a writable copy of data: the decoder unescapes in place */
  int max_depth;
  int ok;
} job;

/* Runs under lua_pcall, so a memory error raised inside cannot longjmp past
   the harness; the copy it decodes is owned (and freed) by the caller. */
static int run(lua_State *l) {
  job *j = (job *)lua_touserdata(l, 1);
  int top = lua_gettop(l);
  braze_decode_error err;
  j->ok = braze_decode(l, j->buf, j->size, j->max_depth, &err);
  if (j->ok) {
    if (lua_gettop(l) != top + 1) die("success left the stack wrong", j->data, j->size, j->max_depth);
    if (!check_value(l, -1)) die("decoded value fails its checks", j->data, j->size, j->max_depth);
    size_t a, b;
    if (lone_number(j->data, j->size, &a, &b) && !check_number(l, j->data, a, b))
      die("lone number decoded wrong", j->data, j->size, j->max_depth);
    lua_pop(l, 1);
  } else {
    if (lua_gettop(l) != top) die("failure left values on the stack", j->data, j->size, j->max_depth);
    if (err.message[0] == '\0' || memchr(err.message, '\0', sizeof err.message) == NULL)
      die("failure without a message", j->data, j->size, j->max_depth);
    if (err.position < 1 || err.position > j->size + 1)
      die("error position out of range", j->data, j->size, j->max_depth);
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const int depths[] = { BRAZE_DEFAULT_MAX_DEPTH, 1, 3, REF_MAX_DEPTH };
  /* A fresh state per input: every malloc of the run is freed by lua_close,
     so libFuzzer's leak check (which runs LSan whenever mallocs and frees
     of one input do not balance) stays quiet and fast, and real leaks show. */
  lua_State *L = luaL_newstate();
  int shallow_ok = 0;
  if (L == NULL) abort();
  for (size_t k = 0; k < sizeof depths / sizeof depths[0]; k++) {
    /* Exactly `size` bytes, fresh each time (the last run unescaped in place). */
    job j = { data, size, malloc(size ? size : 1), depths[k], 0 };
    if (j.buf == NULL) abort();
    memcpy(j.buf, data, size);
    lua_settop(L, 0);
    lua_pushcfunction(L, run);
    lua_pushlightuserdata(L, &j);
    int status = lua_pcall(L, 1, 0, 0);
    free(j.buf);
    if (status != LUA_OK) {
      if (status == LUA_ERRMEM) break; /* the one error braze_decode may raise */
      die(lua_tostring(L, -1) ? lua_tostring(L, -1) : "Lua error", data, size, depths[k]);
    }
    if (j.ok != ref_valid(data, size, depths[k]))
      die(j.ok ? "decoder accepts what the validator rejects" : "decoder rejects what the validator accepts",
          data, size, depths[k]);
    if (depths[k] == 1) shallow_ok = j.ok;
    if (depths[k] == REF_MAX_DEPTH && shallow_ok && !j.ok)
      die("a deeper limit rejects what a shallower one accepts", data, size, depths[k]);
  }
  lua_close(L);
  return 0;
}
