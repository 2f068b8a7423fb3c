/*
 * runner.c - connections, the version table and the log, and running a
 * plan: each migration and its version-table change commit in one
 * transaction, so a failure leaves the database at the previous revision.
 */
#define _POSIX_C_SOURCE 200809L
#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "lock_retry.h"

void lm_emit(lm_env *env, lm_event_kind kind, const char *revision,
              const char *fmt, ...) {
  lm_buf b = LM_BUF_INIT;
  va_list ap;
  va_start(ap, fmt);
  lm_buf_vprintf(&b, fmt, ap);
  va_end(ap);
  if (!env->quiet) fprintf(stderr, "%s\n", lm_buf_str(&b));
  if (env->on_event) {
    lm_event ev = {kind, revision, lm_buf_str(&b)};
    env->on_event(&ev, env->event_payload);
  }
  lm_buf_free(&b);
}

/* ---- connection and lock ---------------------------------------------- */

int lm_pick_dialect(lm_env *env) {
  if (env->dialect) return LM_OK;
  if (!env->url)
    return lm_err_set(&env->err, "no database URL: set url in %s, "
                      "$LUAMIG_URL or --url",
                      env->config_path ? env->config_path : "luamig.lua");
  if (lm_url_parse(&env->parsed_url, env->url, &env->err) != LM_OK)
    return LM_ERROR;
  env->dialect = lm_dialect_for_scheme(env->parsed_url.scheme);
  if (!env->dialect) {
    lm_buf known = LM_BUF_INIT;
    for (size_t i = 0; lm_dialects[i]; i++)
      for (const char *const *s = lm_dialects[i]->schemes; *s; s++)
        lm_buf_printf(&known, "%s%s://", known.len ? ", " : "", *s);
    lm_err_set(&env->err, "unsupported database URL scheme '%s' (known: %s)",
               env->parsed_url.scheme, lm_buf_str(&known));
    lm_buf_free(&known);
    lm_url_free(&env->parsed_url);
    return LM_ERROR;
  }
  return LM_OK;
}

int lm_connect(lm_env *env) {
  if (env->conn) return LM_OK;
  if (lm_pick_dialect(env) != LM_OK) return LM_ERROR;
  return env->dialect->connect(&env->conn, &env->parsed_url, "luamig",
                               &env->err);
}

static void qualified(lm_env *env, lm_buf *b, const char *table);
static char *lock_key(lm_env *env);

void lm_disconnect(lm_env *env) {
  if (!env->conn) return;
  for (size_t i = 0; i < sizeof env->stmts / sizeof *env->stmts; i++)
    if (env->stmts[i]) {
      env->dialect->stmt_close(env->stmts[i]);
      env->stmts[i] = NULL;
    }
  lm_op_data_release(env);
  lm_release_lock(env);
  env->dialect->close(env->conn);
  env->conn = NULL;
}

static void lock_waiting(const char *holder, void *payload) {
  lm_env *env = payload;
  lm_emit(env, LM_EVENT_LOCK_WAIT, NULL,
           "waiting for the migration lock held by %s (up to %g s)", holder,
           env->lock_timeout);
}

/* The version table's qualified name, quoted where it needs it: the
 * dialect keys the lock on the table it resolves to. */
static char *lock_key(lm_env *env) {
  lm_buf b = LM_BUF_INIT;
  qualified(env, &b, env->version_table);
  return lm_buf_detach(&b);
}

static int take_lock(lm_env *env) {
  if (env->locked) return LM_OK;
  char *key = lock_key(env);
  int rc = env->dialect->lock(env->conn, key, env->lock_timeout, lock_waiting,
                              env, &env->err);
  free(key);
  if (rc == LM_OK) env->locked = 1;
  return rc;
}

/* Release the run lock under the key it was taken with; the connection
 * stays (the module runs many commands on one). */
void lm_release_lock(lm_env *env) {
  if (!env->conn || !env->locked) return;
  char *key = lock_key(env);
  lm_err err;
  lm_err_init(&err);
  env->dialect->unlock(env->conn, key, &err);
  lm_err_free(&err);
  free(key);
  env->locked = 0;
}

/* A probe does not wait: the holder, as the dialect names it to a
 * waiting runner, is the answer. */
static void probe_holder(const char *holder, void *payload) {
  lm_buf_printf(payload, "held by %s", holder);
}

int lm_lock_probe(lm_env *env, int *held, lm_buf *holder) {
  char *key = lock_key(env);
  lm_err err;
  lm_err_init(&err);
  *held = 0;
  if (env->dialect->lock(env->conn, key, 0, probe_holder, holder, &err) ==
      LM_OK) {
    env->dialect->unlock(env->conn, key, &err);
  } else {
    *held = 1;
    if (!holder->len) lm_buf_puts(holder, lm_err_msg(&err));
  }
  lm_err_free(&err);
  free(key);
  return LM_OK;
}

/* ---- version table and log -------------------------------------------- */

static void qualified(lm_env *env, lm_buf *b, const char *table) {
  if (env->version_table_schema) {
    env->dialect->quote_ident(b, env->version_table_schema);
    lm_buf_putc(b, '.');
  }
  env->dialect->quote_ident(b, table);
}

/* The version table exactly as Alembic's, so either tool can read it. */
static int create_version_table(lm_env *env, int if_not_exists, lm_err *err) {
  static const char *const pk_cols[] = {"version_num"};
  lm_column col = {.name = "version_num",
                   .type = {.kind = LM_T_STRING, .length = 32,
                            .precision = -1, .scale = -1},
                   .nullable = 0};
  char *pk_name = lm_xasprintf("%s_pkc", env->version_table);
  lm_constraint pk = {.kind = LM_CON_PRIMARY_KEY, .name = pk_name,
                      .columns = pk_cols, .ncolumns = 1, .deferrable = -1};
  lm_op op = {.kind = LM_OP_CREATE_TABLE, .schema = env->version_table_schema,
              .table = env->version_table, .columns = &col, .ncolumns = 1,
              .constraints = &pk, .nconstraints = 1,
              .if_not_exists = if_not_exists};
  int rc = lm_op_apply(env, &op, err);
  free(pk_name);
  return rc;
}

/* luamig_log: append-only record of every upgrade, downgrade and stamp. */
static int create_log_table(lm_env *env, lm_err *err) {
#define T(k) {.kind = (k), .length = -1, .precision = -1, .scale = -1}
#define S(n) {.kind = LM_T_STRING, .length = (n), .precision = -1, .scale = -1}
  lm_column cols[] = {
    {.name = "id", .type = T(LM_T_INTEGER), .primary_key = 1},
    {.name = "revision", .type = S(32), .nullable = 0},
    {.name = "direction", .type = S(16), .nullable = 0},
    {.name = "checksum", .type = S(64), .nullable = 1},
    {.name = "started_at", .type = T(LM_T_DATETIME), .nullable = 0},
    {.name = "duration", .type = T(LM_T_FLOAT), .nullable = 1},
    {.name = "run_by", .type = S(255), .nullable = 1},
    {.name = "status", .type = S(16), .nullable = 0},
    {.name = "message", .type = T(LM_T_TEXT), .nullable = 1},
  };
#undef T
#undef S
  lm_op op = {.kind = LM_OP_CREATE_TABLE, .schema = env->version_table_schema,
              .table = env->log_table, .columns = cols,
              .ncolumns = sizeof cols / sizeof *cols, .if_not_exists = 1};
  return lm_op_apply(env, &op, err);
}

int lm_ensure_version_table(lm_env *env) {
  int vt = 0, log = 0;
  const lm_dialect *d = env->dialect;
  if (d->has_table(env->conn, env->version_table_schema, env->version_table,
                   &vt, &env->err) != LM_OK ||
      d->has_table(env->conn, env->version_table_schema, env->log_table, &log,
                   &env->err) != LM_OK)
    return LM_ERROR;
  if (vt && log) return LM_OK;
  if (d->begin(env->conn, &env->err) != LM_OK) return LM_ERROR;
  if ((!vt && create_version_table(env, 0, &env->err) != LM_OK) ||
      (!log && create_log_table(env, &env->err) != LM_OK) ||
      d->commit(env->conn, &env->err) != LM_OK) {
    lm_err err;
    lm_err_init(&err);
    d->rollback(env->conn, &err);
    lm_err_free(&err);
    lm_err_prefix(&env->err, "cannot create the version table %s",
                  env->version_table);
    return LM_ERROR;
  }
  return LM_OK;
}

int lm_read_heads(lm_env *env, lm_strvec *heads) {
  int exists = 0;
  if (env->dialect->has_table(env->conn, env->version_table_schema,
                              env->version_table, &exists,
                              &env->err) != LM_OK)
    return LM_ERROR;
  if (!exists) return LM_OK;
  lm_buf sql = LM_BUF_INIT;
  lm_buf_puts(&sql, "SELECT version_num FROM ");
  qualified(env, &sql, env->version_table);
  lm_cursor *cur;
  int rc = env->dialect->query(env->conn, lm_buf_str(&sql), 0, NULL, &cur,
                               &env->err);
  lm_buf_free(&sql);
  if (rc != LM_OK) return rc;
  while ((rc = env->dialect->cursor_next(cur, &env->err)) == 1) {
    const lm_value *v = env->dialect->cursor_value(cur, 0);
    if (v->type == LM_V_TEXT) lm_strvec_push(heads, lm_xstrndup(v->s, v->len));
  }
  env->dialect->cursor_close(cur);
  return rc < 0 ? LM_ERROR : LM_OK;
}

/* The statements every migration runs (version-table changes, the log
 * row) are prepared once per connection.  Offline they are written out. */
enum { STMT_INSERT, STMT_DELETE, STMT_UPDATE, STMT_LOG, STMT_LOG_END };

static int exec_prepared(lm_env *env, int slot, const char *sql,
                         size_t nparams, const lm_value *params,
                         int64_t *affected, lm_err *err) {
  if (env->mode == LM_EXEC_OFFLINE || !env->dialect->prepare)
    return lm_exec_sql(env, sql, nparams, params, affected, err);
  if (!env->stmts[slot] &&
      env->dialect->prepare(env->conn, sql, &env->stmts[slot], err) != LM_OK)
    return LM_ERROR;
  return env->dialect->stmt_exec(env->stmts[slot], nparams, params, affected,
                                 err);
}

/* A string parameter; NULL becomes SQL NULL. */
static lm_value text_value(const char *s) {
  if (!s) return (lm_value){.type = LM_V_NULL};
  return (lm_value){.type = LM_V_TEXT, .s = s, .len = strlen(s)};
}

/* Apply one version-table action; online, exactly one row must change, as
 * Alembic checks, so a concurrent edit of the table is caught. */
static int version_action(lm_env *env, const lm_vt_action *a, lm_err *err) {
  lm_buf sql = LM_BUF_INIT;
  lm_value params[2];
  size_t n = 0;
  const char *what = "";
  switch (a->kind) {
  case LM_VT_INSERT:
    lm_buf_puts(&sql, "INSERT INTO ");
    qualified(env, &sql, env->version_table);
    lm_buf_puts(&sql, " (version_num) VALUES ($1)");
    params[n++] = text_value(a->to);
    what = a->to;
    break;
  case LM_VT_DELETE:
    lm_buf_puts(&sql, "DELETE FROM ");
    qualified(env, &sql, env->version_table);
    lm_buf_puts(&sql, " WHERE version_num = $1");
    params[n++] = text_value(a->from);
    what = a->from;
    break;
  case LM_VT_UPDATE:
    lm_buf_puts(&sql, "UPDATE ");
    qualified(env, &sql, env->version_table);
    lm_buf_puts(&sql, " SET version_num = $1 WHERE version_num = $2");
    params[n++] = text_value(a->to);
    params[n++] = text_value(a->from);
    what = a->from;
    break;
  }
  int64_t affected = 1;
  int slot = a->kind == LM_VT_INSERT ? STMT_INSERT
             : a->kind == LM_VT_DELETE ? STMT_DELETE : STMT_UPDATE;
  int rc = exec_prepared(env, slot, lm_buf_str(&sql), n, params, &affected,
                         err);
  lm_buf_free(&sql);
  if (rc == LM_OK && env->mode == LM_EXEC_ONLINE && affected != 1)
    return lm_err_set(err, "the version table %s changed underneath this run: "
                      "expected one row for %s, found %lld",
                      env->version_table, what, (long long)affected);
  return rc;
}

static const char *run_by(void) {
  static char who[300];
  if (who[0]) return who;
  const char *user = getenv("USER");
  struct passwd *pw = user ? NULL : getpwuid(getuid());
  if (!user) user = pw ? pw->pw_name : "unknown";
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  snprintf(who, sizeof who, "%s@%s", user, host);
  return who;
}

/* What one log row says.  Online, a script's row is written when it
 * starts, with status "running", and ended ("ok" or "dirty") when it
 * ends: inside the migration's transaction nobody sees it running;
 * outside one (transactional = false) it is committed before the first
 * change that cannot be undone, so that a run killed from there on leaves
 * the database dirty. */
typedef struct log_row {
  const char *revision, *direction, *checksum, *started_at;
  double duration;
  const char *status;           /* "running", "ok" or "dirty" */
  const char *message;          /* the error, for a dirty row */
} log_row;

/* One row of the log.  Offline scripts stamp the time the script runs. */
static int log_entry(lm_env *env, const log_row *row, lm_err *err) {
  int offline = env->mode == LM_EXEC_OFFLINE;
  lm_buf sql = LM_BUF_INIT;
  lm_buf_puts(&sql, "INSERT INTO ");
  qualified(env, &sql, env->log_table);
  lm_buf_puts(&sql, " (revision, direction, checksum, started_at, duration, "
              "run_by, status, message) VALUES ($1, $2, $3, ");
  lm_buf_puts(&sql, offline ? "CURRENT_TIMESTAMP, $4, $5, $6, $7)"
                            : "$4, $5, $6, $7, $8)");
  lm_value p[8];
  size_t n = 0;
  p[n++] = text_value(row->revision);
  p[n++] = text_value(row->direction);
  p[n++] = text_value(row->checksum);
  if (!offline) p[n++] = text_value(row->started_at);
  p[n++] = offline ? (lm_value){.type = LM_V_NULL}
                   : (lm_value){.type = LM_V_FLOAT, .f = row->duration};
  p[n++] = offline ? (lm_value){.type = LM_V_NULL} : text_value(run_by());
  p[n++] = text_value(row->status);
  p[n++] = text_value(row->message);
  int rc = exec_prepared(env, STMT_LOG, lm_buf_str(&sql), n, p, NULL, err);
  lm_buf_free(&sql);
  return rc;
}

/* End a "running" row (online): its status, duration and message.
 * *found = 0 when no such row is committed or in this transaction. */
static int log_end(lm_env *env, const log_row *row, int *found, lm_err *err) {
  lm_buf sql = LM_BUF_INIT;
  lm_buf_puts(&sql, "UPDATE ");
  qualified(env, &sql, env->log_table);
  lm_buf_puts(&sql, " SET status = $1, duration = $2, message = $3 WHERE "
              "revision = $4 AND direction = $5 AND started_at = $6 AND "
              "status = 'running'");
  lm_value p[6] = {text_value(row->status),
                   {.type = LM_V_FLOAT, .f = row->duration},
                   text_value(row->message), text_value(row->revision),
                   text_value(row->direction), text_value(row->started_at)};
  int64_t affected = 0;
  int rc = exec_prepared(env, STMT_LOG_END, lm_buf_str(&sql), 6, p, &affected,
                         err);
  lm_buf_free(&sql);
  *found = affected > 0;
  return rc;
}

int lm_log_note(lm_env *env, const char *revision, const char *direction,
                const char *checksum, const char *message, lm_err *err) {
  char now[32];
  lm_utc_timestamp(now);
  log_row row = {revision, direction, checksum, now, 0, "ok", message};
  return log_entry(env, &row, err);
}

/* A failed script's "running" row becomes "dirty", with the error, in a
 * transaction of its own.  *dirty = 1 when the row was committed (the
 * database is dirty), 0 when it never was (nothing stays to mark). */
static int mark_dirty(lm_env *env, const log_row *row, int *dirty,
                      lm_err *err) {
  *dirty = 0;
  lm_tx_rollback(env);
  if (env->dialect->begin(env->conn, err) != LM_OK) return LM_ERROR;
  if (log_end(env, row, dirty, err) == LM_OK &&
      env->dialect->commit(env->conn, err) == LM_OK)
    return LM_OK;
  lm_err err2;
  lm_err_init(&err2);
  env->dialect->rollback(env->conn, &err2);
  lm_err_free(&err2);
  return LM_ERROR;
}

/* The transactional = false script being run: its log row and whether it
 * is committed. */
struct lm_nontx {
  log_row row;
  int marked;                   /* the "running" row is committed */
  int marking;                  /* being written: statements go straight on */
  int resumable;                /* a backfill committed a saved position */
};

int lm_nontx_mark(lm_env *env, lm_err *err) {
  struct lm_nontx *nt = env->nontx;
  if (!nt || nt->marked || nt->marking || env->mode != LM_EXEC_ONLINE)
    return LM_OK;
  nt->marking = 1;
  int rc = env->dialect->begin(env->conn, err);
  if (rc == LM_OK) rc = log_entry(env, &nt->row, err);
  if (rc == LM_OK) rc = env->dialect->commit(env->conn, err);
  if (rc != LM_OK) {
    lm_err err2;
    lm_err_init(&err2);
    env->dialect->rollback(env->conn, &err2);
    lm_err_free(&err2);
    lm_err_prefix(err, "cannot record that %s is running outside a "
                  "transaction, so it does not start", nt->row.revision);
  }
  nt->marking = 0;
  nt->marked = rc == LM_OK;
  return rc;
}

/* ---- running a plan ------------------------------------------------------ */

/* "a, b -> c": what a step moves from and to, as Alembic logs it. */
static void describe_step(lm_env *env, const lm_step *st, lm_buf *out) {
  if (st->rev < 0) {
    for (size_t i = 0; i < st->nactions; i++) {
      const lm_vt_action *a = &st->actions[i];
      lm_buf_printf(out, "%s%s -> %s", i ? "; " : "",
                    a->from ? a->from : "", a->to ? a->to : "");
    }
    return;
  }
  const lm_revision *r = lm_graph_rev(env->graph, (size_t)st->rev);
  lm_buf down = LM_BUF_INIT;
  for (size_t i = 0; i < r->ndown; i++)
    lm_buf_printf(&down, "%s%s", i ? ", " : "", r->down[i]);
  if (st->upgrade)
    lm_buf_printf(out, "%s -> %s", lm_buf_str(&down), r->id);
  else
    lm_buf_printf(out, "%s -> %s", r->id, lm_buf_str(&down));
  /* Alembic's log line names the doc; its --sql comment does not. */
  if (env->mode == LM_EXEC_ONLINE) {
    lm_script *s = lm_script_at(env, (size_t)st->rev);
    lm_buf_puts(out, ", ");
    lm_graph_short_doc(env->graph, (size_t)st->rev, s ? s->doc : NULL, out);
  }
  lm_buf_free(&down);
}

int lm_tx_begin(lm_env *env) {
  int *open = &env->tx_open;
  if (*open) return LM_OK;
  if (env->mode == LM_EXEC_OFFLINE) {
    lm_exec_sql(env, env->dialect->begin_sql, 0, NULL, NULL, &env->err);
  } else if (env->dialect->begin(env->conn, &env->err) != LM_OK) {
    return LM_ERROR;
  }
  *open = 1;
  env->tx_lost = 0;
  return LM_OK;
}

/* Roll back a transaction open on the connection that luamig no longer
 * counts as its own (one whose commit failed, one a script began). */
static void end_open_tx(lm_env *env) {
  const lm_dialect *d = env->dialect;
  if (env->mode != LM_EXEC_ONLINE || !env->conn || d->version < 5 ||
      !d->in_transaction || !d->in_transaction(env->conn))
    return;
  lm_err err;
  lm_err_init(&err);
  d->rollback(env->conn, &err);
  lm_err_free(&err);
}

static const char *signal_name(void) {
  return lm_signal_received == SIGINT ? "SIGINT" : "SIGTERM";
}

int lm_tx_check(lm_env *env, lm_err *err) {
  const lm_dialect *d = env->dialect;
  /* Once lost, it stays lost until the next begin, even if the script
   * caught the first error and went on. */
  if (!env->tx_lost &&
      (!env->tx_open || env->mode != LM_EXEC_ONLINE || !env->conn ||
       d->version < 5 || !d->in_transaction || d->in_transaction(env->conn)))
    return LM_OK;
  env->tx_open = 0;
  env->tx_lost = 1;
  return lm_err_set(err, "the transaction luamig opened was ended by the "
                    "script's own SQL (a COMMIT, ROLLBACK or END): luamig "
                    "commits each migration itself; a script that controls "
                    "transactions must say transactional = false");
}

/* Commit the open transaction.  A signal received since it began stops
 * it here: a signalled run never commits (the caller rolls back).  In a
 * non-transactional script, a commit a rerun cannot resume carries the
 * script's "running" row with it. */
static int tx_commit(lm_env *env, int resumable) {
  if (env->tx_lost) return lm_tx_check(env, &env->err);
  if (!env->tx_open) return LM_OK;
  if (env->mode == LM_EXEC_OFFLINE) {
    env->tx_open = 0;
    return lm_exec_sql(env, env->dialect->commit_sql, 0, NULL, NULL,
                       &env->err);
  }
  if (lm_signal_received)
    return lm_err_set(&env->err, "interrupted by %s: not committed",
                      signal_name());
  if (lm_tx_check(env, &env->err) != LM_OK) return LM_ERROR;
  struct lm_nontx *nt = env->nontx;
  int marking = nt && !nt->marked && !resumable;
  if (marking && log_entry(env, &nt->row, &env->err) != LM_OK) return LM_ERROR;
  env->tx_open = 0;
  if (env->dialect->commit(env->conn, &env->err) != LM_OK) {
    end_open_tx(env);   /* SQLite keeps one whose commit failed open */
    return LM_ERROR;
  }
  if (marking) nt->marked = 1;
  if (nt && resumable) nt->resumable = 1;
  return LM_OK;
}

int lm_tx_commit(lm_env *env) { return tx_commit(env, 0); }

int lm_tx_commit_resumable(lm_env *env) { return tx_commit(env, 1); }

void lm_tx_rollback(lm_env *env) {
  int *open = &env->tx_open;
  if (!*open) return;
  if (env->mode == LM_EXEC_OFFLINE || !env->conn) {
    *open = 0;   /* nothing was run: the script just stops here */
    return;
  }
  lm_err err;
  lm_err_init(&err);
  env->dialect->rollback(env->conn, &err);
  lm_err_free(&err);
  *open = 0;
}

/* A script failed online: roll back what can be, and say what stays.  A
 * "running" row that was committed (before a non-transactional change, or
 * by the script's own COMMIT) becomes the dirty mark. */
static void script_failed(lm_env *env, const lm_script *script,
                          const char *command, log_row *row, int in_tx,
                          const struct lm_nontx *nt) {
  int lost = in_tx && env->tx_lost;   /* the script ended our transaction */
  env->tx_lost = 0;
  lm_tx_rollback(env);
  end_open_tx(env);                   /* one the script began */
  int committed = !in_tx && nt->marked, dirty = 0;
  char *msg = lm_xstrdup(lm_err_msg(&env->err));
  lm_err mark_err;
  lm_err_init(&mark_err);
  int marked = LM_ERROR;
  if (committed || lost) {
    row->status = "dirty";
    row->message = msg;
    marked = mark_dirty(env, row, &dirty, &mark_err);
  }
  if (marked != LM_OK) dirty = committed;
  if (dirty && marked != LM_OK)
    /* The committed "running" row keeps the database dirty. */
    lm_err_prefix(&env->err, "%s %s (%s) failed outside a transaction; the "
                  "database is marked dirty until `luamig stamp` says which "
                  "revision it is at (the error itself could not be added "
                  "to the mark: %s)", command, script->rev.id, script->path,
                  lm_err_msg(&mark_err));
  else if (dirty)
    lm_err_prefix(&env->err, "%s %s (%s) failed %s; the database is marked "
                  "dirty until `luamig stamp` says which revision it is at",
                  command, script->rev.id, script->path,
                  in_tx ? "after its own SQL committed part of it"
                        : "outside a transaction");
  else if (lost && marked != LM_OK)
    lm_err_prefix(&env->err, "%s %s (%s) failed, and whether its own SQL "
                  "committed part of it is unknown (%s): check the database",
                  command, script->rev.id, script->path,
                  lm_err_msg(&mark_err));
  else if (!in_tx)
    lm_err_prefix(&env->err, "%s %s (%s) failed outside a transaction before "
                  "it changed anything a rerun would repeat%s; the database "
                  "is not dirty", command, script->rev.id, script->path,
                  nt->resumable ? " (a backfill resumes from its saved "
                                  "position)" : "");
  else
    lm_err_prefix(&env->err, "%s %s (%s) failed and was rolled back",
                  command, script->rev.id, script->path);
  lm_err_free(&mark_err);
  free(msg);
}

/* Run one step inside the caller's transaction handling. */
static int run_step(lm_env *env, const lm_step *st, const char *command) {
  lm_script *script = st->rev >= 0 ? lm_script_at(env, (size_t)st->rev) : NULL;
  const char *direction = script ? (st->upgrade ? "upgrade" : "downgrade")
                                 : "stamp";
  char started_at[32], checksum[65] = "";
  lm_utc_timestamp(started_at);
  double t0 = lm_now();
  lm_buf what = LM_BUF_INIT;
  describe_step(env, st, &what);
  if (env->mode == LM_EXEC_OFFLINE)
    lm_buf_printf(env->sql_out, "-- Running %s %s\n\n", direction,
                  lm_buf_str(&what));
  else   /* before the script, so its own output lands under this line */
    lm_emit(env, LM_EVENT_MIGRATION_START, script ? script->rev.id : NULL,
            "Running %s %s", direction, lm_buf_str(&what));

  const char *logged_rev = script ? script->rev.id
                           : st->nactions && st->actions[0].to
                               ? st->actions[0].to
                               : st->nactions ? st->actions[0].from : "";
  log_row row = {logged_rev, direction, script ? checksum : NULL, started_at,
                 0, "running", NULL};
  /* Online, a script's log row is written as it starts and ended when it
   * ends (see log_row). */
  int tracked = script && env->mode == LM_EXEC_ONLINE;
  int rc = LM_OK;
  /* A script marked transactional = false runs its statements outside a
   * transaction (CREATE INDEX CONCURRENTLY); its version change still
   * commits only after it succeeded. */
  int in_tx = !script || script->transactional;
  struct lm_nontx nt = {.row = row};
  if (script) rc = lm_script_checksum(script, checksum, &env->err);
  if (rc == LM_OK && !in_tx && env->tx_open) rc = lm_tx_commit(env);
  if (rc == LM_OK && in_tx) rc = lm_tx_begin(env);
  if (rc == LM_OK && tracked && in_tx) rc = log_entry(env, &row, &env->err);
  if (rc == LM_OK && tracked && !in_tx) env->nontx = &nt;
  if (rc == LM_OK && script) rc = lm_script_run(env, script, st->upgrade);
  env->nontx = NULL;
  if (rc == LM_OK && in_tx) rc = lm_tx_check(env, &env->err);
  if (rc == LM_OK && !in_tx) rc = lm_tx_begin(env);
  for (size_t i = 0; rc == LM_OK && i < st->nactions; i++)
    rc = version_action(env, &st->actions[i], &env->err);
  row.status = "ok";
  row.duration = lm_now() - t0;
  if (rc == LM_OK && tracked && (in_tx || nt.marked)) {
    int found = 0;
    rc = log_end(env, &row, &found, &env->err);
    if (rc == LM_OK && !found)
      rc = lm_err_set(&env->err, "the log row of %s %s disappeared from %s "
                      "while it ran", direction, row.revision,
                      env->log_table);
  } else if (rc == LM_OK) {
    rc = log_entry(env, &row, &env->err);
  }
  if (rc == LM_OK && (env->transaction_per_migration || !in_tx))
    rc = lm_tx_commit(env);
  if (rc != LM_OK && lm_signal_received &&
      strncmp(lm_err_msg(&env->err), "interrupted by", 14) != 0)
    lm_err_prefix(&env->err, "interrupted by %s", signal_name());
  if (rc != LM_OK && tracked) {
    script_failed(env, script, command, &row, in_tx, &nt);
    lm_buf_free(&what);
    return LM_ERROR;
  }
  if (rc != LM_OK) {
    lm_tx_rollback(env);
    if (script)
      lm_err_prefix(&env->err, "%s %s (%s) failed", command, script->rev.id,
                    script->path);
    lm_buf_free(&what);
    return LM_ERROR;
  }
  if (env->mode == LM_EXEC_ONLINE)
    lm_emit(env, LM_EVENT_MIGRATION_DONE, script ? script->rev.id : NULL,
            "Finished %s %s in %.3f s%s", direction, logged_rev,
            lm_now() - t0, script && env->tx_open ? " (commits with the "
            "rest of the run: transaction_per_migration = false)" : "");
  lm_buf_free(&what);
  return LM_OK;
}

/* A step failed inside a transaction that earlier steps of the run had
 * not committed (transaction_per_migration = false): say they were
 * rolled back too, not only the one that failed. */
static void report_rolled_back(lm_env *env, const lm_plan *plan,
                               size_t first, size_t failed) {
  lm_buf revs = LM_BUF_INIT;
  size_t n = 0;
  for (size_t i = first; i < failed; i++) {
    if (plan->steps[i].rev < 0) continue;
    lm_buf_printf(&revs, "%s%s", n++ ? ", " : "",
                  lm_graph_rev(env->graph, (size_t)plan->steps[i].rev)->id);
  }
  if (n) {
    lm_err first_err = env->err;   /* its message, and the code to keep */
    const char *msg = lm_err_msg(&first_err);
    lm_err_init(&env->err);
    lm_err_set(&env->err, "%s\nThe %zu migration%s run before it in the "
               "same transaction (transaction_per_migration = false) %s "
               "rolled back with it: %s; %s.", msg, n, n == 1 ? "" : "s",
               n == 1 ? "was" : "were", lm_buf_str(&revs),
               first == 0 ? "nothing of this run is applied"
                          : "the migrations before them stay applied");
    lm_err_copy_code(&env->err, &first_err);
    lm_err_free(&first_err);
  }
  lm_buf_free(&revs);
}

int lm_run_plan(lm_env *env, const lm_plan *plan, const char *command,
                lm_strvec *applied) {
  size_t uncommitted = 0;       /* the first step the open transaction holds */
  for (size_t i = 0; i < plan->nsteps; i++) {
    const lm_step *st = &plan->steps[i];
    if (lm_signal_received) {
      lm_tx_rollback(env);
      return lm_err_set(&env->err, "interrupted by %s before %s %zu of %zu",
                        signal_name(), command, i + 1, plan->nsteps);
    }
    if (!env->tx_open) uncommitted = i;
    /* lock_retry.c: statement_lock_timeout, lock_retries */
    if (lm_lock_retry_step(env, st, command, run_step, i == 0,
                           uncommitted == i) != LM_OK) {
      lm_script *s = st->rev >= 0 ? lm_script_at(env, (size_t)st->rev) : NULL;
      if (env->mode == LM_EXEC_ONLINE && (!s || s->transactional))
        report_rolled_back(env, plan, uncommitted, i);
      return LM_ERROR;
    }
    if (applied && st->rev >= 0)
      lm_strvec_push(applied,
                     lm_xstrdup(lm_graph_rev(env->graph, (size_t)st->rev)->id));
  }
  if (lm_tx_commit(env) != LM_OK) {
    lm_tx_rollback(env);
    return LM_ERROR;
  }
  return LM_OK;
}

int lm_stamp_clear_dirty(lm_env *env, int log_heads) {
  lm_strvec heads = LM_STRVEC_INIT;
  int rc = lm_read_heads(env, &heads);
  if (rc == LM_OK && log_heads) {
    rc = lm_tx_begin(env);
    for (size_t i = 0; rc == LM_OK && i < (heads.n ? heads.n : 1); i++)
      rc = lm_log_note(env, heads.n ? heads.items[i] : "base", "stamp", NULL,
                       "the database is at this revision, as a person "
                       "confirmed", &env->err);
    if (rc == LM_OK) rc = lm_tx_commit(env);
    if (rc != LM_OK) lm_tx_rollback(env);
  }
  if (rc == LM_OK) {
    lm_buf at = LM_BUF_INIT;
    for (size_t i = 0; i < heads.n; i++)
      lm_buf_printf(&at, "%s%s", i ? ", " : "", heads.items[i]);
    lm_emit(env, LM_EVENT_INFO, NULL, "The dirty mark is cleared: the "
            "database is recorded at %s.", heads.n ? lm_buf_str(&at) : "base");
    lm_buf_free(&at);
  }
  lm_strvec_free(&heads);
  return rc;
}

/* Connect, take the run lock and make sure the tables exist: what every
 * command that changes the database starts with. */
int lm_begin_run(lm_env *env) {
  if (lm_connect(env) != LM_OK || take_lock(env) != LM_OK ||
      lm_ensure_version_table(env) != LM_OK)
    return LM_ERROR;
  return LM_OK;
}

/* The offline script's preamble: the dialect's header, then the tables,
 * when starting from nothing. */
int lm_offline_preamble(lm_env *env, int from_base) {
  const char *header = env->dialect->offline_header_sql;
  int rc = header ? lm_exec_sql(env, header, 0, NULL, NULL, &env->err) : LM_OK;
  if (rc == LM_OK) rc = lm_tx_begin(env);
  if (rc == LM_OK && from_base) rc = create_version_table(env, 0, &env->err);
  if (rc == LM_OK) rc = create_log_table(env, &env->err);
  if (rc == LM_OK) rc = lm_tx_commit(env);
  return rc;
}

/* Offline, a downgrade that ends at base drops the version table, as
 * Alembic's --sql does. */
int lm_offline_drop_version_table(lm_env *env) {
  lm_op op = {.kind = LM_OP_DROP_TABLE, .schema = env->version_table_schema,
              .table = env->version_table};
  int rc = lm_tx_begin(env);
  if (rc == LM_OK) rc = lm_op_apply(env, &op, &env->err);
  if (rc == LM_OK) rc = lm_tx_commit(env);
  return rc;
}

int lm_purge_versions(lm_env *env) {
  lm_buf sql = LM_BUF_INIT;
  lm_buf_puts(&sql, "DELETE FROM ");
  qualified(env, &sql, env->version_table);
  int rc = lm_exec_sql(env, lm_buf_str(&sql), 0, NULL, NULL, &env->err);
  lm_buf_free(&sql);
  return rc;
}
