/*
 * decode_numbers.c - prints what braze_decode makes of each argument, a
 * JSON number: "%.17g" (which reads back exactly), or "error: ...".
 * The first line is the FLT_EVAL_METHOD it was compiled with.
 * spec/core/decode_spec.lua builds it with -mfpmath=387 (doubles evaluated in
 * x87 extended precision) to check the decoder's float path there.
 */
#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode.h"

int main(int argc, char **argv) {
  lua_State *L = luaL_newstate();
  if (L == NULL) return 3;
  printf("FLT_EVAL_METHOD %d\n", (int)FLT_EVAL_METHOD);
  for (int i = 1; i < argc; i++) {
    braze_decode_error err;
    if (!braze_decode(L, argv[i], strlen(argv[i]), 1, &err)) {
      printf("error: %s at byte %zu\n", err.message, err.position);
    } else if (lua_type(L, -1) != LUA_TNUMBER) {
      printf("not a number: %s\n", lua_typename(L, lua_type(L, -1)));
    } else {
      printf("%.17g\n", (double)lua_tonumber(L, -1));
    }
    lua_settop(L, 0);
  }
  lua_close(L);
  return 0;
}
