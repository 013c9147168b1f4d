/*
 * session.c - one HTTPS session: a libcurl easy handle (so keep-alive
 * connections are reused across calls), the Authorization header, the
 * timeouts and TLS settings. session:get(url) performs one GET and turns
 * the body straight from the receive buffer into Lua values.
 *
 * Lifetime rules (see STYLE.md):
 * - the userdata and its metatable exist before any resource is acquired,
 *   so __gc cleans up whatever a failed constructor left behind;
 * - close, __gc and __close share one idempotent release;
 * - libcurl callbacks are plain C: no Lua call ever runs inside a curl frame;
 * - the receive buffer belongs to the userdata, so a Lua error (memory)
 *   while building results leaks nothing.
 */
#include <stdint.h> /* SIZE_MAX: 5.4's luaconf.h pulls it in, 5.1's does not */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "decode.h"
#include "headers.h"
#include "session.h"

/* Bytes of a body that failed to decode, kept for the error message. */
#define SNIPPET_MAX 512
/* A receive buffer larger than this is released after each request. */
#define KEEP_BUFFER_MAX (1u << 20)

typedef struct {
  CURL *curl;
  struct curl_slist *request_headers; /* holds the key: wiped on release */
  char *body;
  size_t body_len, body_cap;
  size_t max_body;
  int max_depth;
  int too_large;    /* the transfer was aborted by max_body */
  int out_of_memory;
  char header_value[BRAZE_N_HEADERS][BRAZE_HEADER_VALUE_MAX];
  unsigned char header_present[BRAZE_N_HEADERS];
  char errbuf[CURL_ERROR_SIZE];
} session;

/* ---- libcurl callbacks (pure C) ---------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
  session *s = (session *)ud;
  size_t n = size * nmemb;
  if (n > s->max_body - s->body_len) {
    s->too_large = 1;
    return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
  }
  if (s->body_len + n + 1 > s->body_cap) {
    size_t cap = s->body_cap ? s->body_cap : 16384;
    while (cap < s->body_len + n + 1) cap *= 2;
    char *grown = (char *)realloc(s->body, cap);
    if (grown == NULL) {
      s->out_of_memory = 1;
      return 0;
    }
    s->body = grown;
    s->body_cap = cap;
  }
  memcpy(s->body + s->body_len, data, n);
  s->body_len += n;
  return n;
}

static void reset_response(session *s) {
  s->body_len = 0;
  s->too_large = 0;
  s->out_of_memory = 0;
  memset(s->header_present, 0, sizeof s->header_present);
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *ud) {
  session *s = (session *)ud;
  size_t n = size * nmemb;
  char value[BRAZE_HEADER_VALUE_MAX];
  int which = braze_header_line(line, n, value);
  if (which == -2) {
    /* A status line starts a new response (e.g. after "100 Continue"). */
    memset(s->header_present, 0, sizeof s->header_present);
    s->body_len = 0;
  } else if (which >= 0) {
    memcpy(s->header_value[which], value, sizeof value);
    s->header_present[which] = 1;
  }
  return n;
}

/* ---- lifetime ---------------------------------------------------------- */

static void release(session *s) {
  if (s->curl) {
    curl_easy_cleanup(s->curl);
    s->curl = NULL;
  }
  if (s->request_headers) {
    for (struct curl_slist *h = s->request_headers; h; h = h->next)
      if (h->data) memset(h->data, 0, strlen(h->data)); /* the key */
    curl_slist_free_all(s->request_headers);
    s->request_headers = NULL;
  }
  free(s->body);
  s->body = NULL;
  s->body_len = s->body_cap = 0;
}

static session *check_session(lua_State *L) {
  return (session *)luaL_checkudata(L, 1, BRAZE_SESSION_MT);
}

static session *check_open(lua_State *L) {
  session *s = check_session(L);
  if (s->curl == NULL) luaL_error(L, "braze: session is closed");
  return s;
}

static int session_close(lua_State *L) {
  release(check_session(L));
  return 0;
}

static int session_tostring(lua_State *L) {
  session *s = check_session(L);
  lua_pushfstring(L, "braze.core.session (%s): %p", s->curl ? "open" : "closed", (void *)s);
  return 1;
}

/* ---- construction ------------------------------------------------------ */

static const char *opt_string(lua_State *L, const char *name) {
  const char *v;
  lua_getfield(L, 1, name);
  v = lua_isnil(L, -1) ? NULL : luaL_checkstring(L, -1);
  lua_pop(L, 1); /* the table keeps the string alive */
  return v;
}

static lua_Number opt_number(lua_State *L, const char *name, lua_Number dflt) {
  lua_Number v;
  lua_getfield(L, 1, name);
  v = lua_isnil(L, -1) ? dflt : luaL_checknumber(L, -1);
  lua_pop(L, 1);
  return v;
}

static void check_header_value(lua_State *L, const char *name, const char *v) {
  for (const unsigned char *p = (const unsigned char *)v; *p; p++)
    if (*p < 0x20 || *p == 0x7f)
      luaL_error(L, "braze: %s contains a control character", name);
}

static struct curl_slist *append_header(lua_State *L, session *s, const char *h) {
  struct curl_slist *l = curl_slist_append(s->request_headers, h);
  if (l == NULL) luaL_error(L, "braze: out of memory");
  s->request_headers = l;
  return l;
}

#define SETOPT(s, opt, val)                                                       \
  do {                                                                            \
    CURLcode rc_ = curl_easy_setopt((s)->curl, (opt), (val));                     \
    if (rc_ != CURLE_OK)                                                          \
      return luaL_error(L, "braze: cannot set %s: %s", #opt, curl_easy_strerror(rc_)); \
  } while (0)

/*
 * core.session{ api_key=, timeout=, connect_timeout=, user_agent=,
 *               ca_file=, ca_path=, proxy=, max_body=, max_depth= }
 * Times in seconds. proxy: nil = no proxy at all (environment ignored),
 * "env" = libcurl's environment variables, anything else = that proxy.
 */
int braze_session_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  const char *key = opt_string(L, "api_key");
  const char *agent = opt_string(L, "user_agent");
  const char *ca_file = opt_string(L, "ca_file");
  const char *ca_path = opt_string(L, "ca_path");
  const char *proxy = opt_string(L, "proxy");
  lua_Number timeout = opt_number(L, "timeout", 30);
  lua_Number connect_timeout = opt_number(L, "connect_timeout", 10);
  lua_Number max_body = opt_number(L, "max_body", 32.0 * 1024 * 1024);
  lua_Number max_depth = opt_number(L, "max_depth", BRAZE_DEFAULT_MAX_DEPTH);

  luaL_argcheck(L, key != NULL && *key != '\0', 1, "api_key is required");
  check_header_value(L, "api_key", key);
  if (agent) check_header_value(L, "user_agent", agent);
  luaL_argcheck(L, timeout > 0 && timeout <= 86400, 1, "timeout must be in (0, 86400] seconds");
  luaL_argcheck(L, connect_timeout > 0 && connect_timeout <= 86400, 1,
                "connect_timeout must be in (0, 86400] seconds");
  luaL_argcheck(L, max_body >= 1, 1, "max_body must be at least 1 byte");
  luaL_argcheck(L, max_depth >= 1 && max_depth <= 10000, 1, "max_depth must be in 1..10000");

  /* Userdata and metatable first: from here on __gc owns every resource. */
  session *s = (session *)lua_newuserdatauv(L, sizeof(session), 0);
  memset(s, 0, sizeof *s);
  luaL_setmetatable(L, BRAZE_SESSION_MT);
  s->max_body = max_body > (lua_Number)(SIZE_MAX / 2) ? SIZE_MAX / 2 : (size_t)max_body;
  s->max_depth = (int)max_depth;

  s->curl = curl_easy_init();
  if (s->curl == NULL) return luaL_error(L, "braze: curl_easy_init failed");

  /* The key goes in this header and nowhere else. */
  lua_pushfstring(L, "Authorization: Bearer %s", key);
  append_header(L, s, lua_tostring(L, -1));
  lua_pop(L, 1);
  append_header(L, s, "Accept: application/json");

  SETOPT(s, CURLOPT_HTTPHEADER, s->request_headers);
  SETOPT(s, CURLOPT_USERAGENT, agent ? agent : "lua-braze");
  SETOPT(s, CURLOPT_HTTPGET, 1L);
  SETOPT(s, CURLOPT_NOSIGNAL, 1L);          /* safe in threaded hosts */
  SETOPT(s, CURLOPT_FOLLOWLOCATION, 0L);    /* a redirect would carry the key elsewhere */
  SETOPT(s, CURLOPT_SSL_VERIFYPEER, 1L);
  SETOPT(s, CURLOPT_SSL_VERIFYHOST, 2L);
#if LIBCURL_VERSION_NUM >= 0x075500
  SETOPT(s, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  SETOPT(s, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
  SETOPT(s, CURLOPT_ACCEPT_ENCODING, "");   /* gzip/deflate when the server offers */
  SETOPT(s, CURLOPT_TCP_KEEPALIVE, 1L);
  SETOPT(s, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
  SETOPT(s, CURLOPT_CONNECTTIMEOUT_MS, (long)(connect_timeout * 1000));
  SETOPT(s, CURLOPT_ERRORBUFFER, s->errbuf);
  SETOPT(s, CURLOPT_WRITEFUNCTION, on_body);
  SETOPT(s, CURLOPT_WRITEDATA, s);
  SETOPT(s, CURLOPT_HEADERFUNCTION, on_header);
  SETOPT(s, CURLOPT_HEADERDATA, s);
  if (ca_file) SETOPT(s, CURLOPT_CAINFO, ca_file);
  if (ca_path) SETOPT(s, CURLOPT_CAPATH, ca_path);
  if (proxy == NULL) SETOPT(s, CURLOPT_PROXY, ""); /* "" = never a proxy, not even from env */
  else if (strcmp(proxy, "env") != 0) SETOPT(s, CURLOPT_PROXY, proxy);
  return 1;
}

/* ---- the request ------------------------------------------------------- */

static void push_headers(lua_State *L, session *s) {
  lua_createtable(L, 0, BRAZE_N_HEADERS);
  for (int i = 0; i < BRAZE_N_HEADERS; i++) {
    if (!s->header_present[i]) continue;
    lua_pushstring(L, s->header_value[i]);
    lua_setfield(L, -2, braze_header_names[i]);
  }
}

/* Returns nil, kind, message for a transfer that did not complete. */
static int transfer_failed(lua_State *L, session *s, CURLcode rc) {
  const char *kind = "network";
  lua_pushnil(L);
  if (rc == CURLE_OPERATION_TIMEDOUT) kind = "timeout";
  if (rc == CURLE_WRITE_ERROR && s->too_large) {
    lua_pushstring(L, "too_large");
    lua_pushfstring(L, "response body larger than max_body (%d bytes)", (int)(s->max_body > 0x7fffffff ? 0x7fffffff : s->max_body));
    return 3;
  }
  if (rc == CURLE_WRITE_ERROR && s->out_of_memory) {
    lua_pushstring(L, "network");
    lua_pushstring(L, "out of memory while receiving the response");
    return 3;
  }
  lua_pushstring(L, kind);
  if (s->errbuf[0]) lua_pushfstring(L, "%s (%s)", curl_easy_strerror(rc), s->errbuf);
  else lua_pushstring(L, curl_easy_strerror(rc));
  return 3;
}

/*
 * session:get(url) ->
 *   { status = int, headers = {lower-case name = value},
 *     body = decoded value | nil, decode_error = msg | nil,
 *     decode_position = int | nil, snippet = raw prefix | nil }
 * or nil, kind ("network" | "timeout" | "too_large"), message.
 */
static int session_get(lua_State *L) {
  session *s = check_open(L);
  const char *url = luaL_checkstring(L, 2);
  long status = 0;
  CURLcode rc;

  reset_response(s);
  s->errbuf[0] = '\0';
  rc = curl_easy_setopt(s->curl, CURLOPT_URL, url);
  if (rc != CURLE_OK) return luaL_error(L, "braze: bad URL: %s", curl_easy_strerror(rc));
  rc = curl_easy_perform(s->curl);
  if (rc != CURLE_OK) return transfer_failed(L, s, rc);
  curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);

  lua_createtable(L, 0, 6);
  lua_pushinteger(L, (lua_Integer)status);
  lua_setfield(L, -2, "status");
  push_headers(L, s);
  lua_setfield(L, -2, "headers");

  if (s->body_len == 0) {
    lua_pushliteral(L, "empty body");
    lua_setfield(L, -2, "decode_error");
  } else {
    braze_decode_error err;
    /* Keep the raw prefix first: decoding unescapes the buffer in place. */
    size_t keep = s->body_len < SNIPPET_MAX ? s->body_len : SNIPPET_MAX;
    lua_pushlstring(L, s->body, keep);
    if (braze_decode(L, s->body, s->body_len, s->max_depth, &err)) {
      lua_setfield(L, -3, "body");
      lua_pop(L, 1); /* the snippet is not needed */
    } else {
      lua_setfield(L, -2, "snippet");
      lua_pushstring(L, err.message);
      lua_setfield(L, -2, "decode_error");
      lua_pushinteger(L, (lua_Integer)err.position);
      lua_setfield(L, -2, "decode_position");
    }
  }
  if (s->body_cap > KEEP_BUFFER_MAX) { /* do not hold a large buffer between calls */
    free(s->body);
    s->body = NULL;
    s->body_cap = 0;
  }
  s->body_len = 0;
  return 1;
}

static const luaL_Reg session_methods[] = {
  {"get", session_get},
  {"close", session_close},
  {NULL, NULL},
};

void braze_session_register(lua_State *L) {
  if (luaL_newmetatable(L, BRAZE_SESSION_MT)) {
    luaL_newlib(L, session_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, session_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, session_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, session_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
}
