/*
 * interrupt.c - Ctrl-C that stops a wait or a transfer at once.
 *
 *   core.catch_interrupt()   -> true | nil, message
 *       install a SIGINT handler that only sets a flag (no SA_RESTART, so a
 *       blocking sleep or poll returns EINTR); clears the flag
 *   core.release_interrupt() -> put back the handler catch_interrupt replaced;
 *       clears the flag
 *   core.interrupted()       -> has SIGINT arrived since catch_interrupt?
 *
 * While the flag is set, core.sleep raises "braze: interrupted" and every
 * transfer is aborted by its progress callback (error kind "interrupted").
 * Nothing is installed by default: a library must not take SIGINT from its
 * host. A signal disposition belongs to the process, so only the program's
 * main thread (a command such as braze-segments) should call these.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <signal.h>
#include <string.h>

#include "interrupt.h"

static volatile sig_atomic_t interrupted = 0;
static struct sigaction previous; /* what catch_interrupt replaced */
static int installed = 0;

static void on_sigint(int sig) {
  (void)sig;
  interrupted = 1; /* async-signal-safe: nothing else happens here */
}

int braze_interrupted(void) { return interrupted != 0; }

int braze_xferinfo(void *data, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                   curl_off_t ulnow) {
  (void)data;
  (void)dltotal;
  (void)dlnow;
  (void)ultotal;
  (void)ulnow;
  return interrupted != 0; /* non-zero aborts the transfer */
}

static int core_catch_interrupt(lua_State *L) {
  interrupted = 0;
  if (!installed) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: blocking calls return EINTR */
    if (sigaction(SIGINT, &sa, &previous) != 0) {
      lua_pushnil(L);
      lua_pushfstring(L, "braze: cannot catch SIGINT: %s", strerror(errno));
      return 2;
    }
    installed = 1;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int core_release_interrupt(lua_State *L) {
  (void)L;
  if (installed) {
    sigaction(SIGINT, &previous, NULL);
    installed = 0;
  }
  interrupted = 0;
  return 0;
}

static int core_interrupted(lua_State *L) {
  lua_pushboolean(L, interrupted != 0);
  return 1;
}

static const luaL_Reg interrupt_functions[] = {
  {"catch_interrupt", core_catch_interrupt},
  {"release_interrupt", core_release_interrupt},
  {"interrupted", core_interrupted},
  {NULL, NULL},
};

void braze_interrupt_register(lua_State *L) { luaL_setfuncs(L, interrupt_functions, 0); }
