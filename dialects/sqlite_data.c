/*
 * sqlite_data.c - data migrations on SQLite: prepared statements reused
 * across a run (backfill writes, bulk inserts) and row estimates.
 */
#include <stdlib.h>

#include "sqlite.h"

struct lm_stmt {
  lm_conn *conn;
  sqlite3_stmt *stmt;
};

int lm_sqlite_prepare(lm_conn *conn, const char *sql, lm_stmt **out,
                      lm_err *err) {
  sqlite3_stmt *stmt = NULL;
  if (sqlite3_prepare_v2(conn->db, sql, -1, &stmt, NULL) != SQLITE_OK)
    return lm_sqlite_error(conn, sql, err);
  if (!stmt) return lm_err_set(err, "empty statement");
  lm_stmt *s = lm_xcalloc(1, sizeof *s);
  s->conn = conn;
  s->stmt = stmt;
  *out = s;
  return LM_OK;
}

int lm_sqlite_stmt_exec(lm_stmt *s, size_t nparams, const lm_value *params,
                        int64_t *affected, lm_err *err) {
  sqlite3_reset(s->stmt);
  sqlite3_clear_bindings(s->stmt);
  const char *sql = sqlite3_sql(s->stmt);
  if (lm_sqlite_bind(s->conn, s->stmt, sql, nparams, params, err) != LM_OK)
    return LM_ERROR;
  int rc;
  while ((rc = sqlite3_step(s->stmt)) == SQLITE_ROW) {}
  if (rc != SQLITE_DONE) return lm_sqlite_error(s->conn, sql, err);
  if (affected) *affected = sqlite3_changes64(s->conn->db);
  return LM_OK;
}

void lm_sqlite_stmt_close(lm_stmt *s) {
  if (!s) return;
  sqlite3_finalize(s->stmt);
  free(s);
}

int lm_sqlite_bulk_insert(lm_conn *conn, const char *schema, const char *table,
                          size_t ncols, const char *const *columns,
                          size_t nrows, const lm_value *values, lm_err *err) {
  lm_buf sql = LM_BUF_INIT;
  lm_buf_puts(&sql, "INSERT INTO ");
  if (schema) {
    lm_sqlite_quote_ident(&sql, schema);
    lm_buf_putc(&sql, '.');
  }
  lm_sqlite_quote_ident(&sql, table);
  lm_buf_puts(&sql, " (");
  for (size_t i = 0; i < ncols; i++) {
    if (i) lm_buf_puts(&sql, ", ");
    lm_sqlite_quote_ident(&sql, columns[i]);
  }
  lm_buf_puts(&sql, ") VALUES (");
  for (size_t i = 0; i < ncols; i++) lm_buf_printf(&sql, "%s$%zu", i ? ", " : "", i + 1);
  lm_buf_putc(&sql, ')');
  lm_stmt *stmt = NULL;
  int rc = lm_sqlite_prepare(conn, lm_buf_str(&sql), &stmt, err);
  lm_buf_free(&sql);
  for (size_t r = 0; rc == LM_OK && r < nrows; r++)
    rc = lm_sqlite_stmt_exec(stmt, ncols, values + r * ncols, NULL, err);
  lm_sqlite_stmt_close(stmt);
  return rc;
}

int lm_sqlite_estimate_rows(lm_conn *conn, const char *schema,
                            const char *table, int64_t *out, lm_err *err) {
  (void)conn;
  (void)schema;
  (void)table;
  (void)err;
  *out = -1;   /* SQLite keeps no cheap estimate; sqlite_stat1 may be absent */
  return LM_OK;
}
