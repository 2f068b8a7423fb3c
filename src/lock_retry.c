/*
 * lock_retry.c - statement_lock_timeout and lock_retries around each step
 * of a run (lock_retry.h).  The runner calls lm_lock_retry_step for each
 * step; nothing changes when neither is configured or the dialect has no
 * lock timeout.
 */
#define _POSIX_C_SOURCE 200809L
#include <string.h>
#include <time.h>

#include "executor.h"
#include "lint.h"
#include "lock_retry.h"

/* The session setting, run (or, offline, written) as a statement. */
static int set_timeout(lm_env *env, double seconds) {
  lm_buf sql = LM_BUF_INIT;
  env->dialect->lock_timeout_sql(&sql, seconds);
  int rc = lm_exec_sql(env, lm_buf_str(&sql), 0, NULL, NULL, &env->err);
  lm_buf_free(&sql);
  return rc;
}

static void pause_for(double seconds) {
  struct timespec ts = {(time_t)seconds,
                        (long)((seconds - (double)(time_t)seconds) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && !lm_signal_received) {}
}

/* Who held the lock, for the message: "; held by pid N (...): query". */
static void name_blockers(lm_env *env, lm_buf *out) {
  if (!env->dialect->lock_blockers || !env->conn) return;
  lm_buf who = LM_BUF_INIT;
  lm_err err;
  lm_err_init(&err);
  if (env->dialect->lock_blockers(env->conn, lm_err_msg(&env->err), &who,
                                  &err) == LM_OK && who.len)
    lm_buf_printf(out, "held by %s", lm_buf_str(&who));
  else
    lm_buf_puts(out, "the session that held it has let go since");
  lm_err_free(&err);
  lm_buf_free(&who);
}

int lm_lock_retry_step(lm_env *env, const lm_plan *plan, size_t i,
                       size_t uncommitted, const char *command,
                       lm_step_fn run) {
  const lm_step *st = &plan->steps[i];
  int first = i == 0, alone = uncommitted == i;
  const lm_safety_config *cfg = lm_safety_config_of(env);
  const lm_dialect *d = env->dialect;
  double timeout = cfg->statement_lock_timeout;
  if (timeout <= 0 || d->version < 8 || !d->lock_timeout_sql)
    return run(env, plan, i, uncommitted, command);
  int offline = env->exec->offline;
  if (offline) {
    if (first && set_timeout(env, timeout) != LM_OK) return LM_ERROR;
    return run(env, plan, i, uncommitted, command);
  }
  lm_script *s = st->rev >= 0 ? lm_script_at(env, (size_t)st->rev) : NULL;
  /* Only a migration whose rollback undoes all it did may run again. */
  int retries = s && s->transactional && alone && d->is_lock_timeout
                    ? cfg->lock_retries : 0;
  double backoff = timeout < 0.1 ? 0.1 : timeout;
  for (int attempt = 0;; attempt++) {
    if (set_timeout(env, timeout) != LM_OK) return LM_ERROR;
    int rc = run(env, plan, i, uncommitted, command);
    if (!env->tx_open) {
      /* The server's own setting again, for what luamig runs next. */
      lm_err keep = env->err;
      lm_err_init(&env->err);
      set_timeout(env, 0);
      lm_err_free(&env->err);
      env->err = keep;
    }
    if (rc == LM_OK || !d->is_lock_timeout || !d->is_lock_timeout(&env->err))
      return rc;
    lm_buf who = LM_BUF_INIT;
    name_blockers(env, &who);
    if (attempt >= retries || lm_signal_received) {
      lm_err_prefix(&env->err, "gave up waiting for a lock after %d "
                    "attempt%s of %g s each (%s)", attempt + 1,
                    attempt ? "s" : "", timeout, lm_buf_str(&who));
      lm_buf_free(&who);
      lm_err_kind(&env->err, "lock_timeout");
      return LM_ERROR;
    }
    lm_emit(env, LM_EVENT_INFO, s->rev.id, "%s %s: lock timeout on attempt "
            "%d of %d (%s); rolled back, retrying in %g s", command,
            s->rev.id, attempt + 1, retries + 1, lm_buf_str(&who), backoff);
    lm_buf_free(&who);
    pause_for(backoff);
    if (backoff < 30) backoff *= 2;
    lm_err_free(&env->err);
  }
}
