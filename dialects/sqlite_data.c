/*
 * sqlite_data.c - data migrations on SQLite: prepared statements reused
 * across a run (bulk inserts, $n statements) and row estimates.
 *
 * SQLite runs in the process, so a statement costs no round trip: the
 * fastest way to write many rows is one prepared statement stepped once
 * per row inside the migration's transaction, binding values by position
 * without copying them.  The backfill writer is in sqlite_writer.c.
 */
#include <stdlib.h>
#include <string.h>

#include "sqlite.h"
#include "sqlite_ddl.h"

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

int lm_sqlite_bind_values(lm_conn *c, sqlite3_stmt *st, int first,
                          const lm_value *v, size_t n, lm_err *err) {
  for (size_t i = 0; i < n; i++)
    if (bind_value(st, first + (int)i, &v[i]) != SQLITE_OK)
      return lm_sqlite_error(c, sqlite3_sql(st), err);
  return LM_OK;
}

/* Step a bound statement to its end and make it ready for the next row. */
int lm_sqlite_step_done(lm_conn *c, sqlite3_stmt *st, lm_err *err) {
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
  if (lm_sqlite_step_done(s->conn, s->stmt, err) != LM_OK) return LM_ERROR;
  if (affected) *affected = sqlite3_changes64(s->conn->db);
  return LM_OK;
}

void lm_sqlite_stmt_close(lm_stmt *s) {
  if (!s) return;
  sqlite3_finalize(s->stmt);
  free(s);
}

/* ---- bulk loads ---------------------------------------------------- */

/* INSERT INTO t (cols) VALUES (?1, ...), prepared once and stepped per
 * row: inside the migration's transaction that is as fast as SQLite
 * inserts.  Each put is done when it returns. */
struct lm_loader {
  lm_conn *conn;
  sqlite3_stmt *stmt;
  size_t ncols;
  size_t rows;                  /* rows put so far */
};

int lm_sqlite_loader_open(lm_conn *conn, const char *schema,
                          const char *table, size_t ncols,
                          const char *const *columns, lm_loader **out,
                          lm_err *err) {
  *out = NULL;
  if (!ncols || ncols > 32766)
    return lm_err_set(err, "bulk insert into %s: %zu columns", table, ncols);
  lm_buf sql = LM_BUF_INIT;
  lm_buf_puts(&sql, "INSERT INTO ");
  lm_ddl_qualified(&lm_sqlite_traits, &sql, schema, table);
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
  if (sqlite3_prepare_v3(conn->db, lm_buf_str(&sql), -1,
                         SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
    lm_sqlite_error(conn, lm_buf_str(&sql), err);
    lm_buf_free(&sql);
    return LM_ERROR;
  }
  lm_buf_free(&sql);
  lm_loader *l = lm_xcalloc(1, sizeof *l);
  l->conn = conn;
  l->stmt = st;
  l->ncols = ncols;
  *out = l;
  return LM_OK;
}

int lm_sqlite_loader_put(lm_loader *l, size_t nrows, const lm_value *values,
                         lm_err *err) {
  int rc = LM_OK;
  for (size_t r = 0; r < nrows && rc == LM_OK; r++) {
    const lm_value *row = values + r * l->ncols;
    rc = lm_sqlite_bind_values(l->conn, l->stmt, 1, row, l->ncols, err);
    if (rc == LM_OK) rc = lm_sqlite_step_done(l->conn, l->stmt, err);
    if (rc != LM_OK) lm_err_prefix(err, "row %zu", l->rows + r + 1);
  }
  /* The values are the caller's: no binding may outlive the call. */
  sqlite3_clear_bindings(l->stmt);
  l->rows += nrows;
  return rc;
}

int lm_sqlite_loader_close(lm_loader *l, int abandon, lm_err *err) {
  (void)err;
  if (!l) return LM_OK;
  sqlite3_finalize(l->stmt);
  free(l);
  return abandon ? LM_ERROR : LM_OK;
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
  lm_ddl_qualified(&lm_sqlite_traits, &sql, schema, table);
  lm_buf_puts(&sql, ") - (SELECT min(rowid) FROM ");
  lm_ddl_qualified(&lm_sqlite_traits, &sql, schema, table);
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
