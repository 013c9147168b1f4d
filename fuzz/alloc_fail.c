/*
 * alloc_fail.c - the allocation-failure host: one lua_State whose
 * allocator fails the Nth allocation after the script arms it (and the
 * allocation right after: Lua 5.4 retries once after an emergency
 * collection), for N = 1, 2, ... until the armed operation completes
 * without reaching N. Every failure must come out as a Lua error (or a
 * result) and leave the state usable: no crash, no sanitizer report, no
 * leak (LeakSanitizer at exit). Built and run with ASan by fuzz/alloc_fail.sh.
 *
 *   alloc_fail SCRIPT SECONDS [ARGS...]
 *
 * The script defines op(...) -> nothing (raising is fine) and gets three
 * globals: arm() (count from here), disarm() -> the failure fired, and
 * run(f): arm, pcall(f), disarm; returns fired, ok, err. The host calls
 * the script's returned function once per N: it must return `fired`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

static unsigned long count, fail_at;
static int armed, fired;

static void *alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  (void)osize;
  if (nsize == 0) {
    free(ptr);
    return NULL;
  }
  if (armed && nsize > 0) {
    count++;
    if (count == fail_at || count == fail_at + 1) {
      fired = 1;
      return NULL;
    }
  }
  return realloc(ptr, nsize);
}

static int l_arm(lua_State *L) {
  (void)L;
  count = 0;
  fired = 0;
  armed = 1;
  return 0;
}

static int l_disarm(lua_State *L) {
  armed = 0;
  lua_pushboolean(L, fired);
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: alloc_fail SCRIPT SECONDS [ARGS...]\n");
    return 2;
  }
  double seconds = atof(argv[2]);
  lua_State *L = lua_newstate(alloc, NULL);
  if (L == NULL) return 1;
  luaL_openlibs(L);
  lua_register(L, "arm", l_arm);
  lua_register(L, "disarm", l_disarm);
  if (luaL_loadfile(L, argv[1]) != 0) {
    fprintf(stderr, "%s\n", lua_tostring(L, -1));
    return 1;
  }
  for (int i = 3; i < argc; i++) lua_pushstring(L, argv[i]);
  if (lua_pcall(L, argc - 3, 1, 0) != 0 || !lua_isfunction(L, -1)) {
    fprintf(stderr, "setup: %s\n", lua_tostring(L, -1) ? lua_tostring(L, -1) : "no function returned");
    return 1;
  }
  int step = lua_gettop(L);
  time_t start = time(NULL);
  unsigned long n;
  int complete = 0;
  for (n = 1; difftime(time(NULL), start) < seconds; n++) {
    fail_at = n;
    lua_pushvalue(L, step);
    int status = lua_pcall(L, 0, 1, 0);
    armed = 0;
    if (status != 0) {
      /* Only the armed region may fail, and inside the script's pcall. */
      fprintf(stderr, "N=%lu: error outside the armed pcall: %s\n", n,
              lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
      return 1;
    }
    int hit = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (!hit) {
      complete = 1;
      break;
    }
  }
  lua_close(L);
  printf("alloc_fail %s: %s after N = %lu allocation points\n", argc > 3 ? argv[3] : "", 
         complete ? "every point failed once" : "time limit", n - 1);
  return 0;
}
