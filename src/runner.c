/*
 * runner.c - connections, the run lock, the version table, and running a
 * plan: each migration and its version-table change commit in one
 * transaction, so a failure leaves the database at the previous revision.
 * What a step's statements, transactions, version changes and log rows do
 * is the current executor's (executor.h); the runner only calls through
 * it, and switches to the replay executor to bring an offline model to
 * the start of a --sql range.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "executor.h"
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
  lm_sql_qualified(env->dialect, &b, env->version_table_schema,
                   env->version_table);
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
  lm_sql_spec spec = {.kind = LM_SQL_VERSION_READ,
                      .schema = env->version_table_schema,
                      .table = env->version_table};
  lm_core_sql(env->dialect, &sql, &spec);
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

int lm_log_note(lm_env *env, const char *revision, const char *direction,
                const char *checksum, const char *message, lm_err *err) {
  char now[32];
  lm_utc_timestamp(now);
  lm_log_row row = {revision, direction, checksum, now, 0, "ok", message};
  return env->exec->log(env, &row, err);
}

/* ---- transactions -------------------------------------------------------- */

/* The runner counts the transaction it opened (env->tx_open); the
 * executor opens and ends it. */
int lm_tx_begin(lm_env *env) {
  if (env->tx_open) return LM_OK;
  if (env->exec->begin(env, &env->err) != LM_OK) return LM_ERROR;
  env->tx_open = 1;
  env->tx_lost = 0;
  return LM_OK;
}

int lm_tx_check(lm_env *env, lm_err *err) {
  return env->exec->tx_check(env, err);
}

/* Commit the open transaction.  One the script's SQL ended is an error. */
static int tx_commit(lm_env *env, int resumable) {
  if (env->tx_lost) return lm_tx_check(env, &env->err);
  if (!env->tx_open) return LM_OK;
  return env->exec->commit(env, resumable, &env->err);
}

int lm_tx_commit(lm_env *env) { return tx_commit(env, 0); }

int lm_tx_commit_resumable(lm_env *env) { return tx_commit(env, 1); }

void lm_tx_rollback(lm_env *env) {
  if (env->tx_open) env->exec->rollback(env);
}

/* ---- running a plan ------------------------------------------------------ */

static const char *signal_name(void) {
  return lm_signal_received == SIGINT ? "SIGINT" : "SIGTERM";
}

/* "a, b -> c": what a step moves from and to, as Alembic logs it; doc
 * gets the script's short doc. */
static void describe_step(lm_env *env, const lm_step *st, lm_buf *out,
                          lm_buf *doc) {
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
  lm_script *s = lm_script_at(env, (size_t)st->rev);
  lm_graph_short_doc(env->graph, (size_t)st->rev, s ? s->doc : NULL, doc);
  lm_buf_free(&down);
}

/* Run step i of the plan inside the caller's transaction handling;
 * `uncommitted` is the first step the open transaction holds. */
static int run_step(lm_env *env, const lm_plan *plan, size_t i,
                    size_t uncommitted, const char *command) {
  const lm_step *st = &plan->steps[i];
  const lm_executor *x = env->exec;
  lm_script *script = st->rev >= 0 ? lm_script_at(env, (size_t)st->rev) : NULL;
  const char *direction = script ? (st->upgrade ? "upgrade" : "downgrade")
                                 : "stamp";
  char started_at[32], checksum[65] = "";
  lm_utc_timestamp(started_at);
  double t0 = lm_now();
  lm_buf what = LM_BUF_INIT, doc = LM_BUF_INIT;
  describe_step(env, st, &what, &doc);
  const char *logged_rev = script ? script->rev.id
                           : st->nactions && st->actions[0].to
                               ? st->actions[0].to
                               : st->nactions ? st->actions[0].from : "";
  lm_step_note note = {0, script, direction, lm_buf_str(&what),
                       st->rev >= 0 ? lm_buf_str(&doc) : NULL, logged_rev, 0};
  x->step(env, &note);

  lm_log_row row = {logged_rev, direction, script ? checksum : NULL,
                    started_at, 0, "running", NULL};
  int rc = LM_OK;
  /* A script marked transactional = false runs its statements outside a
   * transaction (CREATE INDEX CONCURRENTLY); its version change still
   * commits only after it succeeded.  Its "running" row is committed
   * before its first change (the executor's), a transactional script's
   * written as it starts (lm_log_row). */
  int in_tx = !script || script->transactional, started = 0;
  struct lm_nontx nt = {.row = row};
  if (script) rc = lm_script_checksum(script, checksum, &env->err);
  if (rc == LM_OK && !in_tx && env->tx_open) rc = lm_tx_commit(env);
  if (rc == LM_OK && in_tx) rc = lm_tx_begin(env);
  if (rc == LM_OK && script && in_tx)
    rc = x->log_start(env, &row, &started, &env->err);
  if (rc == LM_OK && script && !in_tx) env->nontx = &nt;
  if (rc == LM_OK && script) rc = lm_script_run(env, script, st->upgrade);
  env->nontx = NULL;
  if (rc == LM_OK && in_tx) rc = lm_tx_check(env, &env->err);
  if (rc == LM_OK && !in_tx) rc = lm_tx_begin(env);
  for (size_t k = 0; rc == LM_OK && k < st->nactions; k++)
    rc = x->version_change(env, &st->actions[k], &env->err);
  row.status = "ok";
  row.duration = lm_now() - t0;
  if (rc == LM_OK && (started || nt.marked)) {
    int found = 0;
    rc = x->log_end(env, &row, &found, &env->err);
    if (rc == LM_OK && !found)
      rc = lm_err_set(&env->err, "the log row of %s %s disappeared from %s "
                      "while it ran", direction, row.revision,
                      env->log_table);
  } else if (rc == LM_OK) {
    rc = x->log(env, &row, &env->err);
  }
  if (rc == LM_OK && (env->transaction_per_migration || !in_tx))
    rc = lm_tx_commit(env);
  if (rc != LM_OK && lm_signal_received &&
      strncmp(lm_err_msg(&env->err), "interrupted by", 14) != 0)
    lm_err_prefix(&env->err, "interrupted by %s", signal_name());
  if (rc != LM_OK) {
    lm_step_failure f = {command, script, &row, in_tx, started, &nt, plan, i,
                         uncommitted, env->dialect->transactional_ddl};
    x->failed(env, &f);
  } else {
    note.done = 1;
    note.seconds = lm_now() - t0;
    x->step(env, &note);
  }
  lm_buf_free(&what);
  lm_buf_free(&doc);
  return rc == LM_OK ? LM_OK : LM_ERROR;
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
    if (lm_lock_retry_step(env, plan, i, uncommitted, command, run_step) !=
        LM_OK)
      return LM_ERROR;
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

/* Before a --sql range that starts at `heads`: run the upgrades from
 * base to those heads on the replay executor, which only follows them on
 * the offline model, so that the range's rebuilds know the tables'
 * shapes. */
int lm_run_replay(lm_env *env, const char *const *heads, size_t nheads) {
  if (!nheads) return LM_OK;
  const lm_executor *was = lm_exec_use(env, &lm_executor_replay);
  lm_strvec done = LM_STRVEC_INIT;
  int rc = LM_OK;
  for (size_t h = 0; rc == LM_OK && h < nheads; h++) {
    lm_plan plan = {0};
    rc = lm_graph_plan_upgrade(env->graph, heads[h],
                               (const char *const *)done.items, done.n,
                               &plan, &env->err);
    for (size_t i = 0; rc == LM_OK && i < plan.nsteps; i++) {
      const lm_step *step = &plan.steps[i];
      lm_script *s = step->rev >= 0 ? lm_script_at(env, (size_t)step->rev)
                                    : NULL;
      if (s) rc = lm_script_run(env, s, 1);
    }
    lm_plan_free(&plan);
    if (rc == LM_OK) lm_strvec_push(&done, lm_xstrdup(heads[h]));
  }
  lm_exec_use(env, was);
  lm_strvec_free(&done);
  if (rc != LM_OK)
    lm_err_prefix(&env->err, "replaying the revisions before the range");
  return rc;
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
  lm_sql_spec spec = {.kind = LM_SQL_VERSION_PURGE,
                      .schema = env->version_table_schema,
                      .table = env->version_table};
  lm_core_sql(env->dialect, &sql, &spec);
  int rc = lm_exec_sql(env, lm_buf_str(&sql), 0, NULL, NULL, &env->err);
  lm_buf_free(&sql);
  return rc;
}
