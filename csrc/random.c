/*
 * random.c - core.random(): a double uniform in [0, 1), for retry jitter.
 *
 * math.random is unseeded in LuaJIT (and in every nginx worker forked from
 * one master), so every process would draw the same jitter. Here each
 * lua_State gets its own xoshiro256** generator (state in a userdata
 * upvalue), seeded from the clock, the pid and addresses, and reseeded when
 * the pid changes (after a fork). Not for cryptography.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include "random.h"

typedef struct {
  uint64_t s[4];
  pid_t pid; /* the process the state was seeded in */
} rng;

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

static void seed(rng *r) {
  struct timespec rt, mono;
  uint64_t x;
  clock_gettime(CLOCK_REALTIME, &rt);
  clock_gettime(CLOCK_MONOTONIC, &mono);
  r->pid = getpid();
  x = (uint64_t)rt.tv_sec * 1000000000u + (uint64_t)rt.tv_nsec;
  x ^= ((uint64_t)mono.tv_sec * 1000000000u + (uint64_t)mono.tv_nsec) * 0x9e3779b97f4a7c15u;
  x ^= (uint64_t)r->pid << 32;
  x ^= (uint64_t)(uintptr_t)r; /* differs between lua_States (and ASLR) */
  for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static uint64_t next(rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

static int core_random(lua_State *L) {
  rng *r = (rng *)lua_touserdata(L, lua_upvalueindex(1));
  if (r->pid != getpid()) seed(r);
  /* The top 53 bits, scaled: every value a multiple of 2^-53 in [0, 1). */
  lua_pushnumber(L, (lua_Number)(next(r) >> 11) * (1.0 / 9007199254740992.0));
  return 1;
}

void braze_random_push(lua_State *L) {
  rng *r = (rng *)lua_newuserdatauv(L, sizeof(rng), 0);
  seed(r);
  lua_pushcclosure(L, core_random, 1);
}
