/*
 * exec_none.c - the members of an executor without a database (the
 * replay executor, the recorder): statements and the version table and
 * log are not there, transactions only end (executor.h).
 */
#include "executor.h"

int lm_exec_none_sql(lm_env *env, const char *sql, size_t nparams,
                     const lm_value *params, int64_t *affected, lm_err *err) {
  (void)env, (void)sql, (void)nparams, (void)params, (void)err;
  if (affected) *affected = 0;
  return LM_OK;
}

/* Reads are refused as offline; rows a bulk insert gives are taken and
 * change no shape. */
int lm_exec_none_data(lm_env *env, lm_data_op *op, lm_err *err) {
  (void)env;
  if (op->kind != LM_DATA_BULK_INSERT) return lm_exec_refuse_read(op, err);
  if (op->phase == LM_DATA_ROWS) op->stream.sent += op->nrows;
  return LM_OK;
}

int lm_exec_none_begin(lm_env *env, lm_err *err) {
  (void)env, (void)err;
  return LM_OK;
}

int lm_exec_none_commit(lm_env *env, int resumable, lm_err *err) {
  (void)resumable, (void)err;
  env->tx_open = 0;
  return LM_OK;
}

void lm_exec_none_rollback(lm_env *env) { env->tx_open = 0; }

int lm_exec_none_tx_check(lm_env *env, lm_err *err) {
  (void)env, (void)err;
  return LM_OK;
}

int lm_exec_none_version_change(lm_env *env, const lm_vt_action *a,
                                 lm_err *err) {
  (void)env, (void)a, (void)err;
  return LM_OK;
}

int lm_exec_none_log_start(lm_env *env, const lm_log_row *row, int *started,
                            lm_err *err) {
  (void)env, (void)row, (void)err;
  *started = 0;
  return LM_OK;
}

int lm_exec_none_log(lm_env *env, const lm_log_row *row, lm_err *err) {
  (void)env, (void)row, (void)err;
  return LM_OK;
}

int lm_exec_none_log_end(lm_env *env, const lm_log_row *row, int *found,
                          lm_err *err) {
  (void)env, (void)row, (void)err;
  *found = 1;
  return LM_OK;
}

void lm_exec_none_step(lm_env *env, const lm_step_note *note) {
  (void)env, (void)note;
}

void lm_exec_none_failed(lm_env *env, const lm_step_failure *f) {
  (void)f;
  lm_tx_rollback(env);
}

