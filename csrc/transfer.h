/*
 * transfer.h - one libcurl transfer: its easy handle, the callbacks that
 * receive the header lines and the body (with their limits), and the
 * response table built from what arrived. Used by the session (get) and
 * the batch (many at once).
 */
#ifndef BRAZE_TRANSFER_H
#define BRAZE_TRANSFER_H

#include <stddef.h>

#include <curl/curl.h>

#include "compat.h"
#include "headers.h"

typedef struct {
  CURL *curl;
  size_t max_body;
  char *body;
  size_t body_len, body_cap;
  int too_large;     /* aborted by max_body */
  int out_of_memory;
  int in_headers;    /* between a status line and the blank line ending its headers */
  int interim;       /* the current header block is a 1xx response's */
  int in_trailers;   /* the final response's headers ended: lines now are trailers */
  size_t header_bytes; /* header lines received (libcurl limits their sum) */
  int in_multi;      /* added to a multi handle */
  int finished;      /* a batch's transfer that is done and not collected yet */
  CURLcode result;   /* ... and how it ended */
  char header_value[BRAZE_N_HEADERS][BRAZE_HEADER_VALUE_MAX];
  unsigned char header_present[BRAZE_N_HEADERS];
  char errbuf[CURL_ERROR_SIZE];
} braze_transfer;

/* Point a handle's callbacks and error buffer at its own transfer. */
BRAZE_HIDDEN CURLcode braze_transfer_bind(braze_transfer *t);

/* Ready for the next request (same handle, same buffers). */
BRAZE_HIDDEN void braze_transfer_reset(braze_transfer *t);

/* Forget a finished body; do not hold a large buffer between calls. */
BRAZE_HIDDEN void braze_transfer_done(braze_transfer *t);

/* Clean up the handle and free the buffers (idempotent). */
BRAZE_HIDDEN void braze_transfer_release(braze_transfer *t);

/* Push nil, kind, message for a transfer that ended with `rc`; returns 3. */
BRAZE_HIDDEN int braze_push_failure(lua_State *L, const braze_transfer *t, CURLcode rc);

/*
 * Push the response table of a completed transfer, and forget its body:
 *   { status = int, headers = {lower-case name = value},
 *     body = decoded value | nil, decode_error = msg | nil,
 *     decode_position = int | nil, snippet = raw prefix | nil }
 */
BRAZE_HIDDEN void braze_push_response(lua_State *L, braze_transfer *t, int max_depth);

/* Push the outcome of a finished transfer as one table: the response table
   when rc is CURLE_OK, else { error = kind, message = }. Forgets the body. */
BRAZE_HIDDEN void braze_push_outcome(lua_State *L, braze_transfer *t, CURLcode rc, int max_depth);

#endif
