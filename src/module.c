/*
 * module.c - the Lua module: require "luamig" (an installed luamig.lua
 * that loads this library as luamig.core; see src/module_shim.lua).
 *
 *   local m = assert(luamig.open{config = "luamig.lua"})
 *   m:upgrade("head"); m:current(); m:heads(); m:history(); m:close()
 *
 * Expected failures return nil, message (Lua's io convention); misuse
 * (wrong argument types) raises, naming the method.  Each object owns an
 * lm_env with its own private Lua state for the scripts and one database
 * connection for its life; only results cross into the caller's state.
 *
 * on_event runs in the middle of a command.  It may call the runner's
 * read-only methods (current, heads, history: on the same connection,
 * inside the command's transaction); the others raise there.  An error
 * on_event raises cannot unwind through the core: the first one is kept
 * and raised by the method once its command is over.
 */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_args.h"
#include "core.h"
#include "embedded.h"
#include "op_data.h"

#define RUNNER_META "luamig.Runner"

typedef struct runner {
  lm_env *env;                  /* NULL once closed */
  lua_State *L;                 /* the state of the command running, for on_event */
  int on_event;                 /* registry ref to the callback, or LUA_NOREF */
  const char *busy;             /* the method whose command runs, or NULL */
  int event_error;              /* registry ref to on_event's first error, or LUA_NOREF */
  double step_started;          /* lm_now() at the last migration_start */
} runner;

/* ---- checks ------------------------------------------------------------ */

/* self of m:METHOD(): an open runner. */
static runner *check_runner(lua_State *L, const char *method) {
  runner *r = luaL_testudata(L, 1, RUNNER_META);
  if (!r)
    luaL_error(L, "luamig: m:%s() must be called on a runner, as m:%s() "
               "(got %s)", method, method, luaL_typename(L, 1));
  if (!r->env) luaL_error(L, "luamig: m:%s(): the runner is closed", method);
  return r;
}

/* The same, for a method that starts a command: not from on_event while
 * another one runs. */
static runner *check_idle(lua_State *L, const char *method) {
  runner *r = check_runner(L, method);
  if (r->busy)
    luaL_error(L, "luamig: m:%s() cannot be called from on_event while "
               "m:%s() runs; only m:current(), m:heads() and m:history() "
               "can", method, r->busy);
  return r;
}

/* A string argument (a number is taken as Lua takes it), without NULs. */
static const char *check_string(lua_State *L, int idx, const char *method,
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
  runner *r = lua_touserdata(L, 2);
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
  runner *r = payload;
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
static void command_start(runner *r, lua_State *L, const char *method) {
  r->L = L;
  r->busy = method;
}

/* The command of m:METHOD() is over (r->busy cleared before, so the
 * runner is usable whatever happens here).  If on_event raised meanwhile,
 * raise that now, with how the command itself went; else return
 * nresults. */
static int command_end(lua_State *L, runner *r, const char *method, int rc,
                       int nresults) {
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

/* A read-only call made from on_event keeps an error record of its own,
 * so the running command's stays as it is. */
typedef struct nested {
  int active;
  lm_err outer;
  char code[32];        /* the nested call's error code, "" when none */
} nested;

/* Starts a read-only call from L: inside another command's callback it
 * keeps that command's error aside (and its Lua state in r->L). */
static void nested_start(runner *r, lua_State *L, nested *n) {
  if (!r->busy) r->L = L;
  n->active = r->busy != NULL;
  if (!n->active) return;
  n->outer = r->env->err;
  lm_err_init(&r->env->err);
}

/* Ends a nested call; returns its message (malloc'ed) when rc failed,
 * its code in n->code. */
static char *nested_end(runner *r, nested *n, int rc) {
  char *msg = rc != LM_OK ? lm_xstrdup(lm_errmsg(r->env)) : NULL;
  snprintf(n->code, sizeof n->code, "%s", rc != LM_OK ? lm_errcode(r->env) : "");
  if (n->active) {
    lm_err_free(&r->env->err);
    r->env->err = n->outer;
  }
  return msg;
}

/* ---- results ----------------------------------------------------------- */

/* A failure: nil, message, code (nil when no code is known). */
static int push_fail_code(lua_State *L, const char *msg, const char *code) {
  luaL_pushfail(L);
  lua_pushstring(L, msg);
  if (code && *code) lua_pushstring(L, code);
  else lua_pushnil(L);
  return 3;
}

static int push_fail_msg(lua_State *L, char *msg, const char *code) {
  push_fail_code(L, msg, code);
  free(msg);
  return 3;
}

static int push_fail(lua_State *L, runner *r) {
  return push_fail_code(L, lm_errmsg(r->env), lm_errcode(r->env));
}

static void push_list(lua_State *L, char **items) {
  lua_newtable(L);
  for (lua_Integer i = 0; items && items[i]; i++) {
    lua_pushstring(L, items[i]);
    lua_rawseti(L, -2, i + 1);
  }
}

static void push_strings(lua_State *L, const char *const *items, size_t n) {
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
static void push_revision(lua_State *L, lm_env *env, size_t idx) {
  const lm_graph *g = env->graph;
  const lm_revision *rev = lm_graph_rev(g, idx);
  lua_createtable(L, 0, 10);
  lua_pushstring(L, rev->id);
  lua_setfield(L, -2, "revision");
  push_strings(L, rev->down, rev->ndown);
  lua_setfield(L, -2, "down_revisions");
  push_strings(L, rev->depends, rev->ndepends);
  lua_setfield(L, -2, "depends_on");
  push_strings(L, rev->labels, rev->nlabels);
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

static void push_revlist(lua_State *L, lm_env *env, const lm_revlist *l,
                         int ids_only) {
  lua_createtable(L, (int)l->n, 0);
  for (size_t i = 0; i < l->n; i++) {
    if (ids_only) lua_pushstring(L, lm_graph_rev(env->graph, l->idx[i])->id);
    else push_revision(L, env, l->idx[i]);
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
  /* x = {key = value}: collected as "key=value" strings. */
  lua_getfield(L, 1, "x");
  if (!lua_isnil(L, -1) && !lua_istable(L, -1))
    return luaL_error(L, "luamig.open: x must be a table (got %s)",
                      luaL_typename(L, -1));
  lm_strvec x = LM_STRVEC_INIT;
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING)
        lm_strvec_push(&x, lm_xasprintf("%s=%s", lua_tostring(L, -2),
                                        lua_tostring(L, -1)));
      lua_pop(L, 1);
    }
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
  command_start(r, L, "open");
  int rc = lm_open(&env, &opts);
  r->busy = NULL;
  lm_strvec_free(&x);
  if (rc != LM_OK) {
    push_fail_code(L, lm_errmsg(env), lm_errcode(env));
    lm_close(env);
    return 3;   /* and the runner, closed, is garbage */
  }
  r->env = env;   /* from here __gc closes it, even if this raises */
  return command_end(L, r, "open", rc, 1);
}

/* ---- commands ---------------------------------------------------------- */

typedef int (*migrate_fn)(char ***, lm_env *, const char *);

static int migrate(lua_State *L, const char *method, migrate_fn fn) {
  runner *r = check_idle(L, method);
  const char *target = check_string(L, 2, method, "the target");
  char **applied;
  command_start(r, L, method);
  int rc = fn(&applied, r->env, target);
  r->busy = NULL;
  if (rc != LM_OK)
    return command_end(L, r, method, rc, push_fail(L, r));
  push_list(L, applied);
  lm_free_list(applied);
  return command_end(L, r, method, rc, 1);
}

static int runner_upgrade(lua_State *L) {
  return migrate(L, "upgrade", lm_upgrade);
}

static int runner_downgrade(lua_State *L) {
  return migrate(L, "downgrade", lm_downgrade);
}

static int runner_sql(lua_State *L) {
  runner *r = check_idle(L, "sql");
  const char *command = check_string(L, 2, "sql", "the command");
  const char *target = check_string(L, 3, "sql", "the target");
  char *sql;
  command_start(r, L, "sql");
  int rc = lm_sql(&sql, r->env, command, target);
  r->busy = NULL;
  if (rc != LM_OK) return command_end(L, r, "sql", rc, push_fail(L, r));
  lua_pushstring(L, sql);
  free(sql);
  return command_end(L, r, "sql", rc, 1);
}

/* Argument idx as a list of strings: a string, a list of strings, or
 * (optional) nothing.  Raises naming the method and what the strings are
 * (`one` and `many`: "revision", "revisions").  The strings are anchored
 * in a table of the userdata pushed, so the caller's table may change
 * under a callback without freeing them; *n is their number. */
static const char **check_names(lua_State *L, int idx, const char *method,
                                const char *one, const char *many,
                                int optional, size_t *n) {
  *n = 0;
  if (lua_type(L, idx) == LUA_TTABLE) {
    *n = lua_rawlen(L, idx);
    for (size_t i = 1; i <= *n; i++) {
      lua_rawgeti(L, idx, (lua_Integer)i);
      if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "luamig: m:%s(): %s %d must be a string (got %s)",
                   method, one, (int)i, luaL_typename(L, -1));
      lua_pop(L, 1);
    }
  } else if (lua_type(L, idx) == LUA_TSTRING) {
    *n = 1;
  } else if (!optional || !lua_isnoneornil(L, idx)) {
    luaL_error(L, "luamig: m:%s(): the %s must be a string or a list of "
               "strings (got %s)", method, many, luaL_typename(L, idx));
  }
  const char **names =
      lua_newuserdatauv(L, (*n ? *n : 1) * sizeof *names, 1);
  lua_createtable(L, (int)*n, 0);
  for (size_t i = 0; i < *n; i++) {
    if (lua_type(L, idx) == LUA_TSTRING) lua_pushvalue(L, idx);
    else lua_rawgeti(L, idx, (lua_Integer)i + 1);
    names[i] = lua_tostring(L, -1);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setiuservalue(L, -2, 1);
  return names;
}

/* m:stamp(rev or {revs}, {purge = true}).  The arguments live on the Lua
 * stack until the stamp is done, so a raise leaks nothing. */
static int runner_stamp(lua_State *L) {
  runner *r = check_idle(L, "stamp");
  lua_settop(L, 3);             /* the names' userdata goes above the options */
  size_t n;
  const char **revs =
      check_names(L, 2, "stamp", "revision", "revisions", 0, &n);
  if (!lua_isnoneornil(L, 3) && !lua_istable(L, 3))
    luaL_error(L, "luamig: m:stamp(): the options must be a table (got %s)",
               luaL_typename(L, 3));
  int purge = 0;
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "purge");
    purge = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  command_start(r, L, "stamp");
  int rc = lm_stamp(r->env, revs, n, purge);
  r->busy = NULL;
  if (rc != LM_OK)
    return command_end(L, r, "stamp", rc, push_fail(L, r));
  lua_pushboolean(L, 1);
  return command_end(L, r, "stamp", rc, 1);
}

/* ---- read-only: also from on_event ------------------------------------ */

static int runner_current(lua_State *L) {
  runner *r = check_runner(L, "current");
  nested n;
  nested_start(r, L, &n);
  char **heads;
  int rc = lm_current(&heads, r->env);
  char *msg = nested_end(r, &n, rc);
  if (rc != LM_OK) return push_fail_msg(L, msg, n.code);
  push_list(L, heads);
  lm_free_list(heads);
  return 1;
}

/* Ends a read-only call that read a revision list: the list (as heads
 * or as history entries), or nil, message, code. */
static int revlist_result(lua_State *L, runner *r, nested *n, int rc,
                          lm_revlist *l, int as_heads) {
  char *msg = nested_end(r, n, rc);
  if (rc == LM_OK) push_revlist(L, r->env, l, as_heads);
  lm_revlist_free(l);
  return rc == LM_OK ? 1 : push_fail_msg(L, msg, n->code);
}

static int runner_heads(lua_State *L) {
  runner *r = check_runner(L, "heads");
  nested n;
  nested_start(r, L, &n);
  lm_revlist l = {0};
  int rc = lm_scripts_load(r->env);
  if (rc == LM_OK) rc = lm_graph_heads(r->env->graph, &l);
  return revlist_result(L, r, &n, rc, &l, 1);
}

static int runner_history(lua_State *L) {
  runner *r = check_runner(L, "history");
  const char *range = lua_isnoneornil(L, 2)
                          ? NULL : check_string(L, 2, "history", "the range");
  nested n;
  nested_start(r, L, &n);
  lm_revlist l = {0};
  int rc = lm_scripts_load(r->env);
  if (rc == LM_OK)
    rc = lm_graph_history(r->env->graph, range, NULL, 0, &l, &r->env->err);
  return revlist_result(L, r, &n, rc, &l, 0);
}

static int runner_show(lua_State *L) {
  runner *r = check_runner(L, "show");
  const char *rev = check_string(L, 2, "show", "the revision");
  nested n;
  nested_start(r, L, &n);
  lm_revlist l = {0};
  int rc = lm_scripts_load(r->env);
  if (rc == LM_OK)
    rc = lm_graph_resolve(r->env->graph, rev, NULL, 0, &l, &r->env->err);
  if (rc == LM_OK && l.n != 1)
    rc = lm_err_set(&r->env->err, "%s names %zu revisions; show takes one",
                    rev, l.n);
  char *msg = nested_end(r, &n, rc);
  if (rc != LM_OK) {
    lm_revlist_free(&l);
    return push_fail_msg(L, msg, n.code);
  }
  push_revision(L, r->env, l.idx[0]);
  lm_revlist_free(&l);
  return 1;
}

/* The name of the runner's dialect ("sqlite", "postgresql"), as op.dialect
 * shows it: found from the URL, without connecting. */
static int runner_dialect(lua_State *L) {
  runner *r = check_runner(L, "dialect");
  if (lm_pick_dialect(r->env) != LM_OK) return push_fail(L, r);
  lua_pushstring(L, r->env->dialect->name);
  return 1;
}

/* m:status(): the fields of `status --json`. */
static int runner_status(lua_State *L) {
  runner *r = check_idle(L, "status");
  lm_env *env = r->env;
  command_start(r, L, "status");
  lm_status st;
  int rc = lm_status_read(env, &st);
  r->busy = NULL;
  int nres;
  if (rc != LM_OK) {
    nres = push_fail(L, r);
  } else {
    nres = 1;
    lua_createtable(L, 0, 7);
    push_strings(L, (const char *const *)st.heads.items, st.heads.n);
    lua_setfield(L, -2, "current");
    lua_newtable(L);
    for (size_t i = 0, k = 0; i < st.pending.nsteps; i++) {
      if (st.pending.steps[i].rev < 0) continue;
      lua_pushstring(L, lm_graph_rev(env->graph, (size_t)st.pending.steps[i].rev)->id);
      lua_rawseti(L, -2, (lua_Integer)++k);
    }
    lua_setfield(L, -2, "pending");
    if (st.pending_error) {
      lua_pushstring(L, st.pending_error);
      lua_setfield(L, -2, "pending_error");
    }
    lua_createtable(L, (int)st.drift.drifted.n, 0);
    for (size_t i = 0; i < st.drift.drifted.n; i++) {
      /* "rev\tpath\tlogged\tfile" */
      static const char *const keys[] = {"revision", "path",
                                         "logged_checksum", "file_checksum"};
      const char *p = st.drift.drifted.items[i];
      lua_createtable(L, 0, 4);
      for (int f = 0; f < 4; f++) {
        const char *tab = strchr(p, '\t');
        size_t len = tab ? (size_t)(tab - p) : strlen(p);
        lua_pushlstring(L, p, len);
        lua_setfield(L, -2, keys[f]);
        p = tab ? tab + 1 : p + len;
      }
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "drifted");
    push_strings(L, (const char *const *)st.drift.missing.items, st.drift.missing.n);
    lua_setfield(L, -2, "missing");
    if (st.dirty) {
      lua_pushstring(L, lm_buf_str(&st.dirty_mark));
      lua_setfield(L, -2, "dirty");
    }
    if (st.locked) {
      lua_pushstring(L, lm_buf_str(&st.lock_holder));
      lua_setfield(L, -2, "lock");
    }
  }
  lm_status_free(&st);
  return command_end(L, r, "status", rc, nres);
}

/* ---- schema and verify: the commands' JSON, as Lua tables ------------- */

/* Load an embedded lua/ file ("luamig.NAME") into L and run it, leaving
 * what it returns. */
static void push_embedded(lua_State *L, const char *module) {
  for (const lm_embedded *e = lm_embedded_files; e->module; e++) {
    if (strcmp(e->module, module) != 0) continue;
    const char *chunk = lua_pushfstring(L, "=%s", module);
    if (luaL_loadbufferx(L, e->source, e->len, chunk, "t") != LUA_OK)
      lua_error(L);
    lua_remove(L, -2);
    lua_pushstring(L, module);
    lua_call(L, 1, 1);
    return;
  }
  luaL_error(L, "%s is not compiled into this luamig", module);
}

/* Stack: 1 the JSON text (light userdata).  Its value decoded by
 * luamig.json. */
static int decode_json(lua_State *L) {
  const char *json = lua_touserdata(L, 1);
  push_embedded(L, "luamig.json");
  lua_getfield(L, -1, "decode");
  lua_pushstring(L, json);
  lua_call(L, 1, 1);
  return 1;
}

/* The JSON text the core wrote (malloc'ed, freed here whatever happens)
 * pushed as a table; raises if it cannot be. */
static void push_json(lua_State *L, char *json) {
  lua_pushcfunction(L, decode_json);
  lua_pushlightuserdata(L, json);
  int status = lua_pcall(L, 1, 1, 0);
  free(json);
  if (status != LUA_OK) lua_error(L);
}

/* m:schema([tables]): the fields of `schema --json`; tables is a name or
 * a list of names (all tables when absent). */
static int runner_schema(lua_State *L) {
  runner *r = check_idle(L, "schema");
  lua_settop(L, 2);
  size_t n;
  const char **names = check_names(L, 2, "schema", "table", "tables", 1, &n);
  char *json;
  command_start(r, L, "schema");
  int rc = lm_schema_json(&json, r->env, names, n);
  r->busy = NULL;
  if (rc != LM_OK) return command_end(L, r, "schema", rc, push_fail(L, r));
  push_json(L, json);
  return command_end(L, r, "schema", rc, 1);
}

/* m:verify{scratch_url = URL}: the fields of `verify --json` when every
 * revision verifies; else nil, the problems as `verify` prints them, and
 * that table (ok = false) as a third value. */
static int runner_verify(lua_State *L) {
  runner *r = check_idle(L, "verify");
  if (!lua_isnoneornil(L, 2) && !lua_istable(L, 2))
    luaL_error(L, "luamig: m:verify(): the options must be a table (got %s)",
               luaL_typename(L, 2));
  const char *scratch_url = NULL;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "scratch_url");
    if (!lua_isnil(L, -1))
      scratch_url = check_string(L, -1, "verify", "scratch_url");
    /* stays on the stack, referenced */
  }
  char *json;
  command_start(r, L, "verify");
  int rc = lm_verify(&json, r->env, scratch_url);
  r->busy = NULL;
  if (!json) return command_end(L, r, "verify", rc, push_fail(L, r));
  if (rc == LM_OK) {
    push_json(L, json);
    return command_end(L, r, "verify", rc, 1);
  }
  luaL_pushfail(L);
  lua_pushstring(L, lm_errmsg(r->env));
  push_json(L, json);
  return command_end(L, r, "verify", rc, 3);
}

/* ---- revision{} -------------------------------------------------------- */

/* An optional string field of the options at idx (borrowed: the table
 * keeps it). */
static const char *rev_string(lua_State *L, int idx, const char *key) {
  lua_getfield(L, idx, key);
  const char *s = NULL;
  if (lua_type(L, -1) == LUA_TSTRING) s = lua_tostring(L, -1);
  else if (!lua_isnil(L, -1))
    luaL_error(L, "luamig: m:revision(): %s must be a string (got %s)", key,
               luaL_typename(L, -1));
  lua_pop(L, 1);
  return s;
}

/* A string or a list of strings (checked by rev_check), appended to out
 * (borrowed). */
static void rev_strings(lua_State *L, int idx, const char *key,
                        lm_strvec *out) {
  lua_getfield(L, idx, key);
  if (lua_type(L, -1) == LUA_TSTRING) {
    lm_strvec_push(out, (char *)lua_tostring(L, -1));
  } else if (lua_istable(L, -1)) {
    for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, -1); i++) {
      lua_rawgeti(L, -1, i);
      lm_strvec_push(out, (char *)lua_tostring(L, -1));
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
}

/* The fields of the revision{} options, checked before anything is
 * allocated so that a raise leaks nothing. */
static void rev_check(lua_State *L) {
  if (!lua_istable(L, 2))
    luaL_error(L, "luamig: m:revision(): the options must be a table (got "
               "%s)", luaL_typename(L, 2));
  static const char *const strings[] = {"message", "head", "rev_id"};
  for (size_t i = 0; i < sizeof strings / sizeof *strings; i++)
    rev_string(L, 2, strings[i]);
  static const char *const lists[] = {"branch_labels", "depends_on"};
  for (size_t i = 0; i < 2; i++) {
    lua_getfield(L, 2, lists[i]);
    int t = lua_type(L, -1);
    if (t == LUA_TTABLE) {
      for (lua_Integer k = 1; k <= (lua_Integer)lua_rawlen(L, -1); k++) {
        if (lua_rawgeti(L, -1, k) != LUA_TSTRING)
          luaL_error(L, "luamig: m:revision(): %s[%d] must be a string "
                     "(got %s)", lists[i], (int)k, luaL_typename(L, -1));
        lua_pop(L, 1);
      }
    } else if (t != LUA_TNIL && t != LUA_TSTRING) {
      luaL_error(L, "luamig: m:revision(): %s must be a string or a list of "
                 "strings (got %s)", lists[i], luaL_typename(L, -1));
    }
    lua_pop(L, 1);
  }
}

/* m:revision{message =, head =, splice =, branch_labels =, depends_on =,
 * rev_id =, autogenerate =}: writes a new script as `luamig revision`
 * does and returns it as history() lists it. */
static int runner_revision(lua_State *L) {
  runner *r = check_idle(L, "revision");
  rev_check(L);
  lm_env *env = r->env;
  lm_args a;
  memset(&a, 0, sizeof a);
  a.silent = 1;
  a.message = rev_string(L, 2, "message");
  a.head = rev_string(L, 2, "head");
  a.rev_id = rev_string(L, 2, "rev_id");
  lua_getfield(L, 2, "splice");
  a.splice = lua_toboolean(L, -1);
  lua_getfield(L, 2, "autogenerate");
  a.autogenerate = lua_toboolean(L, -1);
  lua_pop(L, 2);
  rev_strings(L, 2, "branch_labels", &a.branch_labels);
  rev_strings(L, 2, "depends_on", &a.depends_on);

  command_start(r, L, "revision");
  /* The ids there are before, to find the new one after. */
  lm_strvec before = LM_STRVEC_INIT;
  lm_map known;
  lm_map_init(&known);
  int rc = lm_scripts_load(env);
  for (size_t i = 0; rc == LM_OK && i < lm_graph_size(env->graph); i++)
    lm_strvec_push(&before, lm_xstrdup(lm_graph_rev(env->graph, i)->id));
  for (size_t i = 0; i < before.n; i++)
    lm_map_put(&known, before.items[i], before.items[i]);
  if (rc == LM_OK) rc = lm_cmd_revision(env, &a);
  /* The graph is read again, new script included. */
  if (rc == LM_OK) {
    lm_scripts_free(env);
    rc = lm_scripts_load(env);
  }
  r->busy = NULL;
  free(a.branch_labels.items);
  free(a.depends_on.items);
  int nres;
  if (rc != LM_OK) {
    nres = push_fail(L, r);
  } else {
    size_t n = lm_graph_size(env->graph), idx = n;
    for (size_t i = 0; i < n && idx == n; i++)
      if (!lm_map_get(&known, lm_graph_rev(env->graph, i)->id)) idx = i;
    if (idx < n) {
      push_revision(L, env, idx);
      nres = 1;
    } else {
      nres = push_fail_code(L, "the new revision script was written but "
                            "does not load as a revision", NULL);
    }
  }
  lm_map_free(&known);
  lm_strvec_free(&before);
  return command_end(L, r, "revision", rc, nres);
}

/* ---- SQL on the runner's connection (for tests and tools) -------------- */

/* Parameters {p1, p2, ...} (n counts trailing nils, as table.pack does):
 * checked, then bound without copying (the table keeps the strings). */
static lm_value *sql_params(lua_State *L, int idx, const char *method,
                            size_t *n) {
  *n = 0;
  if (lua_isnoneornil(L, idx)) return NULL;
  if (!lua_istable(L, idx))
    luaL_error(L, "luamig: m:%s(): the parameters must be a table (got %s)",
               method, luaL_typename(L, idx));
  lua_getfield(L, idx, "n");
  lua_Integer count = lua_isinteger(L, -1) ? lua_tointeger(L, -1)
                                           : (lua_Integer)lua_rawlen(L, idx);
  lua_pop(L, 1);
  if (count < 0 || count > 65535)
    luaL_error(L, "luamig: m:%s(): bad parameter count %d", method,
               (int)count);
  for (lua_Integer i = 1; i <= count; i++) {
    lm_value v;
    lua_rawgeti(L, idx, i);
    if (!lm_op_value(L, -1, &v) || lua_type(L, -1) == LUA_TTABLE)
      luaL_error(L, "luamig: m:%s(): parameter %d must be nil, a boolean, "
                 "number or string (got %s)", method, (int)i,
                 luaL_typename(L, -1));
    lua_pop(L, 1);
  }
  lm_value *params = lua_newuserdatauv(L, (size_t)(count ? count : 1) *
                                       sizeof *params, 0);
  for (lua_Integer i = 1; i <= count; i++) {
    lua_rawgeti(L, idx, i);
    lm_op_value(L, -1, &params[i - 1]);
    lua_pop(L, 1);   /* the string stays referenced by the table */
  }
  *n = (size_t)count;
  return params;
}

/* m:execute(sql, params): one statement (or several, without params) on
 * the runner's connection, outside any migration; the rows changed. */
static int runner_execute(lua_State *L) {
  runner *r = check_idle(L, "execute");
  const char *sql = check_string(L, 2, "execute", "the SQL");
  size_t n;
  lm_value *params = sql_params(L, 3, "execute", &n);
  lm_env *env = r->env;
  int64_t affected = 0;
  int rc = lm_connect(env);
  if (rc == LM_OK)
    rc = env->dialect->exec(env->conn, sql, n, params, &affected, &env->err);
  if (rc != LM_OK) return push_fail(L, r);
  lua_pushinteger(L, (lua_Integer)affected);
  return 1;
}

/* m:query(sql, params): the rows, each a table keyed by column name (a
 * NULL is absent) and by position. */
static int runner_query(lua_State *L) {
  runner *r = check_idle(L, "query");
  const char *sql = check_string(L, 2, "query", "the SQL");
  size_t n;
  lm_value *params = sql_params(L, 3, "query", &n);
  lm_env *env = r->env;
  const lm_dialect *d;
  lm_cursor *cur = NULL;
  int rc = lm_connect(env);
  if (rc == LM_OK) {
    d = env->dialect;
    rc = d->query(env->conn, sql, n, params, &cur, &env->err);
  }
  if (rc != LM_OK) return push_fail(L, r);
  lua_newtable(L);
  lua_Integer nrows = 0;
  int more;
  while ((more = d->cursor_next(cur, &env->err)) > 0) {
    if (!lua_checkstack(L, 4)) {
      more = lm_err_set(&env->err, "m:query(): out of Lua stack");
      break;
    }
    size_t ncols = d->cursor_ncols(cur);
    lua_createtable(L, (int)ncols, (int)ncols);
    for (size_t i = 0; i < ncols; i++) {
      const lm_value *v = d->cursor_value(cur, i);
      if (v->type == LM_V_NULL) continue;
      lm_data_push(L, v, 0);
      lua_pushvalue(L, -1);
      lua_setfield(L, -3, d->cursor_colname(cur, i));
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_rawseti(L, -2, ++nrows);
  }
  d->cursor_close(cur);
  if (more < 0) return push_fail(L, r);
  return 1;
}

/* ---- lifetime ---------------------------------------------------------- */

/* close, __close and __gc (which cannot run while a command does: the
 * runner is on that command's stack). */
static int runner_close(lua_State *L) {
  runner *r = luaL_testudata(L, 1, RUNNER_META);
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
  {"show", runner_show},
  {"revision", runner_revision},
  {"status", runner_status},
  {"schema", runner_schema},
  {"verify", runner_verify},
  {"dialect", runner_dialect},
  {"execute", runner_execute},
  {"query", runner_query},
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
