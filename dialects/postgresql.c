/*
 * postgresql.c - the PostgreSQL dialect, through libpq.
 *
 * Connections, statements with $n parameters and transactions, and the
 * dialect's table.  Streaming queries are in postgresql_query.c, the run
 * lock in postgresql_lock.c, the DDL side (types, defaults, quoting,
 * compiling operations) in postgresql_ddl.c.
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

#include "postgresql.h"
#include "sql_lex.h"


/* bytea's type OID, fixed in pg_type.dat since forever. */
#define PG_BYTEAOID 17
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

int lm_pg_params_build(lm_pg_params *p, size_t n, const lm_value *v,
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

void lm_pg_params_free(lm_pg_params *p) {
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
PGresult *lm_pg_run(lm_conn *c, const char *sql, const char *shown,
                     size_t nparams, const lm_value *params, lm_err *err) {
  PGresult *res;
  if (!shown) shown = sql;
  if (nparams == 0) {
    res = PQexec(c->pg, sql);
  } else {
    lm_pg_params p;
    if (lm_pg_check_blob_params(c, sql, nparams, params, err) != LM_OK)
      return NULL;
    if (lm_pg_params_build(&p, nparams, params, err) != LM_OK) {
      lm_pg_params_free(&p);
      return NULL;
    }
    res = PQexecParams(c->pg, sql, p.n, p.types, p.values, p.lengths,
                       p.formats, 0);
    lm_pg_params_free(&p);
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
  PGresult *res = lm_pg_run(c, "SET client_min_messages = warning; "
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
    res = lm_pg_run(c, "SET client_connection_check_interval = 1000", NULL, 0,
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
  PGresult *res = lm_pg_run(c, sql, NULL, nparams, params, err);
  if (!res) return LM_ERROR;
  if (affected) *affected = affected_rows(res);
  PQclear(res);
  return LM_OK;
}

/* ---- transactions ---------------------------------------------------- */

static int simple(lm_conn *c, const char *sql, lm_err *err) {
  PGresult *res = lm_pg_run(c, sql, NULL, 0, NULL, err);
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
  PGresult *res = lm_pg_run(c, "COMMIT", NULL, 0, NULL, err);
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
  PGresult *res = lm_pg_run(c,
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

/* What PostgreSQL takes as postgresql_<option> (Alembic's names). */
static const lm_dialect_option pg_options[] = {
  {"alter_column", "using"},
  {"create_index", "where"},
  {"create_index", "concurrently"},
  {"create_index", "include"},
  {"create_index", "using"},
  {"drop_index", "concurrently"},
  {NULL, NULL}
};

const lm_dialect lm_postgresql_dialect = {
  .version = LM_DIALECT_VERSION,
  .name = "postgresql",
  .schemes = pg_schemes,
  .transactional_ddl = 1,
  .connect = pg_connect,
  .close = pg_close,
  .exec = pg_exec,
  .query = lm_pg_query,
  .query_bounded = lm_pg_query_bounded,
  .cursor_next = lm_pg_cursor_next,
  .cursor_ncols = lm_pg_cursor_ncols,
  .cursor_colname = lm_pg_cursor_colname,
  .cursor_value = lm_pg_cursor_value,
  .cursor_close = lm_pg_cursor_close,
  .begin = pg_begin,
  .commit = pg_commit,
  .rollback = pg_rollback,
  .lock = lm_pg_lock,
  .unlock = lm_pg_unlock,
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
  .ddl_locks_block = 1,
  .options = pg_options,
  .lock_timeout_sql = lm_pg_lock_timeout_sql,
  .is_lock_timeout = lm_pg_is_lock_timeout,
  .lock_blockers = lm_pg_lock_blockers,
  .read_type = lm_pg_read_type,
  .keep = &lm_pg_keep,
};
