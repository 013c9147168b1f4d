/*
 * decode.h - JSON text straight into Lua values (no intermediate string,
 * no JSON library at run time).
 */
#ifndef BRAZE_DECODE_H
#define BRAZE_DECODE_H

#include <stddef.h>
#include "compat.h"

#define BRAZE_DEFAULT_MAX_DEPTH 1000

typedef struct {
  char message[160]; /* what went wrong, e.g. "expected ':' after object key" */
  size_t position;   /* 1-based byte position of the offending byte */
} braze_decode_error;

/*
 * Decode the JSON document buf[0..len) and push exactly one value.
 * `buf` must be writable: strings with escapes are unescaped in place
 * (an unescaped string is never longer than its escaped form).
 * Returns 1 on success; on malformed input returns 0, leaves the stack
 * as it was and fills *err. Raises only on memory errors, and holds no
 * allocation of its own when it does.
 */
BRAZE_HIDDEN int braze_decode(lua_State *L, char *buf, size_t len, int max_depth,
                              braze_decode_error *err);

#endif
