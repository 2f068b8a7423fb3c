/*
 * postgresql_data.c - data migrations on PostgreSQL: prepared statements,
 * the catalog's column types, values as the text the server reads, and
 * the planner's row estimate.  The COPY loader and the backfill writer
 * built on them are in postgresql_write.c.
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

/* ---- errors and parameters ------------------------------------------ */

/* Failed results read as everywhere else in the dialect. */
static int pg_fail(lm_conn *c, const PGresult *res, const char *sql,
                   lm_err *err) {
  return lm_pg_result_error(c, res, sql, err);
}

/* Check a result for one of two good statuses; clears it on failure. */
int lm_pg_check(lm_conn *c, PGresult *res, ExecStatusType want,
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
  if (lm_pg_check(c, res, PGRES_COMMAND_OK, sql, err) != LM_OK) return LM_ERROR;
  PQclear(res);
  res = PQdescribePrepared(c->pg, "");
  if (lm_pg_check(c, res, PGRES_COMMAND_OK, sql, err) != LM_OK) return LM_ERROR;
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
  if (lm_pg_check(conn, res, PGRES_COMMAND_OK, sql, err) != LM_OK) {
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

void lm_pg_columns_free(lm_pg_columns *c) {
  for (size_t i = 0; i < c->n; i++) {
    free(c->names[i]);
    free(c->types[i]);
  }
  free(c->names);
  free(c->types);
  free(c->bytea);
  memset(c, 0, sizeof *c);
}

int lm_pg_columns_load(lm_conn *c, const char *schema, const char *table,
                       lm_pg_columns *out, lm_err *err) {
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
  if (lm_pg_check(c, res, PGRES_TUPLES_OK, NULL, err) != LM_OK) {
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
int lm_pg_column_index(const lm_pg_columns *c, const char *table,
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

void lm_pg_put_value(lm_buf *b, const lm_value *v, int bytea,
                     lm_pg_put_fn put) {
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
int lm_pg_check_text(const lm_value *v, int bytea, const char *col,
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
void lm_pg_put_copy(lm_buf *b, const char *s, size_t n) {
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
void lm_pg_put_array(lm_buf *b, const char *s, size_t n) {
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
void lm_pg_put_raw(lm_buf *b, const char *s, size_t n) { lm_buf_add(b, s, n); }

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
  if (lm_pg_check(conn, res, PGRES_TUPLES_OK, sql, err) != LM_OK) {
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

