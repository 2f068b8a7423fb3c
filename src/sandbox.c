/*
 * sandbox.c - what the Lua code luamig runs (the configuration, revision
 * scripts, models files and what they require) may do to the process.
 *
 * A script may use the whole standard library, start programs
 * (os.execute, io.popen: they return to the script) and read and write
 * files, but it may not end or reconfigure luamig's process: os.exit
 * would end a run silently with nothing applied, os.setlocale would
 * change how numbers are written into SQL, and debug.sethook would
 * remove the hook that stops a looping script on SIGINT or SIGTERM.  Each
 * raises an error naming the script and line instead.  This guards
 * against accidents; it is not a boundary against hostile code.
 */
#include <lauxlib.h>
#include <lualib.h>
#include <signal.h>

#include "core.h"

/* Every few thousand instructions: stop Lua code that loops when the
 * command line got SIGINT or SIGTERM.  Once a signal came, the hook runs
 * at every instruction of the thread, so that a pcall inside a loop
 * cannot swallow the error for good. */
static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  if (!lm_signal_received) return;
  lua_sethook(L, interrupt_hook, LUA_MASKCOUNT, 1);
  luaL_where(L, 0);   /* in a hook, level 0 is the Lua code running */
  lua_pushfstring(L, "%sinterrupted by %s", lua_tostring(L, -1),
                  lm_signal_received == SIGINT ? "SIGINT" : "SIGTERM");
  lua_error(L);
}

static int refuse(lua_State *L, const char *name, const char *why) {
  return luaL_error(L, "%s is not available in luamig (%s)", name, why);
}

static int no_exit(lua_State *L) {
  return refuse(L, "os.exit", "a script cannot end the process; raise an "
                "error with error() to make the command fail");
}

/* Reading the locale is harmless; setting it is not. */
static int setlocale_query_only(lua_State *L) {
  if (lua_isnoneornil(L, 1)) {
    lua_pushvalue(L, lua_upvalueindex(1));   /* the original os.setlocale */
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
  }
  return refuse(L, "os.setlocale with a locale", "luamig writes numbers "
                "into SQL in the C locale");
}

static int no_sethook(lua_State *L) {
  return refuse(L, "debug.sethook", "luamig's hook stops a looping script "
                "on SIGINT and SIGTERM");
}

/* Replace field `name` of the library table global `lib`; with keep, the
 * original function becomes the replacement's upvalue. */
static void replace(lua_State *L, const char *lib, const char *name,
                    lua_CFunction fn, int keep) {
  if (lua_getglobal(L, lib) != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  if (keep) {
    lua_getfield(L, -1, name);               /* stack: lib original */
    lua_pushcclosure(L, fn, 1);
  } else {
    lua_pushcfunction(L, fn);
  }
  lua_setfield(L, -2, name);
  lua_pop(L, 1);
}

void lm_sandbox_install(lua_State *L) {
  replace(L, "os", "exit", no_exit, 0);
  replace(L, "os", "setlocale", setlocale_query_only, 1);
  replace(L, "debug", "sethook", no_sethook, 0);
  /* Threads copy the hook of the thread that creates them, so every
   * coroutine made from here on, at load time or later, has it too. */
  lua_sethook(L, interrupt_hook, LUA_MASKCOUNT, 10000);
}

int lm_lua_message_handler(lua_State *L) {
  if (lua_type(L, 1) == LUA_TSTRING) return 1;
  if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
    return 1;
  lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  return 1;
}
