/*
 * process.c - what braze.core sets up once per process, whatever number of
 * lua_States (in whatever threads) load it:
 *
 * - curl_global_init, exactly once (pthread_once: two threads loading the
 *   module in two lua_States must not both run it), with allocation
 *   functions that wipe every block libcurl frees: its request buffers
 *   hold "Authorization: Bearer <key>", which must not outlive the
 *   session in freed heap memory (SECURITY.md). When the host process had
 *   initialized libcurl before us, its allocators stay (curl keeps the
 *   first);
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
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
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

/* Zero a block, then free it. (explicit_bzero: not optimised away.) */
static void wiping_free(void *p) {
  if (p == NULL) return;
  explicit_bzero(p, malloc_usable_size(p));
  free(p);
}

/* realloc that never leaves a wiped-out block behind unwiped: grow by copy. */
static void *wiping_realloc(void *p, size_t n) {
  if (p == NULL) return malloc(n);
  size_t have = malloc_usable_size(p);
  if (n == 0) n = 1; /* no realloc(p, 0) semantics to guess */
  if (n <= have) return p;
  void *q = malloc(n);
  if (q == NULL) return NULL;
  memcpy(q, p, have);
  wiping_free(p);
  return q;
}

static void init_process(void) {
  Dl_info self;
  if (curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc, wiping_free, wiping_realloc, strdup,
                           calloc) != CURLE_OK) {
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
