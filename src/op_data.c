/*
 * op_data.c - the data side of the op table: op.query here, op.bulk_insert
 * in op_bulk.c and op.backfill in op_backfill.c (DESIGN section 5).
 *
 * Everything streams: a query hands out one row at a time from the
 * dialect's cursor, a bulk insert converts and sends rows a chunk at a
 * time, and a backfill walks the table by keyset pagination, one batch
 * read, one Lua call per row and one write per batch.  Memory stays flat
 * whatever the table's size.
 *
 * Dialect cursors and writers are C resources that must be released
 * before the connection closes and whatever Lua does; so a backfill runs
 * its Lua parts under lua_pcall and frees them on every path, and query
 * cursors are kept on a list that lm_op_data_release empties when the
 * connection goes away.
 */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"
#include "op_data.h"
#include "op_internal.h"

#define QUERY_META "luamig.query"
#define OPEN_KEY "luamig.open_queries"
#define SQLFRAG_META "luamig.sqlfragment"

/* ---- shared helpers ---------------------------------------------------- */

/* SQL given as a string or as op.text(...). */
const char *lm_data_sql(lua_State *L, int idx, const char *op,
                           const char *what) {
  if (lua_istable(L, idx) && lua_getmetatable(L, idx)) {
    luaL_getmetatable(L, SQLFRAG_META);
    int frag = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (frag) {
      lua_getfield(L, idx, "sql");
      const char *s = lua_tostring(L, -1);
      lua_pop(L, 1);   /* the string stays referenced by the fragment */
      if (s) return s;
    }
  }
  return lm_op_check_name(L, idx, op, what);
}

/* Optional string option; NULL when absent. */
const char *lm_data_opt_string(lua_State *L, int idx, const char *key,
                              const char *op) {
  if (lua_isnoneornil(L, idx)) return NULL;
  lua_getfield(L, idx, key);
  const char *s = NULL;
  if (lua_type(L, -1) == LUA_TSTRING) s = lua_tostring(L, -1);
  else if (!lua_isnil(L, -1))
    luaL_error(L, "%s: %s must be a string, not a %s", op, key,
               luaL_typename(L, -1));
  lua_pop(L, 1);   /* still referenced by the options table */
  return s;
}

/* Optional positive integer option. */
lua_Integer lm_data_opt_count(lua_State *L, int idx, const char *key,
                             const char *op, lua_Integer dflt) {
  if (lua_isnoneornil(L, idx)) return dflt;
  lua_getfield(L, idx, key);
  lua_Integer v = dflt;
  if (lua_isinteger(L, -1)) v = lua_tointeger(L, -1);
  else if (!lua_isnil(L, -1))
    luaL_error(L, "%s: %s must be an integer, not a %s", op, key,
               luaL_typename(L, -1));
  if (!lua_isnil(L, -1) && v < 1)
    luaL_error(L, "%s: %s must be at least 1", op, key);
  lua_pop(L, 1);
  return v;
}

/* Is the string valid UTF-8 without NUL bytes?  Such a string is text;
 * any other is bytes, bound as a blob so neither database reinterprets
 * it. */
int lm_data_is_text(const char *str, size_t n) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    if (c >= 0x01 && c < 0x80) {
      i++;
      continue;
    }
    size_t len = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
                 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (!len || i + len > n) return 0;
    for (size_t k = 1; k < len; k++)
      if ((s[i + k] & 0xc0) != 0x80) return 0;
    /* overlong forms, surrogates and code points past U+10FFFF */
    if ((c == 0xe0 && s[i + 1] < 0xa0) || (c == 0xed && s[i + 1] >= 0xa0) ||
        (c == 0xf0 && s[i + 1] < 0x90) || (c == 0xf4 && s[i + 1] >= 0x90))
      return 0;
    i += len;
  }
  return 1;
}

/* A Lua value as an lm_value for a column.  Strings are not copied: the
 * caller keeps them referenced (or copies them) while the value is used.
 * Raises, naming the operation and the column, on a value that cannot be
 * stored. */
void lm_data_value(lua_State *L, int idx, const char *op,
                   const char *col, lm_value *v) {
  if (!lm_op_value(L, idx, v))
    luaL_error(L, "%s: the value for column %s must be nil, op.null, a "
               "boolean, number or string, not a %s", op, col,
               luaL_typename(L, idx));
}

/* Push a database value: integers, floats, booleans, strings (text and
 * bytes alike), and op.null for NULL so that no column goes missing. */
void lm_data_push(lua_State *L, const lm_value *v, int null_idx) {
  switch (v->type) {
  case LM_V_NULL: lua_pushvalue(L, null_idx); break;
  case LM_V_INT: lua_pushinteger(L, (lua_Integer)v->i); break;
  case LM_V_FLOAT: lua_pushnumber(L, (lua_Number)v->f); break;
  case LM_V_BOOL: lua_pushboolean(L, (int)v->i); break;
  case LM_V_TEXT:
  case LM_V_BLOB: lua_pushlstring(L, v->s ? v->s : "", v->len); break;
  }
}

/* Parameters of op.query: a list, with params.n counting trailing nils
 * as table.pack does.  Values are copied into the arena. */
static lm_value *query_params(lua_State *L, int idx, lm_arena *a,
                              size_t *n) {
  *n = 0;
  if (lua_isnoneornil(L, idx)) return NULL;
  if (!lua_istable(L, idx))
    luaL_error(L, "query: parameters must be a table, not a %s",
               luaL_typename(L, idx));
  lua_getfield(L, idx, "n");
  size_t count = lua_isinteger(L, -1) ? (size_t)lua_tointeger(L, -1)
                                      : (size_t)luaL_len(L, idx);
  lua_pop(L, 1);
  if (count > 65535) luaL_error(L, "query: too many parameters (%d)", (int)count);
  lm_value *params = lm_arena_alloc(a, (count ? count : 1) * sizeof *params);
  for (size_t i = 0; i < count; i++) {
    lua_geti(L, idx, (lua_Integer)i + 1);
    lm_op_to_value(L, a, -1, "query", (int)i + 1, &params[i]);
    lua_pop(L, 1);
  }
  *n = count;
  return params;
}

/* ---- op.query ------------------------------------------------------------ */

/* An open query: the cursor, and its place on the list of open ones. */
typedef struct query_ud {
  lm_env *env;
  lm_cursor *cur;               /* NULL once closed */
  size_t ncols;
  struct query_ud *prev, *next;
} query_ud;

/* The head of the list of open queries, one per Lua state. */
typedef struct open_list {
  query_ud *first;
} open_list;

static open_list *get_open_list(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, OPEN_KEY);
  open_list *l = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return l;
}

static void query_close(lua_State *L, query_ud *q) {
  if (!q->cur) return;
  q->env->dialect->cursor_close(q->cur);
  q->cur = NULL;
  open_list *l = get_open_list(L);
  if (q->prev) q->prev->next = q->next;
  else if (l && l->first == q) l->first = q->next;
  if (q->next) q->next->prev = q->prev;
  q->prev = q->next = NULL;
}

/* __gc and __close: a query stopped early (break, error) or dropped.  A
 * backfill's write may be using the connection at that moment (a query
 * the function dropped is collected whenever Lua allocates). */
static int query_gc(lua_State *L) {
  query_ud *q = luaL_checkudata(L, 1, QUERY_META);
  lm_hold *hold = q->cur ? q->env->hold : NULL;
  if (hold && hold->quiesce) hold->quiesce(hold);
  query_close(L, q);
  return 0;
}

/* The iterator: the next row as a table keyed by column name, or nil at
 * the end (which closes the cursor at once). */
static int query_next(lua_State *L) {
  query_ud *q = luaL_checkudata(L, lua_upvalueindex(1), QUERY_META);
  if (!q->cur) return 0;
  /* A query opened before a backfill or a bulk insert and read from its
   * function: the connection is freed first, as for any op.* call. */
  if (q->env->hold) q->env->hold->release(L, q->env->hold);
  lm_err err;
  lm_err_init(&err);
  const lm_dialect *d = q->env->dialect;
  int rc = d->cursor_next(q->cur, &err);
  if (rc <= 0) {
    query_close(L, q);
    if (rc < 0) return lm_op_raise(L, &err);
    return 0;
  }
  lua_settop(L, 0);
  lm_op_push_null(L);                                   /* 1: op.null */
  lua_getiuservalue(L, lua_upvalueindex(1), 1);         /* 2: names */
  lua_createtable(L, 0, (int)q->ncols);                 /* 3: row */
  for (size_t i = 0; i < q->ncols; i++) {
    lua_rawgeti(L, 2, (lua_Integer)i + 1);
    lm_data_push(L, d->cursor_value(q->cur, i), 1);
    lua_rawset(L, 3);
  }
  return 1;
}

/* op.query(sql, params): for row in op.query(...) do ... end.  Returns
 * the iterator and, as the loop's closing value, the query itself, so a
 * break or an error closes the cursor at once. */
static int op_query(lua_State *L) {
  lua_settop(L, 2);
  lm_env *env = lm_op_env(L);
  const char *sql = lm_data_sql(L, 1, "query", "the SQL");
  lm_arena *a = lm_op_push_arena(L);                    /* 3 */
  size_t n;
  lm_value *params = query_params(L, 2, a, &n);
  query_ud *q = lua_newuserdatauv(L, sizeof *q, 1);     /* 4 */
  memset(q, 0, sizeof *q);
  q->env = env;
  luaL_setmetatable(L, QUERY_META);
  lm_err err;
  lm_err_init(&err);
  /* The executor opens the cursor, or refuses where nothing can be read. */
  lm_data_op op = {.kind = LM_DATA_QUERY, .sql = sql, .params = params,
                   .nparams = n};
  int rc = env->exec->data(env, &op, &err);
  lm_arena_free(a);
  if (rc != LM_OK) return lm_op_raise(L, &err);
  lm_cursor *cur = op.cursor;
  q->cur = cur;
  open_list *l = get_open_list(L);
  if (l) {
    q->next = l->first;
    if (l->first) l->first->prev = q;
    l->first = q;
  }
  /* Column names as Lua strings, made once: each row reuses them. */
  q->ncols = env->dialect->cursor_ncols(cur);
  lua_createtable(L, (int)q->ncols, 0);
  for (size_t i = 0; i < q->ncols; i++) {
    const char *name = env->dialect->cursor_colname(cur, i);
    lua_pushstring(L, name ? name : "?");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setiuservalue(L, 4, 1);
  lua_pushvalue(L, 4);
  lua_pushcclosure(L, query_next, 1);
  lua_pushnil(L);
  lua_pushnil(L);
  lua_pushvalue(L, 4);
  return 4;
}

/* Close every open query: the connection is about to go away. */
void lm_op_data_release(lm_env *env) {
  if (!env->L) return;
  open_list *l = get_open_list(env->L);
  while (l && l->first) query_close(env->L, l->first);
}

/* ---- registration ---------------------------------------------------------- */

static const luaL_Reg data_functions[] = {
  {"query", op_query},
  {"bulk_insert", lm_op_bulk_insert},
  {"backfill", lm_op_backfill},
  {NULL, NULL}};

/* Add the data functions to the op table on top of the stack, with the
 * query metatable and the list of open queries. */
void lm_op_data_register(lua_State *L) {
  if (luaL_newmetatable(L, QUERY_META)) {   /* stack: op meta */
    lua_pushcfunction(L, query_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, query_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  if (lua_getfield(L, LUA_REGISTRYINDEX, OPEN_KEY) != LUA_TUSERDATA) {
    open_list *l = lua_newuserdatauv(L, sizeof *l, 0);
    l->first = NULL;
    lua_setfield(L, LUA_REGISTRYINDEX, OPEN_KEY);
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, data_functions, 0);
}
