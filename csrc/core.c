/*
 * core.c - luaopen_braze_core: the C side of lua-braze.
 *
 *   core.session(opts)       -> session userdata (see session.c)
 *   core.decode(json [, max_depth]) -> value | nil, message, position
 *   core.sleep(seconds)      -> blocks this thread (plain Lua hosts only);
 *                               raises "braze: interrupted" on a caught SIGINT
 *   core.catch_interrupt(), core.release_interrupt(), core.interrupted()
 *                            -> opt-in Ctrl-C handling (see interrupt.c)
 *   core.terminal_width([fd]) -> columns of a terminal, or nil (terminal.c)
 *   core.monotonic()         -> seconds from a monotonic clock (float)
 *   core.random()            -> a double uniform in [0, 1), per-process seeded (random.c)
 *   core.null                -> JSON null (lightuserdata NULL)
 *   core.curl_version        -> libcurl's version string
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "compat.h"
#include "decode.h"
#include "headers.h"
#include "interrupt.h"
#include "process.h"
#include "random.h"
#include "session.h"
#include "terminal.h"

#define BRAZE_CORE_VERSION "0.1.0"

static int core_decode(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  lua_Integer max_depth = luaL_optinteger(L, 2, BRAZE_DEFAULT_MAX_DEPTH);
  luaL_argcheck(L, max_depth >= 1 && max_depth <= 10000, 2, "max_depth must be in 1..10000");
  braze_decode_error err;
  char *buf;

  /*
   * Lua strings are immutable and the decoder unescapes in place, so a
   * document with escapes is decoded from a Lua-owned copy (collected with
   * everything else if decoding raises).
   */
  if (memchr(text, '\\', len) != NULL) {
    buf = (char *)lua_newuserdatauv(L, len + 1, 0);
    memcpy(buf, text, len);
  } else {
    buf = (char *)text; /* read only: the fast path never writes */
  }
  if (!braze_decode(L, buf, len, (int)max_depth, &err)) {
    lua_pushnil(L);
    char where[48];
    snprintf(where, sizeof where, " at byte %zu", err.position);
    lua_pushstring(L, err.message);
    lua_pushstring(L, where);
    lua_concat(L, 2);
    lua_pushinteger(L, (lua_Integer)err.position);
    return 3;
  }
  return 1;
}

static int core_sleep(lua_State *L) {
  lua_Number seconds = luaL_checknumber(L, 1);
  struct timespec req, rem;
  luaL_argcheck(L, seconds >= 0 && seconds <= 86400, 1, "seconds must be in [0, 86400]");
  req.tv_sec = (time_t)seconds;
  req.tv_nsec = (long)((seconds - (lua_Number)req.tv_sec) * 1e9);
  while (!braze_interrupted() && nanosleep(&req, &rem) != 0 && errno == EINTR) req = rem;
  if (braze_interrupted()) return luaL_error(L, "braze: interrupted");
  return 0;
}

static int core_monotonic(lua_State *L) {
  lua_pushnumber(L, (lua_Number)braze_monotonic());
  return 1;
}

static const luaL_Reg core_functions[] = {
  {"session", braze_session_new},
  {"decode", core_decode},
  {"sleep", core_sleep},
  {"monotonic", core_monotonic},
  {NULL, NULL},
};

BRAZE_EXPORT int luaopen_braze_core(lua_State *L) {
  const char *failed = braze_process_init(); /* curl_global_init, once per process */
  if (failed != NULL) return luaL_error(L, "%s", failed);
  braze_session_register(L);
  luaL_newlib(L, core_functions);
  braze_interrupt_register(L);
  braze_terminal_register(L);
  braze_random_push(L);
  lua_setfield(L, -2, "random");
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  lua_pushstring(L, braze_curl_version());
  lua_setfield(L, -2, "curl_version");
  /* What every transport keeps of a response: the header names and the snippet size. */
  lua_createtable(L, BRAZE_N_HEADERS, 0);
  for (int i = 0; i < BRAZE_N_HEADERS; i++) {
    lua_pushstring(L, braze_header_names[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setfield(L, -2, "HEADERS");
  lua_pushinteger(L, BRAZE_SNIPPET_MAX);
  lua_setfield(L, -2, "SNIPPET_MAX");
  lua_pushliteral(L, BRAZE_CORE_VERSION);
  lua_setfield(L, -2, "_VERSION");
  return 1;
}
