/*
 * memscan.c - test helper for spec/core/key_memory_spec.lua: a Lua module
 * that counts, in this process's writable memory, the places where
 * `prefix` is directly followed by `secret`:
 *   memscan.count(prefix, secret) -> n
 * It never builds prefix..secret itself (that copy would be found), reads
 * through /proc/self/mem (no fault on odd mappings) into a buffer of its
 * own mapping, which it skips (and mappings over 64 MB: see MAPPING_MAX).
 *   cc -shared -fPIC -o memscan.so memscan.c $(pkg-config --cflags lua5.4)
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#define CHUNK (1u << 20)
/* Larger writable mappings are skipped: under ASan its shadow (256 MB and
   terabytes, reserved, not heap) would take hours to read. The spec's own
   heap is a few MB; it checks that the scan finds the open session's copy. */
#define MAPPING_MAX (64ul << 20)

static int count(lua_State *L) {
  size_t plen, slen;
  const char *prefix = luaL_checklstring(L, 1, &plen);
  const char *secret = luaL_checklstring(L, 2, &slen);
  size_t overlap = plen + slen;
  if (slen == 0 || overlap >= CHUNK) return luaL_error(L, "bad secret");
  unsigned char *buf = mmap(NULL, CHUNK + overlap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buf == MAP_FAILED) return luaL_error(L, "mmap failed");
  FILE *maps = fopen("/proc/self/maps", "r");
  int mem = open("/proc/self/mem", O_RDONLY);
  long found = 0;
  char line[512];
  while (maps && mem >= 0 && fgets(line, sizeof line, maps)) {
    unsigned long lo, hi;
    char perms[5];
    if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) != 3 || perms[0] != 'r' || perms[1] != 'w') continue;
    if (lo == (unsigned long)buf) continue; /* our own buffer */
    if (hi - lo > MAPPING_MAX) continue;     /* ASan's shadow memory, not a heap */
    size_t carried = 0;
    for (unsigned long at = lo; at < hi;) {
      size_t want = hi - at < CHUNK ? hi - at : CHUNK;
      ssize_t got = pread(mem, buf + carried, want, (off_t)at);
      if (got <= 0) break;
      size_t n = carried + (size_t)got;
      for (size_t i = plen; i + slen <= n; i++) {
        if (buf[i] == (unsigned char)secret[0] && memcmp(buf + i, secret, slen) == 0 &&
            memcmp(buf + i - plen, prefix, plen) == 0)
          found++;
      }
      /* Keep the tail: a match may straddle two reads. */
      carried = n < overlap ? n : overlap;
      memmove(buf, buf + n - carried, carried);
      at += (unsigned long)got;
    }
  }
  if (maps) fclose(maps);
  if (mem >= 0) close(mem);
  munmap(buf, CHUNK + overlap);
  lua_pushinteger(L, (lua_Integer)found);
  return 1;
}

int luaopen_memscan(lua_State *L);

int luaopen_memscan(lua_State *L) {
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, count);
  lua_setfield(L, -2, "count");
  return 1;
}
