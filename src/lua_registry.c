/*
 * lua_registry.c - per-environment state in the Lua registry
 * (lua_registry.h).
 */
#include <string.h>

#include "lua_registry.h"

void *lm_registry_userdata(lua_State *L, const char *key, size_t size,
                           lua_CFunction gc, int *created) {
  *created = 0;
  if (lua_getfield(L, LUA_REGISTRYINDEX, key) == LUA_TUSERDATA) {
    void *p = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return p;
  }
  lua_pop(L, 1);
  void *p = lua_newuserdatauv(L, size, 0);
  memset(p, 0, size);
  if (gc) {
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
  }
  lua_setfield(L, LUA_REGISTRYINDEX, key);
  *created = 1;
  return p;
}
