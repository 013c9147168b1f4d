/*
 * terminal.c - the terminal's size, for the command's tables.
 *
 *   core.terminal_width([fd]) -> columns of the terminal on fd (default 1,
 *                                stdout), or nil when fd is not a terminal
 *                                or does not know its size
 */
#include <sys/ioctl.h>
#include <unistd.h>

#include "terminal.h"

static int core_terminal_width(lua_State *L) {
  lua_Integer fd = luaL_optinteger(L, 1, 1);
  struct winsize ws;
  luaL_argcheck(L, fd >= 0 && fd <= 1024, 1, "fd must be a file descriptor number");
  if (isatty((int)fd) && ioctl((int)fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
    lua_pushinteger(L, (lua_Integer)ws.ws_col);
  else
    lua_pushnil(L);
  return 1;
}

static const luaL_Reg terminal_functions[] = {
  {"terminal_width", core_terminal_width},
  {NULL, NULL},
};

void braze_terminal_register(lua_State *L) { luaL_setfuncs(L, terminal_functions, 0); }
