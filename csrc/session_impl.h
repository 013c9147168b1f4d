/*
 * session_impl.h - what a batch (batch.c) needs from its session
 * (session.c), and the one call back the other way: a session detaches its
 * batches when it is released or finds itself in a forked child.
 *
 * Lifetime (see the comment at the top of session.c):
 * - a batch holds a registry reference to its session, so the session
 *   outlives every open batch;
 * - a session keeps its open batches in a list and detaches them (their
 *   handles released, b->s = NULL) before it releases itself.
 */
#ifndef BRAZE_SESSION_IMPL_H
#define BRAZE_SESSION_IMPL_H

#include <sys/types.h>

#include "session.h"
#include "transfer.h"

#define BRAZE_BATCH_MT "braze.core.batch"

/* Most requests a batch runs at once. */
#define BRAZE_MAX_CONCURRENCY 64

typedef struct braze_batch braze_batch;

typedef struct {
  braze_transfer main;                /* get() */
  struct curl_slist *request_headers; /* holds the key: wiped on release */
  int max_depth;
  CURLM *multi;                       /* poll-mode batches' shared multi, made on first use */
  int busy;                           /* a call is running (get, poll, action, updates) */
  int close_pending;                  /* close() came while busy: release at the end */
  pid_t pid;                          /* the process the connections belong to */
  int *fds;                           /* sockets libcurl opened for us and has not closed */
  int n_fds, cap_fds;
  braze_batch *batches;               /* open batches, whose handles share the connections */
} braze_session;

/*
 * Why the session cannot take a call now ("braze: session is closed", "...
 * is busy"), or NULL. In a forked child it first drops everything the
 * parent owned (see after_fork in session.c), which can close the session:
 * the message then says so. Never raises and never allocates Lua memory.
 */
BRAZE_HIDDEN const char *braze_session_usable(braze_session *s);

/*
 * In a forked child, on the first use of anything of the session (a batch's
 * close and finalizer included): shield the parent's sockets, drop every
 * handle and batch, remake the main handle (after_fork in session.c). A
 * no-op in the process that made the session. NULL, or why the session
 * had to be closed.
 */
BRAZE_HIDDEN const char *braze_session_after_fork(braze_session *s);

/* Close a socket libcurl opened through the session (CURLOPT_CLOSESOCKETFUNCTION). */
BRAZE_HIDDEN int braze_session_close_socket(void *s, curl_socket_t fd);

/* Release everything the session holds (idempotent; see session.c). */
BRAZE_HIDDEN void braze_session_release(braze_session *s);

/*
 * Run `body` (a lua_CFunction taking the arguments above the userdata at
 * index 1) protected, with the session (and batch `b`, unless NULL) marked
 * busy: a close from a finalizer meanwhile only marks the object, and the
 * release happens here once the body has stopped using its buffers, even
 * when it raised. The caller has validated the objects and must not have
 * allocated since. Returns the body's results (or raises its error).
 */
BRAZE_HIDDEN int braze_run_busy(lua_State *L, braze_session *s, braze_batch *b, lua_CFunction body);

/*
 * The trampoline braze_run_busy calls through: every method of the session
 * and batch metatables has it as upvalue 1, so a call never has to push a
 * C function (which allocates on Lua 5.1 and LuaJIT, and so can run a
 * finalizer between a check and its use).
 */
BRAZE_HIDDEN int braze_trampoline(lua_State *L);
/* The metatable `name` (once): `meta` on it, `methods` under __index, every
 * function with braze_trampoline as upvalue 1, and __metatable set. */
BRAZE_HIDDEN void braze_register_type(lua_State *L, const char *name, const luaL_Reg *meta,
                                      const luaL_Reg *methods);

/* ---- implemented in batch.c -------------------------------------------- */

/* Detach every batch of the session (their handles released; `abandon`: in
   a forked child that could not shield the parent's sockets, leave the
   handles alone instead). */
BRAZE_HIDDEN void braze_batches_detach(braze_session *s, int abandon);

/* Mark batch `b` busy (1) or not (0); when it is no longer busy, do a
   close that came meanwhile. */
BRAZE_HIDDEN void braze_batch_busy(lua_State *L, braze_batch *b, int busy);

/* session:batch(n [, mode]) */
BRAZE_HIDDEN int braze_session_batch(lua_State *L);

/* The batch metatable, registered with the session's. */
BRAZE_HIDDEN void braze_batch_register(lua_State *L);

#endif
