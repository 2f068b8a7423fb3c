/*
 * sqlite_data.c - data migrations on SQLite: prepared statements reused
 * across a run (backfill writes, bulk inserts) and row estimates.
 *
 * SQLite runs in the process, so a statement costs no round trip: the
 * fastest way to write many rows is one prepared statement stepped once
 * per row inside the migration's transaction, binding values by position
 * without copying them.
 */
#include <stdlib.h>
#include <string.h>

#include "sqlite.h"

/* Bind one value at position i.  Strings are bound without a copy
 * (SQLITE_STATIC): callers keep them alive until the statement is reset
 * and its bindings cleared. */
static int bind_value(sqlite3_stmt *st, int i, const lm_value *v) {
  switch (v->type) {
  case LM_V_NULL: return sqlite3_bind_null(st, i);
  case LM_V_INT:
  case LM_V_BOOL: return sqlite3_bind_int64(st, i, v->i);
  case LM_V_FLOAT: return sqlite3_bind_double(st, i, v->f);
  case LM_V_TEXT:
    return sqlite3_bind_text64(st, i, v->s ? v->s : "", v->len, SQLITE_STATIC,
                               SQLITE_UTF8);
  case LM_V_BLOB:
    return sqlite3_bind_blob64(st, i, v->s ? v->s : "", v->len, SQLITE_STATIC);
  }
  return SQLITE_MISUSE;
}

/* Step a bound statement to its end and make it ready for the next row. */
static int step_done(lm_conn *c, sqlite3_stmt *st, lm_err *err) {
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {}
  if (rc != SQLITE_DONE) {
    lm_sqlite_error(c, sqlite3_sql(st), err);
    sqlite3_reset(st);
    return LM_ERROR;
  }
  sqlite3_reset(st);
  return LM_OK;
}

/* "schema"."table", quoted where needed. */
static void qualified(lm_buf *b, const char *schema, const char *table) {
  if (schema) {
    lm_sqlite_quote_ident(b, schema);
    lm_buf_putc(b, '.');
  }
  lm_sqlite_quote_ident(b, table);
}

/* ---- prepared statements --------------------------------------------- */

struct lm_stmt {
  lm_conn *conn;
  sqlite3_stmt *stmt;
};

int lm_sqlite_prepare(lm_conn *conn, const char *sql, lm_stmt **out,
                      lm_err *err) {
  sqlite3_stmt *stmt = NULL;
  const char *tail = NULL;
  *out = NULL;
  if (sqlite3_prepare_v3(conn->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt,
                         &tail) != SQLITE_OK)
    return lm_sqlite_error(conn, sql, err);
  if (!stmt) return lm_err_set(err, "empty statement");
  lm_stmt *s = lm_xcalloc(1, sizeof *s);
  s->conn = conn;
  s->stmt = stmt;
  *out = s;
  return LM_OK;
}

/* Parameters are bound with a copy here ($n names, as everywhere): the
 * caller's values need not outlive the call. */
int lm_sqlite_stmt_exec(lm_stmt *s, size_t nparams, const lm_value *params,
                        int64_t *affected, lm_err *err) {
  sqlite3_reset(s->stmt);
  sqlite3_clear_bindings(s->stmt);
  const char *sql = sqlite3_sql(s->stmt);
  if (lm_sqlite_bind(s->conn, s->stmt, sql, nparams, params, err) != LM_OK)
    return LM_ERROR;
  if (step_done(s->conn, s->stmt, err) != LM_OK) return LM_ERROR;
  if (affected) *affected = sqlite3_changes64(s->conn->db);
  return LM_OK;
}

void lm_sqlite_stmt_close(lm_stmt *s) {
  if (!s) return;
  sqlite3_finalize(s->stmt);
  free(s);
}

/* ---- bulk insert ----------------------------------------------------- */

/* INSERT INTO t (cols) VALUES (?1, ...), prepared once and stepped per
 * row: inside the migration's transaction that is as fast as SQLite
 * inserts. */
int lm_sqlite_bulk_insert(lm_conn *conn, const char *schema, const char *table,
                          size_t ncols, const char *const *columns,
                          size_t nrows, const lm_value *values, lm_err *err) {
  if (!nrows) return LM_OK;
  if (ncols > 32766)
    return lm_err_set(err, "bulk insert into %s: too many columns (%zu)",
                      table, ncols);
  lm_buf sql = LM_BUF_INIT;
  lm_buf_puts(&sql, "INSERT INTO ");
  qualified(&sql, schema, table);
  lm_buf_puts(&sql, " (");
  for (size_t i = 0; i < ncols; i++) {
    if (i) lm_buf_puts(&sql, ", ");
    lm_sqlite_quote_ident(&sql, columns[i]);
  }
  lm_buf_puts(&sql, ") VALUES (");
  for (size_t i = 0; i < ncols; i++)
    lm_buf_printf(&sql, "%s?%zu", i ? ", " : "", i + 1);
  lm_buf_putc(&sql, ')');
  sqlite3_stmt *st = NULL;
  int rc = LM_OK;
  if (sqlite3_prepare_v2(conn->db, lm_buf_str(&sql), -1, &st, NULL) !=
      SQLITE_OK) {
    rc = lm_sqlite_error(conn, lm_buf_str(&sql), err);
    goto done;
  }
  for (size_t r = 0; r < nrows && rc == LM_OK; r++) {
    const lm_value *row = values + r * ncols;
    for (size_t i = 0; i < ncols && rc == LM_OK; i++)
      if (bind_value(st, (int)i + 1, &row[i]) != SQLITE_OK)
        rc = lm_sqlite_error(conn, lm_buf_str(&sql), err);
    if (rc == LM_OK) rc = step_done(conn, st, err);
    if (rc != LM_OK)
      lm_err_prefix(err, "bulk insert into %s, row %zu", table, r + 1);
  }
done:
  sqlite3_finalize(st);
  lm_buf_free(&sql);
  return rc;
}

/* ---- row estimate ---------------------------------------------------- */

/* SQLite keeps no row count; the span of rowids is one in O(log n) and
 * exact for a table whose rows were never deleted.  A WITHOUT ROWID
 * table has none: no estimate then. */
int lm_sqlite_estimate_rows(lm_conn *conn, const char *schema,
                            const char *table, int64_t *out, lm_err *err) {
  (void)err;
  *out = -1;
  lm_buf sql = LM_BUF_INIT;
  /* Each aggregate alone: max() and min() together in one SELECT scan
   * the whole table. */
  lm_buf_puts(&sql, "SELECT (SELECT max(rowid) FROM ");
  qualified(&sql, schema, table);
  lm_buf_puts(&sql, ") - (SELECT min(rowid) FROM ");
  qualified(&sql, schema, table);
  lm_buf_puts(&sql, ") + 1");
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(conn->db, lm_buf_str(&sql), -1, &st, NULL) ==
          SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW &&
      sqlite3_column_type(st, 0) == SQLITE_INTEGER)
    *out = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  lm_buf_free(&sql);
  return LM_OK;
}

/* ---- the backfill writer ---------------------------------------------- */

/* Statements for the column sets rows change, by signature (the column
 * names joined by \x1f).  A backfill nearly always changes one set. */
#define WRITER_CACHE 8

struct lm_writer {
  lm_conn *conn;
  char *target;                 /* quoted and qualified */
  size_t nkeys;
  char **keys;
  struct {
    char *sig;
    sqlite3_stmt *stmt;
  } cache[WRITER_CACHE];
  size_t ncache, next_evict;
  lm_buf sig, sql;
};

int lm_sqlite_writer_open(lm_conn *conn, const char *schema,
                          const char *table, size_t nkeys,
                          const char *const *keys, int order, lm_writer **out,
                          lm_err *err) {
  (void)order;   /* rows are found one by one: their order does not matter */
  (void)err;
  lm_writer *w = lm_xcalloc(1, sizeof *w);
  w->conn = conn;
  lm_buf t = LM_BUF_INIT;
  qualified(&t, schema, table);
  w->target = lm_buf_detach(&t);
  w->nkeys = nkeys;
  w->keys = lm_xcalloc(nkeys ? nkeys : 1, sizeof *w->keys);
  for (size_t i = 0; i < nkeys; i++) w->keys[i] = lm_xstrdup(keys[i]);
  *out = w;
  return LM_OK;
}

void lm_sqlite_writer_close(lm_writer *w) {
  if (!w) return;
  for (size_t i = 0; i < w->ncache; i++) {
    sqlite3_finalize(w->cache[i].stmt);
    free(w->cache[i].sig);
  }
  for (size_t i = 0; i < w->nkeys; i++) free(w->keys[i]);
  free(w->keys);
  free(w->target);
  lm_buf_free(&w->sig);
  lm_buf_free(&w->sql);
  free(w);
}

/* The statement updating the columns a row sets: UPDATE t SET c1 = ?1,
 * ... WHERE k1 = ?n AND ...; values bind in that order, keys last. */
static int writer_stmt(lm_writer *w, size_t ncols, const char *const *cols,
                       const unsigned char *set, size_t nrows,
                       sqlite3_stmt **out, lm_err *err) {
  lm_buf_reset(&w->sig);
  for (size_t j = 0; j < ncols; j++)
    if (!set || set[j]) {
      lm_buf_puts(&w->sig, cols[j]);
      lm_buf_putc(&w->sig, '\x1f');
    }
  lm_buf_printf(&w->sig, "%zu", nrows);
  for (size_t i = 0; i < w->ncache; i++)
    if (strcmp(w->cache[i].sig, lm_buf_str(&w->sig)) == 0) {
      *out = w->cache[i].stmt;
      return LM_OK;
    }
  lm_buf *sql = &w->sql;
  lm_buf_reset(sql);
  if (nrows) {
    /* UPDATE t AS t SET c = v.columnK ... FROM (VALUES (?, ...), ...) AS v
     * WHERE t.k = v.column1 ...: values bind row by row, keys first. */
    lm_buf_printf(sql, "UPDATE %s AS t SET ", w->target);
    for (size_t j = 0; j < ncols; j++) {
      if (j) lm_buf_puts(sql, ", ");
      lm_sqlite_quote_ident(sql, cols[j]);
      lm_buf_printf(sql, " = v.column%zu", w->nkeys + j + 1);
    }
    lm_buf_puts(sql, " FROM (VALUES ");
    for (size_t r = 0; r < nrows; r++) {
      lm_buf_puts(sql, r ? ", (?" : "(?");
      for (size_t j = 1; j < w->nkeys + ncols; j++) lm_buf_puts(sql, ", ?");
      lm_buf_putc(sql, ')');
    }
    lm_buf_puts(sql, ") AS v WHERE ");
    for (size_t i = 0; i < w->nkeys; i++) {
      if (i) lm_buf_puts(sql, " AND ");
      lm_buf_puts(sql, "t.");
      lm_sqlite_quote_ident(sql, w->keys[i]);
      lm_buf_printf(sql, " = v.column%zu", i + 1);
    }
  } else {
    lm_buf_printf(sql, "UPDATE %s SET ", w->target);
    int n = 0;
    for (size_t j = 0; j < ncols; j++) {
      if (set && !set[j]) continue;
      if (n) lm_buf_puts(sql, ", ");
      lm_sqlite_quote_ident(sql, cols[j]);
      lm_buf_printf(sql, " = ?%d", ++n);
    }
    lm_buf_puts(sql, " WHERE ");
    for (size_t i = 0; i < w->nkeys; i++) {
      if (i) lm_buf_puts(sql, " AND ");
      lm_sqlite_quote_ident(sql, w->keys[i]);
      lm_buf_printf(sql, " = ?%d", ++n);
    }
  }
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v3(w->conn->db, lm_buf_str(sql), -1,
                         SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
    return lm_sqlite_error(w->conn, lm_buf_str(sql), err);
  size_t slot = w->ncache < WRITER_CACHE ? w->ncache++
                                         : w->next_evict++ % WRITER_CACHE;
  if (w->cache[slot].stmt) {
    sqlite3_finalize(w->cache[slot].stmt);
    free(w->cache[slot].sig);
  }
  w->cache[slot].sig = lm_xstrdup(lm_buf_str(&w->sig));
  w->cache[slot].stmt = st;
  *out = st;
  return LM_OK;
}

/* Rows that all set the same columns go VALUES_ROWS at a time through
 * one UPDATE ... FROM (VALUES ...): a statement step per chunk instead of
 * one per row, within SQLite's limit on parameters. */
#define VALUES_ROWS 500

static int writer_run_batch(lm_writer *w, size_t ncols,
                            const char *const *cols, size_t nrows,
                            const lm_value *values, int64_t *affected,
                            lm_err *err) {
  size_t width = w->nkeys + ncols;
  size_t per = VALUES_ROWS;
  if (per * width > 32766) per = 32766 / width;
  if (!per) per = 1;
  int64_t total = 0;
  int rc = LM_OK;
  for (size_t r = 0; r < nrows && rc == LM_OK; r += per) {
    size_t n = nrows - r < per ? nrows - r : per;
    sqlite3_stmt *st = NULL;
    rc = writer_stmt(w, ncols, cols, NULL, n, &st, err);
    if (rc != LM_OK) break;
    const lm_value *row = values + r * width;
    for (size_t k = 0; k < n * width && rc == LM_OK; k++)
      if (bind_value(st, (int)k + 1, &row[k]) != SQLITE_OK)
        rc = lm_sqlite_error(w->conn, sqlite3_sql(st), err);
    if (rc == LM_OK) rc = step_done(w->conn, st, err);
    if (rc == LM_OK) total += sqlite3_changes64(w->conn->db);
    sqlite3_clear_bindings(st);
  }
  if (affected) *affected = total;
  return rc;
}

int lm_sqlite_writer_run(lm_writer *w, size_t ncols, const char *const *cols,
                         size_t nrows, const lm_value *values,
                         const unsigned char *set, int64_t *affected,
                         lm_err *err) {
  size_t width = w->nkeys + ncols;
  int64_t total = 0;
  int rc = LM_OK;
  sqlite3_stmt *st = NULL;
  const unsigned char *prev = NULL;
  if (!set && nrows > 1 && ncols)
    return writer_run_batch(w, ncols, cols, nrows, values, affected, err);
  for (size_t r = 0; r < nrows && rc == LM_OK; r++) {
    const unsigned char *rs = set ? set + r * ncols : NULL;
    /* The previous row's statement serves while the column set is the
     * same, which is nearly always. */
    if (!st || (rs && memcmp(rs, prev, ncols) != 0)) {
      if (st) sqlite3_clear_bindings(st);
      rc = writer_stmt(w, ncols, cols, rs, 0, &st, err);
      if (rc != LM_OK) break;
    }
    prev = rs;
    const lm_value *row = values + r * width;
    int n = 0;
    for (size_t j = 0; j < ncols && rc == LM_OK; j++)
      if (!rs || rs[j])
        if (bind_value(st, ++n, &row[w->nkeys + j]) != SQLITE_OK)
          rc = lm_sqlite_error(w->conn, sqlite3_sql(st), err);
    for (size_t i = 0; i < w->nkeys && rc == LM_OK; i++)
      if (bind_value(st, ++n, &row[i]) != SQLITE_OK)
        rc = lm_sqlite_error(w->conn, sqlite3_sql(st), err);
    if (rc != LM_OK || n == (int)w->nkeys) continue;   /* nothing to set */
    rc = step_done(w->conn, st, err);
    if (rc == LM_OK) total += sqlite3_changes64(w->conn->db);
  }
  /* Drop the references to the caller's strings. */
  if (st) sqlite3_clear_bindings(st);
  if (affected) *affected = total;
  return rc;
}
