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
#include "op_data.h"

/* ---- read-only: also from on_event ------------------------------------ */

int lm_mod_current(lua_State *L) {
  lm_mod_runner *r = lm_mod_check_runner(L, "current");
  lm_mod_nested n;
  lm_mod_nested_start(r, L, &n);
  char **heads;
  int rc = lm_current(&heads, r->env);
  char *msg = lm_mod_nested_end(r, &n, rc);
  if (rc != LM_OK) return lm_mod_push_fail_msg(L, msg, &n.info);
  lm_mod_push_list(L, heads);
  lm_free_list(heads);
  return 1;
}

/* Ends a read-only call that read a revision list: the list (as heads
 * or as history entries), or nil, message, code. */
static int revlist_result(lua_State *L, lm_mod_runner *r, lm_mod_nested *n,
                          int rc, lm_revlist *l, int as_heads) {
  char *msg = lm_mod_nested_end(r, n, rc);
  if (rc == LM_OK) lm_mod_push_revlist(L, r->env, l, as_heads);
  lm_revlist_free(l);
  return rc == LM_OK ? 1 : lm_mod_push_fail_msg(L, msg, &n->info);
}

int lm_mod_heads(lua_State *L) {
  lm_mod_runner *r = lm_mod_check_runner(L, "heads");
  lm_mod_nested n;
  lm_mod_nested_start(r, L, &n);
  lm_revlist l = {0};
  int rc = lm_scripts_load(r->env);
  if (rc == LM_OK) rc = lm_graph_heads(r->env->graph, &l);
  return revlist_result(L, r, &n, rc, &l, 1);
}

int lm_mod_history(lua_State *L) {
  lm_mod_runner *r = lm_mod_check_runner(L, "history");
  const char *range = lua_isnoneornil(L, 2)
                          ? NULL
                          : lm_mod_check_string(L, 2, "history", "the range");
  lm_mod_nested n;
  lm_mod_nested_start(r, L, &n);
  lm_revlist l = {0};
  int rc = lm_scripts_load(r->env);
  if (rc == LM_OK)
    rc = lm_graph_history(r->env->graph, range, NULL, 0, &l, &r->env->err);
  return revlist_result(L, r, &n, rc, &l, 0);
}

int lm_mod_show(lua_State *L) {
  lm_mod_runner *r = lm_mod_check_runner(L, "show");
  const char *rev = lm_mod_check_string(L, 2, "show", "the revision");
  lm_mod_nested n;
  lm_mod_nested_start(r, L, &n);
  lm_revlist l = {0};
  int rc = lm_scripts_load(r->env);
  if (rc == LM_OK)
    rc = lm_graph_resolve(r->env->graph, rev, NULL, 0, &l, &r->env->err);
  if (rc == LM_OK && l.n != 1)
    rc = lm_err_set(&r->env->err, "%s names %zu revisions; show takes one",
                    rev, l.n);
  char *msg = lm_mod_nested_end(r, &n, rc);
  if (rc != LM_OK) {
    lm_revlist_free(&l);
    return lm_mod_push_fail_msg(L, msg, &n.info);
  }
  lm_mod_push_revision(L, r->env, l.idx[0]);
  lm_revlist_free(&l);
  return 1;
}

/* The name of the runner's dialect ("sqlite", "postgresql"), as op.dialect
 * shows it: found from the URL, without connecting. */
int lm_mod_dialect(lua_State *L) {
  lm_mod_runner *r = lm_mod_check_runner(L, "dialect");
  if (lm_pick_dialect(r->env) != LM_OK) return lm_mod_push_fail(L, r);
  lua_pushstring(L, r->env->dialect->name);
  return 1;
}

/* m:status(): the fields of `status --json`. */
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
int lm_mod_execute(lua_State *L) {
  lm_mod_runner *r = lm_mod_check_idle(L, "execute");
  const char *sql = lm_mod_check_string(L, 2, "execute", "the SQL");
  size_t n;
  lm_value *params = sql_params(L, 3, "execute", &n);
  lm_env *env = r->env;
  int64_t affected = 0;
  int rc = lm_connect(env);
  if (rc == LM_OK)
    rc = env->dialect->exec(env->conn, sql, n, params, &affected, &env->err);
  if (rc != LM_OK) return lm_mod_push_fail(L, r);
  lua_pushinteger(L, (lua_Integer)affected);
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
  const lm_dialect *d;
  lm_cursor *cur = NULL;
  int rc = lm_connect(env);
  if (rc == LM_OK) {
    d = env->dialect;
    rc = d->query(env->conn, sql, n, params, &cur, &env->err);
  }
  if (rc != LM_OK) return lm_mod_push_fail(L, r);
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
  if (more < 0) return lm_mod_push_fail(L, r);
  return 1;
}
