/*
 * fuzz_transfer.c - libFuzzer target for one transfer's receiving side
 * (csrc/transfer.c): the header callback's state machine (status lines,
 * 1xx blocks, the blank line, trailers, an announced Content-Length against
 * max_body), the body callback's limit and buffer, and the outcome table
 * built from what arrived (the response with its decoded body, or the
 * failure's kind and message).
 *
 * Input: byte 0 picks max_body (small, to hit the limits, or unlimited),
 * byte 1 the libcurl result the transfer ends with; then records
 * [kind][len lo][len hi][bytes]: even kind = one header line, odd = a body
 * chunk, each handed over in a malloc'd buffer of exactly its size.
 * Checks, after every call:
 *   - a callback consumes everything, or stops the transfer (returns 0)
 *     only for max_body (too_large) or out of memory;
 *   - the body never exceeds max_body;
 *   - once the final response's headers have ended, a line (trailer) changes
 *     nothing: no header, no body reset, no too_large;
 *   - every kept header value is NUL-terminated in its slot, without
 *     control bytes;
 * and the outcome is one table (under lua_pcall) with a status or an error.
 * Build and run: fuzz/run.sh transfer.
 */
#include "../csrc/transfer.c"

#include <stdint.h>
#include <stdio.h>

static lua_State *L;
static CURL *easy; /* never performs: push_response reads its (zero) status */

static void die(const char *what) {
  fprintf(stderr, "\nfuzz_transfer: %s\n", what);
  abort();
}

static void check_values(const braze_transfer *t) {
  for (int i = 0; i < BRAZE_N_HEADERS; i++) {
    if (!t->header_present[i]) continue;
    const char *v = t->header_value[i];
    const char *end = memchr(v, '\0', BRAZE_HEADER_VALUE_MAX);
    if (end == NULL) die("header value not NUL-terminated");
    for (const char *p = v; p < end; p++)
      if ((unsigned char)*p < 0x20 || *p == 0x7f) die("control byte in a header value");
  }
}

static int outcome(lua_State *l) {
  braze_transfer *t = (braze_transfer *)lua_touserdata(l, 1);
  CURLcode rc = (CURLcode)lua_tointeger(l, 2);
  braze_push_outcome(l, t, rc, 64);
  if (!lua_istable(l, -1)) die("outcome is not a table");
  lua_getfield(l, -1, "status");
  lua_getfield(l, -2, "error");
  if (lua_isnil(l, -1) == lua_isnil(l, -2)) die("outcome has neither or both of status and error");
  if (!lua_isnil(l, -1)) {
    lua_getfield(l, -3, "message");
    if (!lua_isstring(l, -1)) die("failure without a message");
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const CURLcode results[] = { CURLE_OK, CURLE_WRITE_ERROR, CURLE_OUT_OF_MEMORY,
                                      CURLE_RECV_ERROR, CURLE_OPERATION_TIMEDOUT,
                                      CURLE_ABORTED_BY_CALLBACK };
  if (size < 2) return 0;
  if (L == NULL) {
    L = luaL_newstate();
    easy = curl_easy_init();
    if (L == NULL || easy == NULL) die("setup");
  }
  braze_transfer t;
  memset(&t, 0, sizeof t);
  t.max_body = (data[0] & 0x80) ? SIZE_MAX / 2 : (size_t)(data[0] & 0x7f) * 37 + 1;
  braze_transfer_reset(&t);
  CURLcode rc = results[data[1] % (sizeof results / sizeof results[0])];
  int stopped = 0;
  size_t pos = 2;
  while (pos + 3 <= size && !stopped) {
    int kind = data[pos];
    size_t len = (size_t)data[pos + 1] | ((size_t)data[pos + 2] << 8);
    pos += 3;
    if (len > size - pos) len = size - pos;
    char *buf = (char *)malloc(len ? len : 1);
    if (buf == NULL) die("malloc");
    memcpy(buf, data + pos, len);
    pos += len;
    if (kind & 1) {
      size_t got = on_body(buf, 1, len, &t);
      if (got != len && !(got == 0 && (t.too_large || t.out_of_memory))) die("body chunk refused without a reason");
      if (t.body_len > t.max_body) die("body over max_body");
      stopped = got != len;
    } else {
      int trailers = t.in_trailers, was_large = t.too_large;
      size_t body_len = t.body_len;
      unsigned char present[BRAZE_N_HEADERS];
      char values[BRAZE_N_HEADERS][BRAZE_HEADER_VALUE_MAX];
      memcpy(present, t.header_present, sizeof present);
      memcpy(values, t.header_value, sizeof values);
      size_t got = on_header(buf, 1, len, &t);
      if (got != len && !(got == 0 && t.too_large)) die("header line refused without a reason");
      if (trailers && (got != len || t.too_large != was_large || t.body_len != body_len ||
                       memcmp(present, t.header_present, sizeof present) != 0 ||
                       memcmp(values, t.header_value, sizeof values) != 0))
        die("a trailer changed the response");
      if (!trailers && t.in_trailers && t.in_headers) die("trailers while in a header block");
      stopped = got != len;
    }
    free(buf);
    check_values(&t);
  }
  if (stopped && rc == CURLE_OK) rc = CURLE_WRITE_ERROR; /* what libcurl makes of a callback's 0 */
  t.curl = easy;
  lua_settop(L, 0);
  lua_pushcfunction(L, outcome);
  lua_pushlightuserdata(L, &t);
  lua_pushinteger(L, (lua_Integer)rc);
  if (lua_pcall(L, 2, 0, 0) != 0) {
    const char *msg = lua_tostring(L, -1);
    if (msg == NULL || strstr(msg, "memory") == NULL) die(msg ? msg : "Lua error");
  }
  lua_settop(L, 0);
  lua_gc(L, LUA_GCCOLLECT, 0);
  t.curl = NULL; /* the shared handle stays */
  braze_transfer_release(&t);
  return 0;
}
