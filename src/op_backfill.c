/*
 * op_backfill.c - op.backfill(table, opts, fn) (DESIGN section 5): keyset
 * pagination over a key, one read per batch, fn(row) per row, and one
 * write per batch through the dialect's writer.
 *
 * The read (the key and columns of the rows where `where` holds, past
 * the last key read, in key order, LIMIT the batch: dialects/core_sql.c
 * writes it) is a fresh statement per batch, never a cursor held across
 * batches, so the same loop serves a backfill inside the migration's
 * transaction and one that commits every N rows (commit_every, in a
 * transactional = false script).  The latter records its last key in
 * luamig_backfill (revision, name) in the transaction of each commit, and
 * an interrupted run resumes after it.
 *
 * Batches are pipelined: once the function has run over batch n, batch
 * n+1 is read, and batch n is written on a thread of its own while the
 * function runs over batch n+1, so the database's work and Lua's overlap.
 * Each batch lives in one of two slots.  While a write is in flight the
 * connection is the writer's: an op.* call from the function waits for it
 * first (the backfill's lm_hold).  A backfill with commit_every writes
 * each batch before reading the next, so that what it commits is exactly
 * what it records.
 *
 * The Lua work (the row tables, fn, the conversion of what it returns)
 * runs under lua_pcall, so whatever it raises, the write in flight is
 * waited for, the cursor, the writer and the buffers are released and a
 * transaction of our own is rolled back before the error goes on.
 *
 * This file holds the read and the loop; backfill_state.c the resume
 * state, backfill_pipeline.c the write (backfill.h what they share).
 */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backfill.h"
#include "executor.h"

#define DEFAULT_BATCH 1000

/* A key for people: "id = 42" or "a = 1, b = 'x'". */
static void describe_key(lm_buf *b, const char *const *keys, size_t nkeys,
                         const lm_value *v) {
  for (size_t i = 0; i < nkeys; i++) {
    lm_buf_printf(b, "%s%s = ", i ? ", " : "", keys[i]);
    switch (v[i].type) {
    case LM_V_NULL: lm_buf_puts(b, "NULL"); break;
    case LM_V_INT: lm_buf_printf(b, "%lld", (long long)v[i].i); break;
    case LM_V_FLOAT: lm_buf_printf(b, "%.17g", v[i].f); break;
    case LM_V_BOOL: lm_buf_puts(b, v[i].i ? "true" : "false"); break;
    case LM_V_TEXT:
      lm_buf_printf(b, "'%.*s%s'", (int)(v[i].len > 60 ? 60 : v[i].len),
                    v[i].s, v[i].len > 60 ? "..." : "");
      break;
    case LM_V_BLOB: lm_buf_printf(b, "<%zu bytes>", v[i].len); break;
    }
  }
}

/* ---- the read -------------------------------------------------------------- */

/* The batch read, with or without a last key to start after, as the
 * dialect writes it. */
static void build_select(backfill *b, lm_buf *sql, int after) {
  lm_sql_spec spec = {.kind = LM_SQL_KEYSET_READ, .schema = b->schema,
                      .table = b->table, .columns = b->columns,
                      .ncolumns = b->ncolumns, .keys = b->keys,
                      .nkeys = b->nkeys, .where = b->where,
                      .order = b->order, .after = after};
  lm_core_sql(b->d, sql, &spec);
}

/* ---- one row ---------------------------------------------------------------- */

/* fn raised: replace the error at the top of the stack with one naming
 * the row by its key, which is what a person needs to find it. */
static void fn_failed(lua_State *L, backfill *b) {
  lm_buf msg = LM_BUF_INIT;
  lm_buf_printf(&msg, "backfill %s: the function failed on the row with ",
                b->table);
  describe_key(&msg, b->keys, b->nkeys, b->fn_row);
  lm_buf_puts(&msg, ": ");
  if (lua_type(L, -1) == LUA_TSTRING)
    lm_buf_puts(&msg, lua_tostring(L, -1));
  else
    lm_buf_printf(&msg, "(error object is a %s value)", luaL_typename(L, -1));
  lua_pop(L, 1);
  lua_pushstring(L, lm_buf_str(&msg));
  lm_buf_free(&msg);
}

/* Take what fn returned (at res) for the batch's row `r`: nil skips the
 * row, a table of column = value changes it. */
static void take_result(lua_State *L, backfill *b, slot *s, int res,
                        size_t r) {
  int t = lua_type(L, res);
  if (t == LUA_TNIL) {
    b->skipped++;
    return;
  }
  if (t != LUA_TTABLE)
    luaL_error(L, "backfill %s: the function must return a table of "
               "column = new value, or nil to skip the row, not a %s",
               b->table, luaL_typename(L, res));
  size_t before = s->nchanges;
  lua_pushnil(L);
  while (lua_next(L, res)) {              /* stack: ... key value */
    if (lua_type(L, -2) != LUA_TSTRING)
      luaL_error(L, "backfill %s: the function returned a table with a %s "
                 "key; keys are column names", b->table,
                 luaL_typename(L, -2));
    size_t col;
    lua_pushvalue(L, -2);
    if (lua_rawget(L, 4) == LUA_TNUMBER) {
      col = (size_t)lua_tointeger(L, -1);
    } else {
      /* A column seen for the first time: not a key, which would move
       * the row under the pagination. */
      const char *name = lua_tostring(L, -3);
      for (size_t i = 0; i < b->nkeys; i++)
        if (strcmp(b->keys[i], name) == 0)
          luaL_error(L, "backfill %s: the function cannot change the key "
                     "column %s", b->table, name);
      b->gcols = lm_backfill_grow(b->gcols, &b->capgcols, b->ngcols + 1,
                      sizeof *b->gcols);
      col = b->ngcols;
      b->gcols[b->ngcols++] = lm_arena_strdup(&b->names, name);
      lua_pushvalue(L, -3);
      lua_pushinteger(L, (lua_Integer)col);
      lua_rawset(L, 4);
    }
    lua_pop(L, 1);
    s->changes = lm_backfill_grow(s->changes, &s->capchanges, s->nchanges + 1,
                      sizeof *s->changes);
    change *c = &s->changes[s->nchanges++];
    c->row = s->nchanged;
    c->col = col;
    lm_data_value(L, -1, "backfill", b->gcols[col], &c->v);
    lm_backfill_pool_value(&s->pool, &c->v);
    lua_pop(L, 1);
  }
  if (s->nchanges == before) {
    b->skipped++;
    return;
  }
  s->changed = lm_backfill_grow(s->changed, &s->capchanged, s->nchanged + 1,
                    sizeof *s->changed);
  s->changed[s->nchanged++] = r;
}

/* ---- the loop ---------------------------------------------------------------- */

/* Raise b->err from inside the protected body. */
static int body_fail(lua_State *L, backfill *b) {
  lua_pushfstring(L, "backfill %s: %s", b->table, lm_err_msg(&b->err));
  lm_err_copy_code(&b->fail_code, &b->err);   /* for the script's error */
  return lua_error(L);
}

/* Start a transaction of our own when the script runs outside one. */
static int own_begin(backfill *b) {
  if (!b->own_tx || b->env->tx_open) return LM_OK;
  if (lm_tx_begin(b->env) == LM_OK) return LM_OK;
  lm_err_move(&b->err, &b->env->err);
  return LM_ERROR;
}

/* resumable: the commit holds the saved position of the rows it wrote,
 * so a rerun goes on after them rather than doing them again. */
static int own_commit(backfill *b, int resumable) {
  if (!b->own_tx || !b->env->tx_open) return LM_OK;
  if ((resumable ? lm_tx_commit_resumable(b->env) : lm_tx_commit(b->env)) ==
      LM_OK)
    return LM_OK;
  lm_err_move(&b->err, &b->env->err);
  return LM_ERROR;
}

/* How many rows the next read asks for: a batch, or what is left until
 * the next commit. */
static int64_t next_limit(const backfill *b) {
  if (b->commit_every && b->commit_every - b->in_tx < b->batch)
    return b->commit_every - b->in_tx;
  return b->batch;
}

/* Read the next batch into s, every value copied, and close the cursor:
 * the connection is free again before the function runs.  Returns the
 * rows read. */
static size_t read_batch(lua_State *L, backfill *b, slot *s, int64_t limit,
                         lm_value *params) {
  const lm_dialect *d = b->d;
  size_t np = 0;
  if (b->have_last)
    for (; np < b->nkeys; np++) params[np] = b->last[np];
  params[np++] = (lm_value){.type = LM_V_INT, .i = limit};
  const char *sql = lm_buf_str(b->have_last ? &b->sql_next : &b->sql_first);
  /* The LIMIT bounds the result: no need to stream it. */
  int (*query)(lm_conn *, const char *, size_t, const lm_value *,
               lm_cursor **, lm_err *) =
      d->version >= 4 && d->query_bounded ? d->query_bounded : d->query;
  if (query(b->env->conn, sql, np, params, &b->cur, &b->err) != LM_OK)
    body_fail(L, b);
  if (!b->colnames) {
    b->ncols = d->cursor_ncols(b->cur);
    b->colnames = lm_arena_alloc(&b->names, (b->ncols + 1) *
                                 sizeof *b->colnames);
    for (size_t i = 0; i < b->ncols; i++) {
      const char *name = d->cursor_colname(b->cur, i);
      b->colnames[i] = lm_arena_strdup(&b->names, name ? name : "?");
    }
  }
  lm_buf_reset(&s->rowpool);
  s->nread = 0;
  int rc;
  while ((rc = d->cursor_next(b->cur, &b->err)) == 1) {
    s->rows = lm_backfill_grow(s->rows, &s->caprows, (s->nread + 1) * b->ncols,
                   sizeof *s->rows);
    lm_value *row = &s->rows[s->nread * b->ncols];
    for (size_t i = 0; i < b->ncols; i++) {
      row[i] = *d->cursor_value(b->cur, i);
      if (i < b->nkeys && row[i].type == LM_V_NULL)
        luaL_error(L, "backfill %s: key column %s is NULL in a row; the "
                   "key must be unique and not null", b->table, b->keys[i]);
      lm_backfill_pool_value(&s->rowpool, &row[i]);
    }
    s->nread++;
  }
  if (rc < 0) body_fail(L, b);
  d->cursor_close(b->cur);
  b->cur = NULL;
  lm_backfill_pool_fix(&s->rowpool, s->rows, s->nread * b->ncols);
  if (s->nread) {
    /* The last key read is where the next batch starts. */
    lm_buf_reset(&b->last_pool);
    for (size_t i = 0; i < b->nkeys; i++) {
      b->last[i] = s->rows[(s->nread - 1) * b->ncols + i];
      lm_backfill_pool_value(&b->last_pool, &b->last[i]);
    }
    lm_backfill_pool_fix(&b->last_pool, b->last, b->nkeys);
    b->have_last = 1;
  }
  return s->nread;
}

/* fn over every row of the batch in s, then the counts and the progress
 * line.  Stack: 2 fn, 3 op.null, 4 the column map, 5.. the names of the
 * columns read; top is the last of those. */
static void run_fn(lua_State *L, backfill *b, slot *s, int top) {
  lm_env *env = b->env;
  lm_buf_reset(&s->pool);
  s->nchanges = s->nchanged = 0;
  for (size_t r = 0; r < s->nread; r++) {
    const lm_value *row = &s->rows[r * b->ncols];
    lua_pushvalue(L, 2);
    lua_createtable(L, 0, (int)b->ncols);
    for (size_t i = 0; i < b->ncols; i++) {
      lua_pushvalue(L, 5 + (int)i);
      lm_data_push(L, &row[i], 3);
      lua_rawset(L, -3);
    }
    /* Called unprotected, which saves a setjmp per row: an error
     * unwinds to lm_op_backfill's pcall, and fn_row tells it whose. */
    b->fn_row = row;
    lua_call(L, 1, 1);
    b->fn_row = NULL;
    take_result(L, b, s, top + 1, r);
    lua_settop(L, top);
  }
  b->read += (int64_t)s->nread;
  b->in_tx += (int64_t)s->nread;
  if (lm_progress_update(&b->progress, b->prior + b->read) && env->on_event) {
    char msg[128];
    snprintf(msg, sizeof msg, "backfill %s: %lld rows read", b->table,
             (long long)(b->prior + b->read));
    lm_event ev = {LM_EVENT_PROGRESS, b->revision, msg};
    env->on_event(&ev, env->event_payload);
  }
}

/* The protected body.  Stack: 1 the backfill (light userdata), 2 fn,
 * 3 op.null, 4 column name -> index of the columns fn sets, then from 5
 * the names of the columns read, made once as Lua strings. */
static int backfill_body(lua_State *L) {
  backfill *b = lua_touserdata(L, 1);
  lm_env *env = b->env;
  const lm_dialect *d = b->d;
  lm_op_push_null(L);
  lua_newtable(L);
  lm_value *params = lm_arena_alloc(&b->names, (b->nkeys + 1) * sizeof *params);

  if (b->commit_every && (lm_backfill_state_ensure(b) != LM_OK || lm_backfill_state_load(b) != LM_OK))
    return body_fail(L, b);
  int64_t total = -1;
  lm_err tmp;
  lm_err_init(&tmp);
  if (d->estimate_rows(env->conn, b->schema, b->table, &total, &tmp) != LM_OK)
    total = -1;   /* only the ETA depends on it */
  lm_err_free(&tmp);
  char label[96];
  snprintf(label, sizeof label, "backfill %s", b->table);
  lm_progress_start(&b->progress, label, total, env->quiet);
  b->progress_started = 1;
  if (b->have_last) {
    lm_buf k = LM_BUF_INIT;
    char n[32];
    describe_key(&k, b->keys, b->nkeys, b->last);
    lm_progress_count(n, sizeof n, b->prior);
    lm_emit(env, LM_EVENT_INFO, b->revision, "backfill %s: resuming after "
            "%s (%s rows read by an earlier run)", b->table, lm_buf_str(&k), n);
    lm_buf_free(&k);
  }
  build_select(b, &b->sql_first, 0);
  build_select(b, &b->sql_next, 1);
  if (d->writer_open(env->conn, b->schema, b->table, b->nkeys, b->keys,
                     b->order, &b->writer, &b->err) != LM_OK)
    return body_fail(L, b);

  slot *cur = &b->slots[0], *next = &b->slots[1];
  if (own_begin(b) != LM_OK) return body_fail(L, b);
  int64_t limit = next_limit(b);
  size_t n = read_batch(L, b, cur, limit, params);
  luaL_checkstack(L, (int)b->ncols + 16, "backfill: too many columns");
  for (size_t i = 0; i < b->ncols; i++) lua_pushstring(L, b->colnames[i]);
  int top = 4;
  if (n) {
    top = 4 + (int)b->ncols;
    run_fn(L, b, cur, top);
  }
  while (n) {
    int more = (int64_t)n >= limit;   /* a short batch is the last */
    size_t m = 0;
    if (b->pipelined) {
      /* Read batch n+1 while the connection is free, write batch n on
       * its thread while fn runs over n+1. */
      limit = next_limit(b);
      if (more) m = read_batch(L, b, next, limit, params);
      lm_backfill_write_start(b, cur);
      if (m) run_fn(L, b, next, top);
      if (lm_backfill_write_wait(b, cur) != LM_OK) return body_fail(L, b);
    } else {
      lm_backfill_write_start(b, cur);
      if (lm_backfill_write_wait(b, cur) != LM_OK) return body_fail(L, b);
      if (b->commit_every && b->in_tx >= b->commit_every) {
        if (lm_backfill_state_save(b) != LM_OK || own_commit(b, 1) != LM_OK)
          return body_fail(L, b);
        b->in_tx = 0;
      }
      limit = next_limit(b);
      if (more) {
        if (own_begin(b) != LM_OK) return body_fail(L, b);
        m = read_batch(L, b, next, limit, params);
        if (m) run_fn(L, b, next, top);
      }
    }
    slot *t = cur;
    cur = next;
    next = t;
    n = m;
  }
  if (b->commit_every && (own_begin(b) != LM_OK || lm_backfill_state_clear(b) != LM_OK))
    return body_fail(L, b);
  if (own_commit(b, 0) != LM_OK) return body_fail(L, b);
  return 0;
}

static void slot_free(slot *s) {
  free(s->rows);
  lm_buf_free(&s->rowpool);
  lm_buf_free(&s->pool);
  free(s->changes);
  free(s->changed);
  free(s->usedcols);
  free(s->matrix);
  free(s->set);
  lm_err_free(&s->err);
}

/* Release what a backfill holds, on every path: a write in flight is
 * waited for before anything it uses goes. */
static void backfill_free(backfill *b) {
  for (int i = 0; i < 2; i++) lm_backfill_write_join(b, &b->slots[i]);
  b->env->hold = b->outer_hold;
  if (b->cur) b->d->cursor_close(b->cur);
  if (b->writer) b->d->writer_close(b->writer);
  if (b->progress_started) lm_progress_finish(&b->progress);
  lm_arena_free(&b->names);
  lm_buf_free(&b->sql_first);
  lm_buf_free(&b->sql_next);
  lm_buf_free(&b->last_pool);
  for (int i = 0; i < 2; i++) slot_free(&b->slots[i]);
  free(b->last);
  free(b->gcols);
  free(b->remap);
  lm_err_free(&b->err);
}

/* ---- op.backfill ---------------------------------------------------------------- */

/* A list of names (or one name) from the options, into the arena. */
static const char *const *name_list(lua_State *L, int opts, const char *key,
                                    lm_arena *a, size_t *n) {
  *n = 0;
  if (lua_isnoneornil(L, opts)) return NULL;
  lua_getfield(L, opts, key);
  int idx = lua_gettop(L);
  const char **out = NULL;
  if (lua_type(L, idx) == LUA_TSTRING) {
    out = lm_arena_alloc(a, sizeof *out);
    out[0] = lm_arena_strdup(a, lua_tostring(L, idx));
    *n = 1;
  } else if (lua_istable(L, idx)) {
    size_t len = (size_t)luaL_len(L, idx);
    if (!len) luaL_error(L, "backfill: %s must not be empty", key);
    out = lm_arena_alloc(a, len * sizeof *out);
    for (size_t i = 0; i < len; i++) {
      lua_geti(L, idx, (lua_Integer)i + 1);
      if (lua_type(L, -1) != LUA_TSTRING || !*lua_tostring(L, -1))
        luaL_error(L, "backfill: %s[%d] must be a column name", key,
                   (int)i + 1);
      out[i] = lm_arena_strdup(a, lua_tostring(L, -1));
      lua_pop(L, 1);
    }
    *n = len;
  } else if (!lua_isnil(L, idx)) {
    luaL_error(L, "backfill: %s must be a column name or a list of them, "
               "not a %s", key, luaL_typename(L, idx));
  }
  lua_pop(L, 1);
  return out;
}

/* The revision whose script is running, for the state table and events. */
static const char *running_revision(lm_env *env) {
  for (size_t i = 0; env->running && i < env->nscripts; i++)
    if (env->scripts[i].path == env->running ||
        (env->scripts[i].path && strcmp(env->scripts[i].path,
                                        env->running) == 0))
      return env->scripts[i].rev.id ? env->scripts[i].rev.id : "";
  return "";
}

/* op.backfill(table, opts, fn).  opts: key (default "id"; a list for a
 * composite key), columns (default all), where, batch_size (1000), order
 * ("asc" or "desc"), commit_every, name (for the saved position;
 * default the table), schema.  Returns {read =, updated =, skipped =,
 * seconds =} and prints the same as a summary line. */
int lm_op_backfill(lua_State *L) {
  static const char *const allowed[] = {"key", "columns", "where",
    "batch_size", "order", "commit_every", "name", "schema", NULL};
  lua_settop(L, 3);
  lm_env *env = lm_op_env(L);
  backfill b;
  memset(&b, 0, sizeof b);
  b.env = env;
  b.d = env->dialect;
  b.table = lm_op_check_name(L, 1, "backfill", "the table name");
  lm_op_check_opts(L, 2, "backfill", allowed);
  if (!lua_isfunction(L, 3))
    luaL_error(L, "backfill: the third argument must be a function(row), "
               "not a %s", luaL_typename(L, 3));
  lm_arena *a = lm_op_push_arena(L);                    /* 4 */
  b.keys = name_list(L, 2, "key", a, &b.nkeys);
  if (!b.keys) {
    static const char *const id[] = {"id"};
    b.keys = id;
    b.nkeys = 1;
  }
  b.columns = name_list(L, 2, "columns", a, &b.ncolumns);
  b.schema = lm_data_opt_string(L, 2, "schema", "backfill");
  b.name = lm_data_opt_string(L, 2, "name", "backfill");
  if (!b.name) b.name = b.table;
  if (!lua_isnoneornil(L, 2)) {
    lua_getfield(L, 2, "where");
    if (!lua_isnil(L, -1)) b.where = lm_data_sql(L, -1, "backfill", "where");
    lua_pop(L, 1);   /* the string stays referenced by the options */
  }
  b.batch = lm_data_opt_count(L, 2, "batch_size", "backfill", DEFAULT_BATCH);
  b.commit_every = lm_data_opt_count(L, 2, "commit_every", "backfill", 0);
  const char *order = lm_data_opt_string(L, 2, "order", "backfill");
  b.order = 1;
  if (order && strcmp(order, "desc") == 0) b.order = -1;
  else if (order && strcmp(order, "asc") != 0)
    luaL_error(L, "backfill: order must be \"asc\" or \"desc\", not \"%s\"",
               order);
  /* The executor runs it, or refuses where nothing can be read. */
  lm_data_op op = {.kind = LM_DATA_BACKFILL, .schema = b.schema,
                   .table = b.table, .columns = b.columns,
                   .ncolumns = b.ncolumns, .keys = b.keys, .nkeys = b.nkeys,
                   .where = b.where, .batch_size = b.batch,
                   .commit_every = b.commit_every, .order = b.order,
                   .name = b.name};
  lm_err_init(&b.err);
  if (env->exec->data(env, &op, &b.err) != LM_OK) return lm_op_raise(L, &b.err);
  b.own_tx = !env->tx_open;
  if (b.commit_every && !b.own_tx)
    luaL_error(L, "backfill: commit_every needs a script with transactional "
               "= false; this one runs inside the migration's transaction, "
               "which commits once, at its end");
  b.revision = running_revision(env);
  b.last = lm_xcalloc(b.nkeys, sizeof *b.last);
  lm_arena_init(&b.names);
  b.hold.release = lm_backfill_release;
  b.hold.quiesce = lm_backfill_quiesce;
  b.outer_hold = env->hold;   /* released by lm_op_env above */
  /* With commit_every each batch is written before the next is read, so
   * that the key recorded with a commit is the last one written. */
  b.pipelined = !b.commit_every;
  for (int i = 0; i < 2; i++) {
    b.slots[i].owner = &b;
    lm_err_init(&b.slots[i].err);
  }

  lua_pushcfunction(L, backfill_body);
  lua_pushlightuserdata(L, &b);
  lua_pushvalue(L, 3);
  int st = lua_pcall(L, 2, 0, 0);
  if (st != LUA_OK && b.fn_row) fn_failed(L, &b);
  double secs = b.progress_started ? lm_progress_elapsed(&b.progress) : 0;
  backfill_free(&b);
  if (st != LUA_OK) {
    if (b.own_tx) lm_tx_rollback(env);
    luaL_where(L, 1);
    lua_insert(L, -2);
    lua_concat(L, 2);
    lm_op_note_raised(L, &b.fail_code);
    return lua_error(L);
  }
  char nr[32], nu[32], ns[32], rate[32];
  lm_progress_count(nr, sizeof nr, b.read);
  lm_progress_count(nu, sizeof nu, b.updated);
  lm_progress_count(ns, sizeof ns, b.skipped);
  lm_progress_count(rate, sizeof rate,
                    secs > 0 ? (int64_t)((double)b.read / secs) : 0);
  lm_emit(env, LM_EVENT_INFO, b.revision, "backfill %s: %s rows read, %s "
          "updated, %s skipped in %.2f s (%s rows/s)", b.table, nr, nu, ns,
          secs, rate);
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, (lua_Integer)b.read);
  lua_setfield(L, -2, "read");
  lua_pushinteger(L, (lua_Integer)b.updated);
  lua_setfield(L, -2, "updated");
  lua_pushinteger(L, (lua_Integer)b.skipped);
  lua_setfield(L, -2, "skipped");
  lua_pushnumber(L, secs);
  lua_setfield(L, -2, "seconds");
  return 1;
}
