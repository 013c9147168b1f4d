/*
 * locale_race.c - braze_decode reads numbers in the C locale even while
 * another thread switches the process's locale (spec/core/decode_spec.lua
 * builds and runs it). The decoder once read localeconv() and called
 * strtod() in the global locale: a switch in between gave a silently
 * wrong number (0.30000000000000004 read as 0).
 *
 *   locale_race LOCALE N   -> "wrong W of N"; exit 0 only when W is 0
 *                             (2: LOCALE is not installed)
 */
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"

static const char *comma_locale;
static volatile int done;

/* Switches LC_NUMERIC back and forth until told to stop. */
static void *switcher(void *unused) {
  (void)unused;
  while (!done) {
    setlocale(LC_NUMERIC, comma_locale);
    setlocale(LC_NUMERIC, "C");
  }
  return NULL;
}

int main(int argc, char **argv) {
  static const char text[] = "[0.30000000000000004,1.7976931348623157e308,2.2250738585072011e-308]";
  static const double want[] = { 0.30000000000000004, 1.7976931348623157e308, 2.2250738585072011e-308 };
  if (argc != 3) return 2;
  comma_locale = argv[1];
  long n = atol(argv[2]), wrong = 0;
  if (setlocale(LC_NUMERIC, comma_locale) == NULL) {
    printf("locale %s not installed\n", comma_locale);
    return 2;
  }
  setlocale(LC_NUMERIC, "C");
  lua_State *L = luaL_newstate();
  if (L == NULL) return 3;
  pthread_t t;
  if (pthread_create(&t, NULL, switcher, NULL) != 0) return 3;
  for (long i = 0; i < n; i++) {
    char buf[sizeof text];
    braze_decode_error err;
    memcpy(buf, text, sizeof text);
    if (!braze_decode(L, buf, sizeof text - 1, 10, &err)) {
      if (wrong++ < 3) printf("error: %s at byte %zu\n", err.message, err.position);
    } else {
      for (int j = 0; j < 3; j++) {
        lua_rawgeti(L, -1, j + 1);
        double got = (double)lua_tonumber(L, -1);
        if (got != want[j] && wrong++ < 3) printf("value %d: %.17g\n", j + 1, got);
        lua_pop(L, 1);
      }
    }
    lua_settop(L, 0);
  }
  done = 1;
  pthread_join(t, NULL);
  lua_close(L);
  printf("wrong %ld of %ld\n", wrong, n);
  return wrong == 0 ? 0 : 1;
}
