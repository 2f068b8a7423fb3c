/*
 * postgresql_data.c - data migrations on PostgreSQL: prepared statements,
 * COPY for bulk inserts, the planner's row estimate, and the backfill
 * writer that updates a whole batch with one statement.
 *
 * Values travel as text the server parses with each column's own input
 * function: COPY's text format for bulk inserts, and text arrays unnested
 * and cast to the column types for backfill batches.  The column types
 * come from the catalog once per call, so bytea columns can take any Lua
 * string byte for byte (hex-encoded) and every cast names the real type.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "postgresql.h"

/* COPY data is handed to libpq in pieces of about this size. */
#define COPY_CHUNK (256 * 1024)

/* ---- errors and parameters ------------------------------------------ */

/* Failed results read as everywhere else in the dialect. */
static int pg_fail(lm_conn *c, const PGresult *res, const char *sql,
                   lm_err *err) {
  return lm_pg_result_error(c, res, sql, err);
}

/* Check a result for one of two good statuses; clears it on failure. */
static int pg_check(lm_conn *c, PGresult *res, ExecStatusType want,
                    const char *sql, lm_err *err) {
  if (res && PQresultStatus(res) == want) return LM_OK;
  pg_fail(c, res, sql, err);
  PQclear(res);
  return LM_ERROR;
}

/* Parameters in libpq's shape: text for everything but blobs, which go
 * as binary bytea so their bytes arrive untouched.  `own` holds the text
 * we formatted, in one buffer, so there is one allocation per call. */
typedef struct pg_args {
  int n;
  const char **values;
  int *lengths, *formats;
  Oid *types;
  lm_buf own;
} pg_args;

#define PG_BYTEAOID 17

static void args_free(pg_args *a) {
  free(a->values);
  free(a->lengths);
  free(a->formats);
  free(a->types);
  lm_buf_free(&a->own);
}

static int args_build(pg_args *a, size_t n, const lm_value *v, lm_err *err) {
  memset(a, 0, sizeof *a);
  if (n > 65535)
    return lm_err_set(err, "too many parameters (%zu): PostgreSQL takes at "
                      "most 65535", n);
  a->n = (int)n;
  if (!n) return LM_OK;
  size_t *offs = lm_xcalloc(n, sizeof *offs);
  a->values = lm_xcalloc(n, sizeof *a->values);
  a->lengths = lm_xcalloc(n, sizeof *a->lengths);
  a->formats = lm_xcalloc(n, sizeof *a->formats);
  a->types = lm_xcalloc(n, sizeof *a->types);
  /* Offsets first: the buffer moves as it grows. */
  for (size_t i = 0; i < n; i++) {
    char num[64];
    offs[i] = a->own.len;
    switch (v[i].type) {
    case LM_V_NULL:
    case LM_V_BLOB:
      break;
    case LM_V_INT:
      lm_buf_printf(&a->own, "%lld", (long long)v[i].i);
      break;
    case LM_V_FLOAT:
      lm_pg_format_double(num, sizeof num, v[i].f);
      lm_buf_puts(&a->own, num);
      break;
    case LM_V_BOOL:
      lm_buf_puts(&a->own, v[i].i ? "true" : "false");
      break;
    case LM_V_TEXT:
      lm_buf_add(&a->own, v[i].s ? v[i].s : "", v[i].len);
      break;
    }
    lm_buf_putc(&a->own, '\0');
  }
  for (size_t i = 0; i < n; i++) {
    if (v[i].type == LM_V_NULL) continue;
    if (v[i].type == LM_V_BLOB) {
      if (v[i].len > 0x7fffffff) {
        free(offs);
        return lm_err_set(err, "parameter $%zu: blob too large", i + 1);
      }
      a->values[i] = v[i].s ? v[i].s : "";
      a->lengths[i] = (int)v[i].len;
      a->formats[i] = 1;
      a->types[i] = PG_BYTEAOID;
    } else {
      a->values[i] = a->own.data + offs[i];
    }
  }
  free(offs);
  return LM_OK;
}

/* ---- strings that are not text --------------------------------------- */

/* What keeps a string from being text, for a message. */
static void not_text_reason(char *out, size_t size, const lm_value *v) {
  const char *nul = memchr(v->s, '\0', v->len);
  if (nul)
    snprintf(out, size, "holds a NUL byte at offset %zu",
             (size_t)(nul - v->s));
  else
    snprintf(out, size, "is not valid UTF-8");
}

/* A blob parameter (a Lua string that is not UTF-8 text, or holds a NUL)
 * binds as binary bytea, which is right only where the server reads the
 * parameter as bytea: anywhere else the server would convert the bytea to
 * its text form (a text column would store "\x636166e9").  So, when there
 * is a blob, the server is asked how it types each parameter (Parse and
 * Describe of the unnamed statement, which the statement itself then
 * replaces), and a blob where it wants anything but bytea is refused,
 * naming the parameter. */
int lm_pg_check_blob_params(lm_conn *c, const char *sql, size_t nparams,
                            const lm_value *params, lm_err *err) {
  size_t first = nparams;
  for (size_t i = 0; i < nparams && first == nparams; i++)
    if (params[i].type == LM_V_BLOB) first = i;
  if (first == nparams) return LM_OK;
  PGresult *res = PQprepare(c->pg, "", sql, 0, NULL);
  if (pg_check(c, res, PGRES_COMMAND_OK, sql, err) != LM_OK) return LM_ERROR;
  PQclear(res);
  res = PQdescribePrepared(c->pg, "");
  if (pg_check(c, res, PGRES_COMMAND_OK, sql, err) != LM_OK) return LM_ERROR;
  int rc = LM_OK;
  size_t typed = (size_t)PQnparams(res);
  for (size_t i = first; i < nparams && i < typed && rc == LM_OK; i++) {
    if (params[i].type != LM_V_BLOB) continue;
    Oid type = PQparamtype(res, (int)i);
    if (type == PG_BYTEAOID) continue;
    char why[64], oid[16];
    not_text_reason(why, sizeof why, &params[i]);
    snprintf(oid, sizeof oid, "%u", (unsigned)type);
    /* The type's name, for the message; its number if that fails. */
    const char *vals[1] = {oid};
    PGresult *name = PQexecParams(c->pg, "SELECT pg_catalog.format_type("
                                  "$1::pg_catalog.oid, NULL)", 1, NULL, vals,
                                  NULL, NULL, 0);
    int named = name && PQresultStatus(name) == PGRES_TUPLES_OK &&
                PQntuples(name) == 1;
    lm_buf b = LM_BUF_INIT;
    lm_buf_printf(&b, "parameter $%zu %s, so it is bytes, but the server "
                  "reads $%zu as %s, not bytea: pass UTF-8 text there, or "
                  "give bytes to a bytea column (or $%zu::bytea)",
                  i + 1, why, i + 1, named ? PQgetvalue(name, 0, 0) : oid,
                  i + 1);
    PQclear(name);
    size_t n = strlen(sql);
    lm_buf_printf(&b, "\n  in: %.*s%s", (int)(n > 2000 ? 2000 : n), sql,
                  n > 2000 ? "..." : "");
    rc = lm_err_set(err, "%s", lm_buf_str(&b));
    lm_buf_free(&b);
  }
  PQclear(res);
  return rc;
}

/* ---- prepared statements --------------------------------------------- */

struct lm_stmt {
  lm_conn *conn;
  char name[32];
  char *sql;
};

/* Statement names are unique in the process, so two environments (or a
 * statement outliving a rolled-back transaction) never collide. */
static atomic_ulong stmt_counter;

int lm_pg_prepare(lm_conn *conn, const char *sql, lm_stmt **out, lm_err *err) {
  *out = NULL;
  lm_stmt *s = lm_xcalloc(1, sizeof *s);
  s->conn = conn;
  snprintf(s->name, sizeof s->name, "lm_stmt_%lu",
           (unsigned long)atomic_fetch_add(&stmt_counter, 1) + 1);
  PGresult *res = PQprepare(conn->pg, s->name, sql, 0, NULL);
  if (pg_check(conn, res, PGRES_COMMAND_OK, sql, err) != LM_OK) {
    free(s);
    return LM_ERROR;
  }
  PQclear(res);
  s->sql = lm_xstrdup(sql);
  *out = s;
  return LM_OK;
}

int lm_pg_stmt_exec(lm_stmt *s, size_t nparams, const lm_value *params,
                    int64_t *affected, lm_err *err) {
  pg_args a;
  if (args_build(&a, nparams, params, err) != LM_OK) {
    args_free(&a);
    return LM_ERROR;
  }
  PGresult *res = PQexecPrepared(s->conn->pg, s->name, a.n, a.values,
                                 a.lengths, a.formats, 0);
  args_free(&a);
  ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    pg_fail(s->conn, res, s->sql, err);
    PQclear(res);
    return LM_ERROR;
  }
  if (affected) {
    const char *t = PQcmdTuples(res);
    *affected = (t && *t) ? (int64_t)atoll(t) : 0;
  }
  PQclear(res);
  return LM_OK;
}

/* DEALLOCATE, unless the transaction has failed (nothing runs there; the
 * statement then stays until the session ends, under a name no one
 * reuses). */
void lm_pg_stmt_close(lm_stmt *s) {
  if (!s) return;
  if (PQtransactionStatus(s->conn->pg) != PQTRANS_INERROR) {
    char sql[64];
    snprintf(sql, sizeof sql, "DEALLOCATE %s", s->name);
    PQclear(PQexec(s->conn->pg, sql));   /* best effort: nothing to report */
  }
  free(s->sql);
  free(s);
}

/* ---- the catalog ----------------------------------------------------- */

/* A table's columns: name, type as format_type spells it (a cast target),
 * and whether it is bytea. */
typedef struct pg_columns {
  size_t n;
  char **names, **types;
  unsigned char *bytea;
} pg_columns;

static void columns_free(pg_columns *c) {
  for (size_t i = 0; i < c->n; i++) {
    free(c->names[i]);
    free(c->types[i]);
  }
  free(c->names);
  free(c->types);
  free(c->bytea);
  memset(c, 0, sizeof *c);
}

static int columns_load(lm_conn *c, const char *schema, const char *table,
                        pg_columns *out, lm_err *err) {
  static const char sql[] =
      "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), "
      "a.atttypid = 'pg_catalog.bytea'::pg_catalog.regtype "
      "FROM pg_catalog.pg_attribute a "
      "WHERE a.attrelid = $1::pg_catalog.regclass AND a.attnum > 0 "
      "AND NOT a.attisdropped ORDER BY a.attnum";
  memset(out, 0, sizeof *out);
  lm_buf name = LM_BUF_INIT;
  lm_ddl_qualified(&lm_pg_traits, &name, schema, table);
  const char *vals[1] = {lm_buf_str(&name)};
  PGresult *res = PQexecParams(c->pg, sql, 1, NULL, vals, NULL, NULL, 0);
  lm_buf_free(&name);
  if (pg_check(c, res, PGRES_TUPLES_OK, NULL, err) != LM_OK) {
    lm_err_prefix(err, "cannot read the columns of %s", table);
    return LM_ERROR;
  }
  size_t n = (size_t)PQntuples(res);
  out->n = n;
  out->names = lm_xcalloc(n ? n : 1, sizeof *out->names);
  out->types = lm_xcalloc(n ? n : 1, sizeof *out->types);
  out->bytea = lm_xcalloc(n ? n : 1, 1);
  for (size_t i = 0; i < n; i++) {
    out->names[i] = lm_xstrdup(PQgetvalue(res, (int)i, 0));
    out->types[i] = lm_xstrdup(PQgetvalue(res, (int)i, 1));
    out->bytea[i] = PQgetvalue(res, (int)i, 2)[0] == 't';
  }
  PQclear(res);
  return LM_OK;
}

/* Index of a column, or an error naming the table's columns' owner. */
static int column_index(const pg_columns *c, const char *table,
                        const char *name, size_t *idx, lm_err *err) {
  for (size_t i = 0; i < c->n; i++)
    if (strcmp(c->names[i], name) == 0) {
      *idx = i;
      return LM_OK;
    }
  return lm_err_set(err, "column \"%s\" of table %s does not exist", name,
                    table);
}

/* ---- value text ------------------------------------------------------ */

static const char hexdigits[] = "0123456789abcdef";

/* The text PostgreSQL's input functions read for a value, through `put`
 * which escapes it for its container (COPY or an array literal).  On a
 * bytea column every string is bytes: hex, so nothing is interpreted. */
typedef void (*put_fn)(lm_buf *b, const char *s, size_t n);

static void put_value(lm_buf *b, const lm_value *v, int bytea, put_fn put) {
  char num[64];
  switch (v->type) {
  case LM_V_NULL:
    break;
  case LM_V_INT:
    lm_buf_printf(b, "%lld", (long long)v->i);
    break;
  case LM_V_FLOAT:
    lm_pg_format_double(num, sizeof num, v->f);
    lm_buf_puts(b, num);
    break;
  case LM_V_BOOL:
    lm_buf_puts(b, v->i ? "true" : "false");
    break;
  case LM_V_TEXT:
  case LM_V_BLOB:
    if (bytea) {
      /* "\x" then two digits a byte; the backslash itself is escaped by
       * the container, the digits need nothing. */
      put(b, "\\x", 2);
      lm_buf_grow(b, v->len * 2);
      for (size_t i = 0; i < v->len; i++) {
        unsigned char ch = (unsigned char)v->s[i];
        b->data[b->len++] = hexdigits[ch >> 4];
        b->data[b->len++] = hexdigits[ch & 15];
      }
      b->data[b->len] = '\0';
    } else {
      put(b, v->s ? v->s : "", v->len);
    }
    break;
  }
}

/* A text value must not hold a NUL byte: PostgreSQL's text cannot. */
static int check_text(const lm_value *v, int bytea, const char *col,
                      lm_err *err) {
  if ((v->type == LM_V_TEXT || v->type == LM_V_BLOB) && !bytea && v->len &&
      memchr(v->s, '\0', v->len))
    return lm_err_set(err, "column %s: a value holds a NUL byte, which "
                      "PostgreSQL text cannot store (use a bytea column)",
                      col);
  return LM_OK;
}

/* COPY text format: backslash, newline, carriage return and tab are
 * backslash-escaped; with backslashes escaped, "\." cannot appear. */
static void put_copy(lm_buf *b, const char *s, size_t n) {
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    char esc = 0;
    switch (s[i]) {
    case '\\': esc = '\\'; break;
    case '\n': esc = 'n'; break;
    case '\r': esc = 'r'; break;
    case '\t': esc = 't'; break;
    default: continue;
    }
    lm_buf_add(b, s + start, i - start);
    lm_buf_putc(b, '\\');
    lm_buf_putc(b, esc);
    start = i + 1;
  }
  lm_buf_add(b, s + start, n - start);
}

/* An array element, always double-quoted: backslash and quote escaped. */
static void put_array(lm_buf *b, const char *s, size_t n) {
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '\\' && s[i] != '"') continue;
    lm_buf_add(b, s + start, i - start);
    lm_buf_putc(b, '\\');
    start = i;
  }
  lm_buf_add(b, s + start, n - start);
}

/* A bound parameter's own text: nothing to escape. */
static void put_raw(lm_buf *b, const char *s, size_t n) { lm_buf_add(b, s, n); }

/* ---- bulk loads through COPY ------------------------------------------ */

/* COPY table (columns) FROM STDIN in text format, held open across puts:
 * rows go to the server as one stream, parsed by each column's input
 * function as fast as PostgreSQL loads data, while the caller prepares
 * the next ones.  The server's verdict comes when the stream ends. */
struct lm_loader {
  lm_conn *conn;
  char *table;
  char *sql;                    /* the COPY statement, for errors */
  size_t ncols;
  char **columns;
  unsigned char *bytea;         /* per column: a bytea column */
  size_t rows;                  /* rows put so far */
  int ended;                    /* the COPY is over (its results read) */
  lm_buf data;                  /* COPY data not yet handed to libpq */
};

static void loader_free(lm_loader *l) {
  for (size_t i = 0; i < l->ncols; i++) free(l->columns[i]);
  free(l->columns);
  free(l->bytea);
  free(l->table);
  free(l->sql);
  lm_buf_free(&l->data);
  free(l);
}

/* Collect the COPY's results once it has ended, or once libpq refused
 * data because the server ended it with an error.  The server's error is
 * the one to report, unless `ours` (err already says why we abandoned
 * the load: the server then only echoes it).  A COPY libpq still holds
 * open is ended as abandoned. */
static int copy_results(lm_loader *l, int ours, lm_err *err) {
  PGconn *pg = l->conn->pg;
  int rc = ours ? LM_ERROR : LM_OK;
  PGresult *res;
  while ((res = PQgetResult(pg)) != NULL) {
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COPY_IN) {
      PQclear(res);
      if (PQputCopyEnd(pg, "bulk insert abandoned") != 1) {
        if (rc == LM_OK)
          rc = lm_err_set(err, "COPY failed: %s", PQerrorMessage(pg));
        break;
      }
      continue;
    }
    if (st != PGRES_COMMAND_OK && rc == LM_OK)
      rc = pg_fail(l->conn, res, l->sql, err);
    PQclear(res);
  }
  l->ended = 1;
  return rc;
}

/* Hand what the buffer holds to libpq, which sends it as the socket
 * takes it. */
static int copy_flush(lm_loader *l, lm_err *err) {
  if (!l->data.len) return LM_OK;
  if (PQputCopyData(l->conn->pg, l->data.data, (int)l->data.len) != 1) {
    lm_err_set(err, "COPY failed: %s", PQerrorMessage(l->conn->pg));
    copy_results(l, 0, err);
    return LM_ERROR;
  }
  lm_buf_reset(&l->data);
  return LM_OK;
}

int lm_pg_loader_open(lm_conn *conn, const char *schema, const char *table,
                      size_t ncols, const char *const *columns,
                      lm_loader **out, lm_err *err) {
  *out = NULL;
  pg_columns cat;
  if (columns_load(conn, schema, table, &cat, err) != LM_OK) return LM_ERROR;
  lm_loader *l = lm_xcalloc(1, sizeof *l);
  l->conn = conn;
  l->table = lm_xstrdup(table);
  l->ncols = ncols;
  l->columns = lm_xcalloc(ncols ? ncols : 1, sizeof *l->columns);
  l->bytea = lm_xcalloc(ncols ? ncols : 1, 1);
  lm_buf sql = LM_BUF_INIT;
  int rc = LM_OK;
  lm_buf_puts(&sql, "COPY ");
  lm_ddl_qualified(&lm_pg_traits, &sql, schema, table);
  lm_buf_puts(&sql, " (");
  for (size_t i = 0; i < ncols && rc == LM_OK; i++) {
    size_t k = 0;
    rc = column_index(&cat, table, columns[i], &k, err);
    if (rc == LM_OK) l->bytea[i] = cat.bytea[k];
    l->columns[i] = lm_xstrdup(columns[i]);
    if (i) lm_buf_puts(&sql, ", ");
    lm_pg_quote_ident(&sql, columns[i]);
  }
  lm_buf_puts(&sql, ") FROM STDIN");
  l->sql = lm_buf_detach(&sql);
  columns_free(&cat);
  if (rc == LM_OK) {
    PGresult *res = PQexec(conn->pg, l->sql);
    if (!res || PQresultStatus(res) != PGRES_COPY_IN)
      rc = pg_fail(conn, res, l->sql, err);
    PQclear(res);
  }
  if (rc != LM_OK) {
    loader_free(l);
    return LM_ERROR;
  }
  *out = l;
  return LM_OK;
}

int lm_pg_loader_put(lm_loader *l, size_t nrows, const lm_value *values,
                     lm_err *err) {
  if (l->ended) return lm_err_set(err, "COPY has ended");
  for (size_t r = 0; r < nrows; r++) {
    const lm_value *row = values + r * l->ncols;
    for (size_t i = 0; i < l->ncols; i++) {
      if (i) lm_buf_putc(&l->data, '\t');
      if (row[i].type == LM_V_NULL) {
        lm_buf_add(&l->data, "\\N", 2);
        continue;
      }
      if (check_text(&row[i], l->bytea[i], l->columns[i], err) != LM_OK) {
        lm_err_prefix(err, "row %zu", l->rows + r + 1);
        return LM_ERROR;
      }
      put_value(&l->data, &row[i], l->bytea[i], put_copy);
    }
    lm_buf_putc(&l->data, '\n');
    if (l->data.len >= COPY_CHUNK && copy_flush(l, err) != LM_OK)
      return LM_ERROR;
  }
  l->rows += nrows;
  return LM_OK;
}

/* End the stream: as a failure (abandon: err already says why), or as
 * a success whose result is then checked. */
int lm_pg_loader_close(lm_loader *l, int abandon, lm_err *err) {
  if (!l) return LM_OK;
  int rc = abandon ? LM_ERROR : LM_OK;
  if (!l->ended) {
    if (rc == LM_OK) rc = copy_flush(l, err);
    if (!l->ended) {
      if (PQputCopyEnd(l->conn->pg, abandon ? "bulk insert abandoned"
                                            : NULL) != 1 &&
          rc == LM_OK)
        rc = lm_err_set(err, "COPY failed: %s", PQerrorMessage(l->conn->pg));
      int ours = rc != LM_OK;
      int got = copy_results(l, ours, err);
      if (rc == LM_OK) rc = got;
    }
  }
  loader_free(l);
  return rc;
}

/* ---- row estimate ---------------------------------------------------- */

/* A table up to this size is counted: one sequential read, quicker than
 * the backfill that follows it by far. */
#define COUNT_MAX_BYTES (64.0 * 1024 * 1024)
/* Pages the block sample of a larger table reads. */
#define SAMPLE_PAGES 1000.0

/* One bigint (or numeric) answer of a query on the table, or -1. */
static int64_t table_number(lm_conn *conn, const char *sql) {
  int64_t n = -1;
  PGresult *res = PQexec(conn->pg, sql);
  if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 &&
      !PQgetisnull(res, 0, 0))
    n = (int64_t)strtod(PQgetvalue(res, 0, 0), NULL);
  PQclear(res);
  return n;
}

/* The rows a table holds now, as this transaction sees them: counted when
 * the table is small, else scaled up from a block sample of about
 * SAMPLE_PAGES pages.  pg_class.reltuples is not used: it is only as fresh
 * as the last VACUUM or ANALYZE, and a table loaded by an earlier
 * migration of the same run has neither.  A partitioned table (or a view)
 * has no pages of its own: the planner's estimate then. */
int lm_pg_estimate_rows(lm_conn *conn, const char *schema, const char *table,
                        int64_t *out, lm_err *err) {
  static const char sql[] =
      "SELECT c.relkind, pg_catalog.pg_relation_size(c.oid), "
      "current_setting('block_size')::int "
      "FROM pg_catalog.pg_class c WHERE c.oid = $1::pg_catalog.regclass";
  *out = -1;
  lm_buf name = LM_BUF_INIT;
  lm_ddl_qualified(&lm_pg_traits, &name, schema, table);
  const char *vals[1] = {lm_buf_str(&name)};
  PGresult *res = PQexecParams(conn->pg, sql, 1, NULL, vals, NULL, NULL, 0);
  if (pg_check(conn, res, PGRES_TUPLES_OK, sql, err) != LM_OK) {
    lm_buf_free(&name);
    return LM_ERROR;
  }
  char kind = PQntuples(res) == 1 ? PQgetvalue(res, 0, 0)[0] : '\0';
  double bytes = kind ? strtod(PQgetvalue(res, 0, 1), NULL) : 0;
  double block = kind ? strtod(PQgetvalue(res, 0, 2), NULL) : 8192;
  PQclear(res);
  lm_buf q = LM_BUF_INIT;
  if (kind == 'r' || kind == 'm') {
    double pages = bytes / (block > 0 ? block : 8192);
    if (bytes <= COUNT_MAX_BYTES || pages <= SAMPLE_PAGES) {
      lm_buf_printf(&q, "SELECT count(*) FROM %s", lm_buf_str(&name));
      *out = table_number(conn, lm_buf_str(&q));
    } else {
      double percent = 100.0 * SAMPLE_PAGES / pages;
      lm_buf_printf(&q, "SELECT count(*) * %.17g FROM %s TABLESAMPLE SYSTEM "
                    "(%.17g)", 100.0 / percent, lm_buf_str(&name), percent);
      *out = table_number(conn, lm_buf_str(&q));
    }
  } else if (kind) {
    lm_buf_printf(&q, "EXPLAIN SELECT 1 FROM %s", lm_buf_str(&name));
    res = PQexec(conn->pg, lm_buf_str(&q));
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0) {
      const char *rows = strstr(PQgetvalue(res, 0, 0), "rows=");
      if (rows) *out = (int64_t)atoll(rows + 5);
    }
    PQclear(res);
  }
  lm_buf_free(&q);
  lm_buf_free(&name);
  return LM_OK;
}

/* ---- the backfill writer ---------------------------------------------- */

struct lm_writer {
  lm_conn *conn;
  char *table;                  /* as given, for messages */
  char *target;                 /* quoted and qualified */
  size_t nkeys;
  size_t *key_col;              /* each key's index in cat */
  int order;
  pg_columns cat;
  lm_buf sql;                   /* reused from batch to batch */
  lm_buf args;
};

int lm_pg_writer_open(lm_conn *conn, const char *schema, const char *table,
                      size_t nkeys, const char *const *keys, int order,
                      lm_writer **out, lm_err *err) {
  *out = NULL;
  lm_writer *w = lm_xcalloc(1, sizeof *w);
  w->conn = conn;
  w->order = order;
  w->nkeys = nkeys;
  w->table = lm_xstrdup(table);
  w->key_col = lm_xcalloc(nkeys ? nkeys : 1, sizeof *w->key_col);
  lm_buf t = LM_BUF_INIT;
  lm_ddl_qualified(&lm_pg_traits, &t, schema, table);
  w->target = lm_buf_detach(&t);
  if (columns_load(conn, schema, table, &w->cat, err) != LM_OK) {
    lm_pg_writer_close(w);
    return LM_ERROR;
  }
  for (size_t i = 0; i < nkeys; i++)
    if (column_index(&w->cat, table, keys[i], &w->key_col[i], err) != LM_OK) {
      lm_pg_writer_close(w);
      return LM_ERROR;
    }
  *out = w;
  return LM_OK;
}

void lm_pg_writer_close(lm_writer *w) {
  if (!w) return;
  columns_free(&w->cat);
  lm_buf_free(&w->sql);
  lm_buf_free(&w->args);
  free(w->key_col);
  free(w->target);
  free(w->table);
  free(w);
}

/* One text[] literal: column j of every row. */
static int array_literal(lm_writer *w, lm_buf *b, const lm_value *values,
                         size_t width, size_t nrows, size_t j, size_t cat_idx,
                         lm_err *err) {
  int bytea = w->cat.bytea[cat_idx];
  lm_buf_putc(b, '{');
  for (size_t r = 0; r < nrows; r++) {
    const lm_value *v = &values[r * width + j];
    if (r) lm_buf_putc(b, ',');
    if (v->type == LM_V_NULL) {
      lm_buf_puts(b, "NULL");
      continue;
    }
    if (check_text(v, bytea, w->cat.names[cat_idx], err) != LM_OK)
      return LM_ERROR;
    lm_buf_putc(b, '"');
    put_value(b, v, bytea, put_array);
    lm_buf_putc(b, '"');
  }
  lm_buf_putc(b, '}');
  lm_buf_putc(b, '\0');   /* arguments are laid end to end in one buffer */
  return LM_OK;
}

/* The key columns as a row value, "(t.k1, t.k2)" or "t.k1". */
static void key_tuple(lm_writer *w, lm_buf *b, const char *prefix,
                      size_t first_param) {
  if (w->nkeys > 1) lm_buf_putc(b, '(');
  for (size_t i = 0; i < w->nkeys; i++) {
    if (i) lm_buf_puts(b, ", ");
    size_t k = w->key_col[i];
    if (prefix) {
      lm_buf_puts(b, prefix);
      lm_pg_quote_ident(b, w->cat.names[k]);
    } else {
      lm_buf_printf(b, "$%zu::%s", first_param + i, w->cat.types[k]);
    }
  }
  if (w->nkeys > 1) lm_buf_putc(b, ')');
}

/* UPDATE t SET c = v.c::type, ... FROM unnest($1::text[], ...) AS v(...)
 * WHERE t.k = v.k::type AND t.k BETWEEN the batch's first and last keys.
 * Every column travels as a text array and is cast to its column's type,
 * so any type (arrays, enums, bytea) works with one code path.  The range
 * on the key lets the planner read just the batch's slice of the key
 * index instead of hashing the whole table.  A column only some rows
 * change gets a boolean mask: CASE WHEN v.m THEN v.c ELSE t.c END. */
int lm_pg_writer_run(lm_writer *w, size_t ncols, const char *const *cols,
                     size_t nrows, const lm_value *values,
                     const unsigned char *set, int64_t *affected,
                     lm_err *err) {
  if (affected) *affected = 0;
  if (!nrows || !ncols) return LM_OK;
  size_t width = w->nkeys + ncols;
  size_t *col_idx = lm_xcalloc(ncols, sizeof *col_idx);
  unsigned char *partial = lm_xcalloc(ncols, 1);
  int rc = LM_OK;
  for (size_t j = 0; j < ncols && rc == LM_OK; j++) {
    rc = column_index(&w->cat, w->table, cols[j], &col_idx[j], err);
    for (size_t r = 0; set && r < nrows; r++)
      if (!set[r * ncols + j]) partial[j] = 1;
  }
  lm_buf *sql = &w->sql, *args = &w->args;
  lm_buf_reset(sql);
  lm_buf_reset(args);
  size_t nparams = 0;
  size_t *offs = lm_xcalloc(width * 2 + 2 * w->nkeys + 1, sizeof *offs);
  /* The arrays: keys, then columns, then masks. */
  for (size_t j = 0; j < width && rc == LM_OK; j++) {
    offs[nparams++] = args->len;
    size_t ci = j < w->nkeys ? w->key_col[j] : col_idx[j - w->nkeys];
    rc = array_literal(w, args, values, width, nrows, j, ci, err);
  }
  for (size_t j = 0; j < ncols && rc == LM_OK; j++) {
    if (!partial[j]) continue;
    offs[nparams++] = args->len;
    lm_buf_putc(args, '{');
    for (size_t r = 0; r < nrows; r++)
      lm_buf_puts(args, set[r * ncols + j] ? (r ? ",t" : "t") : (r ? ",f" : "f"));
    lm_buf_puts(args, "}");
    lm_buf_putc(args, '\0');
  }
  size_t range_first = nparams + 1;
  if (rc == LM_OK && w->order) {
    /* The batch's smallest and largest keys, as text. */
    const lm_value *lo = values, *hi = values + (nrows - 1) * width;
    if (w->order < 0) {
      const lm_value *t = lo;
      lo = hi;
      hi = t;
    }
    for (int side = 0; side < 2; side++)
      for (size_t i = 0; i < w->nkeys; i++) {
        const lm_value *v = (side ? hi : lo) + i;
        offs[nparams++] = args->len;
        put_value(args, v, w->cat.bytea[w->key_col[i]], put_raw);
        lm_buf_putc(args, '\0');
      }
  }
  if (rc != LM_OK) goto done;

  lm_buf_puts(sql, "UPDATE ");
  lm_buf_puts(sql, w->target);
  lm_buf_puts(sql, " AS t SET ");
  for (size_t j = 0; j < ncols; j++) {
    const char *type = w->cat.types[col_idx[j]];
    if (j) lm_buf_puts(sql, ", ");
    lm_pg_quote_ident(sql, cols[j]);
    if (partial[j]) {
      lm_buf_printf(sql, " = CASE WHEN v.m%zu THEN v.c%zu::%s ELSE t.", j, j,
                    type);
      lm_pg_quote_ident(sql, cols[j]);
      lm_buf_puts(sql, " END");
    } else {
      lm_buf_printf(sql, " = v.c%zu::%s", j, type);
    }
  }
  lm_buf_puts(sql, " FROM unnest(");
  for (size_t p = 0; p < range_first - 1; p++)
    lm_buf_printf(sql, "%s$%zu::%s[]", p ? ", " : "", p + 1,
                  p < width ? "text" : "boolean");
  lm_buf_puts(sql, ") AS v(");
  for (size_t i = 0; i < w->nkeys; i++) lm_buf_printf(sql, "%sk%zu", i ? ", " : "", i);
  for (size_t j = 0; j < ncols; j++) lm_buf_printf(sql, ", c%zu", j);
  for (size_t j = 0; j < ncols; j++)
    if (partial[j]) lm_buf_printf(sql, ", m%zu", j);
  lm_buf_puts(sql, ") WHERE ");
  for (size_t i = 0; i < w->nkeys; i++) {
    size_t k = w->key_col[i];
    if (i) lm_buf_puts(sql, " AND ");
    lm_buf_puts(sql, "t.");
    lm_pg_quote_ident(sql, w->cat.names[k]);
    lm_buf_printf(sql, " = v.k%zu::%s", i, w->cat.types[k]);
  }
  if (w->order) {
    lm_buf_puts(sql, " AND ");
    key_tuple(w, sql, "t.", 0);
    lm_buf_puts(sql, " >= ");
    key_tuple(w, sql, NULL, range_first);
    lm_buf_puts(sql, " AND ");
    key_tuple(w, sql, "t.", 0);
    lm_buf_puts(sql, " <= ");
    key_tuple(w, sql, NULL, range_first + w->nkeys);
  }

  const char **pv = lm_xcalloc(nparams, sizeof *pv);
  for (size_t p = 0; p < nparams; p++) pv[p] = args->data + offs[p];
  PGresult *res = PQexecParams(w->conn->pg, lm_buf_str(sql), (int)nparams,
                               NULL, pv, NULL, NULL, 0);
  free(pv);
  if (pg_check(w->conn, res, PGRES_COMMAND_OK, lm_buf_str(sql), err) != LM_OK) {
    rc = LM_ERROR;
    goto done;
  }
  if (affected) {
    const char *t = PQcmdTuples(res);
    *affected = (t && *t) ? (int64_t)atoll(t) : 0;
  }
  PQclear(res);
done:
  free(offs);
  free(col_idx);
  free(partial);
  return rc;
}
