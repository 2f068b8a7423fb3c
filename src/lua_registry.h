/*
 * lua_registry.h - per-environment state kept in the Lua registry of its
 * lua_State, so that it lives and is freed with that state.
 */
#ifndef LM_LUA_REGISTRY_H
#define LM_LUA_REGISTRY_H

#include <stddef.h>

#include <lua.h>

/* The userdata of `size` bytes under `key` in L's registry, made (zeroed,
 * with gc as its __gc, which may be NULL) on first use; *created = 1 when
 * it was made by this call.  Raises as lua_newuserdatauv does. */
void *lm_registry_userdata(lua_State *L, const char *key, size_t size,
                           lua_CFunction gc, int *created);

#endif
