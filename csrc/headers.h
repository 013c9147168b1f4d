/* headers.h - picking the response headers the Lua front needs out of raw header lines. */
#ifndef BRAZE_HEADERS_H
#define BRAZE_HEADERS_H

#include <stddef.h>
#include "compat.h"

/* Lower-case names, in the order of the BRAZE_H_* indexes. */
enum {
  BRAZE_H_RATELIMIT_LIMIT, BRAZE_H_RATELIMIT_REMAINING, BRAZE_H_RATELIMIT_RESET,
  BRAZE_H_REQUEST_ID, BRAZE_H_CONTENT_TYPE, BRAZE_H_RETRY_AFTER, BRAZE_H_LOCATION,
  BRAZE_H_CONTENT_LENGTH, BRAZE_H_DATE,
  BRAZE_N_HEADERS
};
BRAZE_HIDDEN extern const char *const braze_header_names[BRAZE_N_HEADERS];

/* Bytes of a body that failed to decode kept for the error message (core.SNIPPET_MAX). */
#define BRAZE_SNIPPET_MAX 512

/* Values longer than this are cut: every header we read is short. */
#define BRAZE_HEADER_VALUE_MAX 256

/*
 * Classify one raw header line ("Name: value\r\n", not NUL-terminated).
 * Returns -2 for a status line ("HTTP/..."), BRAZE_H_* for a wanted header
 * (its trimmed value copied, NUL-terminated and cut to fit, into `value`),
 * or -1 for anything else, malformed lines included.
 */
BRAZE_HIDDEN int braze_header_line(const char *line, size_t n, char value[BRAZE_HEADER_VALUE_MAX]);

#endif
