/*
 * exec_online.c - the online executor: each operation is compiled
 * through the dialect and run on the connection, inside the transaction
 * the runner opened; the version table and the log are written with
 * statements prepared once per connection; a failed script is rolled back
 * and, when part of it was committed, marked dirty in the log.
 */
#define _POSIX_C_SOURCE 200809L
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "executor.h"
#include "keep.h"

/* The runner's prepared statements, in env->stmts. */
enum { STMT_INSERT, STMT_DELETE, STMT_UPDATE, STMT_LOG, STMT_LOG_END };

static const char *signal_name(void) {
  return lm_signal_received == SIGINT ? "SIGINT" : "SIGTERM";
}

/* ---- the transaction ----------------------------------------------------- */

/* Roll back a transaction open on the connection that luamig no longer
 * counts as its own (one whose commit failed, one a script began). */
static void end_open_tx(lm_env *env) {
  const lm_dialect *d = env->dialect;
  if (!env->conn || d->version < 5 || !d->in_transaction ||
      !d->in_transaction(env->conn))
    return;
  lm_err err;
  lm_err_init(&err);
  d->rollback(env->conn, &err);
  lm_err_free(&err);
}

static int online_tx_check(lm_env *env, lm_err *err) {
  const lm_dialect *d = env->dialect;
  /* Once lost, it stays lost until the next begin, even if the script
   * caught the first error and went on. */
  if (!env->tx_lost &&
      (!env->tx_open || !env->conn || d->version < 5 || !d->in_transaction ||
       d->in_transaction(env->conn)))
    return LM_OK;
  env->tx_open = 0;
  env->tx_lost = 1;
  return lm_err_set(err, "the transaction luamig opened was ended by the "
                    "script's own SQL (a COMMIT, ROLLBACK or END): luamig "
                    "commits each migration itself; a script that controls "
                    "transactions must say transactional = false");
}

static int online_begin(lm_env *env, lm_err *err) {
  return env->dialect->begin(env->conn, err);
}

static void online_rollback(lm_env *env) {
  env->tx_open = 0;
  if (!env->conn) return;   /* nothing was run: the script just stops here */
  lm_err err;
  lm_err_init(&err);
  env->dialect->rollback(env->conn, &err);
  lm_err_free(&err);
}

/* ---- the version table and the log ---------------------------------------- */

static int exec_prepared(lm_env *env, int slot, lm_sql_kind kind, int now,
                         const char *table, size_t nparams,
                         const lm_value *params, int64_t *affected,
                         lm_err *err) {
  if (env->dialect->prepare && env->stmts[slot])
    return env->dialect->stmt_exec(env->stmts[slot], nparams, params,
                                   affected, err);
  lm_buf sql = LM_BUF_INIT;
  lm_sql_spec spec = {.kind = kind, .schema = env->version_table_schema,
                      .table = table, .now = now};
  lm_core_sql(env->dialect, &sql, &spec);
  int rc;
  if (!env->dialect->prepare)
    rc = lm_exec_sql(env, lm_buf_str(&sql), nparams, params, affected, err);
  else if ((rc = env->dialect->prepare(env->conn, lm_buf_str(&sql),
                                       &env->stmts[slot], err)) == LM_OK)
    rc = env->dialect->stmt_exec(env->stmts[slot], nparams, params, affected,
                                 err);
  lm_buf_free(&sql);
  return rc;
}

/* A string parameter; NULL becomes SQL NULL. */
static lm_value text_value(const char *s) {
  if (!s) return (lm_value){.type = LM_V_NULL};
  return (lm_value){.type = LM_V_TEXT, .s = s, .len = strlen(s)};
}

/* Exactly one row must change, as Alembic checks, so a concurrent edit
 * of the table is caught. */
static int online_version_change(lm_env *env, const lm_vt_action *a,
                                 lm_err *err) {
  lm_value params[2];
  size_t n = 0;
  const char *what = "";
  int slot = STMT_INSERT;
  lm_sql_kind kind = LM_SQL_VERSION_INSERT;
  switch (a->kind) {
  case LM_VT_INSERT:
    params[n++] = text_value(a->to);
    what = a->to;
    break;
  case LM_VT_DELETE:
    slot = STMT_DELETE;
    kind = LM_SQL_VERSION_DELETE;
    params[n++] = text_value(a->from);
    what = a->from;
    break;
  case LM_VT_UPDATE:
    slot = STMT_UPDATE;
    kind = LM_SQL_VERSION_UPDATE;
    params[n++] = text_value(a->to);
    params[n++] = text_value(a->from);
    what = a->from;
    break;
  }
  int64_t affected = 1;
  int rc = exec_prepared(env, slot, kind, 0, env->version_table, n, params,
                         &affected, err);
  if (rc == LM_OK && affected != 1)
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

static int online_log(lm_env *env, const lm_log_row *row, lm_err *err) {
  lm_value p[8] = {text_value(row->revision), text_value(row->direction),
                   text_value(row->checksum), text_value(row->started_at),
                   {.type = LM_V_FLOAT, .f = row->duration},
                   text_value(run_by()), text_value(row->status),
                   text_value(row->message)};
  return exec_prepared(env, STMT_LOG, LM_SQL_LOG_INSERT, 0, env->log_table,
                       8, p, NULL, err);
}

/* Inside the migration's transaction; a non-transactional script's row
 * is committed before its first change instead (nontx_mark). */
static int online_log_start(lm_env *env, const lm_log_row *row, int *started,
                            lm_err *err) {
  *started = 0;
  if (online_log(env, row, err) != LM_OK) return LM_ERROR;
  *started = 1;
  return LM_OK;
}

/* *found = 0 when no such row is committed or in this transaction. */
static int online_log_end(lm_env *env, const lm_log_row *row, int *found,
                          lm_err *err) {
  lm_value p[6] = {text_value(row->status),
                   {.type = LM_V_FLOAT, .f = row->duration},
                   text_value(row->message), text_value(row->revision),
                   text_value(row->direction), text_value(row->started_at)};
  int64_t affected = 0;
  int rc = exec_prepared(env, STMT_LOG_END, LM_SQL_LOG_END, 0,
                         env->log_table, 6, p, &affected, err);
  *found = affected > 0;
  return rc;
}

/* Before a change a non-transactional script cannot undo: commit its
 * "running" log row, so that a run killed from here on leaves it dirty. */
static int nontx_mark(lm_env *env, lm_err *err) {
  struct lm_nontx *nt = env->nontx;
  if (!nt || nt->marked || nt->marking) return LM_OK;
  nt->marking = 1;
  int rc = env->dialect->begin(env->conn, err);
  if (rc == LM_OK) rc = online_log(env, &nt->row, err);
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

/* A signal received since the transaction began stops it here: a
 * signalled run never commits (the caller rolls back).  In a
 * non-transactional script, a commit a rerun cannot resume carries the
 * script's "running" row with it. */
static int online_commit(lm_env *env, int resumable, lm_err *err) {
  if (lm_signal_received)
    return lm_err_set(err, "interrupted by %s: not committed", signal_name());
  if (online_tx_check(env, err) != LM_OK) return LM_ERROR;
  struct lm_nontx *nt = env->nontx;
  int marking = nt && !nt->marked && !resumable;
  if (marking && online_log(env, &nt->row, err) != LM_OK) return LM_ERROR;
  env->tx_open = 0;
  if (env->dialect->commit(env->conn, err) != LM_OK) {
    end_open_tx(env);   /* SQLite keeps one whose commit failed open */
    return LM_ERROR;
  }
  if (marking) nt->marked = 1;
  if (nt && resumable) nt->resumable = 1;
  return LM_OK;
}

/* ---- statements and operations ---------------------------------------------- */

/* Each statement of a migration checks that the transaction luamig opened
 * is still there, before (a failure the script caught may have ended it)
 * and after (the statement may end it).  Outside one, a non-transactional
 * script's first change is preceded by its "running" log row.  Once
 * SIGINT or SIGTERM arrived nothing more runs: outside a transaction, it
 * would commit. */
static int online_sql(lm_env *env, const char *sql, size_t nparams,
                      const lm_value *params, int64_t *affected,
                      lm_err *err) {
  if (lm_signal_received)
    return lm_err_set(err, "interrupted by %s", signal_name());
  if (online_tx_check(env, err) != LM_OK) return LM_ERROR;
  if (!env->tx_open && nontx_mark(env, err) != LM_OK) return LM_ERROR;
  if (env->statements && env->on_event) {
    lm_event ev = {LM_EVENT_STATEMENT, lm_exec_revision(env), sql};
    env->on_event(&ev, env->event_payload);
  }
  int rc = env->dialect->exec(env->conn, sql, nparams, params, affected, err);
  if (rc == LM_OK && online_tx_check(env, err) != LM_OK) return LM_ERROR;
  return rc;
}

static int online_apply(lm_env *env, const lm_op *op, int64_t *affected,
                        lm_err *err) {
  if (op->kind == LM_OP_EXECUTE)
    return online_sql(env, op->sql, op->nparams, op->params, affected, err);
  /* A drop may keep what it removes (keep.c); a table moved into the
   * kept area needs no drop.  What a downgrade makes again is refilled. */
  int kept = 0;
  if (lm_keep_before(env, op, &kept, err) != LM_OK) return LM_ERROR;
  if (kept) return LM_OK;
  lm_compile_ctx ctx = {.conn = env->conn, .offline = 0, .model = NULL,
                        .revision = lm_exec_revision(env)};
  lm_strvec stmts = LM_STRVEC_INIT;
  int rc = env->dialect->compile(&ctx, op, &stmts, err);
  for (size_t i = 0; rc == LM_OK && i < stmts.n; i++)
    rc = online_sql(env, stmts.items[i], 0, NULL, NULL, err);
  lm_strvec_free(&stmts);
  if (rc == LM_OK) rc = lm_keep_after(env, op, err);
  return rc;
}

/* ---- data operations ------------------------------------------------------- */

/* Say which rows a failed stream held, when it did not start at the
 * first: the database counts rows (COPY lines) from the stream's start. */
static void stream_error(const lm_data_op *op, lm_err *err) {
  if (op->stream.first > 1)
    lm_err_prefix(err, "bulk insert into %s (a stream that began at row "
                  "%zu)", op->table, op->stream.first);
  else
    lm_err_prefix(err, "bulk insert into %s", op->table);
}

/* End the open stream, waiting for the database to store its rows. */
static int stream_end(lm_env *env, lm_data_op *op, int abandon, lm_err *err) {
  lm_loader *l = op->stream.loader;
  if (!l) return LM_OK;
  op->stream.loader = NULL;
  if (abandon) {
    lm_err ignored;
    lm_err_init(&ignored);
    env->dialect->loader_close(l, 1, &ignored);
    lm_err_free(&ignored);
    return LM_OK;
  }
  if (env->dialect->loader_close(l, 0, err) == LM_OK) return LM_OK;
  stream_error(op, err);
  return LM_ERROR;
}

/* Hand rows to the loader, opening a stream when none is open. */
static int stream_put(lm_env *env, lm_data_op *op, lm_err *err) {
  const lm_dialect *d = env->dialect;
  if (!op->stream.loader) {
    if (d->loader_open(env->conn, op->schema, op->table, op->ncolumns,
                       op->columns, &op->stream.loader, err) != LM_OK) {
      lm_err_prefix(err, "bulk insert into %s", op->table);
      return LM_ERROR;
    }
    op->stream.first = op->stream.sent + 1;
  }
  if (d->loader_put(op->stream.loader, op->nrows, op->rows, err) != LM_OK) {
    stream_error(op, err);
    return LM_ERROR;
  }
  op->stream.sent += op->nrows;
  return LM_OK;
}

/* A bulk insert streams through the dialect's loader; outside a
 * transaction (transactional = false) it gets one of its own. */
static int bulk_insert(lm_env *env, lm_data_op *op, lm_err *err) {
  switch (op->phase) {
  case LM_DATA_START:
    if (!env->conn) return lm_err_set(err, "bulk_insert: no database "
                                      "connection");
    op->stream.own_tx = !env->tx_open;
    if (op->stream.own_tx && lm_tx_begin(env) != LM_OK) {
      lm_err_move(err, &env->err);
      return LM_ERROR;
    }
    return LM_OK;
  case LM_DATA_ROWS: return stream_put(env, op, err);
  case LM_DATA_PAUSE: return stream_end(env, op, 0, err);
  case LM_DATA_FINISH:
    if (stream_end(env, op, 0, err) != LM_OK) {
      if (op->stream.own_tx) lm_tx_rollback(env);
      return LM_ERROR;
    }
    if (op->stream.own_tx && lm_tx_commit(env) != LM_OK) {
      lm_err_move(err, &env->err);
      lm_tx_rollback(env);
      return LM_ERROR;
    }
    return LM_OK;
  case LM_DATA_ABANDON:
    /* Raised while a stream was open: it goes with the transaction. */
    stream_end(env, op, 1, err);
    if (op->stream.own_tx) lm_tx_rollback(env);
    return LM_OK;
  }
  return LM_OK;
}

static int online_data(lm_env *env, lm_data_op *op, lm_err *err) {
  switch (op->kind) {
  case LM_DATA_QUERY:
    if (!env->conn) return lm_err_set(err, "op.query: no database connection");
    return env->dialect->query(env->conn, op->sql, op->nparams, op->params,
                               &op->cursor, err);
  case LM_DATA_BACKFILL:
    /* The backfill's loop reads and writes through the dialect. */
    if (!env->conn)
      return lm_err_set(err, "op.backfill: no database connection");
    if (env->dialect->version < 3 || !env->dialect->writer_open)
      return lm_err_set(err, "backfill: the %s dialect cannot write batches",
                        env->dialect->name);
    return LM_OK;
  case LM_DATA_BULK_INSERT: return bulk_insert(env, op, err);
  }
  return LM_OK;
}

/* ---- steps ------------------------------------------------------------------- */

/* Before the script, so its own output lands under the start line. */
static void online_step(lm_env *env, const lm_step_note *note) {
  const char *rev = note->script ? note->script->rev.id : NULL;
  if (!note->done)
    lm_emit(env, LM_EVENT_MIGRATION_START, rev, "Running %s %s%s%s",
            note->direction, note->what, note->doc ? ", " : "",
            note->doc ? note->doc : "");
  else
    lm_emit(env, LM_EVENT_MIGRATION_DONE, rev, "Finished %s %s in %.3f s%s",
            note->direction, note->revision, note->seconds,
            note->script && env->tx_open ? " (commits with the rest of the "
            "run: transaction_per_migration = false)" : "");
}

/* A failed script's "running" row becomes "dirty", with the error, in a
 * transaction of its own.  *dirty = 1 when the row was committed (the
 * database is dirty), 0 when it never was (nothing stays to mark). */
static int mark_dirty(lm_env *env, const lm_log_row *row, int *dirty,
                      lm_err *err) {
  *dirty = 0;
  lm_tx_rollback(env);
  if (env->dialect->begin(env->conn, err) != LM_OK) return LM_ERROR;
  if (online_log_end(env, row, dirty, err) == LM_OK &&
      env->dialect->commit(env->conn, err) == LM_OK)
    return LM_OK;
  lm_err err2;
  lm_err_init(&err2);
  env->dialect->rollback(env->conn, &err2);
  lm_err_free(&err2);
  return LM_ERROR;
}

/* A script failed: roll back what can be, and say what stays.  A
 * "running" row that was committed (before a non-transactional change, or
 * by the script's own COMMIT) becomes the dirty mark. */
static void script_failed(lm_env *env, const lm_step_failure *f) {
  const lm_script *script = f->script;
  const char *command = f->command;
  int in_tx = f->in_tx;
  const struct lm_nontx *nt = f->nontx;
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
    f->row->status = "dirty";
    f->row->message = msg;
    marked = mark_dirty(env, f->row, &dirty, &mark_err);
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
    lm_err_prefix(&env->err, "%s %s (%s) failed and was rolled back%s",
                  command, script->rev.id, script->path,
                  f->ddl_rolls_back ? "" : " (its schema "
                  "changes stay: the database cannot roll DDL back)");
  lm_err_free(&mark_err);
  free(msg);
}

/* A step failed inside a transaction that earlier steps of the run had
 * not committed (transaction_per_migration = false): say they were
 * rolled back too, not only the one that failed. */
static void report_rolled_back(lm_env *env, const lm_plan *plan,
                               size_t first, size_t failed,
                               int ddl_rolls_back) {
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
               "rolled back with it: %s; %s%s.", msg, n, n == 1 ? "" : "s",
               n == 1 ? "was" : "were", lm_buf_str(&revs),
               first == 0 ? "nothing of this run is applied"
                          : "the migrations before them stay applied",
               ddl_rolls_back ? "" : " (their schema "
               "changes stay: the database cannot roll DDL back)");
    lm_err_copy_code(&env->err, &first_err);
    lm_err_free(&first_err);
  }
  lm_buf_free(&revs);
}

static void online_failed(lm_env *env, const lm_step_failure *f) {
  if (f->script) {
    script_failed(env, f);
  } else {
    lm_tx_rollback(env);
  }
  if (!f->script || f->script->transactional)
    report_rolled_back(env, f->plan, f->first_uncommitted, f->failed,
                       f->ddl_rolls_back);
}

const lm_executor lm_executor_online = {
  .version = 1,
  .name = "online",
  .offline = 0,
  .apply = online_apply,
  .sql = online_sql,
  .data = online_data,
  .begin = online_begin,
  .commit = online_commit,
  .rollback = online_rollback,
  .tx_check = online_tx_check,
  .version_change = online_version_change,
  .log_start = online_log_start,
  .log = online_log,
  .log_end = online_log_end,
  .step = online_step,
  .failed = online_failed,
};
