/*
 * threads.c - test helper for spec/core/hardening_spec.lua: two threads,
 * each creating its own lua_State, loading braze.core, decoding a document
 * and creating and closing a session, ITERATIONS times, started together.
 *
 *   threads CPATH ITERATIONS   loads braze.core through package.cpath, and
 *                              checks the module stays loaded after every
 *                              lua_State is closed (prints "pinned")
 *   threads - ITERATIONS       braze.core linked in (built with -DBRAZE_STATIC
 *                              and the csrc/ files, e.g. under -fsanitize=thread)
 *
 * Prints "thread N: ITERATIONS ok" per thread; exits 0 only when all passed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#ifdef BRAZE_STATIC
int luaopen_braze_core(lua_State *L);
#endif

static const char *cpath;
static int iterations;
static pthread_barrier_t start;
static char module_path[4096];

static const char chunk[] =
  "local core = require('braze.core')\n"
  "local v = assert(core.decode('{\"a\":[1,2,3],\"s\":\"x\\\\u00e9\"}'))\n"
  "assert(v.a[3] == 3 and v.s == 'x\\195\\169')\n"
  "local s = core.session{ api_key = 'k', timeout = 1 }\n"
  "s:close()\n"
  "return package.searchpath and package.searchpath('braze.core', package.cpath) or ''\n";

static void *run(void *arg) {
  long id = (long)arg;
  long ok = 0;
  pthread_barrier_wait(&start);
  for (int i = 0; i < iterations; i++) {
    lua_State *L = luaL_newstate();
    if (L == NULL) break;
    luaL_openlibs(L);
    lua_getglobal(L, "package");
#ifdef BRAZE_STATIC
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_braze_core);
    lua_setfield(L, -2, "braze.core");
    lua_pop(L, 1);
#else
    lua_pushstring(L, cpath);
    lua_setfield(L, -2, "cpath");
#endif
    lua_pop(L, 1);
    if (luaL_dostring(L, chunk) != 0) {
      fprintf(stderr, "thread %ld: %s\n", id, lua_tostring(L, -1));
      lua_close(L);
      break;
    }
    if (id == 1 && i == 0 && lua_tostring(L, -1) != NULL)
      snprintf(module_path, sizeof module_path, "%s", lua_tostring(L, -1));
    lua_close(L);
    ok++;
  }
  return (void *)ok;
}

int main(int argc, char **argv) {
  pthread_t t[2];
  int failed = 0;
  if (argc != 3) {
    fprintf(stderr, "usage: threads CPATH|- ITERATIONS\n");
    return 2;
  }
  cpath = argv[1];
  iterations = atoi(argv[2]);
  pthread_barrier_init(&start, NULL, 2);
  for (long i = 0; i < 2; i++) pthread_create(&t[i], NULL, run, (void *)(i + 1));
  for (int i = 0; i < 2; i++) {
    void *ok;
    pthread_join(t[i], &ok);
    printf("thread %d: %ld ok\n", i + 1, (long)ok);
    if ((long)ok != iterations) failed = 1;
  }
  pthread_barrier_destroy(&start);
  if (strcmp(cpath, "-") != 0) {
    /* Every lua_State is closed: the module must still be loaded. */
    void *h = module_path[0] ? dlopen(module_path, RTLD_NOW | RTLD_NOLOAD) : NULL;
    printf("%s\n", h != NULL ? "pinned" : "unloaded");
    if (h == NULL) failed = 1;
    else dlclose(h);
  }
  return failed;
}
