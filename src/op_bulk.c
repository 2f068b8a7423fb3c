/*
 * op_bulk.c - op.bulk_insert(table, rows, opts): rows from a list or a
 * generator, converted a chunk at a time and streamed through the
 * dialect's loader (COPY on PostgreSQL, a prepared INSERT on SQLite).
 *
 * The rows go to the executor a chunk at a time as an lm_data_op
 * (data_op.h): online, the loader's stream stays open from the first
 * chunk to the last, so the database stores one chunk while Lua produces
 * the next; offline, each row is written as an INSERT.  While a stream is
 * open the connection belongs to it: should the generator call another
 * op.* function, the bulk insert's hold (released by lm_op_get_env) sends
 * the rows gathered so far and pauses the insert first, and the next
 * chunk opens a new stream.  The loop runs under lua_pcall, so whatever
 * is raised, the executor abandons the insert (and a transaction of its
 * own) before the error goes on.
 */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"
#include "op_data.h"
#include "op_internal.h"

/* Rows converted and handed to the loader at a time. */
#define INSERT_CHUNK 5000

/* A bulk insert in progress: its operation value, which the executor
 * is handed a chunk of rows at a time, and the rows gathered for the
 * next chunk. */
struct lm_bulk {
  lm_hold hold;                 /* first: env->hold points here */
  lm_env *env;
  lm_data_op op;
  const char **cols;
  lm_value *vals;               /* rows gathered, not yet sent */
  size_t nrows;
  int in_user;                  /* the script's code is running */
  lm_err err;
};

/* Add the string keys of the row table at idx to the set at `seen`, and
 * new ones to the arena list *names. */
static void collect_keys(lua_State *L, int idx, int seen, size_t rowno,
                         lm_arena *a, const char ***names, size_t *n,
                         size_t *cap) {
  if (!lua_istable(L, idx)) return;   /* insert_row says what is wrong */
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "bulk_insert: row %d has a %s key; rows map column "
                 "names to values", (int)rowno, luaL_typename(L, -1));
    lua_pushvalue(L, -1);
    if (lua_rawget(L, seen) == LUA_TNIL) {
      lua_pushvalue(L, -2);
      lua_pushboolean(L, 1);
      lua_rawset(L, seen);
      if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        const char **grown = lm_arena_alloc(a, c * sizeof *grown);
        if (*n) memcpy(grown, *names, *n * sizeof *grown);
        *names = grown;
        *cap = c;
      }
      (*names)[(*n)++] = lm_arena_strdup(a, lua_tostring(L, -2));
    }
    lua_pop(L, 1);
  }
}

static int cmp_names(const void *x, const void *y) {
  return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* The columns to insert: opts.columns, else every key the rows use (a
 * list is read through once for them; a generator's first row tells), in
 * sorted order.  Pushes a table name -> position. */
static size_t insert_columns(lua_State *L, int opts, int rows, int first_row,
                             const char ***cols, lm_arena *a) {
  size_t n = 0, cap = 0;
  *cols = NULL;
  if (!lua_isnoneornil(L, opts)) {
    lua_getfield(L, opts, "columns");
    if (!lua_isnil(L, -1)) {
      if (!lua_istable(L, -1))
        luaL_error(L, "bulk_insert: columns must be a list of names, not "
                   "a %s", luaL_typename(L, -1));
      n = cap = (size_t)luaL_len(L, -1);
      *cols = lm_arena_alloc(a, (n ? n : 1) * sizeof **cols);
      for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, -1, (lua_Integer)i + 1);
        if (lua_type(L, -1) != LUA_TSTRING)
          luaL_error(L, "bulk_insert: columns[%d] must be a string",
                     (int)i + 1);
        (*cols)[i] = lm_arena_strdup(a, lua_tostring(L, -1));
        lua_pop(L, 1);
      }
    }
    lua_pop(L, 1);
  }
  if (!*cols) {
    lua_newtable(L);
    int seen = lua_gettop(L);
    if (lua_istable(L, rows)) {
      lua_Integer len = luaL_len(L, rows);
      for (lua_Integer i = 1; i <= len; i++) {
        lua_geti(L, rows, i);
        collect_keys(L, lua_gettop(L), seen, (size_t)i, a, cols, &n, &cap);
        lua_pop(L, 1);
      }
    } else {
      collect_keys(L, first_row, seen, 1, a, cols, &n, &cap);
    }
    lua_pop(L, 1);
    if (n) qsort(*cols, n, sizeof **cols, cmp_names);
  }
  if (!n) luaL_error(L, "bulk_insert: no columns to insert");
  lua_createtable(L, 0, (int)n);
  for (size_t i = 0; i < n; i++) {
    lua_pushstring(L, (*cols)[i]);
    lua_pushinteger(L, (lua_Integer)i);
    lua_rawset(L, -3);
  }
  return n;
}

/* Fill one row of values from the row table at idx: its keys are looked
 * up in the positions table; a key outside the columns is an error,
 * a column the row lacks is NULL.  Strings are copied into the arena. */
static void insert_row(lua_State *L, int idx, int positions, lm_arena *a,
                       const char *const *cols, size_t ncols, size_t rowno,
                       lm_value *out) {
  if (!lua_istable(L, idx))
    luaL_error(L, "bulk_insert: row %d must be a table, not a %s",
               (int)rowno, luaL_typename(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pushvalue(L, -2);
    if (lua_rawget(L, positions) != LUA_TNUMBER)
    {
      lm_buf all = LM_BUF_INIT;
      for (size_t i = 0; i < ncols; i++)
        lm_buf_printf(&all, "%s%s", i ? ", " : "", cols[i]);
      lua_pushstring(L, lm_buf_str(&all));
      lm_buf_free(&all);
      luaL_error(L, "bulk_insert: row %d has a value for %s, which is not "
                 "among the columns (%s): give them all in opts.columns",
                 (int)rowno, lua_type(L, -4) == LUA_TSTRING
                                 ? lua_tostring(L, -4) : luaL_typename(L, -4),
                 lua_tostring(L, -1));
    }
    size_t col = (size_t)lua_tointeger(L, -1);
    lua_pop(L, 1);
    lm_data_value(L, -1, "bulk_insert", cols[col], &out[col]);
    if (out[col].type == LM_V_TEXT || out[col].type == LM_V_BLOB)
      out[col].s = lm_arena_strndup(a, out[col].s, out[col].len);
    lua_pop(L, 1);
  }
}

/* The next row: rows[i] from a list, or what the generator returns.
 * *in_user is set while the script's code (the generator, or a list's
 * __index) runs, whose errors carry their own location. */
static int next_row(lua_State *L, int rows, lua_Integer i, int *in_user) {
  *in_user = 1;
  if (lua_isfunction(L, rows)) {
    lua_pushvalue(L, rows);
    lua_call(L, 0, 1);
  } else {
    lua_geti(L, rows, i);
  }
  *in_user = 0;
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  return 1;
}

/* The executor at one phase of the insert; a failure raises. */
static void to_executor(lua_State *L, struct lm_bulk *b, lm_data_phase phase) {
  b->op.phase = phase;
  if (b->env->exec->data(b->env, &b->op, &b->err) != LM_OK)
    lm_op_raise(L, &b->err);
}

/* Send the rows gathered so far: streamed online, as INSERTs offline. */
static void flush(lua_State *L, struct lm_bulk *b) {
  size_t n = b->nrows;
  if (!n) return;
  b->nrows = 0;
  b->op.rows = b->vals;
  b->op.nrows = n;
  to_executor(L, b, LM_DATA_ROWS);
}

/* The generator calls another op.* function: what it returned so far
 * goes to the database first. */
static void bulk_release(lua_State *L, lm_hold *hold) {
  struct lm_bulk *b = (struct lm_bulk *)hold;
  flush(L, b);
  to_executor(L, b, LM_DATA_PAUSE);
}

/* The protected loop.  Stack: 1 the bulk insert (light userdata), 2 rows,
 * 3 opts. */
static int bulk_body(lua_State *L) {
  struct lm_bulk *b = lua_touserdata(L, 1);
  lm_arena *names = lm_op_push_arena(L);                /* 4 */
  lm_arena *chunk = lm_op_push_arena(L);                /* 5 */
  if (!next_row(L, 2, 1, &b->in_user)) return 0;       /* 6: first row */
  if (!lua_istable(L, 6))
    luaL_error(L, "bulk_insert: row 1 must be a table, not a %s",
               luaL_typename(L, 6));
  size_t ncols = insert_columns(L, 3, 2, 6, &b->cols, names); /* 7 */
  b->op.columns = b->cols;
  b->op.ncolumns = ncols;
  size_t size = INSERT_CHUNK * ncols * sizeof *b->vals;
  b->vals = lm_arena_alloc(chunk, size);
  insert_row(L, 6, 7, chunk, b->cols, ncols, 1, b->vals);
  b->nrows = 1;
  size_t in_arena = 1;          /* rows whose strings the arena holds */
  /* From here on, an op.* call from the generator sends the rows before
   * it runs. */
  b->env->hold = &b->hold;
  /* The first row is at 6; the others come one at a time at 8.  A full
   * chunk is sent before the next row is read into it. */
  for (lua_Integer i = 2;; i++) {
    if (b->nrows == INSERT_CHUNK) flush(L, b);
    if (!next_row(L, 2, i, &b->in_user)) break;
    if (!b->nrows && in_arena) {
      /* Everything gathered was sent (here or by a pause). */
      lm_arena_free(chunk);
      b->vals = lm_arena_alloc(chunk, size);
      in_arena = 0;
    }
    insert_row(L, 8, 7, chunk, b->cols, ncols, (size_t)i,
               b->vals + b->nrows * ncols);
    lua_settop(L, 7);
    b->nrows++;
    in_arena++;
  }
  flush(L, b);
  return 0;
}

/* op.bulk_insert(table, rows, opts): rows is a list of tables (column =
 * value) or a function returning one row per call and nil at the end, so
 * a million rows need not sit in memory at once.  Columns: opts.columns,
 * else every key of the rows.  Outside a transaction (transactional =
 * false) the load gets one of its own.  Returns the number of rows
 * inserted. */
int lm_op_bulk_insert(lua_State *L) {
  static const char *const keys[] = {"schema", "columns", NULL};
  lua_settop(L, 3);
  lm_env *env = lm_op_env(L);
  struct lm_bulk b;
  memset(&b, 0, sizeof b);
  b.hold.release = bulk_release;
  b.env = env;
  b.op.kind = LM_DATA_BULK_INSERT;
  b.op.table = lm_op_check_name(L, 1, "bulk_insert", "the table name");
  if (!lua_istable(L, 2) && !lua_isfunction(L, 2))
    luaL_error(L, "bulk_insert: rows must be a list of tables or a function "
               "returning rows, not a %s", luaL_typename(L, 2));
  if (lua_istable(L, 2)) {
    /* One row where the list of rows belongs ({id = 5}) would insert
     * nothing: a list has no other keys than 1..n. */
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      lua_pop(L, 1);
      if (!lua_isinteger(L, -1))
        luaL_error(L, "bulk_insert: rows must be a list of rows, not one row "
                   "(it has the key '%s'); wrap it: {{...}}",
                   lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                  : luaL_typename(L, -1));
    }
  }
  lm_op_check_opts(L, 3, "bulk_insert", keys);
  b.op.schema = lm_data_opt_string(L, 3, "schema", "bulk_insert");
  lm_err_init(&b.err);
  to_executor(L, &b, LM_DATA_START);
  lm_hold *outer = env->hold;   /* released by lm_op_env above */
  lua_pushcfunction(L, bulk_body);
  lua_pushlightuserdata(L, &b);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  int st = lua_pcall(L, 3, 0, 0);
  env->hold = outer;
  if (st == LUA_OK) {
    to_executor(L, &b, LM_DATA_FINISH);
    lm_err_free(&b.err);
    lua_pushinteger(L, (lua_Integer)b.op.stream.sent);
    return 1;
  }
  b.op.phase = LM_DATA_ABANDON;
  env->exec->data(env, &b.op, &b.err);
  lm_err_free(&b.err);
  /* Our own errors get the script's line, as everywhere in op. */
  if (!b.in_user && lua_type(L, -1) == LUA_TSTRING) {
    luaL_where(L, 1);
    lua_insert(L, -2);
    lua_concat(L, 2);
  }
  return lua_error(L);
}
