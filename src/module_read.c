/*
 * module_read.c - the module's read-only methods (current, heads,
 * history, show, dialect), which on_event may call in the middle of a
 * command, and SQL on the runner's connection (execute, query).
 */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "module.h"
#include "oom.h"
#include "op_data.h"

/* ---- read-only: also from on_event ------------------------------------ */

int lm_mod_current(lua_State *L) {
  lm_mod_runner *r = lm_mod_check_runner(L, "current");
  lm_mod_nested n;
  lm_mod_nested_start(r, L, &n);
  char **heads;
  int rc = lm_current(&heads, r->env);
  lm_mod_nested_end(r, &n);
  if (rc != LM_OK) return lm_mod_push_fail_info(L, &n.info);
  lm_err_free(&n.info);
  lm_mod_push_list(L, heads);
  lm_free_list(heads);
  return 1;
}

/* What a read-only call asks of the core, and gets back. */
typedef struct read_call {
  const char *arg;              /* history's range, show's revision */
  lm_revlist list;
} read_call;

static int read_heads(lm_env *env, void *payload) {
  read_call *c = payload;
  int rc = lm_scripts_load(env);
  if (rc == LM_OK) rc = lm_graph_heads(env->graph, &c->list);
  return rc;
}

static int read_history(lm_env *env, void *payload) {
  read_call *c = payload;
  int rc = lm_scripts_load(env);
  if (rc == LM_OK)
    rc = lm_graph_history(env->graph, c->arg, NULL, 0, &c->list, &env->err);
  return rc;
}

static int read_show(lm_env *env, void *payload) {
  read_call *c = payload;
  int rc = lm_scripts_load(env);
  if (rc == LM_OK)
    rc = lm_graph_resolve(env->graph, c->arg, NULL, 0, &c->list, &env->err);
  if (rc == LM_OK && c->list.n != 1)
    rc = lm_err_set(&env->err, "%s names %zu revisions; show takes one",
                    c->arg, c->list.n);
  return rc;
}

/* A read-only call that reads a revision list: the list (as heads, as
 * history entries, or show's one revision), or nil, message, code, info. */
static int read_revisions(lua_State *L, lm_mod_runner *r, read_call *c,
                          int (*fn)(lm_env *, void *), int shape) {
  lm_mod_nested n;
  lm_mod_nested_start(r, L, &n);
  int rc = lm_mod_core(r->env, fn, c);
  lm_mod_nested_end(r, &n);
  if (rc != LM_OK) {
    lm_revlist_free(&c->list);
    return lm_mod_push_fail_info(L, &n.info);
  }
  lm_err_free(&n.info);
  if (shape == 2) lm_mod_push_revision(L, r->env, c->list.idx[0]);
  else lm_mod_push_revlist(L, r->env, &c->list, shape);
  lm_revlist_free(&c->list);
  return 1;
}

int lm_mod_heads(lua_State *L) {
  lm_mod_runner *r = lm_mod_check_runner(L, "heads");
  read_call c = {0};
  return read_revisions(L, r, &c, read_heads, 1);
}

int lm_mod_history(lua_State *L) {
  lm_mod_runner *r = lm_mod_check_runner(L, "history");
  read_call c = {0};
  c.arg = lua_isnoneornil(L, 2)
              ? NULL : lm_mod_check_string(L, 2, "history", "the range");
  return read_revisions(L, r, &c, read_history, 0);
}

int lm_mod_show(lua_State *L) {
  lm_mod_runner *r = lm_mod_check_runner(L, "show");
  read_call c = {0};
  c.arg = lm_mod_check_string(L, 2, "show", "the revision");
  return read_revisions(L, r, &c, read_show, 2);
}

static int pick_dialect(lm_env *env, void *payload) {
  (void)payload;
  return lm_pick_dialect(env);
}

/* The name of the runner's dialect ("sqlite", "postgresql"), as op.dialect
 * shows it: found from the URL, without connecting. */
int lm_mod_dialect(lua_State *L) {
  lm_mod_runner *r = lm_mod_check_runner(L, "dialect");
  if (lm_mod_core(r->env, pick_dialect, NULL) != LM_OK)
    return lm_mod_push_fail(L, r);
  lua_pushstring(L, r->env->dialect->name);
  return 1;
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

/* What m:execute() and m:query() ask of the core. */
typedef struct sql_call {
  const char *sql;
  size_t n;
  const lm_value *params;
  int64_t affected;
  lm_cursor *cur;
} sql_call;

static int sql_execute(lm_env *env, void *payload) {
  sql_call *c = payload;
  int rc = lm_connect(env);
  if (rc == LM_OK)
    rc = env->dialect->exec(env->conn, c->sql, c->n, c->params, &c->affected,
                            &env->err);
  return rc;
}

static int sql_query(lm_env *env, void *payload) {
  sql_call *c = payload;
  int rc = lm_connect(env);
  if (rc == LM_OK)
    rc = env->dialect->query(env->conn, c->sql, c->n, c->params, &c->cur,
                             &env->err);
  return rc;
}

/* The next row of c->cur: 1, 0 at the end, < 0 on an error. */
static int sql_next(lm_env *env, void *payload) {
  sql_call *c = payload;
  int more = env->dialect->cursor_next(c->cur, &env->err);
  return more < 0 ? LM_ERROR : more;
}

/* m:execute(sql, params): one statement (or several, without params) on
 * the runner's connection, outside any migration; the rows changed. */
int lm_mod_execute(lua_State *L) {
  lm_mod_runner *r = lm_mod_check_idle(L, "execute");
  const char *sql = lm_mod_check_string(L, 2, "execute", "the SQL");
  size_t n;
  lm_value *params = sql_params(L, 3, "execute", &n);
  sql_call c = {.sql = sql, .n = n, .params = params};
  if (lm_mod_core(r->env, sql_execute, &c) != LM_OK)
    return lm_mod_push_fail(L, r);
  lua_pushinteger(L, (lua_Integer)c.affected);
  return 1;
}

/* m:query(sql, params): the rows, each a table keyed by column name (a
 * NULL is absent) and by position. */
int lm_mod_query(lua_State *L) {
  lm_mod_runner *r = lm_mod_check_idle(L, "query");
  const char *sql = lm_mod_check_string(L, 2, "query", "the SQL");
  size_t n;
  lm_value *params = sql_params(L, 3, "query", &n);
  lm_env *env = r->env;
  sql_call c = {.sql = sql, .n = n, .params = params};
  if (lm_mod_core(env, sql_query, &c) != LM_OK) return lm_mod_push_fail(L, r);
  const lm_dialect *d = env->dialect;
  lm_cursor *cur = c.cur;
  lua_newtable(L);
  lua_Integer nrows = 0;
  int more;
  while ((more = lm_mod_core(env, sql_next, &c)) > 0) {
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
  /* A spent env's cursor may be half-way through a change: left alone. */
  if (!lm_oom_spent(env)) d->cursor_close(cur);
  if (more < 0) return lm_mod_push_fail(L, r);
  return 1;
}
