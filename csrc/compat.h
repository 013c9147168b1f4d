/*
 * compat.h - the only place that knows which Lua C API we are built against.
 *
 * The code is written to the Lua 5.4 API; the shims below let the same
 * source build for Lua 5.1/LuaJIT (5.1 API), 5.2 and 5.3.
 */
#ifndef BRAZE_COMPAT_H
#define BRAZE_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

#if defined(__GNUC__)
/*
 * luaL_error and lua_error never return (they longjmp, or throw in LuaJIT),
 * but the Lua headers do not say so. Saying it here lets the compiler and
 * gcc -fanalyzer (scripts/analyze.sh) see that code after a raise is
 * unreachable, instead of reporting e.g. a NULL dereference after
 * `if (p == NULL) luaL_error(...)`. This is the one place for that.
 */
LUALIB_API int (luaL_error)(lua_State *L, const char *fmt, ...) __attribute__((noreturn));
LUA_API int (lua_error)(lua_State *L) __attribute__((noreturn));
LUALIB_API int (luaL_argerror)(lua_State *L, int arg, const char *extramsg) __attribute__((noreturn));
#endif

#if LUA_VERSION_NUM < 502 && !defined(luaL_newlib)
/*
 * Plain Lua 5.1 (and LuaJIT 2.0). LuaJIT 2.1 keeps the 5.1 API but already
 * has luaL_setfuncs, luaL_testudata, luaL_setmetatable and luaL_newlib (a
 * macro in its lauxlib.h, which is how we tell it apart): use its own.
 */
#define luaL_setfuncs(L, l, nup) braze_setfuncs((L), (l), (nup))
static inline void braze_setfuncs(lua_State *L, const luaL_Reg *l, int nup) {
  for (; l->name != NULL; l++) {
    int i;
    for (i = 0; i < nup; i++) lua_pushvalue(L, -nup);
    lua_pushcclosure(L, l->func, nup);
    lua_setfield(L, -(nup + 2), l->name);
  }
  lua_pop(L, nup);
}
#define luaL_newlibtable(L, l) lua_createtable((L), 0, sizeof(l) / sizeof((l)[0]) - 1)
#define luaL_newlib(L, l) (luaL_newlibtable((L), (l)), luaL_setfuncs((L), (l), 0))
static inline void *braze_testudata(lua_State *L, int ud, const char *tname) {
  void *p = lua_touserdata(L, ud);
  if (p != NULL && lua_getmetatable(L, ud)) {
    luaL_getmetatable(L, tname);
    if (!lua_rawequal(L, -1, -2)) p = NULL;
    lua_pop(L, 2);
    return p;
  }
  return NULL;
}
#define luaL_testudata(L, ud, tname) braze_testudata((L), (ud), (tname))
static inline void braze_setmetatable(lua_State *L, const char *tname) {
  luaL_getmetatable(L, tname);
  lua_setmetatable(L, -2);
}
#define luaL_setmetatable(L, tname) braze_setmetatable((L), (tname))
#endif

#if LUA_VERSION_NUM < 502
/* Lua 5.1 and every LuaJIT. */
#define lua_rawlen(L, i) lua_objlen((L), (i))
#endif

#if LUA_VERSION_NUM < 504
/* No user values on userdata before 5.4: we never use them. */
#define lua_newuserdatauv(L, size, nuv) lua_newuserdata((L), (size))
#endif

#if LUA_VERSION_NUM < 503
/*
 * No integer subtype (5.1, 5.2, LuaJIT): JSON integers become doubles,
 * which are exact up to 2^53. BRAZE_HAS_INTEGERS lets the decoder decide
 * what to do with larger values.
 */
#define BRAZE_HAS_INTEGERS 0
#else
#define BRAZE_HAS_INTEGERS 1
#endif

/* Only luaopen_* is exported from the shared object. */
#if defined(__GNUC__)
#define BRAZE_EXPORT __attribute__((visibility("default")))
#define BRAZE_HIDDEN __attribute__((visibility("hidden")))
#else
#define BRAZE_EXPORT
#define BRAZE_HIDDEN
#endif

#endif
