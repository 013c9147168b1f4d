/*
 * forkhelper.c - test helper for spec/core/hardening_spec.lua (Debian's
 * lua-posix has no Lua 5.4 build): a Lua module with
 *   fork() -> pid (0 in the child)    wait(pid) -> exit status
 *   exit(code) (_exit: no atexit, no Lua cleanup)   getpid() -> pid
 *   cc -shared -fPIC -o forkhelper.so forkhelper.c $(pkg-config --cflags lua5.4)
 */
#include <stdio.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

static int l_fork(lua_State *L) {
  fflush(NULL);
  lua_pushinteger(L, (lua_Integer)fork());
  return 1;
}

static int l_wait(lua_State *L) {
  int status = 0;
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  if (waitpid(pid, &status, 0) != pid) return luaL_error(L, "waitpid failed");
  lua_pushinteger(L, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  return 1;
}

static int l_exit(lua_State *L) {
  fflush(NULL);
  _exit((int)luaL_optinteger(L, 1, 0));
  return 0;
}

static int l_getpid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)getpid());
  return 1;
}

int luaopen_forkhelper(lua_State *L);

int luaopen_forkhelper(lua_State *L) {
  lua_createtable(L, 0, 4);
  lua_pushcfunction(L, l_fork);
  lua_setfield(L, -2, "fork");
  lua_pushcfunction(L, l_wait);
  lua_setfield(L, -2, "wait");
  lua_pushcfunction(L, l_exit);
  lua_setfield(L, -2, "exit");
  lua_pushcfunction(L, l_getpid);
  lua_setfield(L, -2, "getpid");
  return 1;
}
