/* random.h - core.random(), a per-lua_State PRNG for retry jitter (see random.c). */
#ifndef BRAZE_RANDOM_H
#define BRAZE_RANDOM_H

#include "compat.h"

/* Push the core.random function (with its own freshly seeded state). */
BRAZE_HIDDEN void braze_random_push(lua_State *L);

#endif
