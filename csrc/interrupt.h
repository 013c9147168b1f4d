/*
 * interrupt.h - Ctrl-C for a command built on braze.core: an opt-in SIGINT
 * handler that sets a flag, which core.sleep and every transfer check.
 */
#ifndef BRAZE_INTERRUPT_H
#define BRAZE_INTERRUPT_H

#include <curl/curl.h>

#include "compat.h"

/* Has SIGINT arrived since core.catch_interrupt()? (Always 0 without it.) */
BRAZE_HIDDEN int braze_interrupted(void);

/* CURLOPT_XFERINFOFUNCTION: aborts the transfer once SIGINT has arrived
   (curl then returns CURLE_ABORTED_BY_CALLBACK). */
BRAZE_HIDDEN int braze_xferinfo(void *data, curl_off_t dltotal, curl_off_t dlnow,
                                curl_off_t ultotal, curl_off_t ulnow);

/* Add catch_interrupt, release_interrupt and interrupted to the table on top. */
BRAZE_HIDDEN void braze_interrupt_register(lua_State *L);

#endif
