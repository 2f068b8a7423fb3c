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

const lm_executor lm_executor_replay = {
  .version = 1,
  .name = "replay",
  .offline = 1,
  .apply = replay_apply,
  .sql = lm_exec_none_sql,
  .data = lm_exec_none_data,
  .begin = lm_exec_none_begin,
  .commit = lm_exec_none_commit,
  .rollback = lm_exec_none_rollback,
  .tx_check = lm_exec_none_tx_check,
  .version_change = lm_exec_none_version_change,
  .log_start = lm_exec_none_log_start,
  .log = lm_exec_none_log,
  .log_end = lm_exec_none_log_end,
  .step = lm_exec_none_step,
  .failed = lm_exec_none_failed,
};
