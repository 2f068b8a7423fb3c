/*
 * postgresql_write.c - writing rows in bulk on PostgreSQL: bulk inserts
 * through one COPY FROM STDIN stream, and the backfill writer that updates
 * a whole batch with one statement.  Values go as text each column's input
 * function reads (postgresql_data.c: the catalog and the value text).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "postgresql.h"

/* COPY data is handed to libpq in pieces of about this size. */
#define COPY_CHUNK (256 * 1024)

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
      rc = lm_pg_result_error(l->conn, res, l->sql, err);
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
  lm_pg_columns cat;
  if (lm_pg_columns_load(conn, schema, table, &cat, err) != LM_OK) return LM_ERROR;
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
    rc = lm_pg_column_index(&cat, table, columns[i], &k, err);
    if (rc == LM_OK) l->bytea[i] = cat.bytea[k];
    l->columns[i] = lm_xstrdup(columns[i]);
    if (i) lm_buf_puts(&sql, ", ");
    lm_pg_quote_ident(&sql, columns[i]);
  }
  lm_buf_puts(&sql, ") FROM STDIN");
  l->sql = lm_buf_detach(&sql);
  lm_pg_columns_free(&cat);
  if (rc == LM_OK) {
    PGresult *res = PQexec(conn->pg, l->sql);
    if (!res || PQresultStatus(res) != PGRES_COPY_IN)
      rc = lm_pg_result_error(conn, res, l->sql, err);
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
      if (lm_pg_check_text(&row[i], l->bytea[i], l->columns[i], err) != LM_OK) {
        lm_err_prefix(err, "row %zu", l->rows + r + 1);
        return LM_ERROR;
      }
      lm_pg_put_value(&l->data, &row[i], l->bytea[i], lm_pg_put_copy);
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

/* ---- the backfill writer ---------------------------------------------- */

struct lm_writer {
  lm_conn *conn;
  char *table;                  /* as given, for messages */
  char *target;                 /* quoted and qualified */
  size_t nkeys;
  size_t *key_col;              /* each key's index in cat */
  int order;
  lm_pg_columns cat;
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
  if (lm_pg_columns_load(conn, schema, table, &w->cat, err) != LM_OK) {
    lm_pg_writer_close(w);
    return LM_ERROR;
  }
  for (size_t i = 0; i < nkeys; i++)
    if (lm_pg_column_index(&w->cat, table, keys[i], &w->key_col[i], err) != LM_OK) {
      lm_pg_writer_close(w);
      return LM_ERROR;
    }
  *out = w;
  return LM_OK;
}

void lm_pg_writer_close(lm_writer *w) {
  if (!w) return;
  lm_pg_columns_free(&w->cat);
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
    if (lm_pg_check_text(v, bytea, w->cat.names[cat_idx], err) != LM_OK)
      return LM_ERROR;
    lm_buf_putc(b, '"');
    lm_pg_put_value(b, v, bytea, lm_pg_put_array);
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
    rc = lm_pg_column_index(&w->cat, w->table, cols[j], &col_idx[j], err);
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
        lm_pg_put_value(args, v, w->cat.bytea[w->key_col[i]], lm_pg_put_raw);
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
  if (lm_pg_check(w->conn, res, PGRES_COMMAND_OK, lm_buf_str(sql), err) != LM_OK) {
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
