/* session.h - the libcurl-backed HTTP session userdata (braze.core.session). */
#ifndef BRAZE_SESSION_H
#define BRAZE_SESSION_H

#include "compat.h"

#define BRAZE_SESSION_MT "braze.core.session"

/* core.session(opts) */
BRAZE_HIDDEN int braze_session_new(lua_State *L);

/* Register the session and batch metatables. */
BRAZE_HIDDEN void braze_session_register(lua_State *L);

#endif
