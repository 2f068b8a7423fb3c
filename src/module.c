/*
 * module.c - the Lua module: require "luamig" (an installed luamig.lua
 * that loads this library as luamig.core; see src/module_shim.lua).
 *
 *   local m = assert(luamig.open{config = "luamig.lua"})
 *   m:upgrade("head"); m:current(); m:heads(); m:history(); m:close()
 *
 * Expected failures return nil, message, code, info (Lua's io convention,
 * then {code=, sqlstate=, revision=, file=, line=}); misuse
 * (wrong argument types) raises, naming the method.  Each object owns an
 * lm_env with its own private Lua state for the scripts and one database
 * connection for its life; only results cross into the caller's state.
 *
 * on_event runs in the middle of a command.  It may call the runner's
 * read-only methods (current, heads, history: on the same connection,
 * inside the command's transaction); the others raise there.  An error
 * on_event raises cannot unwind through the core: the first one is kept
 * and raised by the method once its command is over.
 *
 * This file: the checks, events and results the methods share, open,
 * close and the tables; the methods are in module_commands.c (those that
 * run a command) and module_read.c (the read-only ones, and SQL).
 */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embedded.h"
#include "module.h"
#include "oom.h"

/* ---- checks ------------------------------------------------------------ */

/* self of m:METHOD(): an open runner. */
lm_mod_runner *lm_mod_check_runner(lua_State *L, const char *method) {
  lm_mod_runner *r = luaL_testudata(L, 1, RUNNER_META);
  if (!r)
    luaL_error(L, "luamig: m:%s() must be called on a runner, as m:%s() "
               "(got %s)", method, method, luaL_typename(L, 1));
  if (!r->env) luaL_error(L, "luamig: m:%s(): the runner is closed", method);
  return r;
}

/* The same, for a method that starts a command: not from on_event while
 * another one runs. */
lm_mod_runner *lm_mod_check_idle(lua_State *L, const char *method) {
  lm_mod_runner *r = lm_mod_check_runner(L, method);
  if (r->busy)
    luaL_error(L, "luamig: m:%s() cannot be called from on_event while "
               "m:%s() runs; only m:current(), m:heads() and m:history() "
               "can", method, r->busy);
  return r;
}

/* A string argument (a number is taken as Lua takes it), without NULs. */
const char *lm_mod_check_string(lua_State *L, int idx, const char *method,
                                const char *what) {
  int t = lua_type(L, idx);
  if (t != LUA_TSTRING && t != LUA_TNUMBER)
    luaL_error(L, "luamig: m:%s(): %s must be a string (got %s)", method,
               what, luaL_typename(L, idx));
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  if (strlen(s) != len)
    luaL_error(L, "luamig: m:%s(): %s must not contain a NUL byte", method,
               what);
  return s;
}

/* ---- events ------------------------------------------------------------ */

/* on_event(event) with event = {kind=, revision=, message=}, protected as
 * a whole.  The first error the callback raises is kept in the registry.
 * Stack: 1 the lm_event, 2 the runner (light userdata). */
static int call_on_event(lua_State *L) {
  static const char *const kinds[] = {"info", "migration_start",
                                      "migration_done", "lock_wait",
                                      "progress", "statement"};
  const lm_event *ev = lua_touserdata(L, 1);
  lm_mod_runner *r = lua_touserdata(L, 2);
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->on_event);
  lua_createtable(L, 0, 3);
  lua_pushstring(L, kinds[ev->kind]);
  lua_setfield(L, -2, "kind");
  if (ev->revision) {
    lua_pushstring(L, ev->revision);
    lua_setfield(L, -2, "revision");
  }
  lua_pushstring(L, ev->message);
  lua_setfield(L, -2, "message");
  if (ev->kind == LM_EVENT_MIGRATION_START) {
    r->step_started = lm_now();
  } else if (ev->kind == LM_EVENT_MIGRATION_DONE && r->step_started > 0) {
    lua_pushnumber(L, lm_now() - r->step_started);
    lua_setfield(L, -2, "duration");
    r->step_started = 0;
  }
  if (lua_pcall(L, 1, 0, 0) != LUA_OK && r->event_error == LUA_NOREF)
    r->event_error = luaL_ref(L, LUA_REGISTRYINDEX);
  return 0;
}

/* The core's event callback: nothing may unwind through the core. */
static void forward_event(const lm_event *ev, void *payload) {
  lm_mod_runner *r = payload;
  lua_State *L = r->L;
  if (!lua_checkstack(L, 3)) return;
  lua_pushcfunction(L, call_on_event);
  lua_pushlightuserdata(L, (void *)ev);
  lua_pushlightuserdata(L, r);
  /* Only running out of memory while making the event gets here. */
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) lua_pop(L, 1);
}

/* A command of m:METHOD() starts: its events go to the caller's state L,
 * and calls back from them are checked. */
void lm_mod_command_start(lm_mod_runner *r, lua_State *L, const char *method) {
  r->L = L;
  r->busy = method;
}

/* The command of m:METHOD() is over (r->busy cleared before, so the
 * runner is usable whatever happens here).  If on_event raised meanwhile,
 * raise that now, with how the command itself went; else return
 * nresults. */
int lm_mod_command_end(lua_State *L, lm_mod_runner *r, const char *method,
                       int rc, int nresults) {
  if (r->event_error == LUA_NOREF) return nresults;
  lua_rawgeti(L, LUA_REGISTRYINDEX, r->event_error);
  luaL_unref(L, LUA_REGISTRYINDEX, r->event_error);
  r->event_error = LUA_NOREF;
  const char *cb = luaL_tolstring(L, -1, NULL);
  const char *during = strcmp(method, "open") == 0
                           ? "luamig.open()"
                           : lua_pushfstring(L, "m:%s()", method);
  if (rc == LM_OK)
    return luaL_error(L, "luamig: on_event raised an error during %s (the %s "
                      "itself succeeded): %s", during, method, cb);
  return luaL_error(L, "luamig: on_event raised an error during %s (the %s "
                    "itself failed: %s): %s", during, method,
                    lm_errmsg(r->env), cb);
}

/* Starts a read-only call from L: inside another command's callback it
 * keeps that command's error aside (and its Lua state in r->L). */
void lm_mod_nested_start(lm_mod_runner *r, lua_State *L, lm_mod_nested *n) {
  if (!r->busy) r->L = L;
  n->active = r->busy != NULL;
  if (!n->active) return;
  n->outer = r->env->err;
  lm_err_init(&r->env->err);
}

/* Ends a nested call: its error moves to n->info (nothing is allocated,
 * so this cannot fail). */
void lm_mod_nested_end(lm_mod_runner *r, lm_mod_nested *n) {
  n->info = r->env->err;
  lm_err_init(&r->env->err);
  if (n->active) r->env->err = n->outer;
}

int lm_mod_core(lm_env *env, int (*fn)(lm_env *env, void *payload),
                void *payload) {
  LM_OOM_ENTRY(env, LM_ERROR);
  return fn(env, payload);
}

/* ---- results ----------------------------------------------------------- */

static void set_string(lua_State *L, const char *key, const char *value) {
  if (!value || !*value) return;
  lua_pushstring(L, value);
  lua_setfield(L, -2, key);
}

int lm_mod_push_fail_err(lua_State *L, const char *msg, const lm_err *e) {
  const char *code = e ? lm_err_code(e) : NULL;
  luaL_pushfail(L);
  lua_pushstring(L, msg);
  if (code && *code) lua_pushstring(L, code);
  else lua_pushnil(L);
  lua_createtable(L, 0, 5);     /* {code=, sqlstate=, revision=, file=, line=} */
  set_string(L, "code", code);
  if (e) {
    set_string(L, "sqlstate", e->sqlstate);
    set_string(L, "revision", e->revision);
    set_string(L, "file", e->file);
    if (e->line > 0) {
      lua_pushinteger(L, e->line);
      lua_setfield(L, -2, "line");
    }
  }
  return 4;
}

int lm_mod_push_fail_info(lua_State *L, lm_err *info) {
  lm_mod_push_fail_err(L, lm_err_msg(info), info);
  lm_err_free(info);
  return 4;
}

int lm_mod_push_fail(lua_State *L, lm_mod_runner *r) {
  return lm_mod_push_fail_err(L, lm_errmsg(r->env), &r->env->err);
}

void lm_mod_push_list(lua_State *L, char **items) {
  lua_newtable(L);
  for (lua_Integer i = 0; items && items[i]; i++) {
    lua_pushstring(L, items[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

void lm_mod_push_strings(lua_State *L, const char *const *items, size_t n) {
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushstring(L, items[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

static void push_flag(lua_State *L, const char *key, int value) {
  lua_pushboolean(L, value);
  lua_setfield(L, -2, key);
}

/* A revision as a table with the fields of `history --json`. */
void lm_mod_push_revision(lua_State *L, lm_env *env, size_t idx) {
  const lm_graph *g = env->graph;
  const lm_revision *rev = lm_graph_rev(g, idx);
  lua_createtable(L, 0, 10);
  lua_pushstring(L, rev->id);
  lua_setfield(L, -2, "revision");
  lm_mod_push_strings(L, rev->down, rev->ndown);
  lua_setfield(L, -2, "down_revisions");
  lm_mod_push_strings(L, rev->depends, rev->ndepends);
  lua_setfield(L, -2, "depends_on");
  lm_mod_push_strings(L, rev->labels, rev->nlabels);
  lua_setfield(L, -2, "branch_labels");
  lua_pushstring(L, rev->message ? rev->message : "");
  lua_setfield(L, -2, "message");
  lua_pushstring(L, rev->path ? rev->path : "");
  lua_setfield(L, -2, "path");
  push_flag(L, "is_head", lm_graph_is_head(g, idx));
  push_flag(L, "is_base", lm_graph_is_base(g, idx));
  push_flag(L, "is_branch_point", lm_graph_is_branch_point(g, idx));
  push_flag(L, "is_merge_point", lm_graph_is_merge_point(g, idx));
}

void lm_mod_push_revlist(lua_State *L, lm_env *env, const lm_revlist *l,
                         int ids_only) {
  lua_createtable(L, (int)l->n, 0);
  for (size_t i = 0; i < l->n; i++) {
    if (ids_only) lua_pushstring(L, lm_graph_rev(env->graph, l->idx[i])->id);
    else lm_mod_push_revision(L, env, l->idx[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

/* ---- luamig.open ------------------------------------------------------- */

static const char *opt_field(lua_State *L, const char *key) {
  lua_getfield(L, 1, key);
  const char *s = NULL;
  if (lua_type(L, -1) == LUA_TSTRING) s = lua_tostring(L, -1);
  else if (!lua_isnil(L, -1))
    luaL_error(L, "luamig.open: %s must be a string (got %s)", key,
               luaL_typename(L, -1));
  lua_pop(L, 1);   /* the string stays referenced by the options table */
  return s;
}

static int runner_open(lua_State *L) {
  if (!lua_istable(L, 1))
    return luaL_error(L, "luamig.open: the options must be a table (got %s)",
                      luaL_typename(L, 1));
  lm_options opts = {0};
  opts.config_path = opt_field(L, "config");
  opts.url = opt_field(L, "url");
  opts.script_location = opt_field(L, "script_location");
  opts.version_table = opt_field(L, "version_table");
  lua_getfield(L, 1, "quiet");
  opts.quiet = lua_isnil(L, -1) ? 1 : lua_toboolean(L, -1);
  lua_getfield(L, 1, "statements");
  opts.statements = lua_toboolean(L, -1);
  lua_pop(L, 2);
  lua_getfield(L, 1, "on_event");   /* stays on the stack until ref'd */
  if (!lua_isnil(L, -1) && !lua_isfunction(L, -1))
    return luaL_error(L, "luamig.open: on_event must be a function (got %s)",
                      luaL_typename(L, -1));
  int on_event_idx = lua_gettop(L);
  /* x = {key = value}: collected as "key=value" strings, made by Lua and
   * kept on the stack (a table of them, their array in a userdata), so
   * that nothing here is lost if making them raises. */
  lua_getfield(L, 1, "x");
  if (!lua_isnil(L, -1) && !lua_istable(L, -1))
    return luaL_error(L, "luamig.open: x must be a table (got %s)",
                      luaL_typename(L, -1));
  int x_idx = lua_gettop(L);
  lua_newtable(L);
  int strings = lua_gettop(L);
  size_t nx = 0;
  if (lua_istable(L, x_idx)) {
    lua_pushnil(L);
    while (lua_next(L, x_idx)) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
        lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
        lua_rawseti(L, strings, (lua_Integer)++nx);
      }
      lua_pop(L, 1);
    }
  }
  const char **x = lua_newuserdatauv(L, (nx ? nx : 1) * sizeof *x, 0);
  for (size_t i = 0; i < nx; i++) {
    lua_rawgeti(L, strings, (lua_Integer)i + 1);
    x[i] = lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  opts.x = x;
  opts.nx = nx;

  /* The userdata exists, closed, before the environment does: an error
   * while creating it leaks nothing. */
  lm_mod_runner *r = lua_newuserdatauv(L, sizeof *r, 0);
  r->env = NULL;
  r->L = L;
  r->on_event = LUA_NOREF;
  r->busy = NULL;
  r->event_error = LUA_NOREF;
  r->step_started = 0;
  luaL_setmetatable(L, RUNNER_META);
  if (lua_isfunction(L, on_event_idx)) {
    lua_pushvalue(L, on_event_idx);
    r->on_event = luaL_ref(L, LUA_REGISTRYINDEX);
    opts.on_event = forward_event;
    opts.event_payload = r;
  }
  lm_env *env;
  lm_mod_command_start(r, L, "open");
  int rc = lm_open(&env, &opts);
  r->busy = NULL;
  if (rc != LM_OK) {
    if (env) {
      lm_mod_push_fail_err(L, lm_errmsg(env), &env->err);
    } else {            /* memory ran out before there was an env */
      lm_err oom = {.kind = "out_of_memory", .code = LM_ERROR};
      lm_mod_push_fail_err(L, "out of memory", &oom);
    }
    lm_close(env);
    return 4;   /* and the runner, closed, is garbage */
  }
  r->env = env;   /* from here __gc closes it, even if this raises */
  return lm_mod_command_end(L, r, "open", rc, 1);
}

/* ---- lifetime ---------------------------------------------------------- */

/* close, __close and __gc (which cannot run while a command does: the
 * runner is on that command's stack). */
static int runner_close(lua_State *L) {
  lm_mod_runner *r = luaL_testudata(L, 1, RUNNER_META);
  if (!r)
    return luaL_error(L, "luamig: m:close() must be called on a runner, as "
                      "m:close() (got %s)", luaL_typename(L, 1));
  if (r->busy)
    return luaL_error(L, "luamig: m:close() cannot be called from on_event "
                      "while m:%s() runs; only m:current(), m:heads() and "
                      "m:history() can", r->busy);
  if (r->env) {
    lm_close(r->env);
    r->env = NULL;
  }
  luaL_unref(L, LUA_REGISTRYINDEX, r->on_event);
  r->on_event = LUA_NOREF;
  luaL_unref(L, LUA_REGISTRYINDEX, r->event_error);
  r->event_error = LUA_NOREF;
  return 0;
}

static int runner_tostring(lua_State *L) {
  lm_mod_runner *r = luaL_checkudata(L, 1, RUNNER_META);
  lua_pushfstring(L, "luamig runner (%s)", r->env ? "open" : "closed");
  return 1;
}

static const luaL_Reg runner_methods[] = {
  {"upgrade", lm_mod_upgrade},
  {"downgrade", lm_mod_downgrade},
  {"current", lm_mod_current},
  {"heads", lm_mod_heads},
  {"history", lm_mod_history},
  {"sql", lm_mod_sql},
  {"stamp", lm_mod_stamp},
  {"show", lm_mod_show},
  {"revision", lm_mod_revision},
  {"status", lm_mod_status},
  {"schema", lm_mod_schema},
  {"verify", lm_mod_verify},
  {"check", lm_mod_check},
  {"lint", lm_mod_lint},
  {"dialect", lm_mod_dialect},
  {"execute", lm_mod_execute},
  {"query", lm_mod_query},
  {"close", runner_close},
  {NULL, NULL}};

static const luaL_Reg runner_metamethods[] = {
  {"__gc", runner_close},
  {"__close", runner_close},
  {"__tostring", runner_tostring},
  {"__index", NULL},
  {NULL, NULL}};

/* luamig._test_fail_alloc(n [, other_threads]): a test hook for luamig's
 * own specs (oom.h): the n-th allocation of the core from now on fails;
 * with other_threads, the n-th of threads other than this one. */
static int test_fail_alloc(lua_State *L) {
  lm_oom_fail_after((long)luaL_checkinteger(L, 1), lua_toboolean(L, 2));
  return 0;
}

static const luaL_Reg module_functions[] = {
  {"open", runner_open},
  {"_test_fail_alloc", test_fail_alloc},
  {NULL, NULL}};

LUAMIG_API int luaopen_luamig_core(lua_State *L);
LUAMIG_API int luaopen_luamig(lua_State *L);
LUAMIG_API int luaopen_luamig_testing(lua_State *L);

/* require "luamig.core": the installed luamig.lua returns this, and Lua's
 * all-in-one loader finds it in luamig.so. */
int luaopen_luamig_core(lua_State *L) {
  luaL_newmetatable(L, RUNNER_META);
  luaL_setfuncs(L, runner_metamethods, 0);
  luaL_newlib(L, runner_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  /* require "luamig.testing" then finds the helper whatever the paths. */
  int top = lua_gettop(L);
  if (lua_getglobal(L, "package") == LUA_TTABLE &&
      lua_getfield(L, -1, "preload") == LUA_TTABLE) {
    lua_pushcfunction(L, luaopen_luamig_testing);
    lua_setfield(L, -2, "luamig.testing");
  }
  lua_settop(L, top);
  luaL_newlib(L, module_functions);
  lua_pushliteral(L, LUAMIG_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}

/* require "luamig" straight from luamig.so on LUA_CPATH, as before. */
int luaopen_luamig(lua_State *L) {
  return luaopen_luamig_core(L);
}

/* require "luamig.testing": Lua's all-in-one C loader finds it in
 * luamig.so (no file luamig/testing.lua needs to be installed); the
 * source is lua/testing.lua, compiled in. */
int luaopen_luamig_testing(lua_State *L) {
  for (const lm_embedded *e = lm_embedded_files; e->module; e++) {
    if (strcmp(e->module, "luamig.testing") != 0) continue;
    if (luaL_loadbufferx(L, e->source, e->len, "=luamig.testing", "t") !=
        LUA_OK)
      return lua_error(L);
    lua_pushliteral(L, "luamig.testing");
    lua_call(L, 1, 1);
    return 1;
  }
  return luaL_error(L, "luamig.testing is not compiled into this luamig");
}
