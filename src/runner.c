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

static char *lock_key(lm_env *env) {
  return env->version_table_schema
             ? lm_xasprintf("%s.%s", env->version_table_schema,
                            env->version_table)
             : lm_xstrdup(env->version_table);
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

int lm_lock_probe(lm_env *env, int *held, lm_buf *holder) {
  char *key = lock_key(env);
  lm_err err;
  lm_err_init(&err);
  *held = 0;
  if (env->dialect->lock(env->conn, key, 0, NULL, NULL, &err) == LM_OK) {
    env->dialect->unlock(env->conn, key, &err);
  } else {
    *held = 1;
    lm_buf_puts(holder, lm_err_msg(&err));
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
enum { STMT_INSERT, STMT_DELETE, STMT_UPDATE, STMT_LOG };

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

/* One row of the log.  Offline scripts stamp the time the script runs. */
/* What one log row says. */
typedef struct log_row {
  const char *revision, *direction, *checksum, *started_at;
  double duration;
  const char *status;           /* "ok", or "dirty" for a failed run outside a transaction */
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

/* A script that ran outside a transaction failed part-way: nothing can be
 * rolled back, so leave a dirty mark (with the error) that upgrade and
 * downgrade refuse to pass until a person stamps the real revision. */
static void mark_dirty(lm_env *env, const log_row *row) {
  lm_err err;
  lm_err_init(&err);
  lm_tx_rollback(env);
  if (env->dialect->begin(env->conn, &err) == LM_OK) {
    if (log_entry(env, row, &err) == LM_OK &&
        env->dialect->commit(env->conn, &err) == LM_OK) {
      lm_err_free(&err);
      return;
    }
    lm_err err2;
    lm_err_init(&err2);
    env->dialect->rollback(env->conn, &err2);
    lm_err_free(&err2);
  }
  lm_err_prefix(&env->err, "could not record the dirty state (%s)",
                lm_err_msg(&err));
  lm_err_free(&err);
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
  return LM_OK;
}

int lm_tx_commit(lm_env *env) {
  int *open = &env->tx_open;
  if (!*open) return LM_OK;
  *open = 0;
  if (env->mode == LM_EXEC_OFFLINE)
    return lm_exec_sql(env, env->dialect->commit_sql, 0, NULL, NULL,
                       &env->err);
  return env->dialect->commit(env->conn, &env->err);
}

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
  /* To the callback only: the command line prints the step when done. */
  if (env->mode == LM_EXEC_ONLINE && env->on_event) {
    lm_event ev = {LM_EVENT_MIGRATION_START, script ? script->rev.id : NULL,
                   lm_buf_str(&what)};
    env->on_event(&ev, env->event_payload);
  }

  int rc = LM_OK;
  /* A script marked transactional = false runs its statements outside a
   * transaction (CREATE INDEX CONCURRENTLY); its version change still
   * commits only after it succeeded. */
  int in_tx = !script || script->transactional;
  if (!in_tx && env->tx_open) rc = lm_tx_commit(env);
  if (rc == LM_OK && in_tx) rc = lm_tx_begin(env);
  if (rc == LM_OK && script)
    rc = lm_script_checksum(script, checksum, &env->err);
  if (rc == LM_OK && script) rc = lm_script_run(env, script, st->upgrade);
  if (rc == LM_OK && !in_tx) rc = lm_tx_begin(env);
  for (size_t i = 0; rc == LM_OK && i < st->nactions; i++)
    rc = version_action(env, &st->actions[i], &env->err);
  const char *logged_rev = script ? script->rev.id
                           : st->nactions && st->actions[0].to
                               ? st->actions[0].to
                               : st->nactions ? st->actions[0].from : "";
  log_row row = {logged_rev, direction, script ? checksum : NULL, started_at,
                 0, "ok", NULL};
  row.duration = lm_now() - t0;
  if (rc == LM_OK) rc = log_entry(env, &row, &env->err);
  if (rc == LM_OK && (env->transaction_per_migration || !in_tx))
    rc = lm_tx_commit(env);
  if (rc != LM_OK && lm_signal_received)
    lm_err_prefix(&env->err, "interrupted by %s",
                  lm_signal_received == SIGINT ? "SIGINT" : "SIGTERM");
  if (rc != LM_OK && !in_tx && script && env->mode == LM_EXEC_ONLINE) {
    row.status = "dirty";
    row.message = lm_err_msg(&env->err);
    char *msg = lm_xstrdup(row.message);
    row.message = msg;
    mark_dirty(env, &row);
    free(msg);
    lm_err_prefix(&env->err, "%s %s (%s) failed outside a transaction; the "
                  "database is marked dirty until `luamig stamp` says which "
                  "revision it is at", command, script->rev.id, script->path);
    lm_buf_free(&what);
    return LM_ERROR;
  }
  if (rc != LM_OK) {
    lm_tx_rollback(env);
    if (script)
      lm_err_prefix(&env->err, "%s %s (%s) failed%s", command,
                    script->rev.id, script->path,
                    env->mode == LM_EXEC_ONLINE ? " and was rolled back" : "");
    lm_buf_free(&what);
    return LM_ERROR;
  }
  if (env->mode == LM_EXEC_ONLINE)
    lm_emit(env, LM_EVENT_MIGRATION_DONE, script ? script->rev.id : NULL,
             "Running %s %s (%.3f s)", direction, lm_buf_str(&what),
             lm_now() - t0);
  lm_buf_free(&what);
  return LM_OK;
}

int lm_run_plan(lm_env *env, const lm_plan *plan, const char *command,
                lm_strvec *applied) {
  for (size_t i = 0; i < plan->nsteps; i++) {
    const lm_step *st = &plan->steps[i];
    if (lm_signal_received) {
      lm_tx_rollback(env);
      return lm_err_set(&env->err, "interrupted by %s before %s %zu of %zu",
                        lm_signal_received == SIGINT ? "SIGINT" : "SIGTERM",
                        command, i + 1, plan->nsteps);
    }
    if (run_step(env, st, command) != LM_OK) return LM_ERROR;
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

/* Connect, take the run lock and make sure the tables exist: what every
 * command that changes the database starts with. */
int lm_begin_run(lm_env *env) {
  if (lm_connect(env) != LM_OK || take_lock(env) != LM_OK ||
      lm_ensure_version_table(env) != LM_OK)
    return LM_ERROR;
  return LM_OK;
}

/* The offline script's preamble: the tables, when starting from nothing. */
int lm_offline_preamble(lm_env *env, int from_base) {
  int rc = lm_tx_begin(env);
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
