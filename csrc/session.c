/*
 * session.c - one HTTPS session: libcurl easy handles (so keep-alive
 * connections are reused across calls), the Authorization header, the
 * timeouts and TLS settings.
 *
 *   session:get(url)                 one GET, on the session's main handle
 *   session:get_many(urls, n)        many GETs, at most n at once (curl multi,
 *                                    with its own pool of handles and connections)
 *
 * Each body is turned straight from its receive buffer into Lua values.
 *
 * Lifetime rules (see STYLE.md):
 * - the userdata and its metatable exist before any resource is acquired,
 *   so __gc cleans up whatever a failed constructor left behind;
 * - close, __gc and __close share one idempotent release;
 * - libcurl callbacks are plain C: no Lua call ever runs inside a curl frame;
 * - every buffer belongs to the userdata, so a Lua error (memory) while
 *   building results leaks nothing;
 * - fork: every socket the session opens is recorded; in a child process the
 *   inherited ones are first pointed at /dev/null (so libcurl's cleanup, TLS
 *   close_notify included, cannot touch the parent's connections), then the
 *   handles are remade from the saved options (see after_fork).
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "decode.h"
#include "headers.h"
#include "interrupt.h"
#include "session.h"

/* Bytes of a body that failed to decode, kept for the error message. */
/* A receive buffer larger than this is released after each request. */
#define KEEP_BUFFER_MAX (1u << 20)
/* Most transfers get_many runs at once. */
#define MAX_CONCURRENCY 64

/* One transfer's handle and what it received. */
typedef struct {
  CURL *curl;
  size_t max_body;
  char *body;
  size_t body_len, body_cap;
  int too_large;     /* aborted by max_body */
  int out_of_memory;
  int in_headers;    /* between a status line and the blank line ending its headers */
  int in_multi;      /* added to the session's multi handle */
  lua_Integer index; /* get_many: position of its URL */
  void *owner;       /* the batch it belongs to; NULL for get and get_many */
  int finished;      /* a batch's transfer that is done and not collected yet */
  CURLcode result;   /* ... and how it ended */
  char header_value[BRAZE_N_HEADERS][BRAZE_HEADER_VALUE_MAX];
  unsigned char header_present[BRAZE_N_HEADERS];
  char errbuf[CURL_ERROR_SIZE];
} transfer;

typedef struct batch batch;

typedef struct {
  transfer main;                      /* get() */
  struct curl_slist *request_headers; /* holds the key: wiped on release */
  int max_depth;
  CURLM *multi;                       /* get_many(), created on first use */
  transfer *pool;                     /* get_many()'s handles */
  int pool_size;
  int busy;                           /* a get/get_many is running */
  int close_pending;                  /* close() came while busy: release at the end */
  pid_t pid;                          /* the process the connections belong to */
  int *fds;                           /* sockets libcurl opened for us and has not closed */
  int n_fds, cap_fds;
  batch *batches;                     /* live batches, whose handles share the multi */
} session;

/*
 * A batch (session:batch(n)): up to n requests that start at once and are
 * collected as they finish, in any order, each with the tag it was given.
 * Its handles are the batch's own, added to the session's multi handle, so
 * they share its connection cache (keep-alive across batches and get_many).
 */
/* A socket a batch in socket mode wants watched: what (CURL_POLL_*). */
typedef struct {
  curl_socket_t fd;
  int what;
} watch;

struct batch {
  session *s;        /* NULL once closed, or released with its session */
  CURLM *own_multi;  /* socket mode: its own multi handle, driven by an event loop */
  watch *watches;    /* socket mode: changes since the last updates() */
  int n_watches, cap_watches;
  long timer_ms;     /* socket mode: the timer libcurl asked for (-1: none) */
  int timer_changed;
  curl_socket_t *closing; /* socket mode: sockets libcurl closed, not closed yet */
  int n_closing, cap_closing;
  int announced;     /* ... of which the first `announced` were in an updates() */
  batch *next;       /* the session's list */
  transfer *slots;
  int *tags;         /* registry refs of the slots' tags (LUA_NOREF: free) */
  int capacity;
  int session_ref;   /* the session stays alive while the batch does */
  int busy;          /* a poll is running: close waits for its end */
  int close_pending;
};

/* ---- libcurl callbacks (pure C) ---------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud) {
  transfer *t = (transfer *)ud;
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

static size_t on_header(char *line, size_t size, size_t nmemb, void *ud) {
  transfer *t = (transfer *)ud;
  size_t n = size * nmemb;
  char value[BRAZE_HEADER_VALUE_MAX];
  int which = braze_header_line(line, n, value);
  if (which == -2) {
    /* A status line starts a new response (e.g. after "100 Continue"). */
    memset(t->header_present, 0, sizeof t->header_present);
    t->body_len = 0;
    t->in_headers = 1;
  } else if (n >= 1 && n <= 2 && (line[0] == '\r' || line[0] == '\n')) {
    t->in_headers = 0; /* the blank line after the headers */
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

static int on_close_socket(void *ud, curl_socket_t fd) {
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

/* ---- transfers --------------------------------------------------------- */

/* Point a handle's callbacks and error buffer at its own transfer. */
static CURLcode bind_transfer(transfer *t) {
  CURLcode rc = CURLE_OK;
  if (rc == CURLE_OK) rc = curl_easy_setopt(t->curl, CURLOPT_ERRORBUFFER, t->errbuf);
  if (rc == CURLE_OK) rc = curl_easy_setopt(t->curl, CURLOPT_WRITEFUNCTION, on_body);
  if (rc == CURLE_OK) rc = curl_easy_setopt(t->curl, CURLOPT_WRITEDATA, t);
  if (rc == CURLE_OK) rc = curl_easy_setopt(t->curl, CURLOPT_HEADERFUNCTION, on_header);
  if (rc == CURLE_OK) rc = curl_easy_setopt(t->curl, CURLOPT_HEADERDATA, t);
  if (rc == CURLE_OK) rc = curl_easy_setopt(t->curl, CURLOPT_PRIVATE, (void *)t);
  return rc;
}

static void reset_transfer(transfer *t) {
  t->body_len = 0;
  t->too_large = 0;
  t->out_of_memory = 0;
  t->in_headers = 1; /* until the blank line: a header line can fail before the status line */
  t->errbuf[0] = '\0';
  memset(t->header_present, 0, sizeof t->header_present);
}

/* Forget a finished body; do not hold a large buffer between calls. */
static void done_transfer(transfer *t) {
  if (t->body_cap > KEEP_BUFFER_MAX) {
    free(t->body);
    t->body = NULL;
    t->body_cap = 0;
  }
  t->body_len = 0;
}

static void release_transfer(transfer *t) {
  if (t->curl) {
    curl_easy_cleanup(t->curl);
    t->curl = NULL;
  }
  free(t->body);
  t->body = NULL;
  t->body_len = t->body_cap = 0;
}

static void push_headers(lua_State *L, const transfer *t) {
  lua_createtable(L, 0, BRAZE_N_HEADERS);
  for (int i = 0; i < BRAZE_N_HEADERS; i++) {
    if (!t->header_present[i]) continue;
    lua_pushstring(L, t->header_value[i]);
    lua_setfield(L, -2, braze_header_names[i]);
  }
}

/* Push nil, kind, message for a transfer that did not complete; returns 3. */
static int push_failure(lua_State *L, const transfer *t, CURLcode rc) {
  lua_pushnil(L);
  if (rc == CURLE_WRITE_ERROR && t->too_large) {
    lua_pushliteral(L, "too_large");
    char msg[96];
    snprintf(msg, sizeof msg, "response body larger than max_body (%zu bytes)", t->max_body);
    lua_pushstring(L, msg);
  } else if (rc == CURLE_OUT_OF_MEMORY && t->in_headers) {
    /* libcurl refuses a header line over 100 KB (CURL_MAX_HTTP_HEADER) with
       CURLE_OUT_OF_MEMORY: a hostile or broken server, not worth a retry. */
    lua_pushliteral(L, "too_large");
    lua_pushliteral(L, "response header line longer than 100 KB");
#if LIBCURL_VERSION_NUM >= 0x080600
  } else if (rc == CURLE_TOO_LARGE) {
    lua_pushliteral(L, "too_large");
    lua_pushliteral(L, "response headers larger than libcurl accepts");
#endif
  } else if (rc == CURLE_WRITE_ERROR && t->out_of_memory) {
    lua_pushliteral(L, "network");
    lua_pushliteral(L, "out of memory while receiving the response");
  } else {
    lua_pushstring(L, rc == CURLE_OPERATION_TIMEDOUT   ? "timeout"
                      : rc == CURLE_ABORTED_BY_CALLBACK ? "interrupted" /* Ctrl-C */
                                                        : "network");
    if (t->errbuf[0]) lua_pushfstring(L, "%s (%s)", curl_easy_strerror(rc), t->errbuf);
    else lua_pushstring(L, curl_easy_strerror(rc));
  }
  return 3;
}

/*
 * Push the response table of a completed transfer:
 *   { status = int, headers = {lower-case name = value},
 *     body = decoded value | nil, decode_error = msg | nil,
 *     decode_position = int | nil, snippet = raw prefix | nil }
 */
static void push_response(lua_State *L, transfer *t, int max_depth) {
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
  done_transfer(t);
}

/* ---- lifetime ---------------------------------------------------------- */

/* Detach every pooled handle (after an error left some in the multi). */
static void detach_all(session *s) {
  for (int i = 0; i < s->pool_size; i++) {
    if (s->pool[i].in_multi) {
      curl_multi_remove_handle(s->multi, s->pool[i].curl);
      s->pool[i].in_multi = 0;
    }
  }
}

/* Free every pooled handle (the multi handle stays). */
static void drop_pool(session *s) {
  detach_all(s);
  for (int i = 0; i < s->pool_size; i++) release_transfer(&s->pool[i]);
  free(s->pool);
  s->pool = NULL;
  s->pool_size = 0;
}

/*
 * Socket mode: a socket libcurl is done with stays open until the event
 * loop has been told to stop watching it (batch:updates() returned its
 * "remove", and the loop came back): closing it earlier could hand its
 * number to a new socket while the loop still watches the old one.
 */
static int on_batch_close_socket(void *ud, curl_socket_t fd) {
  batch *b = (batch *)ud;
  if (b->n_closing == b->cap_closing) {
    int cap = b->cap_closing ? b->cap_closing * 2 : 16;
    curl_socket_t *grown = (curl_socket_t *)realloc(b->closing, (size_t)cap * sizeof *grown);
    if (grown == NULL) return on_close_socket(b->s, fd); /* no room: close it now */
    b->closing = grown;
    b->cap_closing = cap;
  }
  b->closing[b->n_closing++] = fd;
  return 0;
}

/* Close the first `n` sockets waiting in b->closing. */
static void close_sockets(batch *b, int n) {
  if (n > b->n_closing) n = b->n_closing;
  for (int i = 0; i < n; i++) on_close_socket(b->s, b->closing[i]);
  for (int i = n; i < b->n_closing; i++) b->closing[i - n] = b->closing[i];
  b->n_closing -= n;
  b->announced = b->announced > n ? b->announced - n : 0;
}

/* Take a batch's handles out of the session (cleaning them up, unless
   `abandon`: a forked child that could not shield the parent's sockets). */
static void detach_batch(batch *b, int abandon) {
  session *s = b->s;
  if (s == NULL) return;
  CURLM *multi = b->own_multi ? b->own_multi : s->multi;
  for (int i = 0; i < b->capacity; i++) {
    transfer *t = &b->slots[i];
    if (abandon) {
      t->curl = NULL; /* left alone: see release() */
    } else if (t->in_multi) {
      curl_multi_remove_handle(multi, t->curl);
    }
    t->in_multi = 0;
    t->finished = 0;
    release_transfer(t);
  }
  if (b->own_multi && !abandon) curl_multi_cleanup(b->own_multi);
  b->own_multi = NULL;
  if (!abandon) close_sockets(b, b->n_closing);
  free(b->closing);
  b->closing = NULL;
  b->n_closing = b->cap_closing = b->announced = 0;
  for (batch **p = &s->batches; *p; p = &(*p)->next) {
    if (*p == b) {
      *p = b->next;
      break;
    }
  }
  b->next = NULL;
  b->s = NULL;
}

static void detach_batches(session *s, int abandon) {
  while (s->batches) detach_batch(s->batches, abandon);
}

static void release(session *s) {
  if (s->pid != getpid() && !neutralize_sockets(s)) {
    /* A child that cannot shield the parent's sockets leaves them alone. */
    detach_batches(s, 1);
    s->pool = NULL;
    s->pool_size = 0;
    s->multi = NULL;
    s->main.curl = NULL;
  }
  detach_batches(s, 0);
  drop_pool(s);
  if (s->multi) {
    curl_multi_cleanup(s->multi);
    s->multi = NULL;
  }
  release_transfer(&s->main);
  if (s->request_headers) {
    for (struct curl_slist *h = s->request_headers; h; h = h->next)
      if (h->data) memset(h->data, 0, strlen(h->data)); /* the key */
    curl_slist_free_all(s->request_headers);
    s->request_headers = NULL;
  }
  /* Last: cleaning up the handles above closed their sockets through
     on_close_socket, which updates this list. */
  free(s->fds);
  s->fds = NULL;
  s->n_fds = s->cap_fds = 0;
}

static session *check_session(lua_State *L) {
  return (session *)luaL_checkudata(L, 1, BRAZE_SESSION_MT);
}

static session *check_open(lua_State *L) {
  session *s = check_session(L);
  if (s->main.curl == NULL) luaL_error(L, "braze: session is closed");
  if (s->busy) luaL_error(L, "braze: session is busy (called from inside one of its own calls)");
  return s;
}

/*
 * close, __gc and __close. Any Lua allocation during a call can run a
 * finalizer, and a finalizer may close this session: while a call is
 * running, the release waits for its end (see run_busy).
 */
static int session_close(lua_State *L) {
  session *s = check_session(L);
  if (s->busy) s->close_pending = 1;
  else release(s);
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
 * request_headers, which release() wipes.
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
  /* Copied by curl_easy_duphandle to the pool's handles. */
  SETOPT(s, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
  SETOPT(s, CURLOPT_OPENSOCKETDATA, (void *)s);
  SETOPT(s, CURLOPT_CLOSESOCKETFUNCTION, on_close_socket);
  SETOPT(s, CURLOPT_CLOSESOCKETDATA, (void *)s);
  SETOPT(s, CURLOPT_TIMEOUT_MS, seconds_to_ms(timeout));
  SETOPT(s, CURLOPT_CONNECTTIMEOUT_MS, seconds_to_ms(connect_timeout));
  if (ca_file) SETOPT(s, CURLOPT_CAINFO, ca_file);
  if (ca_path) SETOPT(s, CURLOPT_CAPATH, ca_path);
  if (proxy == NULL) SETOPT(s, CURLOPT_PROXY, ""); /* "" = never a proxy, not even from env */
  else if (strcmp(proxy, "env") != 0) SETOPT(s, CURLOPT_PROXY, proxy);
  SETOPT(s, CURLOPT_XFERINFOFUNCTION, braze_xferinfo); /* Ctrl-C, see interrupt.c */
  SETOPT(s, CURLOPT_NOPROGRESS, 0L);
  if (bind_transfer(&s->main) != CURLE_OK) return luaL_error(L, "braze: cannot set callbacks");
  return 1;
}

/* ---- requests ---------------------------------------------------------- */

/*
 * Run the body of a call (upvalue 1, a C function taking the same
 * arguments) with the session marked busy, protected: a finalizer that
 * closes the session meanwhile only sets close_pending, and the release
 * happens here, after the body has stopped using the handles and buffers,
 * even when it raised (a memory error while building the results).
 */
static int run_busy(lua_State *L, session *s) {
  int nargs = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  s->busy = 1;
  int status = lua_pcall(L, nargs, LUA_MULTRET, 0);
  s->busy = 0;
  if (status != 0) detach_all(s);
  if (s->close_pending) {
    s->close_pending = 0;
    release(s);
  }
  if (status != 0) return lua_error(L);
  return lua_gettop(L);
}

/*
 * First call in a forked child: the kept-alive connections are the
 * parent's (sharing them would mix up the two processes' responses). Shield
 * them (neutralize_sockets), then drop every handle and connection and
 * start again from a copy of the main handle's options.
 */
static void after_fork(lua_State *L, session *s) {
  if (s->pid == getpid()) return;
  if (!neutralize_sockets(s)) {
    release(s); /* abandons the handles, see release() */
    luaL_error(L, "braze: session is closed (cannot drop the parent's connections after fork)");
  }
  CURL *fresh = curl_easy_duphandle(s->main.curl); /* options, not connections */
  detach_batches(s, 0); /* their requests belonged to the parent */
  drop_pool(s);
  if (s->multi) {
    curl_multi_cleanup(s->multi);
    s->multi = NULL;
  }
  curl_easy_cleanup(s->main.curl);
  s->main.curl = fresh;
  /* Sockets libcurl did not close are /dev/null now: forget them. */
  s->n_fds = 0;
  s->pid = getpid();
  if (fresh == NULL || bind_transfer(&s->main) != CURLE_OK) {
    release(s);
    luaL_error(L, "braze: session is closed (cannot remake its handle after fork)");
  }
}

/* session:get(url) -> response table, or nil, kind, message. */
static int session_get(lua_State *L) {
  session *s = check_open(L);
  after_fork(L, s);
  luaL_checkstring(L, 2);
  lua_settop(L, 2);
  return run_busy(L, s);
}

static int get_body(lua_State *L) {
  session *s = (session *)lua_touserdata(L, 1);
  const char *url = lua_tostring(L, 2);
  transfer *t = &s->main;
  CURLcode rc;

  reset_transfer(t);
  rc = curl_easy_setopt(t->curl, CURLOPT_URL, url);
  if (rc != CURLE_OK) return luaL_error(L, "braze: bad URL: %s", curl_easy_strerror(rc));
  rc = curl_easy_perform(t->curl);
  if (rc != CURLE_OK) {
    int n = push_failure(L, t, rc);
    done_transfer(t);
    return n;
  }
  push_response(L, t, s->max_depth);
  return 1;
}

/*
 * Make the multi handle and `n` pooled handles (copies of the main one).
 * A slot counts (pool_size) only once its handle is made and bound, so a
 * failure leaves no half-made slot behind for the next call.
 */
static void ensure_pool(lua_State *L, session *s, int n) {
  if (s->multi == NULL) {
    s->multi = curl_multi_init();
    if (s->multi == NULL) luaL_error(L, "braze: curl_multi_init failed");
  }
  if (s->pool_size >= n) return;
  transfer *grown = (transfer *)realloc(s->pool, (size_t)n * sizeof *grown);
  if (grown == NULL) luaL_error(L, "braze: out of memory");
  s->pool = grown;
  /* Handles point at their transfer: re-point the ones that moved. A handle
     that cannot be re-pointed would write into freed memory: drop them all. */
  for (int i = 0; i < s->pool_size; i++) {
    if (bind_transfer(&s->pool[i]) != CURLE_OK) {
      drop_pool(s);
      luaL_error(L, "braze: cannot make a transfer handle");
    }
  }
  for (int i = s->pool_size; i < n; i++) {
    transfer *t = &s->pool[i];
    memset(t, 0, sizeof *t);
    t->max_body = s->main.max_body;
    t->curl = curl_easy_duphandle(s->main.curl);
    if (t->curl == NULL) luaL_error(L, "braze: cannot make a transfer handle");
    if (bind_transfer(t) != CURLE_OK) {
      curl_easy_cleanup(t->curl);
      t->curl = NULL;
      luaL_error(L, "braze: cannot make a transfer handle");
    }
    s->pool_size = i + 1; /* owned from here: release() frees it */
  }
}

/* Store the outcome of a finished transfer at results[t->index]. */
static void store_result(lua_State *L, session *s, transfer *t, CURLcode rc, int results) {
  if (rc == CURLE_OK) {
    push_response(L, t, s->max_depth);
  } else {
    push_failure(L, t, rc); /* nil, kind, message -> { error = kind, message = } */
    lua_createtable(L, 0, 2);
    lua_insert(L, -4);
    lua_setfield(L, -4, "message");
    lua_setfield(L, -3, "error");
    lua_pop(L, 1);
    done_transfer(t);
  }
  lua_rawseti(L, results, t->index);
}

/*
 * session:get_many(urls, concurrency) -> results, in the order of urls:
 * each a response table (as get returns), or { error = kind, message = }.
 * At most `concurrency` transfers run at once, over one connection pool.
 */
static int session_get_many(lua_State *L) {
  session *s = check_open(L);
  after_fork(L, s);
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_Integer concurrency = luaL_optinteger(L, 3, 8);
  luaL_argcheck(L, concurrency >= 1 && concurrency <= MAX_CONCURRENCY, 3,
                "concurrency must be in 1..64");
  lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
  for (lua_Integer i = 1; i <= n; i++) {
    lua_rawgeti(L, 2, i);
    if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "braze: get_many: urls[%d] is not a string", (int)i);
    lua_pop(L, 1);
  }
  lua_settop(L, 2);
  lua_pushinteger(L, concurrency);
  return run_busy(L, s);
}

static int get_many_body(lua_State *L) {
  session *s = (session *)lua_touserdata(L, 1);
  lua_Integer concurrency = lua_tointeger(L, 3);
  lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
  int width = (int)(concurrency < n ? concurrency : (n > 0 ? n : 1));
  ensure_pool(L, s, width);
  detach_all(s);

  lua_createtable(L, (int)n, 0);
  int results = lua_gettop(L);
  lua_Integer next = 1, active = 0;
  while (next <= n || active > 0) {
    /* Fill every idle handle with the next URL. */
    for (int i = 0; i < width && next <= n; i++) {
      transfer *t = &s->pool[i];
      if (t->in_multi) continue;
      reset_transfer(t);
      t->index = next;
      lua_rawgeti(L, 2, next);
      CURLcode rc = curl_easy_setopt(t->curl, CURLOPT_URL, lua_tostring(L, -1)); /* copied */
      lua_pop(L, 1);
      next++;
      if (rc != CURLE_OK || curl_multi_add_handle(s->multi, t->curl) != CURLM_OK) {
        store_result(L, s, t, rc != CURLE_OK ? rc : CURLE_FAILED_INIT, results);
        continue;
      }
      t->in_multi = 1;
      active++;
    }
    int running = 0;
    CURLMcode mc = curl_multi_perform(s->multi, &running);
    if (mc != CURLM_OK) {
      return luaL_error(L, "braze: curl_multi_perform: %s", curl_multi_strerror(mc));
    }
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(s->multi, &left)) != NULL) {
      if (msg->msg != CURLMSG_DONE) continue;
      char *priv = NULL; /* CURLINFO_PRIVATE is read as a char * */
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
      transfer *t = (transfer *)(void *)priv;
      CURLcode rc = msg->data.result;
      curl_multi_remove_handle(s->multi, t->curl);
      t->in_multi = 0;
      if (t->owner != NULL) { /* a batch's: kept for its next poll */
        t->finished = 1;
        t->result = rc;
        continue;
      }
      active--;
      store_result(L, s, t, rc, results);
    }
    if (running > 0) curl_multi_poll(s->multi, NULL, 0, 1000, NULL);
  }
  return 1;
}

/* ---- batches ------------------------------------------------------------ */

#define BRAZE_BATCH_MT "braze.core.batch"

static batch *check_batch(lua_State *L) {
  return (batch *)luaL_checkudata(L, 1, BRAZE_BATCH_MT);
}

/* The batch's session, open and idle, in this process; raises otherwise. */
static session *batch_session(lua_State *L, batch *b) {
  session *s = b->s;
  if (s == NULL || s->main.curl == NULL) luaL_error(L, "braze: batch is closed");
  if (s->busy) luaL_error(L, "braze: session is busy (called from inside one of its own calls)");
  after_fork(L, s); /* in a forked child: drops the batch (its requests were the parent's) */
  if (b->s == NULL) luaL_error(L, "braze: batch is closed (the process forked)");
  return s;
}

/* close and __gc: idempotent; a close during a poll waits for its end. */
static int batch_close(lua_State *L) {
  batch *b = check_batch(L);
  if (b->busy) {
    b->close_pending = 1;
    return 0;
  }
  detach_batch(b, 0);
  if (b->tags) {
    for (int i = 0; i < b->capacity; i++) luaL_unref(L, LUA_REGISTRYINDEX, b->tags[i]);
    free(b->tags);
    b->tags = NULL;
  }
  free(b->slots);
  b->slots = NULL;
  b->capacity = 0;
  free(b->watches);
  b->watches = NULL;
  b->n_watches = b->cap_watches = 0;
  luaL_unref(L, LUA_REGISTRYINDEX, b->session_ref);
  b->session_ref = LUA_NOREF;
  return 0;
}

/*
 * Socket mode: libcurl says which sockets to watch and when to call back;
 * the batch only records it (plain C, no Lua inside a curl frame) for
 * batch:updates() to hand to the event loop's Lua adapter.
 */
static int on_socket(CURL *easy, curl_socket_t fd, int what, void *ud, void *sockp) {
  batch *b = (batch *)ud;
  (void)easy;
  (void)sockp;
  for (int i = 0; i < b->n_watches; i++) {
    if (b->watches[i].fd == fd) { /* a newer wish for the same socket */
      b->watches[i].what = what;
      return 0;
    }
  }
  if (b->n_watches == b->cap_watches) {
    int cap = b->cap_watches ? b->cap_watches * 2 : 16;
    watch *grown = (watch *)realloc(b->watches, (size_t)cap * sizeof *grown);
    if (grown == NULL) return -1; /* libcurl fails the transfer */
    b->watches = grown;
    b->cap_watches = cap;
  }
  b->watches[b->n_watches].fd = fd;
  b->watches[b->n_watches].what = what;
  b->n_watches++;
  return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *ud) {
  batch *b = (batch *)ud;
  (void)multi;
  b->timer_ms = timeout_ms;
  b->timer_changed = 1;
  return 0;
}

/* The multi handle a batch's transfers live in. */
static CURLM *batch_multi(const batch *b) {
  return b->own_multi ? b->own_multi : b->s->multi;
}

/*
 * session:batch(n [, "sockets"]) -> a batch of at most n (1..64) requests at
 * once. Polled (the default): batch:poll() waits for them. "sockets": driven
 * by an event loop through batch:updates() and batch:action() (its own multi
 * handle; see lua/braze/transport/luv.lua).
 */
static int session_batch(lua_State *L) {
  session *s = check_open(L);
  after_fork(L, s);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 1 && n <= MAX_CONCURRENCY, 2, "batch size must be in 1..64");
  const char *mode = luaL_optstring(L, 3, "poll");
  int sockets = strcmp(mode, "sockets") == 0;
  luaL_argcheck(L, sockets || strcmp(mode, "poll") == 0, 3, "mode must be \"poll\" or \"sockets\"");
  /* Userdata and metatable first: from here on __gc owns every resource. */
  batch *b = (batch *)lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  b->session_ref = LUA_NOREF;
  luaL_setmetatable(L, BRAZE_BATCH_MT);
  b->slots = (transfer *)calloc((size_t)n, sizeof *b->slots);
  b->tags = (int *)malloc((size_t)n * sizeof *b->tags);
  if (b->slots == NULL || b->tags == NULL) return luaL_error(L, "braze: out of memory");
  b->capacity = (int)n;
  b->timer_ms = -1;
  for (int i = 0; i < b->capacity; i++) b->tags[i] = LUA_NOREF;
  if (sockets) {
    b->own_multi = curl_multi_init();
    if (b->own_multi == NULL) return luaL_error(L, "braze: curl_multi_init failed");
    if (curl_multi_setopt(b->own_multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
        curl_multi_setopt(b->own_multi, CURLMOPT_SOCKETDATA, (void *)b) != CURLM_OK ||
        curl_multi_setopt(b->own_multi, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK ||
        curl_multi_setopt(b->own_multi, CURLMOPT_TIMERDATA, (void *)b) != CURLM_OK) {
      curl_multi_cleanup(b->own_multi);
      b->own_multi = NULL;
      return luaL_error(L, "braze: cannot set the multi handle's socket callbacks");
    }
  } else if (s->multi == NULL) {
    s->multi = curl_multi_init();
    if (s->multi == NULL) return luaL_error(L, "braze: curl_multi_init failed");
  }
  b->s = s;
  b->next = s->batches;
  s->batches = b;
  lua_pushvalue(L, 1);
  b->session_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  for (int i = 0; i < b->capacity; i++) {
    transfer *t = &b->slots[i];
    t->max_body = s->main.max_body;
    t->owner = b;
    t->curl = curl_easy_duphandle(s->main.curl);
    if (t->curl == NULL || bind_transfer(t) != CURLE_OK)
      return luaL_error(L, "braze: cannot make a transfer handle");
    if (sockets && (curl_easy_setopt(t->curl, CURLOPT_CLOSESOCKETFUNCTION, on_batch_close_socket) != CURLE_OK ||
                    curl_easy_setopt(t->curl, CURLOPT_CLOSESOCKETDATA, (void *)b) != CURLE_OK))
      return luaL_error(L, "braze: cannot make a transfer handle");
  }
  return 1;
}

/* batch:submit(url, tag): start a request now; `tag` comes back with it. */
static int batch_submit(lua_State *L) {
  batch *b = check_batch(L);
  const char *url = luaL_checkstring(L, 2);
  luaL_checkany(L, 3);
  session *s = batch_session(L, b);
  if (b->own_multi) close_sockets(b, b->announced);
  int slot = -1;
  for (int i = 0; i < b->capacity && slot < 0; i++)
    if (!b->slots[i].in_multi && !b->slots[i].finished && b->tags[i] == LUA_NOREF) slot = i;
  if (slot < 0) return luaL_error(L, "braze: batch is full (%d requests in flight)", b->capacity);
  transfer *t = &b->slots[slot];
  reset_transfer(t);
  CURLcode rc = curl_easy_setopt(t->curl, CURLOPT_URL, url);
  if (rc != CURLE_OK) return luaL_error(L, "braze: bad URL: %s", curl_easy_strerror(rc));
  if (curl_multi_add_handle(batch_multi(b), t->curl) != CURLM_OK)
    return luaL_error(L, "braze: cannot start a transfer");
  t->in_multi = 1;
  lua_pushvalue(L, 3);
  b->tags[slot] = luaL_ref(L, LUA_REGISTRYINDEX);
  /* Send it now: the request is on its way while the caller goes on. (In
     socket mode libcurl has asked for a 0 ms timer: the loop calls back.) */
  if (!b->own_multi) {
    int running = 0;
    curl_multi_perform(s->multi, &running);
  }
  return 0;
}

/* Move every finished transfer of the multi out of it, marked for its batch. */
static void drain_finished(CURLM *multi) {
  CURLMsg *msg;
  int left;
  while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
    if (msg->msg != CURLMSG_DONE) continue;
    char *priv = NULL; /* CURLINFO_PRIVATE is read as a char * */
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
    transfer *t = (transfer *)(void *)priv;
    CURLcode rc = msg->data.result;
    curl_multi_remove_handle(multi, t->curl);
    t->in_multi = 0;
    t->finished = 1; /* only batches' transfers are in the multi between calls */
    t->result = rc;
  }
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int push_finished(lua_State *L, batch *b);

/* The body of batch:poll, run with the session and the batch marked busy. */
static int batch_poll_body(lua_State *L) {
  batch *b = (batch *)lua_touserdata(L, 1);
  session *s = b->s;
  double timeout = lua_tonumber(L, 2); /* < 0: until one finishes */
  double deadline = now_seconds() + timeout;
  for (;;) {
    int running = 0, done = 0, waiting = 0;
    CURLMcode mc = curl_multi_perform(s->multi, &running);
    if (mc != CURLM_OK) return luaL_error(L, "braze: curl_multi_perform: %s", curl_multi_strerror(mc));
    drain_finished(s->multi);
    for (int i = 0; i < b->capacity; i++) {
      if (b->slots[i].finished) done++;
      if (b->slots[i].in_multi) waiting++;
    }
    if (done > 0 || waiting == 0) break;
    int wait_ms = 1000;
    if (timeout >= 0) {
      double left = deadline - now_seconds();
      if (left <= 0) break;
      if (left * 1000 < wait_ms) wait_ms = (int)(left * 1000) + 1;
    }
    curl_multi_poll(s->multi, NULL, 0, wait_ms, NULL);
  }
  return push_finished(L, b);
}

/* Push the array of b's finished requests (collecting them); returns 1. */
static int push_finished(lua_State *L, batch *b) {
  session *s = b->s;
  lua_newtable(L);
  lua_Integer k = 0;
  for (int i = 0; i < b->capacity; i++) {
    transfer *t = &b->slots[i];
    if (!t->finished) continue;
    t->finished = 0;
    int tag = b->tags[i];
    b->tags[i] = LUA_NOREF;
    if (t->result == CURLE_OK) {
      push_response(L, t, s->max_depth);
    } else {
      push_failure(L, t, t->result); /* nil, kind, message -> { error = kind, message = } */
      lua_createtable(L, 0, 3);
      lua_insert(L, -4);
      lua_setfield(L, -4, "message");
      lua_setfield(L, -3, "error");
      lua_pop(L, 1);
      done_transfer(t);
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, tag);
    luaL_unref(L, LUA_REGISTRYINDEX, tag);
    lua_setfield(L, -2, "tag");
    lua_rawseti(L, -2, ++k);
  }
  return 1;
}

/*
 * Run `body` (a C function taking the batch and one number) with the
 * session and the batch marked busy, protected: a close from a finalizer
 * meanwhile (session or batch) waits for the end, as in run_busy.
 */
static int run_batch(lua_State *L, batch *b, session *s, lua_CFunction body, lua_Number arg) {
  lua_settop(L, 1);
  lua_pushcfunction(L, body);
  lua_pushvalue(L, 1);
  lua_pushnumber(L, arg);
  s->busy = b->busy = 1;
  int status = lua_pcall(L, 2, 1, 0); /* the batch stays at 1, the outcome above it */
  s->busy = b->busy = 0;
  if (b->close_pending) {
    b->close_pending = 0;
    lua_pushcfunction(L, batch_close);
    lua_pushvalue(L, 1);
    lua_call(L, 1, 0);
  }
  if (s->close_pending) {
    s->close_pending = 0;
    release(s);
  }
  if (status != 0) return lua_error(L);
  return 1;
}

/*
 * batch:poll([timeout]) -> the requests finished since the last poll, each
 * a response table (as get returns) or { error = kind, message = }, with
 * `tag`. Waits until at least one has finished, or `timeout` seconds, or
 * none is in flight.
 */
static int batch_poll(lua_State *L) {
  batch *b = check_batch(L);
  lua_Number timeout = luaL_optnumber(L, 2, -1);
  luaL_argcheck(L, timeout == timeout && timeout <= 86400, 2, "timeout must be at most 86400 seconds");
  session *s = batch_session(L, b);
  if (b->own_multi) return luaL_error(L, "braze: a batch in socket mode is driven by action()");
  return run_batch(L, b, s, batch_poll_body, timeout);
}

/* The body of batch:action: the socket (or -1 for the timer) and its events
   come packed in one number: fd * 4 + CURL_CSELECT_IN/OUT bits. */
static int batch_action_body(lua_State *L) {
  batch *b = (batch *)lua_touserdata(L, 1);
  lua_Integer packed = (lua_Integer)lua_tonumber(L, 2);
  curl_socket_t fd = packed < 0 ? CURL_SOCKET_TIMEOUT : (curl_socket_t)(packed / 4);
  int events = packed < 0 ? 0 : (int)(packed % 4);
  int running = 0;
  CURLMcode mc = curl_multi_socket_action(b->own_multi, fd, events, &running);
  if (mc != CURLM_OK) return luaL_error(L, "braze: curl_multi_socket_action: %s", curl_multi_strerror(mc));
  drain_finished(b->own_multi);
  return push_finished(L, b);
}

/*
 * Socket mode. batch:action([fd, events]) tells libcurl that socket `fd` is
 * ready ("r", "w" or "rw"), or, with no argument, that its timer fired;
 * returns the requests that finished, as poll does.
 */
static int batch_action(lua_State *L) {
  batch *b = check_batch(L);
  lua_Integer packed = -1;
  if (!lua_isnoneornil(L, 2)) {
    lua_Integer fd = luaL_checkinteger(L, 2);
    const char *ev = luaL_optstring(L, 3, "");
    luaL_argcheck(L, fd >= 0 && fd < (1 << 28), 2, "not a socket");
    int bits = (strchr(ev, 'r') ? CURL_CSELECT_IN : 0) | (strchr(ev, 'w') ? CURL_CSELECT_OUT : 0);
    packed = fd * 4 + bits;
  }
  session *s = batch_session(L, b);
  if (!b->own_multi) return luaL_error(L, "braze: action() is for a batch in socket mode");
  close_sockets(b, b->announced);
  return run_batch(L, b, s, batch_action_body, (lua_Number)packed);
}

/* The body of batch:updates, run with the batch marked busy. */
static int batch_updates_body(lua_State *L) {
  batch *b = (batch *)lua_touserdata(L, 1);
  lua_createtable(L, b->n_watches, 1);
  for (int i = 0; i < b->n_watches; i++) {
    int what = b->watches[i].what;
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, (lua_Integer)b->watches[i].fd);
    lua_setfield(L, -2, "fd");
    lua_pushstring(L, what == CURL_POLL_REMOVE ? "remove"
                      : what == CURL_POLL_IN   ? "r"
                      : what == CURL_POLL_OUT  ? "w"
                                               : "rw");
    lua_setfield(L, -2, "what");
    lua_rawseti(L, -2, i + 1);
  }
  if (b->timer_changed) {
    lua_pushinteger(L, (lua_Integer)b->timer_ms);
    lua_setfield(L, -2, "timer");
  }
  b->n_watches = 0;
  b->timer_changed = 0;
  return 1;
}

/*
 * Socket mode. batch:updates() -> what the event loop must change since the
 * last call: an array of { fd = n, what = "r"|"w"|"rw"|"remove" } (watch the
 * socket for that, or stop watching it), and `timer`: absent when
 * unchanged, -1 to stop it, else the milliseconds before calling action().
 * The loop applies them before it calls into the batch again.
 */
static int batch_updates(lua_State *L) {
  batch *b = check_batch(L);
  session *s = batch_session(L, b);
  if (!b->own_multi) return luaL_error(L, "braze: updates() is for a batch in socket mode");
  close_sockets(b, b->announced); /* the loop stopped watching them after the last call */
  b->announced = b->n_closing;
  return run_batch(L, b, s, batch_updates_body, 0);
}

static int batch_tostring(lua_State *L) {
  batch *b = check_batch(L);
  int n = 0;
  for (int i = 0; i < b->capacity; i++) n += b->slots[i].in_multi || b->slots[i].finished;
  lua_pushfstring(L, "braze.core.batch (%s, %d in flight): %p", b->s ? "open" : "closed", n,
                  (void *)b);
  return 1;
}

static void register_batch(lua_State *L) {
  if (luaL_newmetatable(L, BRAZE_BATCH_MT)) {
    lua_createtable(L, 0, 5);
    lua_pushcfunction(L, batch_submit);
    lua_setfield(L, -2, "submit");
    lua_pushcfunction(L, batch_poll);
    lua_setfield(L, -2, "poll");
    lua_pushcfunction(L, batch_action);
    lua_setfield(L, -2, "action");
    lua_pushcfunction(L, batch_updates);
    lua_setfield(L, -2, "updates");
    lua_pushcfunction(L, batch_close);
    lua_setfield(L, -2, "close");
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, batch_close);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, batch_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, batch_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
}

void braze_session_register(lua_State *L) {
  register_batch(L);
  if (luaL_newmetatable(L, BRAZE_SESSION_MT)) {
    lua_createtable(L, 0, 3);
    /* get and get_many carry their body as an upvalue: pushing it later
       makes no garbage on any Lua version. */
    lua_pushcfunction(L, get_body);
    lua_pushcclosure(L, session_get, 1);
    lua_setfield(L, -2, "get");
    lua_pushcfunction(L, get_many_body);
    lua_pushcclosure(L, session_get_many, 1);
    lua_setfield(L, -2, "get_many");
    lua_pushcfunction(L, session_batch);
    lua_setfield(L, -2, "batch");
    lua_pushcfunction(L, session_close);
    lua_setfield(L, -2, "close");
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
