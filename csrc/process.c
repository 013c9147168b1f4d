/*
 * process.c - what braze.core sets up once per process, whatever number of
 * lua_States (in whatever threads) load it:
 *
 * - curl_global_init, exactly once (pthread_once: two threads loading the
 *   module in two lua_States must not both run it);
 * - curl_version(), read once: it rewrites a static buffer on every call,
 *   so two threads calling it race;
 * - the module pins itself in memory: libcurl's global state (and the TLS
 *   library's) must outlive every lua_State, so closing the last state that
 *   loaded the module must not unload it under them. This is done here, in
 *   code, instead of with the linker flag -z nodelete, so the CMake build and
 *   the LuaRocks build (which cannot pass linker flags) behave the same.
 */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <pthread.h>
#include <time.h>

#include <curl/curl.h>

#include "process.h"

/* curl_multi_poll (session.c) is the newest call we need. */
#if LIBCURL_VERSION_NUM < 0x074200
#error "lua-braze needs libcurl 7.66.0 or newer (curl_multi_poll)"
#endif

static pthread_once_t once = PTHREAD_ONCE_INIT;
static const char *init_error = NULL; /* written once, inside `once` */
static const char *version = "";       /* likewise */

static void init_process(void) {
  Dl_info self;
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    init_error = "braze: curl_global_init failed";
    return;
  }
  version = curl_version();
  /* One more reference to our own shared object, never released. */
  if (dladdr((const void *)&once, &self) != 0 && self.dli_fname != NULL)
    (void)dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

const char *braze_process_init(void) {
  if (pthread_once(&once, init_process) != 0) return "braze: pthread_once failed";
  return init_error;
}

const char *braze_curl_version(void) {
  return version;
}

double braze_monotonic(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
