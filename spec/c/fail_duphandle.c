/*
 * fail_duphandle.c - test helper for spec/core/hardening_spec.lua, loaded
 * with LD_PRELOAD: curl_easy_duphandle returns NULL (as on out of memory) on
 * its Nth call, N from $BRAZE_FAIL_DUPHANDLE; every other call is libcurl's.
 *   cc -shared -fPIC -o fail_duphandle.so fail_duphandle.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>

typedef void CURL;

CURL *curl_easy_duphandle(CURL *handle);

CURL *curl_easy_duphandle(CURL *handle) {
  static int calls = 0;
  CURL *(*real)(CURL *);
  const char *fail = getenv("BRAZE_FAIL_DUPHANDLE");
  /* braze.core and its libcurl are loaded RTLD_LOCAL by Lua: RTLD_NEXT
     cannot see them, the library's own handle can. */
  void *lib = dlopen("libcurl.so.4", RTLD_LAZY | RTLD_NOLOAD);
  if (lib == NULL) return NULL;
  *(void **)&real = dlsym(lib, "curl_easy_duphandle");
  dlclose(lib);
  calls++;
  if (real == NULL || (fail != NULL && calls == atoi(fail))) return NULL;
  return real(handle);
}
