/* process.h - once-per-process setup of braze.core (see process.c). */
#ifndef BRAZE_PROCESS_H
#define BRAZE_PROCESS_H

#include "compat.h"

/* Run the setup once per process (thread-safe); NULL, or why it failed. */
BRAZE_HIDDEN const char *braze_process_init(void);

/* libcurl's version string, as read once by braze_process_init. */
BRAZE_HIDDEN const char *braze_curl_version(void);

/* Seconds from a monotonic clock (the one clock of braze.core). */
BRAZE_HIDDEN double braze_monotonic(void);

#endif
