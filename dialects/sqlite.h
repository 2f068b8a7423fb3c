/*
 * sqlite.h - what the SQLite dialect's files share: the connection and
 * cursor structs and helpers.  The core never includes this; it reaches the
 * dialect through lm_sqlite_dialect.
 */
#ifndef LM_SQLITE_H
#define LM_SQLITE_H

#include <sqlite3.h>

#include "dialect.h"

struct lm_conn {
  sqlite3 *db;
  char *path;           /* file name, or ":memory:" */
  int lock_fd;          /* the runner lock's file, or -1 */
  char *lock_path;
};

struct lm_cursor {
  lm_conn *conn;
  sqlite3_stmt *stmt;
  const char *sql;      /* for error messages; owned by the statement */
  size_t ncols;
  lm_value *row;
};

/* The database's message and the SQL, as every failed statement reports. */
int lm_sqlite_error(lm_conn *c, const char *sql, lm_err *err);
/* Bind $1, $2, ... of a prepared statement. */
int lm_sqlite_bind(lm_conn *c, sqlite3_stmt *stmt, const char *sql,
                   size_t nparams, const lm_value *params, lm_err *err);
void lm_sqlite_quote_ident(lm_buf *out, const char *ident);

/* sqlite_data.c */
int lm_sqlite_prepare(lm_conn *conn, const char *sql, lm_stmt **out,
                      lm_err *err);
int lm_sqlite_stmt_exec(lm_stmt *s, size_t nparams, const lm_value *params,
                        int64_t *affected, lm_err *err);
void lm_sqlite_stmt_close(lm_stmt *s);
int lm_sqlite_loader_open(lm_conn *conn, const char *schema,
                          const char *table, size_t ncols,
                          const char *const *columns, lm_loader **out,
                          lm_err *err);
int lm_sqlite_loader_put(lm_loader *l, size_t nrows, const lm_value *values,
                         lm_err *err);
int lm_sqlite_loader_close(lm_loader *l, int abandon, lm_err *err);
int lm_sqlite_estimate_rows(lm_conn *conn, const char *schema,
                            const char *table, int64_t *out, lm_err *err);
/* Bind n values to ?first, ?first+1, ... without copies (SQLITE_STATIC):
 * the caller keeps strings alive until the bindings are cleared.  A
 * failure reports the database's message and the statement. */
int lm_sqlite_bind_values(lm_conn *c, sqlite3_stmt *st, int first,
                          const lm_value *v, size_t n, lm_err *err);
/* Step a bound statement to its end and reset it for the next use. */
int lm_sqlite_step_done(lm_conn *c, sqlite3_stmt *st, lm_err *err);

/* sqlite_writer.c */
int lm_sqlite_writer_open(lm_conn *conn, const char *schema,
                          const char *table, size_t nkeys,
                          const char *const *keys, int order, lm_writer **out,
                          lm_err *err);
int lm_sqlite_writer_run(lm_writer *w, size_t ncols, const char *const *cols,
                         size_t nrows, const lm_value *values,
                         const unsigned char *set, int64_t *affected,
                         lm_err *err);
void lm_sqlite_writer_close(lm_writer *w);

/* sqlite_scratch.c: verify's scratch database, a temporary file */
int lm_sqlite_scratch_create(const lm_url *url, char **scratch_url,
                             lm_err *err);
int lm_sqlite_scratch_drop(const lm_url *url, const char *scratch_url,
                           lm_err *err);
int lm_sqlite_scratch_tune(lm_conn *c, lm_err *err);

/* sqlite_keep.c: kept data and backups (dialect.h) */
extern const lm_keep_methods lm_sqlite_keep;

#endif
