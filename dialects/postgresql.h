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
/* A failed result (or none) as `message (SQLSTATE x)\n  detail: ...\n
 * hint: ...\n  in: SQL`, with err->sqlstate filled; returns LM_ERROR. */
int lm_pg_result_error(lm_conn *c, const PGresult *res, const char *sql,
                       lm_err *err);

/* postgresql_introspect.c: dialect.h, introspect_schema. */
int lm_pg_introspect_schema(lm_conn *c, const char *const *schemas,
                            size_t nschemas, const char *const *skip,
                            size_t nskip, lm_schema *out, lm_err *err);

/* postgresql_data.c */
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
