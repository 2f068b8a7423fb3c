/*
 * lua_heap.h - the allocator behind luamig's own Lua states.
 *
 * A data migration creates and drops millions of small Lua objects (a row
 * table, its strings, the table the function returns).  The C library's
 * allocator handles such bursts through its slower paths once its per-size
 * caches overflow; free lists per size class never do.
 */
#ifndef LM_LUA_HEAP_H
#define LM_LUA_HEAP_H

#include <lua.h>

typedef struct lm_lua_heap lm_lua_heap;

/* A new Lua state allocating from a heap of its own (*heap), with a
 * panic handler that reports to stderr.  NULL when out of memory. */
lua_State *lm_lua_newstate(lm_lua_heap **heap);
/* Close the state, then release the heap's memory. */
void lm_lua_close(lua_State *L, lm_lua_heap *heap);

#endif
