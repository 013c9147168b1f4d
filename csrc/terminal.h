/* terminal.h - what the command needs to know about its terminal. */
#ifndef BRAZE_TERMINAL_H
#define BRAZE_TERMINAL_H

#include "compat.h"

/* Add terminal_width to the table on top. */
BRAZE_HIDDEN void braze_terminal_register(lua_State *L);

#endif
