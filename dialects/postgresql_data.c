/*
 * postgresql_data.c - data migrations on PostgreSQL: prepared statements,
 * COPY for bulk inserts, and the planner's row estimate.
 */
#include <stdlib.h>

#include "postgresql.h"

struct lm_stmt {
  lm_conn *conn;
};

int lm_pg_prepare(lm_conn *conn, const char *sql, lm_stmt **out, lm_err *err) {
  (void)conn;
  (void)sql;
  *out = NULL;
  return lm_err_set(err, "prepared statements are not available yet");
}

int lm_pg_stmt_exec(lm_stmt *s, size_t nparams, const lm_value *params,
                    int64_t *affected, lm_err *err) {
  (void)s;
  (void)nparams;
  (void)params;
  (void)affected;
  return lm_err_set(err, "prepared statements are not available yet");
}

void lm_pg_stmt_close(lm_stmt *s) {
  free(s);
}

int lm_pg_bulk_insert(lm_conn *conn, const char *schema, const char *table,
                      size_t ncols, const char *const *columns, size_t nrows,
                      const lm_value *values, lm_err *err) {
  (void)conn;
  (void)schema;
  (void)table;
  (void)ncols;
  (void)columns;
  (void)nrows;
  (void)values;
  return lm_err_set(err, "bulk_insert is not available yet");
}

int lm_pg_estimate_rows(lm_conn *conn, const char *schema, const char *table,
                        int64_t *out, lm_err *err) {
  (void)conn;
  (void)schema;
  (void)table;
  (void)err;
  *out = -1;
  return LM_OK;
}
