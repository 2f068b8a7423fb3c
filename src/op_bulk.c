/*
 * op_bulk.c - op.bulk_insert(table, rows, opts): rows from a list or a
 * generator, converted a chunk at a time and streamed through the
 * dialect's loader (COPY on PostgreSQL, a prepared INSERT on SQLite).
 *
 * The loader's stream stays open from the first chunk to the last, so
 * the database stores one chunk while Lua produces the next.  While it is
 * open the connection belongs to it: should the generator call another
 * op.* function, the bulk insert's hold (released by lm_op_get_env) sends
 * the rows gathered so far and ends the stream first, and the next chunk
 * opens a new one.  The loop runs under lua_pcall, so whatever is raised,
 * the stream is abandoned and a transaction of our own rolled back before
 * the error goes on.
 */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "op_data.h"
#include "op_internal.h"

/* Rows converted and handed to the loader at a time. */
#define INSERT_CHUNK 5000

/* A bulk insert in progress. */
struct lm_bulk {
  lm_hold hold;                 /* first: env->hold points here */
  lm_env *env;
  const char *table, *schema;
  const char **cols;
  size_t ncols;
  lm_loader *loader;            /* the open stream, or NULL */
  size_t stream_first;          /* the row the open stream started at */
  size_t rows;                  /* rows sent, online or offline */
  lm_value *vals;               /* rows gathered, not yet sent */
  size_t nrows;
  int own_tx;
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

/* Offline: one INSERT per row with the values as literals, as Alembic
 * writes them. */
static void insert_offline(lua_State *L, lm_env *env, const char *schema,
                           const char *table, const char *const *cols,
                           size_t ncols, const lm_value *vals) {
  lm_buf sql = LM_BUF_INIT;
  lm_buf_puts(&sql, "INSERT INTO ");
  if (schema) {
    env->dialect->quote_ident(&sql, schema);
    lm_buf_putc(&sql, '.');
  }
  env->dialect->quote_ident(&sql, table);
  lm_buf_puts(&sql, " (");
  for (size_t i = 0; i < ncols; i++) {
    if (i) lm_buf_puts(&sql, ", ");
    env->dialect->quote_ident(&sql, cols[i]);
  }
  lm_buf_puts(&sql, ") VALUES (");
  for (size_t i = 0; i < ncols; i++)
    lm_buf_printf(&sql, "%s$%zu", i ? ", " : "", i + 1);
  lm_buf_putc(&sql, ')');
  lm_err err;
  lm_err_init(&err);
  int rc = lm_exec_sql(env, lm_buf_str(&sql), ncols, vals, NULL, &err);
  lm_buf_free(&sql);
  if (rc != LM_OK) lm_op_raise(L, &err);
}

/* Say which rows a failed stream held, when it did not start at the
 * first: the database counts rows (COPY lines) from the stream's start. */
static void stream_error(struct lm_bulk *b) {
  if (b->stream_first > 1)
    lm_err_prefix(&b->err, "bulk insert into %s (a stream that began at "
                  "row %zu)", b->table, b->stream_first);
  else
    lm_err_prefix(&b->err, "bulk insert into %s", b->table);
}

/* End the open stream, waiting for the database to store its rows. */
static int stream_end(struct lm_bulk *b) {
  lm_loader *l = b->loader;
  if (!l) return LM_OK;
  b->loader = NULL;
  if (b->env->dialect->loader_close(l, 0, &b->err) == LM_OK) return LM_OK;
  stream_error(b);
  return LM_ERROR;
}

/* Hand rows to the loader, opening a stream when none is open. */
static int stream_put(struct lm_bulk *b, size_t nrows, const lm_value *vals) {
  lm_env *env = b->env;
  const lm_dialect *d = env->dialect;
  if (!b->loader) {
    if (d->loader_open(env->conn, b->schema, b->table, b->ncols, b->cols,
                       &b->loader, &b->err) != LM_OK) {
      lm_err_prefix(&b->err, "bulk insert into %s", b->table);
      return LM_ERROR;
    }
    b->stream_first = b->rows + 1;
  }
  if (d->loader_put(b->loader, nrows, vals, &b->err) == LM_OK) return LM_OK;
  stream_error(b);
  return LM_ERROR;
}

/* Send the rows gathered so far: streamed online, as INSERTs offline. */
static void flush(lua_State *L, struct lm_bulk *b) {
  size_t n = b->nrows;
  if (!n) return;
  b->nrows = 0;
  if (b->env->mode == LM_EXEC_OFFLINE) {
    for (size_t r = 0; r < n; r++)
      insert_offline(L, b->env, b->schema, b->table, b->cols, b->ncols,
                     b->vals + r * b->ncols);
  } else if (stream_put(b, n, b->vals) != LM_OK) {
    luaL_error(L, "%s", lm_err_msg(&b->err));
  }
  b->rows += n;
}

/* The generator calls another op.* function: what it returned so far
 * goes to the database first. */
static void bulk_release(lua_State *L, lm_hold *hold) {
  struct lm_bulk *b = (struct lm_bulk *)hold;
  flush(L, b);
  if (stream_end(b) != LM_OK) luaL_error(L, "%s", lm_err_msg(&b->err));
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
  b->ncols = insert_columns(L, 3, 2, 6, &b->cols, names); /* 7: positions */
  size_t size = INSERT_CHUNK * b->ncols * sizeof *b->vals;
  b->vals = lm_arena_alloc(chunk, size);
  insert_row(L, 6, 7, chunk, b->cols, b->ncols, 1, b->vals);
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
    insert_row(L, 8, 7, chunk, b->cols, b->ncols, (size_t)i,
               b->vals + b->nrows * b->ncols);
    lua_settop(L, 7);
    b->nrows++;
    in_arena++;
  }
  flush(L, b);
  if (stream_end(b) != LM_OK) luaL_error(L, "%s", lm_err_msg(&b->err));
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
  b.table = lm_data_string(L, 1, "bulk_insert", "the table name");
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
  b.schema = lm_data_opt_string(L, 3, "schema", "bulk_insert");
  int online = env->mode == LM_EXEC_ONLINE;
  if (online && !env->conn) luaL_error(L, "bulk_insert: no database connection");
  lm_err_init(&b.err);
  b.own_tx = online && !env->tx_open;
  if (b.own_tx && lm_tx_begin(env) != LM_OK) {
    lm_err_move(&b.err, &env->err);
    return lm_op_raise(L, &b.err);
  }
  lm_hold *outer = env->hold;   /* released by lm_op_env above */
  lua_pushcfunction(L, bulk_body);
  lua_pushlightuserdata(L, &b);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  int st = lua_pcall(L, 3, 0, 0);
  env->hold = outer;
  if (b.loader) {
    /* Raised while a stream was open: it goes with the transaction. */
    env->dialect->loader_close(b.loader, 1, &b.err);
  }
  if (st == LUA_OK && b.own_tx && lm_tx_commit(env) != LM_OK) {
    lm_err_move(&b.err, &env->err);
    lm_tx_rollback(env);
    return lm_op_raise(L, &b.err);
  }
  lm_err_free(&b.err);
  if (st != LUA_OK) {
    if (b.own_tx) lm_tx_rollback(env);
    /* Our own errors get the script's line, as everywhere in op. */
    if (!b.in_user && lua_type(L, -1) == LUA_TSTRING) {
      luaL_where(L, 1);
      lua_insert(L, -2);
      lua_concat(L, 2);
    }
    return lua_error(L);
  }
  lua_pushinteger(L, (lua_Integer)b.rows);
  return 1;
}
