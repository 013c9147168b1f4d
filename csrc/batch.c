/*
 * batch.c - session:batch(n [, mode]): up to n requests that start at once
 * and are collected as they finish, in any order, each with the tag it was
 * given. Two modes:
 *
 *   "poll" (default)  batch:submit(url, tag), batch:poll([timeout]); the
 *                     handles share the session's multi handle, so its
 *                     connection cache (keep-alive across batches);
 *   "sockets"         its own multi handle, driven by an event loop through
 *                     batch:updates() and batch:action() (see
 *                     lua/braze/transport/luv.lua).
 *
 * A batch holds a registry reference to its session; the session keeps its
 * open batches in a list and detaches them when it is released (see
 * session_impl.h). What the session's list points to is the batch's state,
 * malloc'ed and owned by the userdata (a box holding the pointer), freed
 * only by the userdata's __gc: a finalizer that never runs (the metatable
 * is protected, but the debug library can still strip __gc) leaks it, and
 * leaves no dangling pointer in the session.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "process.h"
#include "session_impl.h"

typedef braze_session session;
typedef braze_transfer transfer;
typedef braze_batch batch;

/* A socket a batch in socket mode wants watched: what (CURL_POLL_*). */
typedef struct {
  curl_socket_t fd;
  int what;
} watch;

struct braze_batch {
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
  int busy;          /* a call is running: close waits for its end */
  int close_pending;
};

/* The userdata: the batch's state, NULL once finalized. */
typedef struct {
  batch *b;
} batch_box;

/* ---- sockets (socket mode) --------------------------------------------- */

/*
 * A socket libcurl is done with stays open until the event loop has been
 * told to stop watching it (batch:updates() returned its "remove", and the
 * loop came back): closing it earlier could hand its number to a new socket
 * while the loop still watches the old one.
 */
static int on_batch_close_socket(void *ud, curl_socket_t fd) {
  batch *b = (batch *)ud;
  if (b->n_closing == b->cap_closing) {
    int cap = b->cap_closing ? b->cap_closing * 2 : 16;
    curl_socket_t *grown = (curl_socket_t *)realloc(b->closing, (size_t)cap * sizeof *grown);
    if (grown == NULL) return braze_session_close_socket(b->s, fd); /* no room: close it now */
    b->closing = grown;
    b->cap_closing = cap;
  }
  b->closing[b->n_closing++] = fd;
  return 0;
}

/* Close the first `n` sockets waiting in b->closing. */
static void close_sockets(batch *b, int n) {
  if (n > b->n_closing) n = b->n_closing;
  for (int i = 0; i < n; i++) braze_session_close_socket(b->s, b->closing[i]);
  for (int i = n; i < b->n_closing; i++) b->closing[i - n] = b->closing[i];
  b->n_closing -= n;
  b->announced = b->announced > n ? b->announced - n : 0;
}

/*
 * libcurl says which sockets to watch and when to call back; the batch only
 * records it (plain C, no Lua inside a curl frame) for batch:updates() to
 * hand to the event loop's Lua adapter.
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

/* ---- lifetime ---------------------------------------------------------- */

/* Take a batch's handles out of the session (cleaning them up, unless
   `abandon`: a forked child that could not shield the parent's sockets). */
static void detach_batch(batch *b, int abandon) {
  session *s = b->s;
  if (s == NULL) return;
  CURLM *multi = b->own_multi ? b->own_multi : s->multi;
  for (int i = 0; i < b->capacity; i++) {
    transfer *t = &b->slots[i];
    if (abandon) {
      t->curl = NULL; /* left alone: see braze_session_release() */
    } else if (t->in_multi) {
      curl_multi_remove_handle(multi, t->curl);
    }
    t->in_multi = 0;
    t->finished = 0;
    braze_transfer_release(t);
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

void braze_batches_detach(session *s, int abandon) {
  while (s->batches) detach_batch(s->batches, abandon);
}

/* Close now: detach, and drop every reference the batch holds. */
static void close_batch(lua_State *L, batch *b) {
  /* In a forked child, the batch's handles and connections are the
     parent's: the session shields them first (and detaches b). */
  if (b->s != NULL) (void)braze_session_after_fork(b->s);
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
}

void braze_batch_busy(lua_State *L, batch *b, int busy) {
  b->busy = busy;
  if (!busy && b->close_pending) {
    b->close_pending = 0;
    close_batch(L, b);
  }
}

/* The state of the batch at index 1; a finalized one (resurrected by
   another finalizer) has none: raises "closed". */
static batch *check_batch(lua_State *L) {
  batch_box *box = (batch_box *)luaL_checkudata(L, 1, BRAZE_BATCH_MT);
  if (box->b == NULL) luaL_error(L, "braze: batch is closed");
  return box->b;
}

/* close and __close: idempotent; a close during a call waits for its end. */
static int batch_close(lua_State *L) {
  batch_box *box = (batch_box *)luaL_checkudata(L, 1, BRAZE_BATCH_MT);
  batch *b = box->b;
  if (b == NULL) return 0;
  if (b->busy) b->close_pending = 1;
  else close_batch(L, b);
  return 0;
}

/* __gc: close, and free the state (never busy: a call holds the userdata). */
static int batch_gc(lua_State *L) {
  batch_box *box = (batch_box *)luaL_checkudata(L, 1, BRAZE_BATCH_MT);
  batch *b = box->b;
  if (b == NULL) return 0;
  close_batch(L, b);
  box->b = NULL;
  free(b);
  return 0;
}

/*
 * Why the batch cannot take a call now, or NULL: its session must be open
 * and idle, in this process. Never raises and never allocates: an entry
 * point calls it after its last Lua allocation (any of which can run a
 * finalizer that closes the batch or its session), and uses the batch
 * with no allocation in between.
 */
static const char *batch_problem(batch *b) {
  session *s = b->s;
  if (s == NULL || s->main.curl == NULL) return "braze: batch is closed";
  const char *why = braze_session_usable(s); /* in a forked child: drops the batch */
  if (why != NULL) return why;
  if (b->s == NULL) return "braze: batch is closed (the process forked)";
  return NULL;
}

/* The batch's session, checked by batch_problem; raises when unusable. */
static session *batch_session(lua_State *L, batch *b) {
  const char *why = batch_problem(b);
  if (why != NULL) luaL_error(L, "%s", why);
  return b->s;
}

/* The multi handle a batch's transfers live in. */
static CURLM *batch_multi(const batch *b) {
  return b->own_multi ? b->own_multi : b->s->multi;
}

/*
 * session:batch(n [, "sockets"]) -> a batch of at most n (1..64) requests at
 * once. Polled (the default): batch:poll() waits for them. "sockets": driven
 * by an event loop through batch:updates() and batch:action() (its own multi
 * handle).
 */
int braze_session_batch(lua_State *L) {
  session *s = (session *)luaL_checkudata(L, 1, BRAZE_SESSION_MT);
  lua_Integer n = luaL_checkinteger(L, 2);
  luaL_argcheck(L, n >= 1 && n <= BRAZE_MAX_CONCURRENCY, 2, "batch size must be in 1..64");
  const char *mode = luaL_optstring(L, 3, "poll");
  int sockets = strcmp(mode, "sockets") == 0;
  luaL_argcheck(L, sockets || strcmp(mode, "poll") == 0, 3, "mode must be \"poll\" or \"sockets\"");
  /* Userdata and metatable first: from here on __gc owns every resource. */
  batch_box *box = (batch_box *)lua_newuserdatauv(L, sizeof *box, 0);
  box->b = NULL;
  luaL_setmetatable(L, BRAZE_BATCH_MT);
  batch *b = (batch *)calloc(1, sizeof *b);
  if (b == NULL) return luaL_error(L, "braze: out of memory");
  b->session_ref = LUA_NOREF;
  b->timer_ms = -1;
  box->b = b;
  lua_pushvalue(L, 1);
  b->session_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  /* That was the last Lua allocation (each could run a finalizer that
     closes the session): check the session now, use it without allocating. */
  const char *why = braze_session_usable(s);
  if (why != NULL) return luaL_error(L, "%s", why);
  b->slots = (transfer *)calloc((size_t)n, sizeof *b->slots);
  b->tags = (int *)malloc((size_t)n * sizeof *b->tags);
  if (b->slots == NULL || b->tags == NULL) return luaL_error(L, "braze: out of memory");
  b->capacity = (int)n;
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
  for (int i = 0; i < b->capacity; i++) {
    transfer *t = &b->slots[i];
    t->max_body = s->main.max_body;
    t->curl = curl_easy_duphandle(s->main.curl);
    if (t->curl == NULL || braze_transfer_bind(t) != CURLE_OK)
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
  size_t len;
  const char *url = luaL_checklstring(L, 2, &len);
  if (strlen(url) != len) return luaL_error(L, "braze: bad URL: it contains a NUL byte");
  luaL_checkany(L, 3);
  lua_settop(L, 3);
  lua_pushvalue(L, 3);
  int tag = luaL_ref(L, LUA_REGISTRYINDEX); /* the last allocation */
  const char *why = batch_problem(b);
  int slot = -1;
  if (why == NULL) {
    for (int i = 0; i < b->capacity && slot < 0; i++)
      if (!b->slots[i].in_multi && !b->slots[i].finished && b->tags[i] == LUA_NOREF) slot = i;
  }
  if (why != NULL || slot < 0) {
    luaL_unref(L, LUA_REGISTRYINDEX, tag); /* allocates nothing */
    if (why != NULL) return luaL_error(L, "%s", why);
    return luaL_error(L, "braze: batch is full (%d requests in flight)", b->capacity);
  }
  session *s = b->s;
  if (b->own_multi) close_sockets(b, b->announced);
  transfer *t = &b->slots[slot];
  braze_transfer_reset(t);
  CURLcode rc = curl_easy_setopt(t->curl, CURLOPT_URL, url);
  CURLMcode mc = rc == CURLE_OK ? curl_multi_add_handle(batch_multi(b), t->curl) : CURLM_OK;
  if (rc != CURLE_OK || mc != CURLM_OK) {
    luaL_unref(L, LUA_REGISTRYINDEX, tag);
    if (rc != CURLE_OK) return luaL_error(L, "braze: bad URL: %s", curl_easy_strerror(rc));
    return luaL_error(L, "braze: cannot start a transfer");
  }
  t->in_multi = 1;
  b->tags[slot] = tag;
  /* Send it now: the request is on its way while the caller goes on. (In
     socket mode libcurl has asked for a 0 ms timer: the loop calls back.) */
  if (!b->own_multi) {
    int running = 0;
    curl_multi_perform(s->multi, &running);
  }
  return 0;
}

/* ---- collecting -------------------------------------------------------- */

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
    t->finished = 1; /* only batches' transfers are in a multi */
    t->result = rc;
  }
}

/* Push the array of b's finished requests (collecting them); returns 1.
   A raise midway loses the outcomes collected so far, not their slots. */
static int push_finished(lua_State *L, batch *b) {
  session *s = b->s;
  lua_newtable(L);
  lua_Integer k = 0;
  for (int i = 0; i < b->capacity; i++) {
    transfer *t = &b->slots[i];
    if (!t->finished) continue;
    t->finished = 0;
    /* The tag leaves the registry before anything can raise (out of
       memory, or a finalizer's error on 5.1-5.3): no reference is lost. */
    lua_rawgeti(L, LUA_REGISTRYINDEX, b->tags[i]);
    luaL_unref(L, LUA_REGISTRYINDEX, b->tags[i]);
    b->tags[i] = LUA_NOREF;
    braze_push_outcome(L, t, t->result, s->max_depth);
    lua_insert(L, -2);
    lua_setfield(L, -2, "tag");
    lua_rawseti(L, -2, ++k);
  }
  return 1;
}

/* The body of batch:poll(timeout), run busy. */
static int batch_poll_body(lua_State *L) {
  batch *b = ((batch_box *)lua_touserdata(L, 1))->b;
  session *s = b->s;
  double timeout = lua_tonumber(L, 2); /* < 0: until one finishes */
  double deadline = braze_monotonic() + timeout;
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
      double left = deadline - braze_monotonic();
      if (left <= 0) break;
      if (left * 1000 < wait_ms) wait_ms = (int)(left * 1000) + 1;
    }
    curl_multi_poll(s->multi, NULL, 0, wait_ms, NULL);
  }
  return push_finished(L, b);
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
  lua_settop(L, 1);
  lua_pushnumber(L, timeout);
  session *s = batch_session(L, b);
  if (b->own_multi) return luaL_error(L, "braze: a batch in socket mode is driven by action()");
  return braze_run_busy(L, s, b, batch_poll_body);
}

/* The body of batch:action: the socket (or -1 for the timer) and its events
   come packed in one number: fd * 4 + CURL_CSELECT_IN/OUT bits. */
static int batch_action_body(lua_State *L) {
  batch *b = ((batch_box *)lua_touserdata(L, 1))->b;
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
  lua_settop(L, 1);
  lua_pushnumber(L, (lua_Number)packed);
  session *s = batch_session(L, b);
  if (!b->own_multi) return luaL_error(L, "braze: action() is for a batch in socket mode");
  close_sockets(b, b->announced);
  return braze_run_busy(L, s, b, batch_action_body);
}

/* The body of batch:updates, run busy. */
static int batch_updates_body(lua_State *L) {
  batch *b = ((batch_box *)lua_touserdata(L, 1))->b;
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
  lua_settop(L, 1);
  session *s = batch_session(L, b);
  if (!b->own_multi) return luaL_error(L, "braze: updates() is for a batch in socket mode");
  close_sockets(b, b->announced); /* the loop stopped watching them after the last call */
  b->announced = b->n_closing;
  return braze_run_busy(L, s, b, batch_updates_body);
}

static int batch_tostring(lua_State *L) {
  batch_box *box = (batch_box *)luaL_checkudata(L, 1, BRAZE_BATCH_MT);
  batch *b = box->b;
  int n = 0;
  for (int i = 0; b != NULL && i < b->capacity; i++) n += b->slots[i].in_multi || b->slots[i].finished;
  lua_pushfstring(L, "braze.core.batch (%s, %d in flight): %p", b && b->s ? "open" : "closed", n,
                  (void *)box);
  return 1;
}

static const luaL_Reg batch_methods[] = {
  {"submit", batch_submit},
  {"poll", batch_poll},
  {"action", batch_action},
  {"updates", batch_updates},
  {"close", batch_close},
  {NULL, NULL},
};

static const luaL_Reg batch_meta[] = {
  {"__gc", batch_gc},
  {"__close", batch_close},
  {"__tostring", batch_tostring},
  {NULL, NULL},
};

void braze_batch_register(lua_State *L) {
  braze_register_type(L, BRAZE_BATCH_MT, batch_meta, batch_methods);
}
