/*
 * postgresql.h - what the PostgreSQL dialect's files share: the connection
 * and cursor structs and the functions one file gives the others.  The core
 * never includes this; it reaches the dialect through lm_postgresql_dialect.
 */
#ifndef LM_POSTGRESQL_H
#define LM_POSTGRESQL_H

#include <libpq-fe.h>

#include "ddl.h"
#include "dialect.h"
#include "pq_shim.h"

/* How PostgreSQL spells the shared DDL (postgresql_ddl.c); also what
 * the data side qualifies table names with. */
extern const lm_ddl_traits lm_pg_traits;

struct lm_conn {
  PGconn *pg;
  PGcancel *cancel;             /* for lm_dialect.cancel */
  unsigned long cursors;        /* names lm_cur_1, lm_cur_2, ... */
};

struct lm_cursor {
  lm_conn *conn;
  char name[40];                /* server-side cursor; "" when materialized */
  int open_on_server;           /* the server cursor still exists */
  int last_batch;               /* no FETCH after the current batch */
  char *sql;                    /* the caller's SQL, for error messages */
  PGresult *batch;              /* current batch (or the whole result) */
  int nrows, row;               /* rows in batch, next row to hand out */
  size_t ncols;
  char **colnames;              /* copied: they outlive each batch */
  lm_vtype *kinds;              /* how each column maps to an lm_value */
  lm_value *values;             /* the current row */
  unsigned char **blobs;        /* the current row's decoded bytea values */
};

/* postgresql_ddl.c */
void lm_pg_quote_ident(lm_buf *out, const char *ident);
void lm_pg_render_literal(lm_buf *out, const lm_value *value);
int lm_pg_compile(const lm_compile_ctx *ctx, const lm_op *op, lm_strvec *out,
                  lm_err *err);
/* postgresql.c */
void lm_pg_format_double(char *out, size_t size, double d);
/* Parameters in libpq's shape.  Text format for numbers, booleans and
 * strings (the server infers their types from the statement); binary
 * bytea for blobs, so their bytes go through untouched. */
typedef struct lm_pg_params {
  int n;
  const char **values;
  int *lengths, *formats;
  Oid *types;
  char **owned;                 /* text we formatted or NUL-terminated */
} lm_pg_params;
/* Fill p from v (free it with lm_pg_params_free whatever this returns). */
int lm_pg_params_build(lm_pg_params *p, size_t n, const lm_value *v,
                       lm_err *err);
void lm_pg_params_free(lm_pg_params *p);
/* Run one statement (or, without parameters, a script) and return its
 * successful result, or NULL with the error set.  `shown` is the SQL
 * named in an error, when it differs from what is sent. */
PGresult *lm_pg_run(lm_conn *c, const char *sql, const char *shown,
                    size_t nparams, const lm_value *params, lm_err *err);

/* postgresql_query.c: dialect.h, query and the cursor functions. */
int lm_pg_query(lm_conn *c, const char *sql, size_t nparams,
                const lm_value *params, lm_cursor **out, lm_err *err);
int lm_pg_query_bounded(lm_conn *c, const char *sql, size_t nparams,
                        const lm_value *params, lm_cursor **out,
                        lm_err *err);
int lm_pg_cursor_next(lm_cursor *cur, lm_err *err);
size_t lm_pg_cursor_ncols(lm_cursor *cur);
const char *lm_pg_cursor_colname(lm_cursor *cur, size_t col);
const lm_value *lm_pg_cursor_value(lm_cursor *cur, size_t col);
void lm_pg_cursor_close(lm_cursor *cur);

/* postgresql_lock.c: dialect.h, lock and unlock. */
int lm_pg_lock(lm_conn *c, const char *key, double timeout,
               void (*waiting)(const char *holder, void *payload),
               void *payload, lm_err *err);
int lm_pg_unlock(lm_conn *c, const char *key, lm_err *err);
/* A failed result (or none) as `message (SQLSTATE x)\n  detail: ...\n
 * hint: ...\n  in: SQL`, with err->sqlstate filled; returns LM_ERROR. */
int lm_pg_result_error(lm_conn *c, const PGresult *res, const char *sql,
                       lm_err *err);

/* postgresql_introspect.c: dialect.h, read_type. */
void lm_pg_read_type(lm_schema *s, lm_type *t);
/* postgresql_introspect.c: dialect.h, introspect_schema. */
int lm_pg_introspect_schema(lm_conn *c, const char *const *schemas,
                            size_t nschemas, const char *const *skip,
                            size_t nskip, lm_schema *out, lm_err *err);

/* postgresql_locks.c: dialect.h, version 7. */
void lm_pg_lock_timeout_sql(lm_buf *out, double seconds);
int lm_pg_is_lock_timeout(const lm_err *err);
int lm_pg_lock_blockers(lm_conn *conn, const char *text, lm_buf *out,
                        lm_err *err);

/* postgresql_data.c */
/* A table's columns: name, type as format_type spells it (a cast target),
 * and whether it is bytea. */
typedef struct lm_pg_columns {
  size_t n;
  char **names, **types;
  unsigned char *bytea;
} lm_pg_columns;
int lm_pg_columns_load(lm_conn *c, const char *schema, const char *table,
                       lm_pg_columns *out, lm_err *err);
void lm_pg_columns_free(lm_pg_columns *c);
/* Index of a column, or an error naming the table. */
int lm_pg_column_index(const lm_pg_columns *c, const char *table,
                       const char *name, size_t *idx, lm_err *err);
/* Check a result for the status wanted; clears it on failure. */
int lm_pg_check(lm_conn *c, PGresult *res, ExecStatusType want,
                const char *sql, lm_err *err);
/* A value as the text PostgreSQL's input functions read, through `put`,
 * which escapes it for its container: COPY's text format, an array
 * literal's element, or nothing. */
typedef void (*lm_pg_put_fn)(lm_buf *b, const char *s, size_t n);
void lm_pg_put_value(lm_buf *b, const lm_value *v, int bytea, lm_pg_put_fn put);
void lm_pg_put_copy(lm_buf *b, const char *s, size_t n);
void lm_pg_put_array(lm_buf *b, const char *s, size_t n);
void lm_pg_put_raw(lm_buf *b, const char *s, size_t n);
/* Refuse a value holding a NUL byte for a column that is not bytea,
 * naming the column. */
int lm_pg_check_text(const lm_value *v, int bytea, const char *col,
                     lm_err *err);
/* Refuse a blob parameter where the server does not read bytea. */
int lm_pg_check_blob_params(lm_conn *c, const char *sql, size_t nparams,
                            const lm_value *params, lm_err *err);
int lm_pg_prepare(lm_conn *conn, const char *sql, lm_stmt **out, lm_err *err);
int lm_pg_stmt_exec(lm_stmt *s, size_t nparams, const lm_value *params,
                    int64_t *affected, lm_err *err);
void lm_pg_stmt_close(lm_stmt *s);
int lm_pg_loader_open(lm_conn *conn, const char *schema, const char *table,
                      size_t ncols, const char *const *columns,
                      lm_loader **out, lm_err *err);
int lm_pg_loader_put(lm_loader *l, size_t nrows, const lm_value *values,
                     lm_err *err);
int lm_pg_loader_close(lm_loader *l, int abandon, lm_err *err);
int lm_pg_estimate_rows(lm_conn *conn, const char *schema, const char *table,
                        int64_t *out, lm_err *err);
int lm_pg_writer_open(lm_conn *conn, const char *schema, const char *table,
                      size_t nkeys, const char *const *keys, int order,
                      lm_writer **out, lm_err *err);
int lm_pg_writer_run(lm_writer *w, size_t ncols, const char *const *cols,
                     size_t nrows, const lm_value *values,
                     const unsigned char *set, int64_t *affected, lm_err *err);
void lm_pg_writer_close(lm_writer *w);

/* postgresql_scratch.c: verify's scratch database */
int lm_pg_scratch_create(const lm_url *url, char **scratch_url, lm_err *err);
int lm_pg_scratch_drop(const lm_url *url, const char *scratch_url,
                       lm_err *err);
int lm_pg_scratch_tune(lm_conn *c, lm_err *err);

/* postgresql_keep.c: kept data and backups (dialect.h) */
extern const lm_keep_methods lm_pg_keep;

#endif
