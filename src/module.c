/*
 * module.c - the Lua module: require "luamig".
 *
 *   local m = assert(luamig.open{config = "luamig.lua"})
 *   m:upgrade("head"); m:current(); m:heads(); m:history(); m:close()
 *
 * Expected failures return nil, message (Lua's io convention); misuse
 * (wrong argument types) raises.  Each object owns an lm_env with its own
 * private Lua state for the scripts; only results cross into the caller's.
 */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define RUNNER_META "luamig.Runner"

typedef struct runner {
  lm_env *env;                  /* NULL once closed */
  lua_State *L;                 /* the caller's state, for on_event */
  int on_event;                 /* registry ref to the callback, or LUA_NOREF */
} runner;

static runner *check_runner(lua_State *L) {
  runner *r = luaL_checkudata(L, 1, RUNNER_META);
  luaL_argcheck(L, r->env != NULL, 1, "luamig runner is closed");
  return r;
}

static int fail(lua_State *L, runner *r) {
  luaL_pushfail(L);
  lua_pushstring(L, lm_errmsg(r->env));
  return 2;
}

static void push_list(lua_State *L, char **items) {
  lua_newtable(L);
  for (lua_Integer i = 0; items && items[i]; i++) {
    lua_pushstring(L, items[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

/* Events reach the caller's on_event(event) as {kind=, revision=, message=}. */
static void forward_event(const lm_event *ev, void *payload) {
  runner *r = payload;
  static const char *const kinds[] = {"info", "migration_start",
                                      "migration_done", "lock_wait",
                                      "progress"};
  lua_State *L = r->L;
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
  /* A failing callback must not unwind through the core: drop its error. */
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) lua_pop(L, 1);
}

static const char *opt_field(lua_State *L, const char *key) {
  lua_getfield(L, 1, key);
  const char *s = NULL;
  if (lua_type(L, -1) == LUA_TSTRING) s = lua_tostring(L, -1);
  else if (!lua_isnil(L, -1))
    luaL_error(L, "luamig.open: %s must be a string", key);
  lua_pop(L, 1);   /* the string stays referenced by the options table */
  return s;
}

static int runner_open(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lm_options opts = {0};
  opts.config_path = opt_field(L, "config");
  opts.url = opt_field(L, "url");
  opts.script_location = opt_field(L, "script_location");
  opts.version_table = opt_field(L, "version_table");
  lua_getfield(L, 1, "quiet");
  opts.quiet = lua_isnil(L, -1) ? 1 : lua_toboolean(L, -1);
  lua_pop(L, 1);
  /* x = {key = value}: collected as "key=value" strings. */
  lm_strvec x = LM_STRVEC_INIT;
  lua_getfield(L, 1, "x");
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING)
        lm_strvec_push(&x, lm_xasprintf("%s=%s", lua_tostring(L, -2),
                                        lua_tostring(L, -1)));
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    lm_strvec_free(&x);
    return luaL_error(L, "luamig.open: x must be a table");
  }
  lua_pop(L, 1);
  opts.x = (const char *const *)x.items;
  opts.nx = x.n;

  /* The userdata exists, closed, before the environment does: an error
   * while creating it leaks nothing. */
  runner *r = lua_newuserdatauv(L, sizeof *r, 0);
  r->env = NULL;
  r->L = L;
  r->on_event = LUA_NOREF;
  luaL_setmetatable(L, RUNNER_META);
  lua_getfield(L, 1, "on_event");
  if (lua_isfunction(L, -1)) {
    r->on_event = luaL_ref(L, LUA_REGISTRYINDEX);
    opts.on_event = forward_event;
    opts.event_payload = r;
  } else {
    lua_pop(L, 1);
  }
  lm_env *env;
  int rc = lm_open(&env, &opts);
  lm_strvec_free(&x);
  if (rc != LM_OK) {
    luaL_pushfail(L);
    lua_pushstring(L, lm_errmsg(env));
    lm_close(env);
    return 2;
  }
  r->env = env;
  return 1;
}

typedef int (*migrate_fn)(lm_env *, const char *, char ***);

static int migrate(lua_State *L, migrate_fn fn) {
  runner *r = check_runner(L);
  const char *target = luaL_checkstring(L, 2);
  r->L = L;
  char **applied;
  if (fn(r->env, target, &applied) != LM_OK) return fail(L, r);
  push_list(L, applied);
  lm_free_list(applied);
  return 1;
}

static int runner_upgrade(lua_State *L) { return migrate(L, lm_upgrade); }
static int runner_downgrade(lua_State *L) { return migrate(L, lm_downgrade); }

static int runner_current(lua_State *L) {
  runner *r = check_runner(L);
  char **heads;
  if (lm_current(r->env, &heads) != LM_OK) return fail(L, r);
  push_list(L, heads);
  lm_free_list(heads);
  return 1;
}

static int runner_sql(lua_State *L) {
  runner *r = check_runner(L);
  const char *command = luaL_checkstring(L, 2);
  const char *target = luaL_checkstring(L, 3);
  char *sql;
  if (lm_sql(r->env, command, target, &sql) != LM_OK) return fail(L, r);
  lua_pushstring(L, sql);
  free(sql);
  return 1;
}

static int runner_stamp(lua_State *L) {
  runner *r = check_runner(L);
  lm_strvec revs = LM_STRVEC_INIT;
  if (lua_type(L, 2) == LUA_TSTRING) {
    lm_strvec_push(&revs, lm_xstrdup(lua_tostring(L, 2)));
  } else {
    luaL_checktype(L, 2, LUA_TTABLE);
    for (lua_Integer i = 1; lua_geti(L, 2, i) == LUA_TSTRING; i++) {
      lm_strvec_push(&revs, lm_xstrdup(lua_tostring(L, -1)));
      lua_pop(L, 1);
    }
    lua_pop(L, 1);
  }
  int purge = 0;
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "purge");
    purge = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  int rc = lm_stamp(r->env, (const char *const *)revs.items, revs.n, purge);
  lm_strvec_free(&revs);
  if (rc != LM_OK) return fail(L, r);
  lua_pushboolean(L, 1);
  return 1;
}

/* A revision as a table, for heads() and history(). */
static void push_revision(lua_State *L, lm_env *env, size_t idx) {
  const lm_revision *rev = lm_graph_rev(env->graph, idx);
  lua_createtable(L, 0, 6);
  lua_pushstring(L, rev->id);
  lua_setfield(L, -2, "revision");
  lua_createtable(L, (int)rev->ndown, 0);
  for (size_t i = 0; i < rev->ndown; i++) {
    lua_pushstring(L, rev->down[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "down_revisions");
  lua_createtable(L, (int)rev->nlabels, 0);
  for (size_t i = 0; i < rev->nlabels; i++) {
    lua_pushstring(L, rev->labels[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "branch_labels");
  lua_pushstring(L, rev->message ? rev->message : "");
  lua_setfield(L, -2, "message");
  lua_pushstring(L, rev->path ? rev->path : "");
  lua_setfield(L, -2, "path");
  lua_pushboolean(L, lm_graph_is_head(env->graph, idx));
  lua_setfield(L, -2, "is_head");
}

static int push_revlist(lua_State *L, runner *r, lm_revlist *l, int ids_only) {
  lua_createtable(L, (int)l->n, 0);
  for (size_t i = 0; i < l->n; i++) {
    if (ids_only) lua_pushstring(L, lm_graph_rev(r->env->graph, l->idx[i])->id);
    else push_revision(L, r->env, l->idx[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lm_revlist_free(l);
  return 1;
}

static int runner_heads(lua_State *L) {
  runner *r = check_runner(L);
  lm_revlist l = {0};
  if (lm_scripts_load(r->env) != LM_OK || lm_graph_heads(r->env->graph, &l) != LM_OK)
    return fail(L, r);
  return push_revlist(L, r, &l, 1);
}

static int runner_history(lua_State *L) {
  runner *r = check_runner(L);
  const char *range = luaL_optstring(L, 2, NULL);
  lm_revlist l = {0};
  if (lm_scripts_load(r->env) != LM_OK ||
      lm_graph_history(r->env->graph, range, NULL, 0, &l, &r->env->err) != LM_OK)
    return fail(L, r);
  return push_revlist(L, r, &l, 0);
}

static int runner_close(lua_State *L) {
  runner *r = luaL_checkudata(L, 1, RUNNER_META);
  if (r->env) {
    lm_close(r->env);
    r->env = NULL;
  }
  if (r->on_event != LUA_NOREF) {
    luaL_unref(L, LUA_REGISTRYINDEX, r->on_event);
    r->on_event = LUA_NOREF;
  }
  return 0;
}

static int runner_tostring(lua_State *L) {
  runner *r = luaL_checkudata(L, 1, RUNNER_META);
  lua_pushfstring(L, "luamig runner (%s)", r->env ? "open" : "closed");
  return 1;
}

static const luaL_Reg runner_methods[] = {
  {"upgrade", runner_upgrade},
  {"downgrade", runner_downgrade},
  {"current", runner_current},
  {"heads", runner_heads},
  {"history", runner_history},
  {"sql", runner_sql},
  {"stamp", runner_stamp},
  {"close", runner_close},
  {NULL, NULL}};

static const luaL_Reg runner_metamethods[] = {
  {"__gc", runner_close},
  {"__close", runner_close},
  {"__tostring", runner_tostring},
  {"__index", NULL},
  {NULL, NULL}};

static const luaL_Reg module_functions[] = {
  {"open", runner_open},
  {NULL, NULL}};

int luaopen_luamig(lua_State *L);

int luaopen_luamig(lua_State *L) {
  luaL_newmetatable(L, RUNNER_META);
  luaL_setfuncs(L, runner_metamethods, 0);
  luaL_newlib(L, runner_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newlib(L, module_functions);
  lua_pushliteral(L, LUAMIG_VERSION);
  lua_setfield(L, -2, "version");
  return 1;
}
