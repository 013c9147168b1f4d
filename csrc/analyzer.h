/*
 * analyzer.h - what the static analysers need to know and cannot see.
 *
 * Used only by scripts/analyze.sh (gcc -include / cppcheck --include); the
 * module's build never sees it. lua_error, luaL_error and luaL_argerror
 * never return (they longjmp), but Lua's headers do not say so, so gcc
 * -fanalyzer follows impossible paths past them and reports NULL
 * dereferences there. This is the one place such false positives are
 * answered: by telling the analyser the truth, not by changing the code.
 */
#ifndef BRAZE_ANALYZER_H
#define BRAZE_ANALYZER_H

/* No includes: a file's own feature macros (_GNU_SOURCE...) must still come
   first. `struct lua_State` is what lua.h's lua_State names. */
struct lua_State;
extern int lua_error(struct lua_State *L) __attribute__((noreturn));
extern int luaL_error(struct lua_State *L, const char *fmt, ...) __attribute__((noreturn));
extern int luaL_argerror(struct lua_State *L, int arg, const char *extramsg) __attribute__((noreturn));

#endif
