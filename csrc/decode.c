/*
 * decode.c - JSON (RFC 8259) to Lua values, in one loop (no recursion).
 *
 * Strict: no comments, no trailing commas, no NaN/Infinity, no leading
 * zeros, strings must be valid UTF-8 with no raw control characters and
 * no lone surrogates. Integers that fit in a lua_Integer stay integers;
 * everything else is a double, except that on Luas without an integer
 * subtype an integer beyond +-2^53 becomes a string of its digits (see
 * parse_number). JSON null is lightuserdata NULL (equal to
 * cjson.null). Objects and arrays both become plain tables.
 *
 * Depth is bounded by max_depth (1..10000). The open containers wait on
 * an explicit stack, not the C stack: the C stack used is the same at
 * every depth (well under a kilobyte of frames), so any allowed depth
 * decodes in a small thread stack; the Lua stack, which does grow with
 * depth, is checked with lua_checkstack, and running out of it is a decode
 * error. Malformed input never raises: the parser reports a message and a
 * byte position and restores the stack.
 * Only memory errors raise, and this file owns no allocation when they do.
 */
/* strtod_l: glibc and musl declare it only for _GNU_SOURCE (newlocale is POSIX 2008). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <float.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__APPLE__) || defined(__FreeBSD__)
#include <xlocale.h>
#endif

#include "decode.h"

/*
 * Speed (measured by bench/run.sh; see bench/README.md). Most of a decode
 * is Lua building tables and strings, so the point is to ask it for less:
 * - arrays: values wait on the Lua stack and the table is made at ']' with
 *   its exact size (chunks of ARRAY_CHUNK for longer ones): no rehash;
 * - objects are presized from the key count of the last object at the same
 *   depth (an array of alike objects, as every Braze list is);
 * - keys go through a cache of Lua strings held in stack slots below the
 *   result (so the collector keeps them, and their bytes, alive), found by
 *   a cheap hash and compared by length and bytes: a repeated key is not
 *   hashed, looked up in the string table or allocated again;
 * - strings are scanned, and integer digits read, eight bytes at a time;
 * - numbers the fast paths cannot make exactly go to strtod_l.
 */
#define KEY_CACHE 64          /* key-cache slots (a power of two) */
#define KEY_CACHE_MAXLEN 40   /* longer keys are not cached (LUAI_MAXSHORTLEN) */
#define ARRAY_CHUNK 256       /* array values waiting on the stack, per array */
#define PENDING_MAX 1024      /* ... and in all open arrays together */
#define STACK_STEP 16         /* array values reserved per lua_checkstack */
#define STACK_SLACK 4         /* what pushing one value may need on top */
#define OBJ_HINTS 32          /* depths whose last object size is kept */
#define LEVELS_INLINE 32      /* enclosing levels kept in the decoder itself */

/*
 * Stack slots one C function may use: LuaJIT and 5.1 allow 8000, the
 * others a million. The key cache and the waiting array values need more
 * of it than one or two slots per level, so they are used only when the
 * document cannot reach that limit even at max_depth: where it could (a
 * max_depth of several thousand on LuaJIT), the decoder uses the stack
 * exactly as it always did, and fails ("nesting too deep for the Lua
 * stack (N levels)") at exactly the same byte.
 */
#if LUA_VERSION_NUM < 502 && defined(LUAI_MAXCSTACK)
#define STACK_LIMIT LUAI_MAXCSTACK
#elif defined(LUAI_MAXSTACK)
#define STACK_LIMIT LUAI_MAXSTACK
#else
#define STACK_LIMIT 8000
#endif

enum { IN_NONE, IN_ARRAY, IN_OBJECT };

/* An open container, while a value inside it is being parsed. */
typedef struct {
  lua_Integer count;   /* array: values in the table already; object: members */
  unsigned short k;    /* array: values waiting on the stack above its slot */
  unsigned short room; /* array: stack slots reserved for them */
  unsigned char kind;  /* IN_ARRAY, IN_OBJECT (IN_NONE: no container) */
} level;

typedef struct {
  lua_State *L;
  char *start;      /* first byte of the document (for positions) */
  char *p;          /* next byte to read */
  char *end;        /* one past the last byte */
  int depth;
  int max_depth;
  int cache_base;   /* stack index of key-cache slot 0, or 0: no cache */
  int collect;      /* room for the key cache and waiting array values */
  int pending;      /* stack slots reserved for array values, all levels */
  braze_decode_error *err;
  level *levels;    /* levels[i]: the open container at depth i + 1, while deeper ones are */
  int levels_cap;   /* ... room for this many (LEVELS_INLINE, or a userdata's) */
  int anchor;       /* stack index of the slot holding that userdata (a container document) */
  level levels_inline[LEVELS_INLINE];
  unsigned char obj_hint[OBJ_HINTS]; /* 1 + keys of the last object at a depth; 0: none */
  const char *key_ptr[KEY_CACHE];    /* the bytes of the string in each slot */
  unsigned char key_len[KEY_CACHE];  /* 0: slot empty */
} decoder;

/* Bytes a string may hold as they are: printable ASCII except '"' and '\'. */
static const unsigned char plain_char[256] = {
#define R16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
  R16(0), R16(0),                                   /* 0x00-0x1f: control */
  1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,   /* 0x20-0x2f: '"' */
  R16(1), R16(1),                                   /* 0x30-0x4f */
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,   /* 0x50-0x5f: '\' */
  R16(1), 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x60-0x7f */
  R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0) /* >= 0x80 */
#undef R16
};

/*
 * Clinger's fast path (parse_number) needs the one multiply or divide to
 * round once, to double. That holds when FLT_EVAL_METHOD is 0. Where
 * double arithmetic is evaluated wider (2: the x87 FPU, i386 without SSE2
 * or -mfpmath=387; -1: unknown), the product is rounded to 64 bits and
 * then to 53, and about one number in two thousand comes out one ulp off
 * (4370261077815615e-17): such builds read every float with strtod_l.
 */
#if defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD == 0
#define FAST_FLOAT 1
static const double pow10_exact[] = {
  1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
  1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};
#else
#define FAST_FLOAT 0
#endif

/* ---- errors ----------------------------------------------------------- */

static void describe_byte(const decoder *d, const char *at, char *out, size_t n) {
  if (at >= d->end) {
    snprintf(out, n, "end of input");
  } else {
    unsigned char c = (unsigned char)*at;
    if (c >= 0x20 && c < 0x7f) snprintf(out, n, "'%c'", c);
    else snprintf(out, n, "byte 0x%02X", c);
  }
}

/* Record an error found at `at`; always returns 0 so callers can `return fail(...)`. */
static int fail(decoder *d, const char *at, const char *what) {
  d->err->position = (size_t)(at - d->start) + 1;
  snprintf(d->err->message, sizeof d->err->message, "%s", what);
  return 0;
}

/* "expected X but found Y" errors. */
static int fail_expected(decoder *d, const char *at, const char *expected) {
  char found[32];
  char msg[128];
  describe_byte(d, at, found, sizeof found);
  snprintf(msg, sizeof msg, "expected %s but found %s", expected, found);
  return fail(d, at, msg);
}

/* ---- helpers ---------------------------------------------------------- */

static inline void skip_ws(decoder *d) {
  char *p = d->p, *end = d->end;
  if (p < end && (unsigned char)*p > ' ') return; /* compact JSON: nothing to skip */
  while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
  d->p = p;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0. */
static int utf8_sequence(const unsigned char *p, const unsigned char *end) {
  unsigned char c = p[0];
  int n;
  unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;      /* no overlongs */
    else if (c == 0xED) hi = 0x9F; /* no UTF-16 surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;      /* no overlongs */
    else if (c == 0xF4) hi = 0x8F; /* nothing above U+10FFFF */
  } else return 0;
  if (end - p < n) return 0;
  if (p[1] < lo || p[1] > hi) return 0;
  for (int i = 2; i < n; i++)
    if ((p[i] & 0xC0) != 0x80) return 0;
  return n;
}

static int hex4(const char *p) {
  int v = 0;
  for (int i = 0; i < 4; i++) {
    int c = (unsigned char)p[i], h;
    if (c >= '0' && c <= '9') h = c - '0';
    else if (c >= 'a' && c <= 'f') h = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') h = c - 'A' + 10;
    else return -1;
    v = (v << 4) | h;
  }
  return v;
}

static char *put_utf8(char *w, unsigned long cp) {
  if (cp < 0x80) {
    *w++ = (char)cp;
  } else if (cp < 0x800) {
    *w++ = (char)(0xC0 | (cp >> 6));
    *w++ = (char)(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *w++ = (char)(0xE0 | (cp >> 12));
    *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    *w++ = (char)(0x80 | (cp & 0x3F));
  } else {
    *w++ = (char)(0xF0 | (cp >> 18));
    *w++ = (char)(0x80 | ((cp >> 12) & 0x3F));
    *w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
    *w++ = (char)(0x80 | (cp & 0x3F));
  }
  return w;
}

/* ---- strings ---------------------------------------------------------- */

/*
 * Decode the \uXXXX escape at r (r points at the 'u'); write UTF-8 at *w.
 * Returns the number of input bytes consumed after the backslash, or 0.
 */
static int unicode_escape(decoder *d, char *r, char **w) {
  if (d->end - r < 5) return fail(d, r - 1, "truncated \\u escape");
  int cp = hex4(r + 1);
  if (cp < 0) return fail(d, r - 1, "invalid hex digit in \\u escape");
  if (cp >= 0xDC00 && cp <= 0xDFFF)
    return fail(d, r - 1, "lone low surrogate in \\u escape");
  if (cp >= 0xD800 && cp <= 0xDBFF) {
    /* A high surrogate must be followed by an escaped low surrogate. */
    if (d->end - r < 11 || r[5] != '\\' || r[6] != 'u')
      return fail(d, r - 1, "lone high surrogate in \\u escape");
    int lo = hex4(r + 7);
    if (lo < 0xDC00 || lo > 0xDFFF)
      return fail(d, r - 1, "high surrogate not followed by a low surrogate");
    *w = put_utf8(*w, 0x10000 + (((unsigned long)cp - 0xD800) << 10) + ((unsigned long)lo - 0xDC00));
    return 11;
  }
  *w = put_utf8(*w, (unsigned long)cp);
  return 5;
}

#define ONES UINT64_C(0x0101010101010101)
#define HIGHS UINT64_C(0x8080808080808080)

#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define FIRST_FLAGGED_BYTE(m) (__builtin_ctzll(m) >> 3)
#endif

/*
 * The first byte at or after r that is not plain_char (or end), eight
 * bytes at a time. A byte needs a look when it is < 0x20, '"', '\\' or
 * >= 0x80. The word tests below ("has a byte less than n", "has a zero
 * byte" after an XOR) set the high bit of every matching byte, and may
 * set it in false ones too, but only in bytes above a true match (the
 * borrow runs upwards): so the test is exact about whether a word has a
 * match, and on little-endian machines the lowest flag is the first one.
 */
static inline char *scan_plain(char *r, const char *const end) {
  while (end - r >= 8) {
    uint64_t x;
    memcpy(&x, r, 8);
    uint64_t q = x ^ (ONES * '"'), b = x ^ (ONES * '\\');
    uint64_t flags = (((x - ONES * 0x20) | (q - ONES) | (b - ONES)) & ~x & HIGHS) | (x & HIGHS);
    if (flags != 0) {
#ifdef FIRST_FLAGGED_BYTE
      return r + FIRST_FLAGGED_BYTE(flags);
#else
      break;
#endif
    }
    r += 8;
  }
  while (r < end && plain_char[(unsigned char)*r]) r++;
  return r;
}

/* d->p is just past the opening quote. Pushes the string. */
static int parse_string(decoder *d) {
  char *const s = d->p;
  char *r = s;
  char *const end = d->end;
  char *w;

  /* Fast path: no escapes, so the bytes can be pushed where they lie. */
  for (;;) {
    r = scan_plain(r, end);
    if (r >= end) return fail(d, s - 1, "unterminated string");
    unsigned char c = (unsigned char)*r;
    if (c == '"') {
      lua_pushlstring(d->L, s, (size_t)(r - s));
      d->p = r + 1;
      return 1;
    }
    if (c == '\\') break;
    if (c < 0x20) return fail(d, r, "control character in string (must be escaped)");
    int n = utf8_sequence((const unsigned char *)r, (const unsigned char *)end);
    if (n == 0) return fail(d, r, "invalid UTF-8 in string");
    r += n;
  }

  /* Slow path: unescape in place; the write pointer never passes the read one. */
  w = r;
  for (;;) {
    if (r >= end) return fail(d, s - 1, "unterminated string");
    unsigned char c = (unsigned char)*r;
    if (plain_char[c]) {
      *w++ = *r++;
    } else if (c == '"') {
      lua_pushlstring(d->L, s, (size_t)(w - s));
      d->p = r + 1;
      return 1;
    } else if (c == '\\') {
      if (r + 1 >= end) return fail(d, s - 1, "unterminated string");
      switch (r[1]) {
        case '"': *w++ = '"'; r += 2; break;
        case '\\': *w++ = '\\'; r += 2; break;
        case '/': *w++ = '/'; r += 2; break;
        case 'b': *w++ = '\b'; r += 2; break;
        case 'f': *w++ = '\f'; r += 2; break;
        case 'n': *w++ = '\n'; r += 2; break;
        case 'r': *w++ = '\r'; r += 2; break;
        case 't': *w++ = '\t'; r += 2; break;
        case 'u': {
          int used = unicode_escape(d, r + 1, &w);
          if (used == 0) return 0;
          r += 1 + used;
          break;
        }
        default: return fail(d, r, "invalid escape in string");
      }
    } else if (c < 0x20) {
      return fail(d, r, "control character in string (must be escaped)");
    } else {
      int n = utf8_sequence((const unsigned char *)r, (const unsigned char *)end);
      if (n == 0) return fail(d, r, "invalid UTF-8 in string");
      memmove(w, r, (size_t)n);
      w += n;
      r += n;
    }
  }
}

/* ---- numbers ---------------------------------------------------------- */

static int is_digit(char c) { return c >= '0' && c <= '9'; }

#ifdef FIRST_FLAGGED_BYTE
/*
 * If s[0..8) are all ASCII digits, their value (s[0] the most significant)
 * into *out, eight digits at a time (the simdjson tests and arithmetic).
 */
static inline int eight_digits(const char *s, uint64_t *out) {
  uint64_t v;
  memcpy(&v, s, 8);
  if (((v & UINT64_C(0xF0F0F0F0F0F0F0F0)) |
       (((v + UINT64_C(0x0606060606060606)) & UINT64_C(0xF0F0F0F0F0F0F0F0)) >> 4)) !=
      UINT64_C(0x3333333333333333))
    return 0;
  v -= UINT64_C(0x3030303030303030);
  v = v * 10 + (v >> 8); /* adjacent pairs: byte 2i holds 10*s[2i] + s[2i+1] */
  v = ((v & UINT64_C(0x000000FF000000FF)) * (100 + (UINT64_C(1000000) << 32)) +
       ((v >> 16) & UINT64_C(0x000000FF000000FF)) * (1 + (UINT64_C(10000) << 32))) >> 32;
  *out = (uint32_t)v;
  return 1;
}
#endif

/*
 * The exact-but-slow path: the C library's strtod, in a "C" locale object
 * of our own (strtod_l), so the decimal point is '.' whatever setlocale()
 * the program or another thread calls, and nothing reads the global
 * locale (localeconv() is not thread-safe). The object is made once per
 * process, thread-safely, and never freed.
 */
static locale_t c_locale = (locale_t)0;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void make_c_locale(void) {
  c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
}

static int push_strtod(decoder *d, const char *begin, size_t n) {
  char small[64];
  char *tmp = small, *stop;
  if (pthread_once(&c_locale_once, make_c_locale) != 0 || c_locale == (locale_t)0)
    return fail(d, begin, "cannot read the number: no C locale (newlocale failed)");
  if (n + 1 > sizeof small) /* a Lua-owned scratch, so an error cannot leak it */
    tmp = (char *)lua_newuserdatauv(d->L, n + 1, 0);
  memcpy(tmp, begin, n); /* the document is not NUL-terminated */
  tmp[n] = '\0';
  double v = strtod_l(tmp, &stop, c_locale);
  size_t used = (size_t)(stop - tmp);
  if (tmp != small) lua_pop(d->L, 1);
  /* The lexeme is valid JSON, so all of it is a C number: anything else is a bug, not a value. */
  if (used != n) return fail(d, begin + used, "number not read whole by strtod");
  if (isinf(v)) return fail(d, begin, "number out of range");
  lua_pushnumber(d->L, (lua_Number)v);
  return 1;
}

static int parse_number(decoder *d) {
  char *const begin = d->p;
  char *p = begin, *const end = d->end;
  int negative = 0, is_float = 0, inexact = 0;
  uint64_t mantissa = 0;
  int digits = 0;  /* significant digits kept in mantissa */
  long exp10 = 0;  /* decimal exponent applied to mantissa */

  if (*p == '-') { negative = 1; p++; }
  if (p >= end || !is_digit(*p)) return fail_expected(d, p, "a digit");
  if (*p == '0') {
    p++;
    if (p < end && is_digit(*p)) return fail(d, p - 1, "leading zero in number");
  } else {
    /* The first 19 digits of the run fit in the mantissa. */
    char *run = p, *acc;
#ifdef FIRST_FLAGGED_BYTE
    uint64_t eight;
    while (end - p >= 8 && p - run <= 11 && eight_digits(p, &eight)) {
      mantissa = mantissa * 100000000u + eight;
      p += 8;
    }
#endif
    acc = p; /* digits before acc are in the mantissa already */
    while (p < end && is_digit(*p)) p++;
    char *kept = p - run > 19 ? run + 19 : p;
    for (char *q = acc; q < kept; q++) mantissa = mantissa * 10 + (uint64_t)(*q - '0');
    digits = (int)(kept - run);
    for (char *q = kept; q < p; q++) { exp10++; if (*q != '0') inexact = 1; }
  }
  if (p < end && *p == '.') {
    is_float = 1;
    p++;
    if (p >= end || !is_digit(*p)) return fail_expected(d, p, "a digit after '.'");
    for (; p < end && is_digit(*p); p++) {
      if (mantissa == 0 && *p == '0') { exp10--; continue; } /* leading zeros */
      if (digits < 19) { mantissa = mantissa * 10 + (uint64_t)(*p - '0'); digits++; exp10--; }
      else if (*p != '0') inexact = 1;
    }
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    long e = 0;
    int eneg = 0;
    is_float = 1;
    p++;
    if (p < end && (*p == '+' || *p == '-')) { eneg = (*p == '-'); p++; }
    if (p >= end || !is_digit(*p)) return fail_expected(d, p, "a digit in the exponent");
    for (; p < end && is_digit(*p); p++)
      if (e < 100000) e = e * 10 + (*p - '0'); /* saturate: far out of range anyway */
    exp10 += eneg ? -e : e;
  }
  d->p = p;

  if (!is_float && exp10 == 0 && !inexact) {
    /* An integer lexeme with at most 19 digits. */
#if BRAZE_HAS_INTEGERS
    if (!negative && mantissa <= (uint64_t)INT64_MAX) {
      lua_pushinteger(d->L, (lua_Integer)mantissa);
      return 1;
    }
    if (negative && mantissa <= (uint64_t)INT64_MAX + 1) {
      lua_pushinteger(d->L, mantissa == (uint64_t)INT64_MAX + 1 ? (lua_Integer)INT64_MIN
                                                               : -(lua_Integer)mantissa);
      return 1;
    }
#else
    if (mantissa <= ((uint64_t)1 << 53)) {
      /* "-0" is 0, not -0.0: an integer lexeme is an integer, as on 5.3+. */
      lua_pushnumber(d->L, negative && mantissa != 0 ? -(lua_Number)mantissa : (lua_Number)mantissa);
      return 1;
    }
#endif
  }
#if !BRAZE_HAS_INTEGERS
  /*
   * Lua 5.1/5.2/LuaJIT have only doubles, exact up to 2^53. An integer
   * lexeme beyond +-2^53 (a segment size, an id) is returned as a Lua
   * string of its exact digits ("9007199254740993", "-..."), never as a
   * rounded number: the value stays exact, and code that expects a number
   * sees a string instead of a silently wrong count. (LuaJIT int64 cdata
   * cannot be made from the C API without calling back into the FFI, and
   * would not work on plain 5.1 anyway.) Lexemes with a fraction or an
   * exponent are floats in JSON's own terms and stay doubles.
   */
  if (!is_float) {
    lua_pushlstring(d->L, begin, (size_t)(p - begin));
    return 1;
  }
#endif
#if FAST_FLOAT
  /* Clinger's fast path: both operands exact, so one rounding, the right one. */
  if (!inexact && mantissa <= ((uint64_t)1 << 53) && exp10 >= -22 && exp10 <= 22) {
    double v = (double)mantissa;
    v = exp10 < 0 ? v / pow10_exact[-exp10] : v * pow10_exact[exp10];
    lua_pushnumber(d->L, (lua_Number)(negative ? -v : v));
    return 1;
  }
#endif
  return push_strtod(d, begin, (size_t)(p - begin));
}

/* ---- keys and literals ------------------------------------------------ */

/* memcmp(a, b, n) == 0 for the short n of keys, without a call. */
static inline int same_bytes(const char *a, const char *b, size_t n) {
  for (; n >= 8; a += 8, b += 8, n -= 8) {
    uint64_t x, y;
    memcpy(&x, a, 8);
    memcpy(&y, b, 8);
    if (x != y) return 0;
  }
  for (; n > 0; n--)
    if (*a++ != *b++) return 0;
  return 1;
}

/*
 * d->p is just past the opening quote of an object key. Pushes the key,
 * from the key cache when the same bytes were pushed before. Keys with
 * escapes or non-ASCII bytes, and long ones, take parse_string.
 */
static int parse_key(decoder *d) {
  char *const s = d->p;
  char *r = scan_plain(s, d->end);
  size_t len = (size_t)(r - s);
  if (r < d->end && *r == '"' && len - 1 < KEY_CACHE_MAXLEN && d->cache_base != 0) {
    lua_State *L = d->L;
    unsigned h = (unsigned)len * 31u + (unsigned char)s[0] * 7u + (unsigned char)s[len - 1];
    h = (h ^ (h >> 6) ^ ((unsigned)(unsigned char)s[len >> 1] << 2)) & (KEY_CACHE - 1);
    d->p = r + 1;
    if (d->key_len[h] == len && same_bytes(d->key_ptr[h], s, len)) {
      lua_pushvalue(L, d->cache_base + (int)h);
      return 1;
    }
    lua_pushlstring(L, s, len);
    d->key_ptr[h] = lua_tolstring(L, -1, NULL);
    d->key_len[h] = (unsigned char)len;
    /* The slot keeps the string, so key_ptr, alive (lua_copy is 5.2+). */
    lua_pushvalue(L, -1);
    lua_replace(L, d->cache_base + (int)h);
    return 1;
  }
  return parse_string(d);
}

static int parse_literal(decoder *d, const char *word, size_t n) {
  if ((size_t)(d->end - d->p) < n || memcmp(d->p, word, n) != 0)
    return fail_expected(d, d->p, "a JSON value");
  d->p += n;
  return 1;
}

/* ---- containers ------------------------------------------------------- */

/*
 * A container about to open at d->p - 1: count the level, and make sure
 * the Lua stack has room for it (the C stack needs none: see parse).
 */
/* The Lua stack cannot grow for the `levels`-th level (5.1, LuaJIT: 8000 slots). */
static int fail_lua_stack(decoder *d, const char *at, int levels) {
  char msg[80];
  snprintf(msg, sizeof msg, "nesting too deep for the Lua stack (%d levels)", levels);
  return fail(d, at, msg);
}

static int enter(decoder *d) {
  if (d->depth == d->max_depth) {
    char msg[80];
    snprintf(msg, sizeof msg, "nesting deeper than %d levels", d->max_depth);
    return fail(d, d->p - 1, msg);
  }
  if (!lua_checkstack(d->L, 4)) return fail_lua_stack(d, d->p - 1, d->depth + 1);
  d->depth++;
  return 1;
}

/*
 * Keep `parent`, the level that encloses the one just entered (d->depth,
 * 2 or more), in levels[d->depth - 2]. The first LEVELS_INLINE go in the
 * decoder itself; past them the levels move to a userdata in the anchor
 * slot, doubled as needed up to max_depth - 1 levels (16 bytes each), so
 * Lua owns the memory: a memory error raised here or later leaks nothing.
 */
static void save_level(decoder *d, const level *parent) {
  int i = d->depth - 2;
  if (i >= d->levels_cap) {
    int cap = d->levels_cap * 2;
    if (cap > d->max_depth - 1) cap = d->max_depth - 1;
    level *grown = (level *)lua_newuserdatauv(d->L, (size_t)cap * sizeof(level), 0);
    memcpy(grown, d->levels, (size_t)d->levels_cap * sizeof(level));
    lua_replace(d->L, d->anchor); /* the old userdata, if any, is garbage now */
    d->levels = grown;
    d->levels_cap = cap;
  }
  d->levels[i] = *parent;
}

/*
 * Move the k values on top of the stack into the array at stack index
 * base, as elements stored + 1 .. stored + k; returns stored + k. Until
 * the first flush that slot holds a nil placeholder; the table made then
 * has exactly k slots (the whole array, unless it is longer than
 * ARRAY_CHUNK).
 */
static lua_Integer flush_array(lua_State *L, int base, int k, lua_Integer stored) {
  if (stored == 0 && lua_type(L, base) == LUA_TNIL) {
    lua_createtable(L, k, 0);
    lua_replace(L, base);
  }
  for (int j = k; j >= 1; j--) lua_rawseti(L, base, stored + j);
  return stored + k;
}

/*
 * Parse one value at d->p and push it: a loop with the open containers
 * on an explicit stack (d->levels), so the C stack it uses is the same at
 * every depth and no input can exhaust it, whatever max_depth allows.
 * The innermost open container is `cur` (with `base`, its array's stack
 * slot); the ones around it wait in d->levels. On failure the values
 * pushed so far are left for the caller to drop.
 */
static int parse(decoder *d) {
  lua_State *L = d->L;
  level cur;      /* the innermost open container; IN_NONE at the top */
  int base = 0;   /* cur's stack slot, when cur is an array */
  cur.count = 0;
  cur.k = cur.room = 0;
  cur.kind = IN_NONE;

value:
  skip_ws(d);
  if (d->p >= d->end) return fail_expected(d, d->p, "a JSON value");
  switch (*d->p) {
    case '{': {
      int depth;
      d->p++;
      if (!enter(d)) return 0;
      depth = d->depth;
      /* Presize like the last object at this depth (an array of alike objects). */
      if (depth < OBJ_HINTS && d->obj_hint[depth] != 0) lua_createtable(L, 0, d->obj_hint[depth] - 1);
      else lua_createtable(L, 0, 4);
      skip_ws(d);
      if (d->p < d->end && *d->p == '}') {
        d->p++;
        if (depth < OBJ_HINTS) d->obj_hint[depth] = 1;
        d->depth--;
        goto have_value;
      }
      if (depth >= 2) save_level(d, &cur);
      cur.kind = IN_OBJECT;
      cur.count = 0;
      goto object_key;
    }
    case '[':
      d->p++;
      if (!enter(d)) return 0;
      skip_ws(d);
      if (d->p < d->end && *d->p == ']') {
        d->p++;
        d->depth--;
        lua_createtable(L, 0, 0);
        goto have_value;
      }
      if (d->depth >= 2) save_level(d, &cur);
      lua_pushnil(L); /* where the table goes */
      base = lua_gettop(L);
      /* Values wait on the stack above it, k of them, with room for `room`. */
      cur.kind = IN_ARRAY;
      cur.count = 0;
      cur.k = cur.room = 0;
      goto array_value;
    case '"':
      d->p++;
      if (!parse_string(d)) return 0;
      goto have_value;
    case 't':
      if (!parse_literal(d, "true", 4)) return 0;
      lua_pushboolean(L, 1);
      goto have_value;
    case 'f':
      if (!parse_literal(d, "false", 5)) return 0;
      lua_pushboolean(L, 0);
      goto have_value;
    case 'n':
      if (!parse_literal(d, "null", 4)) return 0;
      lua_pushlightuserdata(L, NULL);
      goto have_value;
    default:
      if (*d->p == '-' || is_digit(*d->p)) {
        if (!parse_number(d)) return 0;
        goto have_value;
      }
      return fail_expected(d, d->p, "a JSON value");
  }

array_value:
  /* The next value of the array in cur: make room for it, then parse it. */
  if (cur.k == cur.room) {
    if (!d->collect) {
      /* One value at a time, in the room enter() made (as it always was). */
      cur.count = flush_array(L, base, cur.k, cur.count);
      cur.k = 0;
      cur.room = 1;
    } else if (cur.k < ARRAY_CHUNK && d->pending < PENDING_MAX &&
               lua_checkstack(L, STACK_STEP + STACK_SLACK)) {
      cur.room += STACK_STEP;
      d->pending += STACK_STEP;
    } else {
      /*
       * Into the table with them. The caps keep this collecting from
       * using much more of the Lua stack than one value per level (LuaJIT
       * and 5.1 allow a C function 8000 slots): when they are reached,
       * values go in one by one, as they used to.
       */
      cur.count = flush_array(L, base, cur.k, cur.count);
      d->pending -= cur.room - 1;
      cur.k = 0;
      cur.room = 1;
      if (!lua_checkstack(L, 1 + STACK_SLACK)) return fail_lua_stack(d, d->p, d->depth);
    }
  }
  goto value;

object_key:
  /* d->p is where the next key of the object in cur should start. */
  if (d->p >= d->end || *d->p != '"') return fail_expected(d, d->p, "a string key in object");
  d->p++;
  if (!parse_key(d)) return 0;
  skip_ws(d);
  if (d->p >= d->end || *d->p != ':') return fail_expected(d, d->p, "':' after object key");
  d->p++;
  goto value;

have_value:
  /* A value is on top of the stack: it belongs to cur. */
  switch (cur.kind) {
    case IN_ARRAY:
      cur.k++;
      skip_ws(d);
      if (d->p < d->end && *d->p == ',') { d->p++; goto array_value; }
      if (d->p < d->end && *d->p == ']') {
        d->p++;
        flush_array(L, base, cur.k, cur.count);
        if (d->collect) d->pending -= cur.room;
        goto close;
      }
      return fail_expected(d, d->p, "',' or ']' in array");
    case IN_OBJECT:
      lua_rawset(L, -3);
      cur.count++;
      skip_ws(d);
      if (d->p < d->end && *d->p == ',') { d->p++; skip_ws(d); goto object_key; }
      if (d->p < d->end && *d->p == '}') {
        d->p++;
        if (d->depth < OBJ_HINTS)
          d->obj_hint[d->depth] = (unsigned char)(cur.count < 254 ? cur.count + 1 : 255);
        goto close;
      }
      return fail_expected(d, d->p, "',' or '}' in object");
    default:
      return 1; /* the top-level value */
  }

close:
  /* cur's table is on top of the stack: back to the container around it. */
  if (--d->depth == 0) {
    cur.kind = IN_NONE;
  } else {
    cur = d->levels[d->depth - 1];
    /* An array's waiting values, then the value just made, sit above its slot. */
    if (cur.kind == IN_ARRAY) base = lua_gettop(L) - cur.k - 1;
  }
  goto have_value;
}

int braze_decode(lua_State *L, char *buf, size_t len, int max_depth, braze_decode_error *err) {
  decoder d;
  int top = lua_gettop(L);
  d.L = L;
  d.start = d.p = buf;
  d.end = buf + len;
  d.depth = 0;
  d.max_depth = max_depth;
  d.cache_base = 0;
  d.pending = 0;
  d.levels = d.levels_inline;
  d.levels_cap = LEVELS_INLINE;
  d.anchor = 0;
  d.err = err;
  err->message[0] = '\0';
  err->position = 0;

  memset(d.obj_hint, 0, sizeof d.obj_hint);
  /* Objects take 2 slots a level, arrays 1 (the waiting values are capped). */
  d.collect = (long)top + 2L * max_depth + KEY_CACHE + PENDING_MAX + 64 <= (long)STACK_LIMIT;
  if (!lua_checkstack(L, 4)) return fail(&d, buf, "no room on the Lua stack");
  skip_ws(&d);
  if (d.p < d.end && (*d.p == '{' || *d.p == '[')) {
    /* A container: a slot for the levels' userdata (see save_level), */
    lua_pushnil(L);
    d.anchor = top + 1;
    /* and a key cache, when there is room for one: nil slots, below it all. */
    if (d.collect && lua_checkstack(L, KEY_CACHE + 4)) {
      memset(d.key_len, 0, sizeof d.key_len);
      lua_settop(L, top + 1 + KEY_CACHE);
      d.cache_base = top + 2;
    }
  }
  if (!parse(&d)) {
    lua_settop(L, top);
    return 0;
  }
  skip_ws(&d);
  if (d.p != d.end) {
    lua_settop(L, top);
    return fail_expected(&d, d.p, "end of input after the JSON value");
  }
  if (d.anchor != 0) {
    lua_replace(L, d.anchor); /* the value into the first slot, the rest dropped */
    lua_settop(L, d.anchor);
  }
  return 1;
}
