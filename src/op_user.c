/*
 * op_user.c - user-defined operations: `ops = "ops.lua"` in the
 * configuration names a Lua file returning a table of functions, each
 * added to op under its name and called as fn(op, ...).  They are built
 * from the existing ops, so what they do stays operation values that the
 * executors, lint and the replayed model see.  The file is loaded and
 * checked with the configuration (a name that an op already has is
 * refused), and kept for every op table built afterwards.
 */
#include <lauxlib.h>
#include <string.h>

#include "op_internal.h"

#define USER_OPS_KEY "luamig.user_ops"
#define OP_KEY "luamig.op"

/* The table of every name op has by itself. */
static void push_builtin_names(lua_State *L) {
  static const char *const fields[] = {"func", "null", "dialect", "offline",
                                       "x", NULL};
  lua_newtable(L);
  lm_op_register_core(L);
  lm_op_alter_register(L);
  lm_naming_register(L);
  lm_op_data_register(L);
  for (size_t i = 0; fields[i]; i++) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, fields[i]);
  }
}

/* Runs protected: stack 1 the file's path. */
static int load_user_ops(lua_State *L) {
  const char *path = lua_tostring(L, 1);
  if (luaL_loadfile(L, path) != LUA_OK) return lua_error(L);
  lua_call(L, 0, 1);
  if (!lua_istable(L, -1))
    return luaL_error(L, "%s must return a table of functions, not a %s",
                      path, luaL_typename(L, -1));
  int ops = lua_gettop(L);
  push_builtin_names(L);
  int builtin = lua_gettop(L);
  lua_pushnil(L);
  while (lua_next(L, ops)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      return luaL_error(L, "%s: the table must map names to functions (a "
                        "%s key)", path, luaL_typename(L, -2));
    const char *name = lua_tostring(L, -2);
    if (!lua_isfunction(L, -1))
      return luaL_error(L, "%s: %s must be a function, not a %s", path, name,
                        luaL_typename(L, -1));
    if (lua_getfield(L, builtin, name) != LUA_TNIL)
      return luaL_error(L, "%s: %s is an op already; give the function "
                        "another name", path, name);
    lua_pop(L, 2);
  }
  lua_settop(L, ops);
  lua_setfield(L, LUA_REGISTRYINDEX, USER_OPS_KEY);
  return 0;
}

int lm_op_user_load(lua_State *L, const char *path, lm_err *err) {
  lua_pushcfunction(L, load_user_ops);
  lua_pushstring(L, path);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
    lm_err_set(err, "ops: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return LM_ERROR;
  }
  return LM_OK;
}

/* op.NAME(...): the user's function, given the op table first. */
static int call_user_op(lua_State *L) {
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_getfield(L, LUA_REGISTRYINDEX, OP_KEY);
  lua_rotate(L, 1, 2);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

void lm_op_user_register(lua_State *L) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, USER_OPS_KEY) != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  lua_pushnil(L);
  while (lua_next(L, -2)) {             /* stack: op user name fn */
    lua_pushcclosure(L, call_user_op, 1);
    lua_pushvalue(L, -2);
    lua_insert(L, -2);                  /* stack: op user name name closure */
    lua_settable(L, -5);
  }
  lua_pop(L, 1);
}
