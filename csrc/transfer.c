/*
 * transfer.c - one libcurl transfer: the header and body callbacks (plain
 * C: no Lua call ever runs inside a curl frame), their limits (max_body,
 * an announced Content-Length, libcurl's own header limits) and the
 * response table built from what arrived. Every buffer belongs to the
 * transfer, which belongs to a userdata: a Lua error (memory) while
 * building the results leaks nothing.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"
#include "transfer.h"

/* A receive buffer larger than this is released after each request. */
#define KEEP_BUFFER_MAX (1u << 20)

/*
 * libcurl's header limits: one line at most CURL_MAX_HTTP_HEADER (100 KB,
 * refused as CURLE_OUT_OF_MEMORY), all of a response's header lines at most
 * 300 KB (refused as CURLE_TOO_LARGE from 8.6, as CURLE_RECV_ERROR "Too
 * large response headers" before). A transfer that failed inside a header
 * block after more than (sum - line) bytes of header lines hit the sum.
 */
#define CURL_HEADER_LINE_MAX (100u * 1024)
#define CURL_HEADERS_MAX (300u * 1024)

/* ---- libcurl callbacks (pure C) ---------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
  braze_transfer *t = (braze_transfer *)ud;
  size_t n = size * nmemb;
  if (n > t->max_body - t->body_len) {
    t->too_large = 1;
    return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
  }
  if (t->body_len + n + 1 > t->body_cap) {
    size_t cap = t->body_cap ? t->body_cap : 16384;
    while (cap < t->body_len + n + 1) cap *= 2;
    char *grown = (char *)realloc(t->body, cap);
    if (grown == NULL) {
      t->out_of_memory = 1;
      return 0;
    }
    t->body = grown;
    t->body_cap = cap;
  }
  memcpy(t->body + t->body_len, data, n);
  t->body_len += n;
  return n;
}

/* Does a Content-Length value announce more than max bytes? */
static int announced_too_large(const char *value, size_t max) {
  size_t n = 0;
  if (*value < '0' || *value > '9') return 0; /* unreadable: the body check still applies */
  for (const char *p = value; *p >= '0' && *p <= '9'; p++) {
    if (n > (SIZE_MAX - 9) / 10) return 1;
    n = n * 10 + (size_t)(*p - '0');
  }
  return n > max;
}

/* Is this status line ("HTTP/1.1 103 Early Hints", "HTTP/2 100") a 1xx? */
static int is_interim(const char *line, size_t n) {
  const char *sp = memchr(line, ' ', n);
  return sp != NULL && (size_t)(sp - line) + 1 < n && sp[1] == '1';
}

/*
 * Each header line of the response, as libcurl delivers them: zero or more
 * 1xx blocks (status line, headers, blank line), the final block, then,
 * after a chunked body, trailer lines. Trailers are not headers: they are
 * ignored (a trailer "HTTP/..." is no new response, a trailer
 * Content-Length announces nothing).
 */
static size_t on_header(char *line, size_t size, size_t nmemb, void *ud) {
  braze_transfer *t = (braze_transfer *)ud;
  size_t n = size * nmemb;
  char value[BRAZE_HEADER_VALUE_MAX];
  if (t->in_trailers) return n;
  t->header_bytes += n;
  int which = braze_header_line(line, n, value);
  if (which == -2) {
    /* A status line starts a new response (e.g. after "100 Continue"). */
    memset(t->header_present, 0, sizeof t->header_present);
    t->body_len = 0;
    t->in_headers = 1;
    t->interim = is_interim(line, n);
  } else if (n >= 1 && n <= 2 && (line[0] == '\r' || line[0] == '\n')) {
    t->in_headers = 0; /* the blank line after the headers */
    if (!t->interim) t->in_trailers = 1; /* what follows the body is trailers */
  } else if (which >= 0) {
    memcpy(t->header_value[which], value, sizeof value);
    t->header_present[which] = 1;
    if (which == BRAZE_H_CONTENT_LENGTH && announced_too_large(value, t->max_body)) {
      t->too_large = 1;
      return 0; /* abort before a byte of the body is buffered */
    }
  }
  return n;
}

/* ---- the transfer ------------------------------------------------------ */

CURLcode braze_transfer_bind(braze_transfer *t) {
  CURLcode rc = CURLE_OK;
  if (rc == CURLE_OK) rc = curl_easy_setopt(t->curl, CURLOPT_ERRORBUFFER, t->errbuf);
  if (rc == CURLE_OK) rc = curl_easy_setopt(t->curl, CURLOPT_WRITEFUNCTION, on_body);
  if (rc == CURLE_OK) rc = curl_easy_setopt(t->curl, CURLOPT_WRITEDATA, t);
  if (rc == CURLE_OK) rc = curl_easy_setopt(t->curl, CURLOPT_HEADERFUNCTION, on_header);
  if (rc == CURLE_OK) rc = curl_easy_setopt(t->curl, CURLOPT_HEADERDATA, t);
  if (rc == CURLE_OK) rc = curl_easy_setopt(t->curl, CURLOPT_PRIVATE, (void *)t);
  return rc;
}

void braze_transfer_reset(braze_transfer *t) {
  t->body_len = 0;
  t->too_large = 0;
  t->out_of_memory = 0;
  t->in_headers = 1; /* until the blank line: a header line can fail before the status line */
  t->interim = 0;
  t->in_trailers = 0;
  t->header_bytes = 0;
  t->errbuf[0] = '\0';
  memset(t->header_present, 0, sizeof t->header_present);
}

void braze_transfer_done(braze_transfer *t) {
  if (t->body_cap > KEEP_BUFFER_MAX) {
    free(t->body);
    t->body = NULL;
    t->body_cap = 0;
  }
  t->body_len = 0;
}

void braze_transfer_release(braze_transfer *t) {
  if (t->curl) {
    curl_easy_cleanup(t->curl);
    t->curl = NULL;
  }
  free(t->body);
  t->body = NULL;
  t->body_len = t->body_cap = 0;
}

/* ---- results ----------------------------------------------------------- */

static void push_headers(lua_State *L, const braze_transfer *t) {
  lua_createtable(L, 0, BRAZE_N_HEADERS);
  for (int i = 0; i < BRAZE_N_HEADERS; i++) {
    if (!t->header_present[i]) continue;
    lua_pushstring(L, t->header_value[i]);
    lua_setfield(L, -2, braze_header_names[i]);
  }
}

/* The kind and message of a transfer that ended with rc (not CURLE_OK). */
static void classify(const braze_transfer *t, CURLcode rc, const char **kind, const char **fixed) {
  *fixed = NULL;
  if (rc == CURLE_WRITE_ERROR && t->too_large) {
    *kind = "too_large"; /* message: see braze_push_failure */
  } else if (rc == CURLE_OUT_OF_MEMORY && t->in_headers) {
    /* libcurl refuses a header line over 100 KB (CURL_MAX_HTTP_HEADER) with
       CURLE_OUT_OF_MEMORY: a hostile or broken server, not worth a retry. */
    *kind = "too_large";
    *fixed = "response header line longer than 100 KB";
#if LIBCURL_VERSION_NUM >= 0x080600
  } else if (rc == CURLE_TOO_LARGE) {
    *kind = "too_large";
    *fixed = "response headers larger than libcurl accepts";
#endif
  } else if (t->in_headers && t->header_bytes > CURL_HEADERS_MAX - CURL_HEADER_LINE_MAX) {
    /* libcurl before 8.6 reports the header sum limit as a receive error:
       classified by what happened, not by the code. */
    *kind = "too_large";
    *fixed = "response headers larger than libcurl accepts";
  } else if (rc == CURLE_WRITE_ERROR && t->out_of_memory) {
    *kind = "network";
    *fixed = "out of memory while receiving the response";
  } else {
    *kind = rc == CURLE_OPERATION_TIMEDOUT   ? "timeout"
            : rc == CURLE_ABORTED_BY_CALLBACK ? "interrupted" /* Ctrl-C */
                                              : "network";
  }
}

/* Push the message for a failure of kind `kind`. */
static void push_message(lua_State *L, const braze_transfer *t, CURLcode rc, const char *fixed) {
  if (fixed != NULL) {
    lua_pushstring(L, fixed);
  } else if (rc == CURLE_WRITE_ERROR && t->too_large) {
    char msg[96];
    snprintf(msg, sizeof msg, "response body larger than max_body (%zu bytes)", t->max_body);
    lua_pushstring(L, msg);
  } else if (t->errbuf[0]) {
    lua_pushfstring(L, "%s (%s)", curl_easy_strerror(rc), t->errbuf);
  } else {
    lua_pushstring(L, curl_easy_strerror(rc));
  }
}

int braze_push_failure(lua_State *L, const braze_transfer *t, CURLcode rc) {
  const char *kind, *fixed;
  classify(t, rc, &kind, &fixed);
  lua_pushnil(L);
  lua_pushstring(L, kind);
  push_message(L, t, rc, fixed);
  return 3;
}

void braze_push_response(lua_State *L, braze_transfer *t, int max_depth) {
  long status = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  lua_createtable(L, 0, 6);
  lua_pushinteger(L, (lua_Integer)status);
  lua_setfield(L, -2, "status");
  push_headers(L, t);
  lua_setfield(L, -2, "headers");
  if (t->body_len == 0) {
    lua_pushliteral(L, "empty body");
    lua_setfield(L, -2, "decode_error");
  } else {
    braze_decode_error err;
    /* Keep the raw prefix first (decoding unescapes the buffer in place),
       in C: it becomes a Lua string only when decoding fails. */
    char snippet[BRAZE_SNIPPET_MAX];
    size_t keep = t->body_len < BRAZE_SNIPPET_MAX ? t->body_len : BRAZE_SNIPPET_MAX;
    memcpy(snippet, t->body, keep);
    if (braze_decode(L, t->body, t->body_len, max_depth, &err)) {
      lua_setfield(L, -2, "body");
    } else {
      lua_pushlstring(L, snippet, keep);
      lua_setfield(L, -2, "snippet");
      lua_pushstring(L, err.message);
      lua_setfield(L, -2, "decode_error");
      lua_pushinteger(L, (lua_Integer)err.position);
      lua_setfield(L, -2, "decode_position");
    }
  }
  braze_transfer_done(t);
}

void braze_push_outcome(lua_State *L, braze_transfer *t, CURLcode rc, int max_depth) {
  if (rc == CURLE_OK) {
    braze_push_response(L, t, max_depth);
    return;
  }
  const char *kind, *fixed;
  classify(t, rc, &kind, &fixed);
  lua_createtable(L, 0, 3);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "error");
  push_message(L, t, rc, fixed);
  lua_setfield(L, -2, "message");
  braze_transfer_done(t);
}
