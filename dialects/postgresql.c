/*
 * postgresql.c - the PostgreSQL dialect, through libpq.
 *
 * Connections, statements with $n parameters, streaming queries through
 * server-side cursors, transactions and a session-level advisory lock held
 * for a whole run.  The DDL side (types, defaults, quoting, compiling
 * operations) lives in postgresql_ddl.c.
 *
 * Every PGresult is checked with PQresultStatus and cleared on every path;
 * a failed statement leaves the server's primary message, its DETAIL and
 * HINT, the SQLSTATE and the SQL in the error.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "postgresql.h"
#include "sql_lex.h"


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
/* Longest SQL quoted in an error message. */
#define ERR_SQL_MAX 2000

/* ---- errors ---------------------------------------------------------- */

/* Strip the trailing newline(s) libpq puts on its messages. */
static void add_trimmed(lm_buf *b, const char *s) {
  size_t n = strlen(s);
  while (n && (s[n - 1] == '\n' || s[n - 1] == ' ')) n--;
  lm_buf_add(b, s, n);
}

/* Append the SQL a failure happened in, cut short when it is huge. */
static void add_sql(lm_buf *b, const char *sql) {
  size_t n = strlen(sql);
  lm_buf_puts(b, "\n  in: ");
  if (n > ERR_SQL_MAX) {
    lm_buf_add(b, sql, ERR_SQL_MAX);
    lm_buf_printf(b, "... (%zu more bytes)", n - ERR_SQL_MAX);
  } else {
    lm_buf_puts(b, sql);
  }
}

/* Turn a failed result (or a NULL one: out of memory, lost connection)
 * into `message (SQLSTATE x)\n  detail: ...\n  hint: ...\n  in: SQL`. */
int lm_pg_result_error(lm_conn *c, const PGresult *res, const char *sql,
                       lm_err *err) {
  lm_buf b = LM_BUF_INIT;
  const char *primary = NULL, *detail = NULL, *hint = NULL, *state = NULL;
  const char *context = NULL;
  if (res) {
    primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL);
    hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT);
    state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    context = PQresultErrorField(res, PG_DIAG_CONTEXT);
  }
  if (primary) {
    lm_buf_puts(&b, primary);
  } else {
    /* No server message: libpq's own (connection lost and the like). */
    const char *m = res ? PQresultErrorMessage(res) : "";
    if (!*m) m = PQerrorMessage(c->pg);
    if (*m) add_trimmed(&b, m);
    else if (res) lm_buf_printf(&b, "unexpected result %s",
                                PQresStatus(PQresultStatus(res)));
    else lm_buf_puts(&b, "no result from the server");
  }
  if (state && *state) lm_buf_printf(&b, " (SQLSTATE %s)", state);
  if (detail) lm_buf_printf(&b, "\n  detail: %s", detail);
  if (hint) lm_buf_printf(&b, "\n  hint: %s", hint);
  /* Where the server was: "COPY t, line 8765" names the row of a bulk
   * insert, a PL/pgSQL stack the function that failed. */
  if (context) {
    lm_buf_puts(&b, "\n  context: ");
    for (const char *p = context; *p; p++) {
      if (*p == '\n' && !p[1]) break;
      if (*p == '\n') lm_buf_puts(&b, "\n    ");
      else lm_buf_putc(&b, *p);
    }
  }
  if (sql) add_sql(&b, sql);
  lm_err_set(err, "%s", lm_buf_str(&b));
  lm_buf_free(&b);
  /* lm_err_set clears the SQLSTATE, so it is filled in afterwards. */
  if (state && strlen(state) == 5) memcpy(err->sqlstate, state, 6);
  return LM_ERROR;
}

/* ---- running statements --------------------------------------------- */

/* Doubles as text: shortest form that reads back as the same value, and
 * the spellings PostgreSQL uses for the special values. */
void lm_pg_format_double(char *out, size_t size, double d) {
  if (d != d) {
    snprintf(out, size, "NaN");
  } else if (d > 1.7976931348623157e308) {
    snprintf(out, size, "Infinity");
  } else if (d < -1.7976931348623157e308) {
    snprintf(out, size, "-Infinity");
  } else {
    for (int prec = 15; prec <= 17; prec++) {
      snprintf(out, size, "%.*g", prec, d);
      if (strtod(out, NULL) == d) break;
    }
  }
}

/* Parameters in libpq's shape.  Text format for numbers, booleans and
 * strings (the server infers their types from the statement); binary
 * bytea for blobs, so their bytes go through untouched. */
typedef struct pg_params {
  int n;
  const char **values;
  int *lengths, *formats;
  Oid *types;
  char **owned;                 /* text we formatted or NUL-terminated */
} pg_params;

static int params_build(pg_params *p, size_t n, const lm_value *v,
                        lm_err *err) {
  memset(p, 0, sizeof *p);
  if (n > 65535)
    return lm_err_set(err, "too many parameters (%zu): PostgreSQL takes at "
                      "most 65535", n);
  p->n = (int)n;
  if (n == 0) return LM_OK;
  p->values = lm_xcalloc(n, sizeof *p->values);
  p->lengths = lm_xcalloc(n, sizeof *p->lengths);
  p->formats = lm_xcalloc(n, sizeof *p->formats);
  p->types = lm_xcalloc(n, sizeof *p->types);
  p->owned = lm_xcalloc(n, sizeof *p->owned);
  for (size_t i = 0; i < n; i++) {
    char num[64];
    switch (v[i].type) {
    case LM_V_NULL:
      break;
    case LM_V_INT:
      p->values[i] = p->owned[i] = lm_xasprintf("%lld", (long long)v[i].i);
      break;
    case LM_V_FLOAT:
      lm_pg_format_double(num, sizeof num, v[i].f);
      p->values[i] = p->owned[i] = lm_xstrdup(num);
      break;
    case LM_V_BOOL:
      p->values[i] = v[i].i ? "true" : "false";
      break;
    case LM_V_TEXT:
      /* Text parameters must be NUL-terminated; ours need not be. */
      p->values[i] = p->owned[i] = lm_xstrndup(v[i].s ? v[i].s : "", v[i].len);
      break;
    case LM_V_BLOB:
      if (v[i].len > 0x7fffffff)
        return lm_err_set(err, "parameter $%zu: blob too large", i + 1);
      p->values[i] = v[i].s ? v[i].s : "";
      p->lengths[i] = (int)v[i].len;
      p->formats[i] = 1;
      p->types[i] = PG_BYTEAOID;
      break;
    }
  }
  return LM_OK;
}

static void params_free(pg_params *p) {
  if (p->owned)
    for (int i = 0; i < p->n; i++) free(p->owned[i]);
  free(p->owned);
  free(p->values);
  free(p->lengths);
  free(p->formats);
  free(p->types);
}

/* Take a connection out of COPY mode (a statement ran COPY ... STDIN or
 * STDOUT, which exec cannot serve) and drop whatever results follow. */
static void abandon_copy(lm_conn *c, ExecStatusType st) {
  if (st == PGRES_COPY_IN || st == PGRES_COPY_BOTH)
    PQputCopyEnd(c->pg, "COPY FROM STDIN is not supported here");
  if (st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) {
    char *buf;
    while (PQgetCopyData(c->pg, &buf, 0) > 0) PQfreemem(buf);
  }
  PGresult *r;
  while ((r = PQgetResult(c->pg)) != NULL) PQclear(r);
}

/* Run one statement (or, without parameters, a script) and return its
 * successful result, or NULL with the error set.  `shown` is the SQL
 * named in an error, when it differs from what is sent. */
static PGresult *run(lm_conn *c, const char *sql, const char *shown,
                     size_t nparams, const lm_value *params, lm_err *err) {
  PGresult *res;
  if (!shown) shown = sql;
  if (nparams == 0) {
    res = PQexec(c->pg, sql);
  } else {
    pg_params p;
    if (lm_pg_check_blob_params(c, sql, nparams, params, err) != LM_OK)
      return NULL;
    if (params_build(&p, nparams, params, err) != LM_OK) {
      params_free(&p);
      return NULL;
    }
    res = PQexecParams(c->pg, sql, p.n, p.types, p.values, p.lengths,
                       p.formats, 0);
    params_free(&p);
  }
  ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  switch (st) {
  case PGRES_COMMAND_OK:
  case PGRES_TUPLES_OK:
  case PGRES_EMPTY_QUERY:
    return res;
  case PGRES_COPY_IN:
  case PGRES_COPY_OUT:
  case PGRES_COPY_BOTH:
  {
    lm_buf b = LM_BUF_INIT;
    PQclear(res);
    abandon_copy(c, st);
    lm_buf_puts(&b, "COPY to or from the client is not supported here; "
                "use op.bulk_insert");
    add_sql(&b, shown);
    lm_err_set(err, "%s", lm_buf_str(&b));
    lm_buf_free(&b);
    return NULL;
  }
  default:
    lm_pg_result_error(c, res, shown, err);
    PQclear(res);
    return NULL;
  }
}

/* Rows a command changed, from its tag ("UPDATE 3"); 0 when it has none. */
static int64_t affected_rows(PGresult *res) {
  const char *t = PQcmdTuples(res);
  return (t && *t) ? (int64_t)atoll(t) : 0;
}

/* ---- connection ------------------------------------------------------ */

/* Decode %XX escapes (a password in a URI is percent-encoded). */
static char *percent_decode(const char *s, size_t n) {
  char *out = lm_xmalloc(n + 1);
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
        isxdigit((unsigned char)s[i + 2])) {
      char hex[3] = {s[i + 1], s[i + 2], 0};
      out[k++] = (char)strtol(hex, NULL, 16);
      i += 2;
    } else {
      out[k++] = s[i];
    }
  }
  out[k] = '\0';
  return out;
}

/* Replace every occurrence of `secret` in `msg` by ***. */
static void scrub(char **msg, const char *secret) {
  size_t n = strlen(secret);
  if (n == 0 || !strstr(*msg, secret)) return;
  lm_buf b = LM_BUF_INIT;
  const char *p = *msg, *hit;
  while ((hit = strstr(p, secret)) != NULL) {
    lm_buf_add(&b, p, (size_t)(hit - p));
    lm_buf_puts(&b, "***");
    p = hit + n;
  }
  lm_buf_puts(&b, p);
  free(*msg);
  *msg = lm_buf_detach(&b);
}

/* Make sure no form of the URL's password (user:PASSWORD@ or
 * ?password=PASSWORD, raw or decoded) appears in a message libpq wrote,
 * whatever libpq chooses to quote back from a malformed URI. */
static void scrub_password(char **msg, const char *url) {
  const char *rest = strstr(url, "://");
  if (!rest) return;
  rest += 3;
  size_t auth = strcspn(rest, "/?#");
  const char *at = NULL;
  for (size_t i = 0; i < auth; i++)
    if (rest[i] == '@') at = rest + i;
  if (at) {
    const char *colon = memchr(rest, ':', (size_t)(at - rest));
    if (colon && at > colon + 1) {
      char *raw = lm_xstrndup(colon + 1, (size_t)(at - colon - 1));
      char *dec = percent_decode(raw, strlen(raw));
      scrub(msg, raw);
      scrub(msg, dec);
      free(raw);
      free(dec);
    }
  }
  const char *q = strchr(rest, '?');
  while (q && (q = strstr(q, "password=")) != NULL) {
    if (q[-1] == '?' || q[-1] == '&') {
      size_t n = strcspn(q + 9, "&#");
      char *raw = lm_xstrndup(q + 9, n);
      char *dec = percent_decode(raw, n);
      scrub(msg, raw);
      scrub(msg, dec);
      free(raw);
      free(dec);
    }
    q += 9;
  }
}

/* Set a connection error from `b` (consumed), with every form of the
 * password removed: the display URL masks user:PASSWORD@ but not a
 * ?password= in the query string, and libpq may quote either back. */
static int connect_error(lm_err *err, lm_buf *b, const lm_url *url) {
  char *msg = lm_buf_detach(b);
  scrub_password(&msg, url->full);
  lm_err_set(err, "%s", msg);
  free(msg);
  return LM_ERROR;
}

/* Server messages arrive asynchronously; client_min_messages = warning
 * keeps NOTICEs away, and what still comes is routed here: warnings go to
 * stderr (never stdout, which carries results), the rest is dropped. */
static void on_notice(void *arg, const PGresult *res) {
  (void)arg;
  const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
  if (!sev) sev = PQresultErrorField(res, PG_DIAG_SEVERITY);
  if (sev && strcmp(sev, "WARNING") == 0) {
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (msg) fprintf(stderr, "postgresql: warning: %s\n", msg);
  }
}

static void pg_close(lm_conn *c);

/* Connect with the URL as a libpq URI (its query string is libpq's), the
 * run's application name (what a waiting runner shows), and a default
 * connect timeout the URL may override. */
static int pg_connect(lm_conn **out, const lm_url *url, const char *app_name,
                      lm_err *err) {
  if (lm_pq_load(err) != LM_OK) return LM_ERROR;
  /* Later entries override earlier ones, including those inside the URI:
   * connect_timeout comes first so the URL can change it, the application
   * name last so a waiting runner can always say who holds the lock. */
  const char *keys[] = {"connect_timeout", "dbname", "application_name", NULL};
  const char *vals[] = {"10", url->full, app_name ? app_name : "luamig", NULL};
  *out = NULL;
  PGconn *pg = PQconnectdbParams(keys, vals, 1);
  if (!pg)
    return lm_err_set(err, "cannot connect to %s: out of memory", url->display);
  if (PQstatus(pg) != CONNECTION_OK) {
    lm_buf b = LM_BUF_INIT;
    lm_buf_printf(&b, "cannot connect to %s: ", url->display);
    add_trimmed(&b, PQerrorMessage(pg));
    PQfinish(pg);
    return connect_error(err, &b, url);
  }
  PQsetNoticeReceiver(pg, on_notice, NULL);
  lm_conn *c = lm_xcalloc(1, sizeof *c);
  c->pg = pg;
  c->cancel = PQgetCancel(pg);   /* made now: PQcancel itself is signal-safe */
  /* The literals luamig writes (defaults, comments) double quotes and
   * leave backslashes alone, as standard SQL reads them: a server set up
   * otherwise must not read a backslash as an escape. */
  PGresult *res = run(c, "SET client_min_messages = warning; "
                      "SET standard_conforming_strings = on", NULL, 0, NULL,
                      err);
  if (!res) {
    lm_buf b = LM_BUF_INIT;
    lm_buf_printf(&b, "connected to %s, but %s", url->display, err->msg);
    pg_close(c);
    return connect_error(err, &b, url);
  }
  PQclear(res);
  /* A runner killed with SIGKILL must not keep its advisory lock while its
   * backend finishes a long statement: from PostgreSQL 14 the server can
   * notice a vanished client during a query. */
  if (PQserverVersion(pg) >= 140000) {
    res = run(c, "SET client_connection_check_interval = 1000", NULL, 0,
              NULL, err);
    if (!res) {
      lm_buf b = LM_BUF_INIT;
      lm_buf_printf(&b, "connected to %s, but %s", url->display, err->msg);
      pg_close(c);
      return connect_error(err, &b, url);
    }
    PQclear(res);
  }
  *out = c;
  return LM_OK;
}

static void pg_close(lm_conn *c) {
  if (!c) return;
  if (c->cancel) PQfreeCancel(c->cancel);
  PQfinish(c->pg);
  free(c);
}

/* ---- statements ------------------------------------------------------ */

static int pg_exec(lm_conn *c, const char *sql, size_t nparams,
                   const lm_value *params, int64_t *affected, lm_err *err) {
  PGresult *res = run(c, sql, NULL, nparams, params, err);
  if (!res) return LM_ERROR;
  if (affected) *affected = affected_rows(res);
  PQclear(res);
  return LM_OK;
}

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
  PGresult *res = run(cur->conn, sql, NULL, 0, NULL, err);
  if (!res) return LM_ERROR;
  PQclear(res);
  return LM_OK;
}

/* FETCH the next batch; one shorter than asked for is the last. */
static int cursor_fetch(lm_cursor *cur, lm_err *err) {
  char sql[80];
  snprintf(sql, sizeof sql, "FETCH FORWARD %d FROM %s", FETCH_ROWS, cur->name);
  PGresult *res = run(cur->conn, sql, cur->sql, 0, NULL, err);
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
    PGresult *res = run(c, sql, NULL, nparams, params, err);
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
  pg_params p;
  if (params_build(&p, nparams, params, err) != LM_OK) {
    params_free(&p);
    free(declare);
    cursor_free(cur);
    return LM_ERROR;
  }
  PGresult *res = PQexecParams(c->pg, declare, p.n, p.types, p.values,
                               p.lengths, p.formats, 0);
  params_free(&p);
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

static int pg_query(lm_conn *c, const char *sql, size_t nparams,
                    const lm_value *params, lm_cursor **out, lm_err *err) {
  return query(c, sql, nparams, params, 0, out, err);
}

/* A bounded result needs no server cursor: one round trip instead of a
 * DECLARE, a FETCH per FETCH_ROWS rows and a CLOSE. */
static int pg_query_bounded(lm_conn *c, const char *sql, size_t nparams,
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

static int pg_cursor_next(lm_cursor *cur, lm_err *err) {
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

static size_t pg_cursor_ncols(lm_cursor *cur) { return cur->ncols; }

static const char *pg_cursor_colname(lm_cursor *cur, size_t col) {
  return col < cur->ncols ? cur->colnames[col] : NULL;
}

static const lm_value *pg_cursor_value(lm_cursor *cur, size_t col) {
  return col < cur->ncols ? &cur->values[col] : NULL;
}

/* Closing early (the caller stopped reading): CLOSE the server cursor if
 * it still exists.  It may not: the transaction that declared it may have
 * ended, and a CLOSE of a missing cursor inside the caller's next
 * transaction would abort that transaction, so pg_cursors is asked first.
 * In a failed transaction nothing can run; the cursor dies with it. */
static void pg_cursor_close(lm_cursor *cur) {
  if (!cur) return;
  lm_conn *c = cur->conn;
  if (cur->open_on_server && PQtransactionStatus(c->pg) != PQTRANS_INERROR) {
    lm_err err;
    lm_err_init(&err);
    lm_value name = {.type = LM_V_TEXT, .s = cur->name,
                     .len = strlen(cur->name)};
    PGresult *res = run(c, "SELECT 1 FROM pg_catalog.pg_cursors "
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

/* ---- transactions ---------------------------------------------------- */

static int simple(lm_conn *c, const char *sql, lm_err *err) {
  PGresult *res = run(c, sql, NULL, 0, NULL, err);
  if (!res) return LM_ERROR;
  PQclear(res);
  return LM_OK;
}

static int pg_begin(lm_conn *c, lm_err *err) { return simple(c, "BEGIN", err); }

/* Only IDLE says the transaction ended: a failed one (INERROR) is still
 * open, and a lost connection (UNKNOWN) reports its own error. */
static int pg_in_transaction(lm_conn *c) {
  return PQtransactionStatus(c->pg) != PQTRANS_IDLE;
}

/* COMMIT of a failed transaction "succeeds" with the tag ROLLBACK: that is
 * a failure here, as is any error COMMIT itself reports (deferred
 * constraints, serialization). */
static int pg_commit(lm_conn *c, lm_err *err) {
  if (PQtransactionStatus(c->pg) == PQTRANS_INERROR) {
    simple(c, "ROLLBACK", err);
    return lm_err_set(err, "COMMIT refused: an earlier statement failed and "
                      "the transaction was rolled back");
  }
  PGresult *res = run(c, "COMMIT", NULL, 0, NULL, err);
  if (!res) return LM_ERROR;
  int rolled_back = strcmp(PQcmdStatus(res), "ROLLBACK") == 0;
  PQclear(res);
  if (rolled_back)
    return lm_err_set(err, "COMMIT failed: the transaction was rolled back");
  return LM_OK;
}

static int pg_rollback(lm_conn *c, lm_err *err) {
  return simple(c, "ROLLBACK", err);
}

/* ---- the run lock ---------------------------------------------------- */

/* A stable 64-bit key for pg_try_advisory_lock: FNV-1a of the name with a
 * prefix that keeps it apart from other applications' advisory locks.  The
 * same in every process and on every platform. */
static int64_t lock_key(const char *key) {
  uint64_t h = 14695981039346656037ULL;
  const char *parts[2] = {"luamig:", key};
  for (int k = 0; k < 2; k++)
    for (const unsigned char *p = (const unsigned char *)parts[k]; *p; p++) {
      h ^= *p;
      h *= 1099511628211ULL;
    }
  return (int64_t)h;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
}

/* Who holds the advisory lock: "pid 1234 (application luamig)".  A bigint
 * advisory lock shows in pg_locks as classid = high half, objid = low
 * half, objsubid = 1. */
static void lock_holder(lm_conn *c, const lm_value *key, char *out,
                        size_t size) {
  lm_err err;
  lm_err_init(&err);
  snprintf(out, size, "an unknown session");
  PGresult *res = run(c,
      "SELECT l.pid, coalesce(a.application_name, ''), "
      "coalesce(a.usename::text, ''), coalesce(host(a.client_addr), '') "
      "FROM pg_catalog.pg_locks l "
      "LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid "
      "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
      "AND l.database = (SELECT oid FROM pg_catalog.pg_database "
      "                  WHERE datname = pg_catalog.current_database()) "
      "AND l.classid::bigint = (($1::bigint >> 32) & 4294967295) "
      "AND l.objid::bigint = ($1::bigint & 4294967295) "
      "AND l.pid <> pg_catalog.pg_backend_pid() LIMIT 1",
      NULL, 1, key, &err);
  if (res && PQntuples(res) == 1) {
    /* "pid 1234 (application luamig, user app, from 10.0.0.5)", leaving
     * out what pg_stat_activity does not show. */
    static const char *const labels[] = {"application ", "user ", "from "};
    lm_buf b = LM_BUF_INIT;
    const char *sep = " (";
    lm_buf_printf(&b, "pid %s", PQgetvalue(res, 0, 0));
    for (int i = 0; i < 3; i++) {
      const char *v = PQgetvalue(res, 0, i + 1);
      if (!*v) continue;
      lm_buf_printf(&b, "%s%s%s", sep, labels[i], v);
      sep = ", ";
    }
    if (sep[0] == ',') lm_buf_putc(&b, ')');
    snprintf(out, size, "%s", lm_buf_str(&b));
    lm_buf_free(&b);
  }
  PQclear(res);
  lm_err_free(&err);
}

/* The lock for `key`, the version table's qualified name (quoted where
 * it needs it): the table as this session resolves it, its schema always
 * spelled out (the one `key` names, else current_schema(), where an
 * unqualified version table is created and read), so that two
 * configurations naming one table differently take one lock.  *name gets
 * that resolved name, for messages (the caller frees it), and num the
 * advisory lock's number as text. */
static int lock_id(lm_conn *c, const char *key, char **name, char *num,
                   size_t size, lm_err *err) {
  lm_value k = {.type = LM_V_TEXT, .s = key, .len = strlen(key)};
  *name = NULL;
  PGresult *res = run(c,
      "SELECT pg_catalog.quote_ident(CASE WHEN pg_catalog.cardinality(p) > 1 "
      "THEN p[1] ELSE coalesce(pg_catalog.current_schema(), '') END) "
      "|| '.' || pg_catalog.quote_ident(p[pg_catalog.cardinality(p)]) "
      "FROM (SELECT pg_catalog.parse_ident($1) AS p) AS s",
      NULL, 1, &k, err);
  if (!res) return LM_ERROR;
  if (PQntuples(res) != 1) {
    PQclear(res);
    return lm_err_set(err, "cannot resolve the version table name %s", key);
  }
  *name = lm_xstrdup(PQgetvalue(res, 0, 0));
  PQclear(res);
  snprintf(num, size, "%lld", (long long)lock_key(*name));
  return LM_OK;
}

/* A session-level advisory lock (not a transaction-level one, which each
 * migration's COMMIT would release), polled with pg_try_advisory_lock so
 * the wait is bounded and the holder can be named. */
static int pg_lock(lm_conn *c, const char *key, double timeout,
                   void (*waiting)(const char *holder, void *payload),
                   void *payload, lm_err *err) {
  char num[32], holder[256] = "";
  char *name;
  if (lock_id(c, key, &name, num, sizeof num, err) != LM_OK) {
    lm_err_prefix(err, "cannot take the lock on %s", key);
    return LM_ERROR;
  }
  lm_value k = {.type = LM_V_TEXT, .s = num, .len = strlen(num)};
  double start = lm_now();
  int rc;
  for (;;) {
    PGresult *res = run(c, "SELECT pg_catalog.pg_try_advisory_lock($1::bigint)",
                        NULL, 1, &k, err);
    if (!res) {
      lm_err_prefix(err, "cannot take the lock on %s", name);
      rc = LM_ERROR;
      break;
    }
    int got = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (got) {
      rc = LM_OK;
      break;
    }
    if (lm_signal_received) {
      rc = lm_err_set(err, "interrupted while waiting for the lock on %s",
                      name);
      break;
    }
    if (!holder[0]) {
      lock_holder(c, &k, holder, sizeof holder);
      if (waiting) waiting(holder, payload);
    }
    if (lm_now() - start >= timeout) {
      /* Name whoever holds it now, which may have changed meanwhile. */
      lock_holder(c, &k, holder, sizeof holder);
      rc = lm_err_set(err, "another luamig run holds the lock on %s: %s; "
                      "gave up after %g s (lock_timeout)", name, holder,
                      timeout);
      lm_err_kind(err, "lock_timeout");
      break;
    }
    /* Short sleeps first, so a lock freed quickly is taken quickly. */
    sleep_ms(lm_now() - start < 1.0 ? 50 : 100);
  }
  free(name);
  return rc;
}

static int pg_unlock(lm_conn *c, const char *key, lm_err *err) {
  char num[32];
  char *name;
  if (lock_id(c, key, &name, num, sizeof num, err) != LM_OK) {
    lm_err_prefix(err, "cannot release the lock on %s", key);
    return LM_ERROR;
  }
  lm_value k = {.type = LM_V_TEXT, .s = num, .len = strlen(num)};
  /* Unlock only what pg_locks shows as ours: pg_advisory_unlock of a lock
   * not held would also print a server WARNING beside our own error. */
  PGresult *res = run(c,
      "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_locks l "
      "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
      "AND l.pid = pg_catalog.pg_backend_pid() "
      "AND l.classid::bigint = (($1::bigint >> 32) & 4294967295) "
      "AND l.objid::bigint = ($1::bigint & 4294967295)) "
      "THEN pg_catalog.pg_advisory_unlock($1::bigint) ELSE false END",
      NULL, 1, &k, err);
  int rc = LM_OK;
  if (!res) {
    lm_err_prefix(err, "cannot release the lock on %s", name);
    rc = LM_ERROR;
  } else {
    int released = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (!released)
      rc = lm_err_set(err, "the lock on %s was not held by this session",
                      name);
  }
  free(name);
  return rc;
}

/* ---- introspection --------------------------------------------------- */

/* Tables, partitioned tables, views, materialized views and foreign
 * tables count, as in SQLAlchemy's has_table.  Names are parameters. */
static int pg_has_table(lm_conn *c, const char *schema, const char *table,
                        int *exists, lm_err *err) {
  lm_value p[2] = {
    {.type = LM_V_TEXT, .s = table, .len = strlen(table)},
    {.type = LM_V_NULL},
  };
  if (schema) {
    p[1].type = LM_V_TEXT;
    p[1].s = schema;
    p[1].len = strlen(schema);
  }
  *exists = 0;
  PGresult *res = run(c,
      "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c "
      "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
      "WHERE c.relname = $1::text "
      "AND n.nspname = coalesce($2::text, pg_catalog.current_schema()) "
      "AND c.relkind IN ('r', 'p', 'v', 'm', 'f'))",
      NULL, 2, p, err);
  if (!res) return LM_ERROR;
  *exists = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
  PQclear(res);
  return LM_OK;
}

/* Ask the server to cancel the running statement (from a signal
 * handler: PQcancel is documented as safe there). */
static void pg_cancel(lm_conn *c) {
  char errbuf[256];
  if (c && c->cancel) PQcancel(c->cancel, errbuf, sizeof errbuf);
}

/* ---- the dialect ----------------------------------------------------- */

static const char *const pg_schemes[] = {"postgresql", "postgres", NULL};

/* PostgreSQL's tokenizer: dollar quotes, E'' strings, nested comments. */
static int pg_render_params(lm_buf *out, const char *sql, size_t nparams,
                            const lm_value *params, lm_err *err) {
  static const lm_sql_lexer lexer = {.dollar_quotes = 1, .escape_strings = 1,
                                     .nested_comments = 1,
                                     .render_literal = lm_pg_render_literal};
  return lm_sql_render_params(&lexer, out, sql, nparams, params, err);
}

const lm_dialect lm_postgresql_dialect = {
  .version = LM_DIALECT_VERSION,
  .name = "postgresql",
  .schemes = pg_schemes,
  .transactional_ddl = 1,
  .connect = pg_connect,
  .close = pg_close,
  .exec = pg_exec,
  .query = pg_query,
  .query_bounded = pg_query_bounded,
  .cursor_next = pg_cursor_next,
  .cursor_ncols = pg_cursor_ncols,
  .cursor_colname = pg_cursor_colname,
  .cursor_value = pg_cursor_value,
  .cursor_close = pg_cursor_close,
  .begin = pg_begin,
  .commit = pg_commit,
  .rollback = pg_rollback,
  .lock = pg_lock,
  .unlock = pg_unlock,
  .has_table = pg_has_table,
  .compile = lm_pg_compile,
  .quote_ident = lm_pg_quote_ident,
  .render_literal = lm_pg_render_literal,
  .begin_sql = "BEGIN",
  .commit_sql = "COMMIT",
  .prepare = lm_pg_prepare,
  .stmt_exec = lm_pg_stmt_exec,
  .stmt_close = lm_pg_stmt_close,
  .loader_open = lm_pg_loader_open,
  .loader_put = lm_pg_loader_put,
  .loader_close = lm_pg_loader_close,
  .estimate_rows = lm_pg_estimate_rows,
  .cancel = pg_cancel,
  .writer_open = lm_pg_writer_open,
  .writer_run = lm_pg_writer_run,
  .writer_close = lm_pg_writer_close,
  .offline_header_sql = "SET standard_conforming_strings = on",
  .in_transaction = pg_in_transaction,
  .introspect_schema = lm_pg_introspect_schema,
  .scratch_create = lm_pg_scratch_create,
  .scratch_drop = lm_pg_scratch_drop,
  .scratch_tune = lm_pg_scratch_tune,
  .render_params = pg_render_params,
  .keep = &lm_pg_keep,
};
