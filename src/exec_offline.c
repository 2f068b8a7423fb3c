/*
 * exec_offline.c - the offline executor (--sql): each operation is
 * compiled through the dialect and appended to the script being written
 * (env->sql_out), with parameters rendered as escaped literals, and
 * followed on a schema model so that a dialect that must rebuild a table
 * knows its shape without a database.  Nothing can be read: a query or a
 * backfill is refused here, the one place that says so.
 */
#include <ctype.h>
#include <string.h>

#include "executor.h"

/* One statement of the offline script, as Alembic writes them. */
static void write_statement(lm_env *env, const char *sql) {
  lm_buf_puts(env->sql_out, sql);
  size_t len = strlen(sql);
  while (len && isspace((unsigned char)sql[len - 1])) len--;
  if (!len || sql[len - 1] != ';') lm_buf_putc(env->sql_out, ';');
  lm_buf_puts(env->sql_out, "\n\n");
}

/* Placeholders are the dialect's to find: only its tokenizer knows
 * which "$1" sits inside a string, a quoted name or a comment. */
static int render_params(const lm_dialect *d, const char *sql, size_t nparams,
                         const lm_value *params, lm_buf *out, lm_err *err) {
  if (d->version < 6 || !d->render_params)
    return lm_err_set(err, "the %s dialect cannot write a statement with "
                      "parameters into --sql output\n  in: %s", d->name, sql);
  return d->render_params(out, sql, nparams, params, err);
}

static int offline_sql(lm_env *env, const char *sql, size_t nparams,
                       const lm_value *params, int64_t *affected,
                       lm_err *err) {
  lm_exec_model(env, 1);   /* a fresh run starts from an empty model */
  if (!nparams) {
    write_statement(env, sql);
  } else {
    lm_buf b = LM_BUF_INIT;
    int rc = render_params(env->dialect, sql, nparams, params, &b, err);
    if (rc == LM_OK) write_statement(env, lm_buf_str(&b));
    lm_buf_free(&b);
    if (rc != LM_OK) return rc;
  }
  if (affected) *affected = 0;
  return LM_OK;
}

/* Offline, the model is the truth, not a connection the module keeps.
 * Raw SQL: the dialect follows what it can of it on the model. */
static int offline_apply(lm_env *env, const lm_op *op, int64_t *affected,
                         lm_err *err) {
  lm_schema *model = lm_exec_model(env, 1);
  if (op->kind == LM_OP_EXECUTE) {
    if (env->dialect->replay_sql) {
      const char *rev = lm_exec_revision(env);
      env->dialect->replay_sql(model, op->sql, rev ? rev : "?");
    }
    return offline_sql(env, op->sql, op->nparams, op->params, affected, err);
  }
  lm_compile_ctx ctx = {.conn = NULL, .offline = 1, .model = model,
                        .revision = lm_exec_revision(env)};
  lm_strvec stmts = LM_STRVEC_INIT;
  int rc = env->dialect->compile(&ctx, op, &stmts, err);
  for (size_t i = 0; rc == LM_OK && i < stmts.n; i++)
    rc = offline_sql(env, stmts.items[i], 0, NULL, NULL, err);
  lm_strvec_free(&stmts);
  if (rc == LM_OK) lm_exec_follow(env, model, op);
  if (affected) *affected = 0;
  return rc;
}

int lm_exec_refuse_read(const lm_data_op *op, lm_err *err) {
  return lm_err_set(err, "op.%s cannot run in an offline (--sql) script: "
                    "there is no database to read.  Guard the data part of "
                    "the migration with `if not op.offline then ... end`",
                    op->kind == LM_DATA_QUERY ? "query" : "backfill");
}

/* Rows of a bulk insert: one INSERT per row with the values as literals,
 * as Alembic writes them. */
static int offline_data(lm_env *env, lm_data_op *op, lm_err *err) {
  if (op->kind != LM_DATA_BULK_INSERT) return lm_exec_refuse_read(op, err);
  if (op->phase != LM_DATA_ROWS) return LM_OK;
  lm_buf sql = LM_BUF_INIT;
  lm_sql_spec spec = {.kind = LM_SQL_INSERT_ROW, .schema = op->schema,
                      .table = op->table, .columns = op->columns,
                      .ncolumns = op->ncolumns};
  lm_core_sql(env->dialect, &sql, &spec);
  int rc = LM_OK;
  for (size_t r = 0; rc == LM_OK && r < op->nrows; r++)
    rc = offline_sql(env, lm_buf_str(&sql), op->ncolumns,
                     op->rows + r * op->ncolumns, NULL, err);
  lm_buf_free(&sql);
  if (rc == LM_OK) op->stream.sent += op->nrows;
  return rc;
}

/* The script's BEGIN and COMMIT are written, not run. */
static int offline_begin(lm_env *env, lm_err *err) {
  (void)err;
  offline_sql(env, env->dialect->begin_sql, 0, NULL, NULL, &env->err);
  return LM_OK;
}

static int offline_commit(lm_env *env, int resumable, lm_err *err) {
  (void)resumable;
  env->tx_open = 0;
  return offline_sql(env, env->dialect->commit_sql, 0, NULL, NULL, err);
}

/* Nothing was run: the script just stops here. */
static void offline_rollback(lm_env *env) { env->tx_open = 0; }

static int offline_tx_check(lm_env *env, lm_err *err) {
  (void)env;
  (void)err;
  return LM_OK;
}

/* A string parameter; NULL becomes SQL NULL. */
static lm_value text_value(const char *s) {
  if (!s) return (lm_value){.type = LM_V_NULL};
  return (lm_value){.type = LM_V_TEXT, .s = s, .len = strlen(s)};
}

static int offline_version_change(lm_env *env, const lm_vt_action *a,
                                  lm_err *err) {
  lm_value params[2];
  size_t n = 0;
  lm_sql_kind kind = LM_SQL_VERSION_INSERT;
  switch (a->kind) {
  case LM_VT_INSERT: params[n++] = text_value(a->to); break;
  case LM_VT_DELETE:
    kind = LM_SQL_VERSION_DELETE;
    params[n++] = text_value(a->from);
    break;
  case LM_VT_UPDATE:
    kind = LM_SQL_VERSION_UPDATE;
    params[n++] = text_value(a->to);
    params[n++] = text_value(a->from);
    break;
  }
  lm_buf sql = LM_BUF_INIT;
  lm_sql_spec spec = {.kind = kind, .schema = env->version_table_schema,
                      .table = env->version_table};
  lm_core_sql(env->dialect, &sql, &spec);
  int rc = offline_sql(env, lm_buf_str(&sql), n, params, NULL, err);
  lm_buf_free(&sql);
  return rc;
}

/* A script written out has no "running" state: its row is written when
 * it ends. */
static int offline_log_start(lm_env *env, const lm_log_row *row, int *started,
                             lm_err *err) {
  (void)env;
  (void)row;
  (void)err;
  *started = 0;
  return LM_OK;
}

/* The row stamps the time the script runs; who runs it and how long it
 * takes are not known when it is written. */
static int offline_log(lm_env *env, const lm_log_row *row, lm_err *err) {
  lm_value p[7] = {text_value(row->revision), text_value(row->direction),
                   text_value(row->checksum), {.type = LM_V_NULL},
                   {.type = LM_V_NULL}, text_value(row->status),
                   text_value(row->message)};
  lm_buf sql = LM_BUF_INIT;
  lm_sql_spec spec = {.kind = LM_SQL_LOG_INSERT,
                      .schema = env->version_table_schema,
                      .table = env->log_table, .now = 1};
  lm_core_sql(env->dialect, &sql, &spec);
  int rc = offline_sql(env, lm_buf_str(&sql), 7, p, NULL, err);
  lm_buf_free(&sql);
  return rc;
}

static int offline_log_end(lm_env *env, const lm_log_row *row, int *found,
                           lm_err *err) {
  *found = 1;
  return offline_log(env, row, err);
}

/* Alembic's --sql comment names the step, not the doc. */
static void offline_step(lm_env *env, const lm_step_note *note) {
  if (!note->done)
    lm_buf_printf(env->sql_out, "-- Running %s %s\n\n", note->direction,
                  note->what);
}

static void offline_failed(lm_env *env, const lm_step_failure *f) {
  lm_tx_rollback(env);
  if (f->script)
    lm_err_prefix(&env->err, "%s %s (%s) failed", f->command,
                  f->script->rev.id, f->script->path);
}

const lm_executor lm_executor_offline = {
  .version = 1,
  .name = "offline",
  .offline = 1,
  .apply = offline_apply,
  .sql = offline_sql,
  .data = offline_data,
  .begin = offline_begin,
  .commit = offline_commit,
  .rollback = offline_rollback,
  .tx_check = offline_tx_check,
  .version_change = offline_version_change,
  .log_start = offline_log_start,
  .log = offline_log,
  .log_end = offline_log_end,
  .step = offline_step,
  .failed = offline_failed,
};
