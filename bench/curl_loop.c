/*
 * curl_loop.c - the transport's physical limit for bench/run.sh: N plain
 * GETs of one URL over one reused libcurl easy handle (one keep-alive
 * connection), the body thrown away by a no-op write callback. No headers
 * beyond libcurl's own, no parsing.
 *
 *   cc -O2 -o curl_loop bench/curl_loop.c $(pkg-config --cflags --libs libcurl)
 *   ./curl_loop URL N [WARMUP]   ->   RATE <requests/s> bytes=<body bytes per request>
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <curl/curl.h>

static size_t discard(char *data, size_t size, size_t nmemb, void *ud) {
  size_t *bytes = (size_t *)ud;
  (void)data;
  *bytes += size * nmemb;
  return size * nmemb;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int get(CURL *curl, const char *url) {
  long status = 0;
  CURLcode rc = curl_easy_perform(curl);
  if (rc != CURLE_OK) {
    fprintf(stderr, "curl_loop: %s: %s\n", url, curl_easy_strerror(rc));
    return 0;
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) {
    fprintf(stderr, "curl_loop: %s: HTTP %ld\n", url, status);
    return 0;
  }
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: curl_loop URL N [WARMUP]\n");
    return 2;
  }
  const char *url = argv[1];
  long n = atol(argv[2]);
  long warmup = argc > 3 ? atol(argv[3]) : n / 10 + 1;
  size_t bytes = 0;
  long connects = 0;

  if (n < 1 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return 2;
  CURL *curl = curl_easy_init();
  if (curl == NULL) return 1;
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &bytes);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_PROXY, "");

  for (long i = 0; i < warmup; i++)
    if (!get(curl, url)) return 1;
  bytes = 0;
  double t0 = now();
  for (long i = 0; i < n; i++)
    if (!get(curl, url)) return 1;
  double t = now() - t0;
  curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &connects);
  printf("RATE %.1f bytes=%zu new_connections_last=%ld\n", (double)n / t, bytes / (size_t)n, connects);
  curl_easy_cleanup(curl);
  curl_global_cleanup();
  return 0;
}
