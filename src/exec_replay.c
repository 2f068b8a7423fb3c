/*
 * exec_replay.c - the replay executor: operations are followed on the
 * offline executor's schema model and nothing is written or run.  The
 * runner switches to it to bring the model to the start of a --sql range
 * that does not start at base (lm_run_replay), so that the range's
 * rebuilds know the tables' shapes.
 */
#include "executor.h"

static int replay_apply(lm_env *env, const lm_op *op, int64_t *affected,
                        lm_err *err) {
  (void)err;
  lm_schema *model = lm_exec_model(env, 0);
  if (affected) *affected = 0;
  if (op->kind != LM_OP_EXECUTE) {
    lm_exec_follow(env, model, op);
  } else if (env->dialect->replay_sql) {
    const char *rev = lm_exec_revision(env);
    env->dialect->replay_sql(model, op->sql, rev ? rev : "?");
  }
  return LM_OK;
}

static int replay_sql(lm_env *env, const char *sql, size_t nparams,
                      const lm_value *params, int64_t *affected,
                      lm_err *err) {
  (void)env, (void)sql, (void)nparams, (void)params, (void)err;
  if (affected) *affected = 0;
  return LM_OK;
}

/* Reads are refused as offline; rows inserted change no shape. */
static int replay_data(lm_env *env, lm_data_op *op, lm_err *err) {
  (void)env;
  if (op->kind != LM_DATA_BULK_INSERT) return lm_exec_refuse_read(op, err);
  if (op->phase == LM_DATA_ROWS) op->stream.sent += op->nrows;
  return LM_OK;
}

static int replay_begin(lm_env *env, lm_err *err) {
  (void)env, (void)err;
  return LM_OK;
}

static int replay_commit(lm_env *env, int resumable, lm_err *err) {
  (void)resumable, (void)err;
  env->tx_open = 0;
  return LM_OK;
}

static void replay_rollback(lm_env *env) { env->tx_open = 0; }

static int replay_tx_check(lm_env *env, lm_err *err) {
  (void)env, (void)err;
  return LM_OK;
}

/* The runner does not run a plan on this executor; should it, nothing
 * is recorded. */
static int replay_version_change(lm_env *env, const lm_vt_action *a,
                                 lm_err *err) {
  (void)env, (void)a, (void)err;
  return LM_OK;
}

static int replay_log_start(lm_env *env, const lm_log_row *row, int *started,
                            lm_err *err) {
  (void)env, (void)row, (void)err;
  *started = 0;
  return LM_OK;
}

static int replay_log(lm_env *env, const lm_log_row *row, lm_err *err) {
  (void)env, (void)row, (void)err;
  return LM_OK;
}

static int replay_log_end(lm_env *env, const lm_log_row *row, int *found,
                          lm_err *err) {
  (void)env, (void)row, (void)err;
  *found = 1;
  return LM_OK;
}

static void replay_step(lm_env *env, const lm_step_note *note) {
  (void)env, (void)note;
}

static void replay_failed(lm_env *env, const lm_step_failure *f) {
  (void)f;
  lm_tx_rollback(env);
}

const lm_executor lm_executor_replay = {
  .version = 1,
  .name = "replay",
  .offline = 1,
  .apply = replay_apply,
  .sql = replay_sql,
  .data = replay_data,
  .begin = replay_begin,
  .commit = replay_commit,
  .rollback = replay_rollback,
  .tx_check = replay_tx_check,
  .version_change = replay_version_change,
  .log_start = replay_log_start,
  .log = replay_log,
  .log_end = replay_log_end,
  .step = replay_step,
  .failed = replay_failed,
};
