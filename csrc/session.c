/*
 * session.c - one HTTPS session: its options (the Authorization header,
 * timeouts, TLS settings), its lifetime, fork, and session:get(url) on its
 * main easy handle (so keep-alive connections are reused across calls).
 * Many requests at once go through a batch (batch.c, session:batch).
 *
 * Lifetime rules (CONTRIBUTING.md):
 * - the userdata and its metatable exist before any resource is acquired,
 *   so __gc cleans up whatever a failed constructor left behind;
 * - close, __gc and __close share one idempotent release;
 * - libcurl callbacks are plain C: no Lua call ever runs inside a curl frame
 *   (transfer.c);
 * - any Lua allocation can run a finalizer, which may close the session or
 *   a batch: every entry point checks its objects after its last
 *   allocation, then marks them busy for the body of the call (braze_run_busy);
 * - fork: every socket the session opens is recorded; in a child process the
 *   inherited ones are first pointed at /dev/null (so libcurl's cleanup, TLS
 *   close_notify included, cannot touch the parent's connections), then the
 *   handles are remade from the saved options (braze_session_after_fork),
 *   on whatever the child uses first: a call, a batch's close or finalizer
 *   (lua_close finalizes batches before sessions), or the session's release.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "decode.h"
#include "interrupt.h"
#include "session_impl.h"

typedef braze_session session;

/* ---- sockets ----------------------------------------------------------- */

/* Every socket is opened and closed here, so the session knows its own. */
static curl_socket_t on_open_socket(void *ud, curlsocktype purpose, struct curl_sockaddr *a) {
  session *s = (session *)ud;
  (void)purpose;
  if (s->n_fds == s->cap_fds) {
    int cap = s->cap_fds ? s->cap_fds * 2 : 8;
    int *grown = (int *)realloc(s->fds, (size_t)cap * sizeof *grown);
    if (grown == NULL) return CURL_SOCKET_BAD; /* the transfer fails: couldn't connect */
    s->fds = grown;
    s->cap_fds = cap;
  }
  curl_socket_t fd = socket(a->family, a->socktype, a->protocol);
  if (fd != CURL_SOCKET_BAD) s->fds[s->n_fds++] = fd;
  return fd;
}

int braze_session_close_socket(void *ud, curl_socket_t fd) {
  session *s = (session *)ud;
  for (int i = 0; i < s->n_fds; i++) {
    if (s->fds[i] == fd) {
      s->fds[i] = s->fds[--s->n_fds];
      break;
    }
  }
  return close(fd);
}

/*
 * In a forked child: point every inherited socket at /dev/null, so whatever
 * libcurl does with them next (TLS shutdown, reads, close) stays in this
 * process. Returns 0 when that was impossible (the handles must then be
 * abandoned, not cleaned up).
 */
static int neutralize_sockets(session *s) {
  int ok = 1;
  if (s->n_fds > 0) {
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) return 0;
    for (int i = 0; i < s->n_fds; i++)
      if (dup2(devnull, s->fds[i]) < 0) ok = 0;
    close(devnull);
  }
  return ok;
}

/* ---- lifetime ---------------------------------------------------------- */

void braze_session_release(session *s) {
  if (s->pid != getpid() && !neutralize_sockets(s)) {
    /* A child that cannot shield the parent's sockets leaves them alone. */
    braze_batches_detach(s, 1);
    s->multi = NULL;
    s->main.curl = NULL;
  }
  braze_batches_detach(s, 0);
  if (s->multi) {
    curl_multi_cleanup(s->multi);
    s->multi = NULL;
  }
  braze_transfer_release(&s->main);
  if (s->request_headers) {
    for (struct curl_slist *h = s->request_headers; h; h = h->next)
      if (h->data) memset(h->data, 0, strlen(h->data)); /* the key */
    curl_slist_free_all(s->request_headers);
    s->request_headers = NULL;
  }
  /* Last: cleaning up the handles above closed their sockets through
     braze_session_close_socket, which updates this list. */
  free(s->fds);
  s->fds = NULL;
  s->n_fds = s->cap_fds = 0;
}

/*
 * First call in a forked child: the kept-alive connections are the
 * parent's (sharing them would mix up the two processes' responses). Shield
 * them (neutralize_sockets), then drop every handle and connection and
 * start again from a copy of the main handle's options. Returns NULL, or
 * why the session had to be closed.
 */
const char *braze_session_after_fork(session *s) {
  if (s->pid == getpid()) return NULL;
  if (!neutralize_sockets(s)) {
    braze_session_release(s); /* abandons the handles, see braze_session_release */
    return "braze: session is closed (cannot drop the parent's connections after fork)";
  }
  CURL *fresh = curl_easy_duphandle(s->main.curl); /* options, not connections */
  braze_batches_detach(s, 0); /* their requests belonged to the parent */
  if (s->multi) {
    curl_multi_cleanup(s->multi);
    s->multi = NULL;
  }
  curl_easy_cleanup(s->main.curl);
  s->main.curl = fresh;
  /* Sockets libcurl did not close are /dev/null now: forget them. */
  s->n_fds = 0;
  s->pid = getpid();
  if (fresh == NULL || braze_transfer_bind(&s->main) != CURLE_OK) {
    braze_session_release(s);
    return "braze: session is closed (cannot remake its handle after fork)";
  }
  return NULL;
}

const char *braze_session_usable(session *s) {
  if (s->main.curl == NULL) return "braze: session is closed";
  if (s->busy) return "braze: session is busy (called from inside one of its own calls)";
  return braze_session_after_fork(s);
}

static session *check_session(lua_State *L) {
  return (session *)luaL_checkudata(L, 1, BRAZE_SESSION_MT);
}

/*
 * close, __gc and __close. Any Lua allocation during a call can run a
 * finalizer, and a finalizer may close this session: while a call is
 * running, the release waits for its end (see braze_run_busy).
 */
static int session_close(lua_State *L) {
  session *s = check_session(L);
  if (s->busy) s->close_pending = 1;
  else braze_session_release(s);
  return 0;
}

static int session_tostring(lua_State *L) {
  session *s = check_session(L);
  lua_pushfstring(L, "braze.core.session (%s): %p", s->main.curl ? "open" : "closed", (void *)s);
  return 1;
}

/* ---- construction ------------------------------------------------------ */

/*
 * A string option, or NULL when absent. The value stays on the stack (the
 * caller's slot) until the constructor returns: the options table may be
 * read through __index, and a number is converted in that slot, so nothing
 * else would keep the string alive while a collection runs.
 */
static const char *opt_string(lua_State *L, const char *name) {
  size_t len;
  const char *v;
  lua_getfield(L, 1, name);
  if (lua_isnil(L, -1)) return NULL;
  if (!lua_isstring(L, -1)) luaL_error(L, "braze: %s must be a string", name);
  v = lua_tolstring(L, -1, &len);
  if (strlen(v) != len) luaL_error(L, "braze: %s contains a NUL byte", name);
  return v;
}

static lua_Number opt_number(lua_State *L, const char *name, lua_Number dflt) {
  lua_Number v;
  lua_getfield(L, 1, name);
  if (lua_isnil(L, -1)) v = dflt;
  else if (lua_isnumber(L, -1)) v = lua_tonumber(L, -1);
  else return luaL_error(L, "braze: %s must be a number", name);
  lua_pop(L, 1);
  return v;
}

/* Seconds to libcurl milliseconds, rounded up: 0 would mean "no limit". */
static long seconds_to_ms(lua_Number seconds) {
  lua_Number ms = seconds * 1000;
  long whole = (long)ms;
  if ((lua_Number)whole < ms) whole++;
  return whole < 1 ? 1 : whole;
}

static void check_header_value(lua_State *L, const char *name, const char *v) {
  for (const unsigned char *p = (const unsigned char *)v; *p; p++)
    if (*p < 0x20 || *p == 0x7f)
      luaL_error(L, "braze: %s contains a control character", name);
}

static void append_header(lua_State *L, session *s, const char *h) {
  struct curl_slist *l = curl_slist_append(s->request_headers, h);
  if (l == NULL) luaL_error(L, "braze: out of memory");
  s->request_headers = l;
}

/*
 * "Authorization: Bearer <key>", built in a C buffer that is wiped and freed
 * before anything can raise: the only copy left is libcurl's, in
 * request_headers, which braze_session_release wipes.
 */
static void append_auth_header(lua_State *L, session *s, const char *key) {
  static const char prefix[] = "Authorization: Bearer ";
  size_t klen = strlen(key), n = sizeof prefix + klen;
  char *h = (char *)malloc(n);
  struct curl_slist *l = NULL;
  if (h != NULL) {
    memcpy(h, prefix, sizeof prefix - 1);
    memcpy(h + sizeof prefix - 1, key, klen + 1);
    l = curl_slist_append(s->request_headers, h);
    volatile char *w = h; /* a plain memset before free may be optimised out */
    for (size_t i = 0; i < n; i++) w[i] = 0;
    free(h);
  }
  if (l == NULL) luaL_error(L, "braze: out of memory");
  s->request_headers = l;
}

/* max_body (>= 1) as a size_t, at most SIZE_MAX / 2. */
static size_t clamp_max_body(lua_Number max_body) {
  return max_body >= (lua_Number)(SIZE_MAX / 2) ? SIZE_MAX / 2 : (size_t)max_body;
}

#define SETOPT(s, opt, val)                                                       \
  do {                                                                            \
    CURLcode rc_ = curl_easy_setopt((s)->main.curl, (opt), (val));                \
    if (rc_ != CURLE_OK)                                                          \
      return luaL_error(L, "braze: cannot set %s: %s", #opt, curl_easy_strerror(rc_)); \
  } while (0)

/*
 * core.session{ api_key=, timeout=, connect_timeout=, user_agent=,
 *               ca_file=, ca_path=, proxy=, max_body=, max_depth= }
 * Times in seconds (any positive value; libcurl gets whole milliseconds,
 * rounded up). proxy: nil = no proxy at all (environment ignored),
 * "env" = libcurl's environment variables, anything else = that proxy.
 * String options must be strings (or numbers) without NUL bytes.
 */
int braze_session_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  /* Each string stays on the stack (slots 2..6) until we return. */
  const char *key = opt_string(L, "api_key");
  if (key == NULL) lua_pushnil(L);
  const char *agent = opt_string(L, "user_agent");
  if (agent == NULL) lua_pushnil(L);
  const char *ca_file = opt_string(L, "ca_file");
  if (ca_file == NULL) lua_pushnil(L);
  const char *ca_path = opt_string(L, "ca_path");
  if (ca_path == NULL) lua_pushnil(L);
  const char *proxy = opt_string(L, "proxy");
  if (proxy == NULL) lua_pushnil(L);
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
  s->main.max_body = clamp_max_body(max_body);
  s->max_depth = (int)max_depth;
  s->pid = getpid();

  s->main.curl = curl_easy_init();
  if (s->main.curl == NULL) return luaL_error(L, "braze: curl_easy_init failed");

  /* The key goes in this header and nowhere else. */
  append_auth_header(L, s, key);
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
  SETOPT(s, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L); /* a proxy's CONNECT answer is not the response */
  /* Copied by curl_easy_duphandle to the batches' handles. */
  SETOPT(s, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
  SETOPT(s, CURLOPT_OPENSOCKETDATA, (void *)s);
  SETOPT(s, CURLOPT_CLOSESOCKETFUNCTION, braze_session_close_socket);
  SETOPT(s, CURLOPT_CLOSESOCKETDATA, (void *)s);
  SETOPT(s, CURLOPT_TIMEOUT_MS, seconds_to_ms(timeout));
  SETOPT(s, CURLOPT_CONNECTTIMEOUT_MS, seconds_to_ms(connect_timeout));
  if (ca_file) SETOPT(s, CURLOPT_CAINFO, ca_file);
  if (ca_path) SETOPT(s, CURLOPT_CAPATH, ca_path);
  if (proxy == NULL) SETOPT(s, CURLOPT_PROXY, ""); /* "" = never a proxy, not even from env */
  else if (strcmp(proxy, "env") != 0) SETOPT(s, CURLOPT_PROXY, proxy);
  SETOPT(s, CURLOPT_XFERINFOFUNCTION, braze_xferinfo); /* Ctrl-C, see interrupt.c */
  SETOPT(s, CURLOPT_NOPROGRESS, 0L);
  if (braze_transfer_bind(&s->main) != CURLE_OK) return luaL_error(L, "braze: cannot set callbacks");
  return 1;
}

/* ---- calls ------------------------------------------------------------- */

/* What braze_run_busy hands the trampoline: the body to run. */
typedef struct {
  lua_CFunction body;
} job;

int braze_trampoline(lua_State *L) {
  const job *j = (const job *)lua_touserdata(L, 1);
  lua_remove(L, 1);
  return j->body(L);
}

int braze_run_busy(lua_State *L, session *s, braze_batch *b, lua_CFunction body) {
  job j;
  j.body = body;
  int nargs = lua_gettop(L);
  /* No allocation from here to the busy marks: a light userdata and an
     upvalue already made. */
  lua_pushvalue(L, lua_upvalueindex(1)); /* braze_trampoline */
  lua_insert(L, 1);
  lua_pushlightuserdata(L, &j);
  lua_insert(L, 2);
  s->busy = 1;
  if (b != NULL) braze_batch_busy(L, b, 1);
  int status = lua_pcall(L, nargs + 1, LUA_MULTRET, 0);
  s->busy = 0;
  if (s->close_pending) {
    s->close_pending = 0;
    braze_session_release(s); /* detaches b too */
  }
  if (b != NULL) braze_batch_busy(L, b, 0);
  if (status != 0) return lua_error(L);
  return lua_gettop(L);
}

/* The body of session:get, run busy. */
static int get_body(lua_State *L) {
  session *s = (session *)lua_touserdata(L, 1);
  const char *url = lua_tostring(L, 2);
  braze_transfer *t = &s->main;
  braze_transfer_reset(t);
  CURLcode rc = curl_easy_setopt(t->curl, CURLOPT_URL, url);
  if (rc != CURLE_OK) return luaL_error(L, "braze: bad URL: %s", curl_easy_strerror(rc));
  rc = curl_easy_perform(t->curl);
  if (rc != CURLE_OK) {
    int n = braze_push_failure(L, t, rc);
    braze_transfer_done(t);
    return n;
  }
  braze_push_response(L, t, s->max_depth);
  return 1;
}

/* session:get(url) -> response table, or nil, kind, message. */
static int session_get(lua_State *L) {
  session *s = check_session(L);
  size_t len;
  const char *url = luaL_checklstring(L, 2, &len);
  if (strlen(url) != len) return luaL_error(L, "braze: bad URL: it contains a NUL byte");
  lua_settop(L, 2);
  const char *why = braze_session_usable(s); /* after the last allocation */
  if (why != NULL) return luaL_error(L, "%s", why);
  return braze_run_busy(L, s, NULL, get_body);
}

static const luaL_Reg session_methods[] = {
  {"get", session_get},
  {"batch", braze_session_batch},
  {"close", session_close},
  {NULL, NULL},
};

static const luaL_Reg session_meta[] = {
  {"__gc", session_close},
  {"__close", session_close},
  {"__tostring", session_tostring},
  {NULL, NULL},
};

void braze_register_type(lua_State *L, const char *name, const luaL_Reg *meta,
                         const luaL_Reg *methods) {
  if (luaL_newmetatable(L, name)) {
    lua_pushcfunction(L, braze_trampoline); /* upvalue 1 of every method */
    luaL_setfuncs(L, meta, 1);
    lua_newtable(L);
    lua_pushcfunction(L, braze_trampoline);
    luaL_setfuncs(L, methods, 1);
    lua_setfield(L, -2, "__index");
    lua_pushstring(L, name); /* getmetatable(v): no way to edit it from Lua */
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
}

void braze_session_register(lua_State *L) {
  braze_batch_register(L);
  braze_register_type(L, BRAZE_SESSION_MT, session_meta, session_methods);
}
