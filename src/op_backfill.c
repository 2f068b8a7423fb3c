/*
 * op_backfill.c - op.backfill(table, opts, fn) (DESIGN section 5): keyset
 * pagination over a key, one read per batch, fn(row) per row, and one
 * write per batch through the dialect's writer.
 *
 *   SELECT k, cols FROM t WHERE (where) AND k > $last ORDER BY k LIMIT $n
 *
 * The read is a fresh statement per batch, never a cursor held across
 * batches, so the same loop serves a backfill inside the migration's
 * transaction and one that commits every N rows (commit_every, in a
 * transactional = false script).  The latter records its last key in
 * luamig_backfill (revision, name) in the transaction of each commit, and
 * an interrupted run resumes after it.
 *
 * The Lua work (the row tables, fn, the conversion of what it returns)
 * runs under lua_pcall, so whatever it raises, the cursor, the writer and
 * the buffers are released here and a transaction of our own is rolled
 * back before the error goes on to the script.
 */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "op_data.h"
#include "op_internal.h"
#include "progress.h"

#define DEFAULT_BATCH 1000
/* The table that remembers where a commit_every backfill got to. */
#define STATE_TABLE "luamig_backfill"

/* One column value a function returned: for the row'th changed row of
 * the batch, the col'th column the run has seen. */
typedef struct change {
  size_t row, col;
  lm_value v;
} change;

/* A backfill in progress.  Strings of the batch live in `pool` and are
 * referred to by offset (in v.i) until the batch is written, so a batch
 * allocates nothing once the buffers have grown to size. */
typedef struct backfill {
  lm_env *env;
  const lm_dialect *d;
  const char *table, *schema, *where, *name, *revision;
  const char *const *keys;
  size_t nkeys;
  const char *const *columns;   /* NULL: every column */
  size_t ncolumns;
  int64_t batch, commit_every;
  int order;                    /* 1 ascending, -1 descending */
  int in_fn;                    /* fn is running on the cursor's row */
  /* resources, released on every path */
  lm_cursor *cur;
  lm_writer *writer;
  int own_tx;
  lm_arena names;               /* column names the function set */
  lm_buf sql_first, sql_next, pool, last_pool;
  lm_value *keyvals;            /* batch rows' keys, nkeys each */
  size_t keycap;
  lm_value *last;               /* the last key read (nkeys) */
  int have_last;
  change *changes;
  size_t nchanges, capchanges;
  size_t *changed;              /* batch row of each changed row */
  size_t nchanged, capchanged;
  const char **gcols;           /* columns set by the function, run-wide */
  size_t ngcols, capgcols;
  const char **usedcols;        /* the columns this batch sets */
  size_t capused;
  lm_value *matrix;             /* the writer's rows */
  size_t capmatrix;
  unsigned char *set;
  size_t capset;
  size_t *remap;                /* run-wide column -> batch column */
  size_t capremap;
  /* counts */
  int64_t read, updated, skipped;
  int64_t prior, prior_updated, prior_skipped;  /* by interrupted runs */
  int64_t in_tx;                /* rows read since the last commit */
  lm_progress progress;
  int progress_started;
  lm_err err;
} backfill;

/* Grow an array to hold n elements of size sz. */
static void *grow(void *p, size_t *cap, size_t n, size_t sz) {
  if (n <= *cap) return p;
  size_t c = *cap ? *cap : 64;
  while (c < n) c *= 2;
  *cap = c;
  return lm_xrealloc(p, c * sz);
}

/* Copy a value's bytes into pool, leaving their offset in v->i: the pool
 * may move as it grows, so pointers are made only when it is complete. */
static void pool_value(lm_buf *pool, lm_value *v) {
  if (v->type != LM_V_TEXT && v->type != LM_V_BLOB) return;
  v->i = (int64_t)pool->len;
  lm_buf_add(pool, v->s ? v->s : "", v->len);
  lm_buf_putc(pool, '\0');
  v->s = NULL;
}

static void pool_fix(const lm_buf *pool, lm_value *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (v[i].type == LM_V_TEXT || v[i].type == LM_V_BLOB)
      v[i].s = pool->data + v[i].i;
}

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

/* ---- where a commit_every backfill got to -------------------------------- */

/* Keys are stored as text: per value a type letter, the length of its
 * text, ':' and the text (blobs in hex), so any key type round-trips. */
static void encode_key(lm_buf *b, const lm_value *v, size_t n) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    char num[64];
    switch (v[i].type) {
    case LM_V_NULL: lm_buf_puts(b, "n0:"); break;
    case LM_V_INT:
      snprintf(num, sizeof num, "%lld", (long long)v[i].i);
      lm_buf_printf(b, "i%zu:%s", strlen(num), num);
      break;
    case LM_V_FLOAT:
      snprintf(num, sizeof num, "%.17g", v[i].f);
      lm_buf_printf(b, "f%zu:%s", strlen(num), num);
      break;
    case LM_V_BOOL: lm_buf_printf(b, "b1:%d", (int)v[i].i); break;
    case LM_V_TEXT:
      lm_buf_printf(b, "t%zu:", v[i].len);
      lm_buf_add(b, v[i].s, v[i].len);
      break;
    case LM_V_BLOB:
      lm_buf_printf(b, "x%zu:", v[i].len * 2);
      for (size_t k = 0; k < v[i].len; k++) {
        lm_buf_putc(b, hex[(unsigned char)v[i].s[k] >> 4]);
        lm_buf_putc(b, hex[(unsigned char)v[i].s[k] & 15]);
      }
      break;
    }
  }
}

/* Decode n values into v, their bytes into pool (offsets fixed at the
 * end).  0 on success, -1 on text that is not an encoded key. */
static int decode_key(const char *s, size_t len, lm_value *v, size_t n,
                      lm_buf *pool) {
  const char *p = s, *end = s + len;
  lm_buf_reset(pool);
  for (size_t i = 0; i < n; i++) {
    if (p >= end) return -1;
    char type = *p++;
    char *colon;
    unsigned long long l = strtoull(p, &colon, 10);
    if (colon == p || *colon != ':' || l > (size_t)(end - colon - 1)) return -1;
    const char *text = colon + 1;
    p = text + l;
    memset(&v[i], 0, sizeof v[i]);
    char *tmp = lm_xstrndup(text, (size_t)l);
    switch (type) {
    case 'n': v[i].type = LM_V_NULL; break;
    case 'i': v[i].type = LM_V_INT; v[i].i = strtoll(tmp, NULL, 10); break;
    case 'f': v[i].type = LM_V_FLOAT; v[i].f = strtod(tmp, NULL); break;
    case 'b': v[i].type = LM_V_BOOL; v[i].i = tmp[0] == '1'; break;
    case 't':
      v[i].type = LM_V_TEXT;
      v[i].i = (int64_t)pool->len;
      v[i].len = (size_t)l;
      lm_buf_add(pool, text, (size_t)l);
      lm_buf_putc(pool, '\0');
      break;
    case 'x':
      v[i].type = LM_V_BLOB;
      v[i].i = (int64_t)pool->len;
      v[i].len = (size_t)l / 2;
      for (size_t k = 0; k + 1 < l; k += 2) {
        char byte[3] = {tmp[k], tmp[k + 1], 0};
        lm_buf_putc(pool, (char)strtol(byte, NULL, 16));
      }
      lm_buf_putc(pool, '\0');
      break;
    default:
      free(tmp);
      return -1;
    }
    free(tmp);
  }
  pool_fix(pool, v, n);
  return p == end ? 0 : -1;
}

/* The state table's qualified name. */
static void state_name(backfill *b, lm_buf *out) {
  if (b->env->version_table_schema) {
    b->d->quote_ident(out, b->env->version_table_schema);
    lm_buf_putc(out, '.');
  }
  b->d->quote_ident(out, STATE_TABLE);
}

/* Create the state table if needed, in a transaction of its own. */
static int state_ensure(backfill *b) {
#define T(k) {.kind = (k), .length = -1, .precision = -1, .scale = -1}
#define S(n) {.kind = LM_T_STRING, .length = (n), .precision = -1, .scale = -1}
  lm_column cols[] = {
    {.name = "revision", .type = S(32), .nullable = 0},
    {.name = "name", .type = S(255), .nullable = 0},
    {.name = "last_key", .type = T(LM_T_TEXT), .nullable = 1},
    {.name = "rows_read", .type = T(LM_T_BIGINT), .nullable = 1},
    {.name = "rows_updated", .type = T(LM_T_BIGINT), .nullable = 1},
    {.name = "rows_skipped", .type = T(LM_T_BIGINT), .nullable = 1},
  };
#undef T
#undef S
  static const char *const pk_cols[] = {"revision", "name"};
  lm_constraint pk = {.kind = LM_CON_PRIMARY_KEY, .columns = pk_cols,
                      .ncolumns = 2, .deferrable = -1};
  lm_op op = {.kind = LM_OP_CREATE_TABLE,
              .schema = b->env->version_table_schema, .table = STATE_TABLE,
              .columns = cols, .ncolumns = sizeof cols / sizeof *cols,
              .constraints = &pk, .nconstraints = 1, .if_not_exists = 1};
  lm_env *env = b->env;
  if (lm_tx_begin(env) != LM_OK) {
    lm_err_move(&b->err, &env->err);
    return LM_ERROR;
  }
  if (lm_op_apply(env, &op, &b->err) != LM_OK) {
    lm_tx_rollback(env);
    return LM_ERROR;
  }
  if (lm_tx_commit(env) != LM_OK) {
    lm_err_move(&b->err, &env->err);
    lm_tx_rollback(env);
    return LM_ERROR;
  }
  return LM_OK;
}

/* revision and name as the two parameters every state statement ends
 * with. */
static void state_ids(backfill *b, lm_value *p) {
  p[0] = (lm_value){.type = LM_V_TEXT, .s = b->revision,
                    .len = strlen(b->revision)};
  p[1] = (lm_value){.type = LM_V_TEXT, .s = b->name, .len = strlen(b->name)};
}

/* Read where an earlier, interrupted run got to. */
static int state_load(backfill *b) {
  lm_buf sql = LM_BUF_INIT;
  lm_buf_puts(&sql, "SELECT last_key, rows_read, rows_updated, rows_skipped "
              "FROM ");
  state_name(b, &sql);
  lm_buf_puts(&sql, " WHERE revision = $1 AND name = $2");
  lm_value p[2];
  state_ids(b, p);
  lm_cursor *cur = NULL;
  int rc = b->d->query(b->env->conn, lm_buf_str(&sql), 2, p, &cur, &b->err);
  lm_buf_free(&sql);
  if (rc != LM_OK) return rc;
  rc = b->d->cursor_next(cur, &b->err);
  if (rc == 1) {
    const lm_value *k = b->d->cursor_value(cur, 0);
    if (k->type == LM_V_TEXT &&
        decode_key(k->s, k->len, b->last, b->nkeys, &b->last_pool) == 0) {
      b->have_last = 1;
      const lm_value *n = b->d->cursor_value(cur, 1);
      b->prior = n->type == LM_V_INT ? n->i : 0;
      n = b->d->cursor_value(cur, 2);
      b->prior_updated = n->type == LM_V_INT ? n->i : 0;
      n = b->d->cursor_value(cur, 3);
      b->prior_skipped = n->type == LM_V_INT ? n->i : 0;
    }
    rc = LM_OK;
  }
  b->d->cursor_close(cur);
  return rc < 0 ? LM_ERROR : LM_OK;
}

/* Record the last key, in the transaction that wrote its batch. */
static int state_save(backfill *b) {
  lm_buf key = LM_BUF_INIT, sql = LM_BUF_INIT;
  encode_key(&key, b->last, b->nkeys);
  lm_value p[6] = {
    {.type = LM_V_TEXT, .s = lm_buf_str(&key), .len = key.len},
    {.type = LM_V_INT, .i = b->prior + b->read},
    {.type = LM_V_INT, .i = b->prior_updated + b->updated},
    {.type = LM_V_INT, .i = b->prior_skipped + b->skipped},
  };
  state_ids(b, p + 4);
  lm_buf_puts(&sql, "UPDATE ");
  state_name(b, &sql);
  lm_buf_puts(&sql, " SET last_key = $1, rows_read = $2, rows_updated = $3, "
              "rows_skipped = $4 WHERE revision = $5 AND name = $6");
  int64_t n = 0;
  int rc = b->d->exec(b->env->conn, lm_buf_str(&sql), 6, p, &n, &b->err);
  if (rc == LM_OK && n == 0) {
    lm_buf_reset(&sql);
    lm_buf_puts(&sql, "INSERT INTO ");
    state_name(b, &sql);
    lm_buf_puts(&sql, " (last_key, rows_read, rows_updated, rows_skipped, "
                "revision, name) VALUES ($1, $2, $3, $4, $5, $6)");
    rc = b->d->exec(b->env->conn, lm_buf_str(&sql), 6, p, NULL, &b->err);
  }
  lm_buf_free(&key);
  lm_buf_free(&sql);
  return rc;
}

/* The backfill finished: forget its state, so running the migration
 * again (after a downgrade) starts from the beginning. */
static int state_clear(backfill *b) {
  lm_buf sql = LM_BUF_INIT;
  lm_buf_puts(&sql, "DELETE FROM ");
  state_name(b, &sql);
  lm_buf_puts(&sql, " WHERE revision = $1 AND name = $2");
  lm_value p[2];
  state_ids(b, p);
  int rc = b->d->exec(b->env->conn, lm_buf_str(&sql), 2, p, NULL, &b->err);
  lm_buf_free(&sql);
  return rc;
}

/* ---- the read -------------------------------------------------------------- */

/* The key columns as "k" or "(k1, k2)", or the parameters "$1" or
 * "($1, $2)" that compare with them. */
static void key_tuple(backfill *b, lm_buf *sql, int params) {
  if (b->nkeys > 1) lm_buf_putc(sql, '(');
  for (size_t i = 0; i < b->nkeys; i++) {
    if (i) lm_buf_puts(sql, ", ");
    if (params) lm_buf_printf(sql, "$%zu", i + 1);
    else b->d->quote_ident(sql, b->keys[i]);
  }
  if (b->nkeys > 1) lm_buf_putc(sql, ')');
}

/* SELECT keys, columns FROM t WHERE (where) AND keys > $last ORDER BY
 * keys LIMIT $n; `after` says whether there is a last key yet.  A row
 * comparison keeps composite keys exact and uses their index. */
static void build_select(backfill *b, lm_buf *sql, int after) {
  lm_buf_puts(sql, "SELECT ");
  for (size_t i = 0; i < b->nkeys; i++) {
    b->d->quote_ident(sql, b->keys[i]);
    lm_buf_puts(sql, ", ");
  }
  if (!b->columns) lm_buf_putc(sql, '*');
  for (size_t i = 0; b->columns && i < b->ncolumns; i++) {
    if (i) lm_buf_puts(sql, ", ");
    b->d->quote_ident(sql, b->columns[i]);
  }
  lm_buf_puts(sql, " FROM ");
  if (b->schema) {
    b->d->quote_ident(sql, b->schema);
    lm_buf_putc(sql, '.');
  }
  b->d->quote_ident(sql, b->table);
  if (b->where) lm_buf_printf(sql, " WHERE (%s)", b->where);
  if (after) {
    lm_buf_puts(sql, b->where ? " AND " : " WHERE ");
    key_tuple(b, sql, 0);
    lm_buf_puts(sql, b->order > 0 ? " > " : " < ");
    key_tuple(b, sql, 1);
  }
  lm_buf_puts(sql, " ORDER BY ");
  for (size_t i = 0; i < b->nkeys; i++) {
    if (i) lm_buf_puts(sql, ", ");
    b->d->quote_ident(sql, b->keys[i]);
    if (b->order < 0) lm_buf_puts(sql, " DESC");
  }
  lm_buf_printf(sql, " LIMIT $%zu", after ? b->nkeys + 1 : 1);
}

/* ---- the write ------------------------------------------------------------- */

/* Lay the batch's changes out as the writer takes them: one row per
 * changed row, its keys then the columns this batch sets, and a flag per
 * column when not every row sets every one. */
static int write_batch(backfill *b) {
  if (!b->nchanged) return LM_OK;
  b->remap = grow(b->remap, &b->capremap, b->ngcols, sizeof *b->remap);
  b->usedcols = grow(b->usedcols, &b->capused, b->ngcols,
                     sizeof *b->usedcols);
  for (size_t i = 0; i < b->ngcols; i++) b->remap[i] = (size_t)-1;
  size_t nused = 0;
  for (size_t i = 0; i < b->nchanges; i++) {
    change *c = &b->changes[i];
    if (b->remap[c->col] == (size_t)-1) {
      b->remap[c->col] = nused;
      b->usedcols[nused++] = b->gcols[c->col];
    }
    pool_fix(&b->pool, &c->v, 1);
  }
  size_t width = b->nkeys + nused;
  b->matrix = grow(b->matrix, &b->capmatrix, b->nchanged * width,
                   sizeof *b->matrix);
  b->set = grow(b->set, &b->capset, b->nchanged * nused, 1);
  memset(b->matrix, 0, b->nchanged * width * sizeof *b->matrix);
  memset(b->set, 0, b->nchanged * nused);
  for (size_t r = 0; r < b->nchanged; r++)
    memcpy(&b->matrix[r * width], &b->keyvals[b->changed[r] * b->nkeys],
           b->nkeys * sizeof *b->matrix);
  for (size_t i = 0; i < b->nchanges; i++) {
    change *c = &b->changes[i];
    size_t j = b->remap[c->col];
    b->matrix[c->row * width + b->nkeys + j] = c->v;
    b->set[c->row * nused + j] = 1;
  }
  int all = 1;
  for (size_t i = 0; all && i < b->nchanged * nused; i++) all = b->set[i];
  int64_t n = 0;
  int rc = b->d->writer_run(b->writer, nused, b->usedcols, b->nchanged,
                            b->matrix, all ? NULL : b->set, &n, &b->err);
  b->updated += n;
  return rc;
}

/* ---- one row ---------------------------------------------------------------- */

/* fn raised: replace the error at the top of the stack with one naming
 * the row by its key, which is what a person needs to find it.  The
 * cursor still holds the row. */
static void fn_failed(lua_State *L, backfill *b) {
  lm_buf msg = LM_BUF_INIT;
  lm_value *k = lm_xcalloc(b->nkeys, sizeof *k);
  for (size_t i = 0; i < b->nkeys; i++) k[i] = *b->d->cursor_value(b->cur, i);
  lm_buf_printf(&msg, "backfill %s: the function failed on the row with ",
                b->table);
  describe_key(&msg, b->keys, b->nkeys, k);
  free(k);
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
static void take_result(lua_State *L, backfill *b, int res, size_t r) {
  int t = lua_type(L, res);
  if (t == LUA_TNIL) {
    b->skipped++;
    return;
  }
  if (t != LUA_TTABLE)
    luaL_error(L, "backfill %s: the function must return a table of "
               "column = new value, or nil to skip the row, not a %s",
               b->table, luaL_typename(L, res));
  size_t before = b->nchanges;
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
      b->gcols = grow(b->gcols, &b->capgcols, b->ngcols + 1,
                      sizeof *b->gcols);
      col = b->ngcols;
      b->gcols[b->ngcols++] = lm_arena_strdup(&b->names, name);
      lua_pushvalue(L, -3);
      lua_pushinteger(L, (lua_Integer)col);
      lua_rawset(L, 4);
    }
    lua_pop(L, 1);
    b->changes = grow(b->changes, &b->capchanges, b->nchanges + 1,
                      sizeof *b->changes);
    change *c = &b->changes[b->nchanges++];
    c->row = b->nchanged;
    c->col = col;
    lm_data_value(L, -1, "backfill", b->gcols[col], &c->v);
    pool_value(&b->pool, &c->v);
    lua_pop(L, 1);
  }
  if (b->nchanges == before) {
    b->skipped++;
    return;
  }
  b->changed = grow(b->changed, &b->capchanged, b->nchanged + 1,
                    sizeof *b->changed);
  b->changed[b->nchanged++] = r;
}

/* ---- the loop ---------------------------------------------------------------- */

/* Raise b->err from inside the protected body. */
static int body_fail(lua_State *L, backfill *b) {
  lua_pushfstring(L, "backfill %s: %s", b->table, lm_err_msg(&b->err));
  return lua_error(L);
}

/* Start a transaction of our own when the script runs outside one. */
static int own_begin(backfill *b) {
  if (!b->own_tx || b->env->tx_open) return LM_OK;
  if (lm_tx_begin(b->env) == LM_OK) return LM_OK;
  lm_err_move(&b->err, &b->env->err);
  return LM_ERROR;
}

static int own_commit(backfill *b) {
  if (!b->own_tx || !b->env->tx_open) return LM_OK;
  if (lm_tx_commit(b->env) == LM_OK) return LM_OK;
  lm_err_move(&b->err, &b->env->err);
  return LM_ERROR;
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
  int top = 4;
  size_t ncols = 0;
  lm_value *params = lm_arena_alloc(&b->names, (b->nkeys + 1) * sizeof *params);

  if (b->commit_every && (state_ensure(b) != LM_OK || state_load(b) != LM_OK))
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

  for (;;) {
    if (own_begin(b) != LM_OK) return body_fail(L, b);
    int64_t limit = b->batch;
    if (b->commit_every && b->commit_every - b->in_tx < limit)
      limit = b->commit_every - b->in_tx;
    size_t np = 0;
    if (b->have_last)
      for (; np < b->nkeys; np++) params[np] = b->last[np];
    params[np++] = (lm_value){.type = LM_V_INT, .i = limit};
    const char *sql = lm_buf_str(b->have_last ? &b->sql_next : &b->sql_first);
    if (d->query(env->conn, sql, np, params, &b->cur, &b->err) != LM_OK)
      return body_fail(L, b);
    if (!ncols) {
      ncols = d->cursor_ncols(b->cur);
      luaL_checkstack(L, (int)ncols + 16, "backfill: too many columns");
      for (size_t i = 0; i < ncols; i++) {
        const char *name = d->cursor_colname(b->cur, i);
        lua_pushstring(L, name ? name : "?");
      }
      top = 4 + (int)ncols;
    }
    size_t nread = 0;
    int rc;
    lm_buf_reset(&b->pool);
    b->nchanges = b->nchanged = 0;
    while ((rc = d->cursor_next(b->cur, &b->err)) == 1) {
      b->keyvals = grow(b->keyvals, &b->keycap, (nread + 1) * b->nkeys,
                        sizeof *b->keyvals);
      lm_value *kv = &b->keyvals[nread * b->nkeys];
      for (size_t i = 0; i < b->nkeys; i++) {
        kv[i] = *d->cursor_value(b->cur, i);
        if (kv[i].type == LM_V_NULL)
          luaL_error(L, "backfill %s: key column %s is NULL in a row; the "
                     "key must be unique and not null", b->table, b->keys[i]);
        pool_value(&b->pool, &kv[i]);
      }
      lua_pushvalue(L, 2);
      lua_createtable(L, 0, (int)ncols);
      for (size_t i = 0; i < ncols; i++) {
        lua_pushvalue(L, 5 + (int)i);
        lm_data_push(L, d->cursor_value(b->cur, i), 3);
        lua_rawset(L, -3);
      }
      /* Called unprotected, which saves a setjmp per row: an error
       * unwinds to lm_op_backfill's pcall, and in_fn tells it whose. */
      b->in_fn = 1;
      lua_call(L, 1, 1);
      b->in_fn = 0;
      take_result(L, b, top + 1, nread);
      lua_settop(L, top);
      nread++;
    }
    if (rc < 0) return body_fail(L, b);
    d->cursor_close(b->cur);
    b->cur = NULL;
    if (!nread) break;
    pool_fix(&b->pool, b->keyvals, nread * b->nkeys);
    if (write_batch(b) != LM_OK) return body_fail(L, b);
    /* The last key read is where the next batch starts. */
    lm_buf_reset(&b->last_pool);
    for (size_t i = 0; i < b->nkeys; i++) {
      b->last[i] = b->keyvals[(nread - 1) * b->nkeys + i];
      pool_value(&b->last_pool, &b->last[i]);
    }
    pool_fix(&b->last_pool, b->last, b->nkeys);
    b->have_last = 1;
    b->read += (int64_t)nread;
    b->in_tx += (int64_t)nread;
    if (lm_progress_update(&b->progress, b->prior + b->read) && env->on_event) {
      char msg[128];
      snprintf(msg, sizeof msg, "backfill %s: %lld rows read", b->table,
               (long long)(b->prior + b->read));
      lm_event ev = {LM_EVENT_PROGRESS, b->revision, msg};
      env->on_event(&ev, env->event_payload);
    }
    if (b->commit_every && b->in_tx >= b->commit_every) {
      if (state_save(b) != LM_OK || own_commit(b) != LM_OK)
        return body_fail(L, b);
      b->in_tx = 0;
    }
    if ((int64_t)nread < limit) break;
  }
  if (b->commit_every && (own_begin(b) != LM_OK || state_clear(b) != LM_OK))
    return body_fail(L, b);
  if (own_commit(b) != LM_OK) return body_fail(L, b);
  return 0;
}

/* Release what a backfill holds, on every path. */
static void backfill_free(backfill *b) {
  if (b->cur) b->d->cursor_close(b->cur);
  if (b->writer) b->d->writer_close(b->writer);
  if (b->progress_started) lm_progress_finish(&b->progress);
  lm_arena_free(&b->names);
  lm_buf_free(&b->sql_first);
  lm_buf_free(&b->sql_next);
  lm_buf_free(&b->pool);
  lm_buf_free(&b->last_pool);
  free(b->keyvals);
  free(b->last);
  free(b->changes);
  free(b->changed);
  free(b->gcols);
  free(b->usedcols);
  free(b->matrix);
  free(b->set);
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
  lm_env *env = lm_data_env(L, "backfill");
  backfill b;
  memset(&b, 0, sizeof b);
  b.env = env;
  b.d = env->dialect;
  b.table = lm_data_string(L, 1, "backfill", "the table name");
  lm_op_check_opts(L, 2, "backfill", allowed);
  if (!lua_isfunction(L, 3))
    luaL_error(L, "backfill: the third argument must be a function(row), "
               "not a %s", luaL_typename(L, 3));
  if (b.d->version < 3 || !b.d->writer_open)
    luaL_error(L, "backfill: the %s dialect cannot write batches", b.d->name);
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
  b.own_tx = !env->tx_open;
  if (b.commit_every && !b.own_tx)
    luaL_error(L, "backfill: commit_every needs a script with transactional "
               "= false; this one runs inside the migration's transaction, "
               "which commits once, at its end");
  b.revision = running_revision(env);
  b.last = lm_xcalloc(b.nkeys, sizeof *b.last);
  lm_arena_init(&b.names);
  lm_err_init(&b.err);

  lua_pushcfunction(L, backfill_body);
  lua_pushlightuserdata(L, &b);
  lua_pushvalue(L, 3);
  int st = lua_pcall(L, 2, 0, 0);
  if (st != LUA_OK && b.in_fn) fn_failed(L, &b);
  double secs = b.progress_started ? lm_progress_elapsed(&b.progress) : 0;
  backfill_free(&b);
  if (st != LUA_OK) {
    if (b.own_tx) lm_tx_rollback(env);
    luaL_where(L, 1);
    lua_insert(L, -2);
    lua_concat(L, 2);
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
