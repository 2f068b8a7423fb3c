/*
 * postgresql_query.c - streaming queries on PostgreSQL: a query's rows
 * come through a server-side cursor FETCH_ROWS at a time (or, for what
 * cannot be a cursor and for bounded reads, as one result), decoded into
 * lm_values as the caller asks for them.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "postgresql.h"

/* Type OIDs, fixed in pg_type.dat since forever; libpq-dev does not ship
 * catalog/pg_type_d.h everywhere. */
#define PG_BOOLOID 16
#define PG_BYTEAOID 17
#define PG_INT8OID 20
#define PG_INT2OID 21
#define PG_INT4OID 23
#define PG_OIDOID 26
#define PG_FLOAT4OID 700
#define PG_FLOAT8OID 701

/* Rows per FETCH: enough to amortise the round trip, small enough that a
 * batch of wide rows stays a few megabytes. */
#define FETCH_ROWS 1000

/* ---- streaming queries ----------------------------------------------- */

/* Can this statement be the body of DECLARE CURSOR?  Its first keyword
 * decides: a query (SELECT, VALUES, TABLE, WITH, or a parenthesis) can; an
 * INSERT ... RETURNING or a SHOW cannot and is run whole instead, its
 * result being as large as the rows it touched. */
static int cursor_capable(const char *sql) {
  const char *p = sql;
  for (;;) {
    while (isspace((unsigned char)*p)) p++;
    if (p[0] == '-' && p[1] == '-') {
      p += strcspn(p, "\n");
    } else if (p[0] == '/' && p[1] == '*') {
      const char *end = strstr(p + 2, "*/");
      if (!end) return 0;
      p = end + 2;
    } else {
      break;
    }
  }
  if (*p == '(') return 1;
  static const char *const words[] = {"select", "values", "table", "with"};
  for (size_t i = 0; i < sizeof words / sizeof *words; i++) {
    size_t n = strlen(words[i]);
    if (strncasecmp(p, words[i], n) == 0 &&
        !isalnum((unsigned char)p[n]) && p[n] != '_')
      return 1;
  }
  return 0;
}

/* The SQL without trailing semicolons and blanks, which DECLARE ... FOR
 * would not accept. */
static char *strip_terminator(const char *sql) {
  size_t n = strlen(sql);
  while (n && (isspace((unsigned char)sql[n - 1]) || sql[n - 1] == ';')) n--;
  return lm_xstrndup(sql, n);
}

/* Map a column's type OID to the lm_value it becomes: exact numbers stay
 * exact (numeric arrives as text), bytea as bytes. */
static lm_vtype kind_of(Oid type) {
  switch (type) {
  case PG_INT2OID: case PG_INT4OID: case PG_INT8OID: case PG_OIDOID:
    return LM_V_INT;
  case PG_FLOAT4OID: case PG_FLOAT8OID:
    return LM_V_FLOAT;
  case PG_BOOLOID:
    return LM_V_BOOL;
  case PG_BYTEAOID:
    return LM_V_BLOB;
  default:
    return LM_V_TEXT;
  }
}

/* Take a batch: the first one also fixes the columns. */
static void cursor_take(lm_cursor *cur, PGresult *res) {
  PQclear(cur->batch);
  cur->batch = res;
  cur->nrows = PQntuples(res);
  cur->row = 0;
  if (cur->colnames) return;
  cur->ncols = (size_t)PQnfields(res);
  size_t n = cur->ncols ? cur->ncols : 1;
  cur->colnames = lm_xcalloc(n, sizeof *cur->colnames);
  cur->kinds = lm_xcalloc(n, sizeof *cur->kinds);
  cur->values = lm_xcalloc(n, sizeof *cur->values);
  cur->blobs = lm_xcalloc(n, sizeof *cur->blobs);
  for (size_t i = 0; i < cur->ncols; i++) {
    cur->colnames[i] = lm_xstrdup(PQfname(res, (int)i));
    cur->kinds[i] = kind_of(PQftype(res, (int)i));
  }
}

/* CLOSE the server cursor; a cursor that reached its end is closed at
 * once, in the transaction that declared it. */
static int cursor_close_server(lm_cursor *cur, lm_err *err) {
  if (!cur->open_on_server) return LM_OK;
  cur->open_on_server = 0;
  char sql[64];
  snprintf(sql, sizeof sql, "CLOSE %s", cur->name);
  PGresult *res = lm_pg_run(cur->conn, sql, NULL, 0, NULL, err);
  if (!res) return LM_ERROR;
  PQclear(res);
  return LM_OK;
}

/* FETCH the next batch; one shorter than asked for is the last. */
static int cursor_fetch(lm_cursor *cur, lm_err *err) {
  char sql[80];
  snprintf(sql, sizeof sql, "FETCH FORWARD %d FROM %s", FETCH_ROWS, cur->name);
  PGresult *res = lm_pg_run(cur->conn, sql, cur->sql, 0, NULL, err);
  if (!res) {
    cur->open_on_server = 0;    /* the transaction is failed; CLOSE would too */
    cur->last_batch = 1;
    return LM_ERROR;
  }
  if (PQresultStatus(res) != PGRES_TUPLES_OK) {
    PQclear(res);
    cur->last_batch = 1;
    return lm_err_set(err, "FETCH returned no rows description\n  in: %s",
                      cur->sql);
  }
  cursor_take(cur, res);
  if (cur->nrows < FETCH_ROWS) {
    cur->last_batch = 1;
    return cursor_close_server(cur, err);
  }
  return LM_OK;
}

static void cursor_free(lm_cursor *cur) {
  PQclear(cur->batch);
  for (size_t i = 0; i < cur->ncols; i++) {
    free(cur->colnames[i]);
    if (cur->blobs[i]) PQfreemem(cur->blobs[i]);
  }
  free(cur->colnames);
  free(cur->kinds);
  free(cur->values);
  free(cur->blobs);
  free(cur->sql);
  free(cur);
}

/* A query streams through a server-side cursor, FETCH_ROWS rows at a time,
 * so memory stays flat and other statements (a backfill's UPDATEs) can run
 * between batches.  Inside a transaction the cursor is a plain one, living
 * as long as the transaction, which is how migrations run.  Outside one,
 * a plain cursor could not exist past its own statement, so it is declared
 * WITH HOLD: the server keeps the result (spilling to disk past work_mem)
 * and the caller's later statements still commit on their own, as they
 * would without a cursor open. */
static int query(lm_conn *c, const char *sql, size_t nparams,
                 const lm_value *params, int bounded, lm_cursor **out,
                 lm_err *err) {
  *out = NULL;
  lm_cursor *cur = lm_xcalloc(1, sizeof *cur);
  cur->conn = c;
  cur->sql = lm_xstrdup(sql);
  if (bounded || !cursor_capable(sql)) {
    PGresult *res = lm_pg_run(c, sql, NULL, nparams, params, err);
    if (!res) {
      cursor_free(cur);
      return LM_ERROR;
    }
    cursor_take(cur, res);
    cur->last_batch = 1;
    *out = cur;
    return LM_OK;
  }
  int in_tx = PQtransactionStatus(c->pg) != PQTRANS_IDLE;
  snprintf(cur->name, sizeof cur->name, "lm_cur_%lu", ++c->cursors);
  char *body = strip_terminator(sql);
  if (lm_pg_check_blob_params(c, body, nparams, params, err) != LM_OK) {
    free(body);
    cursor_free(cur);
    return LM_ERROR;
  }
  char *declare = lm_xasprintf("DECLARE %s NO SCROLL CURSOR %sFOR %s",
                               cur->name, in_tx ? "" : "WITH HOLD ", body);
  free(body);
  /* PQexecParams even without parameters: it refuses a second statement
   * smuggled in after the query. */
  lm_pg_params p;
  if (lm_pg_params_build(&p, nparams, params, err) != LM_OK) {
    lm_pg_params_free(&p);
    free(declare);
    cursor_free(cur);
    return LM_ERROR;
  }
  PGresult *res = PQexecParams(c->pg, declare, p.n, p.types, p.values,
                               p.lengths, p.formats, 0);
  lm_pg_params_free(&p);
  free(declare);
  if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
    lm_pg_result_error(c, res, sql, err);
    PQclear(res);
    cursor_free(cur);
    return LM_ERROR;
  }
  PQclear(res);
  cur->open_on_server = 1;
  /* The first batch now, so the columns are known before the first row. */
  if (cursor_fetch(cur, err) != LM_OK) {
    lm_err tmp;
    lm_err_init(&tmp);
    cursor_close_server(cur, &tmp);
    lm_err_free(&tmp);
    cursor_free(cur);
    return LM_ERROR;
  }
  *out = cur;
  return LM_OK;
}

int lm_pg_query(lm_conn *c, const char *sql, size_t nparams,
                const lm_value *params, lm_cursor **out, lm_err *err) {
  return query(c, sql, nparams, params, 0, out, err);
}

/* A bounded result needs no server cursor: one round trip instead of a
 * DECLARE, a FETCH per FETCH_ROWS rows and a CLOSE. */
int lm_pg_query_bounded(lm_conn *c, const char *sql, size_t nparams,
                        const lm_value *params, lm_cursor **out,
                        lm_err *err) {
  return query(c, sql, nparams, params, 1, out, err);
}

/* Decode column `i` of the current row into cur->values[i]. */
static int cursor_decode(lm_cursor *cur, int row, size_t i, lm_err *err) {
  lm_value *v = &cur->values[i];
  memset(v, 0, sizeof *v);
  if (PQgetisnull(cur->batch, row, (int)i)) {
    v->type = LM_V_NULL;
    return LM_OK;
  }
  const char *s = PQgetvalue(cur->batch, row, (int)i);
  v->type = cur->kinds[i];
  switch (v->type) {
  case LM_V_INT:
    v->i = (int64_t)strtoll(s, NULL, 10);
    break;
  case LM_V_FLOAT:
    v->f = strtod(s, NULL);     /* also reads NaN, Infinity, -Infinity */
    break;
  case LM_V_BOOL:
    v->i = s[0] == 't';
    break;
  case LM_V_BLOB: {
    size_t n = 0;
    unsigned char *bytes = PQunescapeBytea((const unsigned char *)s, &n);
    if (!bytes)
      return lm_err_set(err, "column %s: cannot decode bytea value",
                        cur->colnames[i]);
    cur->blobs[i] = bytes;
    v->s = (const char *)bytes;
    v->len = n;
    break;
  }
  default:
    v->type = LM_V_TEXT;
    v->s = s;
    v->len = (size_t)PQgetlength(cur->batch, row, (int)i);
    break;
  }
  return LM_OK;
}

int lm_pg_cursor_next(lm_cursor *cur, lm_err *err) {
  for (size_t i = 0; i < cur->ncols; i++)
    if (cur->blobs[i]) {
      PQfreemem(cur->blobs[i]);
      cur->blobs[i] = NULL;
    }
  if (cur->row >= cur->nrows) {
    if (cur->last_batch) return 0;
    if (cursor_fetch(cur, err) != LM_OK) return LM_ERROR;
    if (cur->nrows == 0) return 0;
  }
  int row = cur->row++;
  for (size_t i = 0; i < cur->ncols; i++)
    if (cursor_decode(cur, row, i, err) != LM_OK) return LM_ERROR;
  return 1;
}

size_t lm_pg_cursor_ncols(lm_cursor *cur) { return cur->ncols; }

const char *lm_pg_cursor_colname(lm_cursor *cur, size_t col) {
  return col < cur->ncols ? cur->colnames[col] : NULL;
}

const lm_value *lm_pg_cursor_value(lm_cursor *cur, size_t col) {
  return col < cur->ncols ? &cur->values[col] : NULL;
}

/* Closing early (the caller stopped reading): CLOSE the server cursor if
 * it still exists.  It may not: the transaction that declared it may have
 * ended, and a CLOSE of a missing cursor inside the caller's next
 * transaction would abort that transaction, so pg_cursors is asked first.
 * In a failed transaction nothing can run; the cursor dies with it. */
void lm_pg_cursor_close(lm_cursor *cur) {
  if (!cur) return;
  lm_conn *c = cur->conn;
  if (cur->open_on_server && PQtransactionStatus(c->pg) != PQTRANS_INERROR) {
    lm_err err;
    lm_err_init(&err);
    lm_value name = {.type = LM_V_TEXT, .s = cur->name,
                     .len = strlen(cur->name)};
    PGresult *res = lm_pg_run(c, "SELECT 1 FROM pg_catalog.pg_cursors "
                        "WHERE name = $1", NULL, 1, &name, &err);
    if (res) {
      int exists = PQntuples(res) > 0;
      PQclear(res);
      if (exists) cursor_close_server(cur, &err);
    }
    lm_err_free(&err);
  }
  cursor_free(cur);
}

