/*
 * lock_retry.h - lock-safe runs (DESIGN 10): with statement_lock_timeout
 * set, a migration's statements give up waiting for a lock after that
 * long; with lock_retries = N, a transactional migration that gave up is
 * rolled back and run again after a back-off, up to N more times, then
 * fails naming the sessions that held the lock.
 */
#ifndef LM_LOCK_RETRY_H
#define LM_LOCK_RETRY_H

#include "core.h"

/* The runner's step: step i of plan, uncommitted the first step the open
 * transaction holds. */
typedef int (*lm_step_fn)(lm_env *env, const lm_plan *plan, size_t i,
                          size_t uncommitted, const char *command);

/* Run step i of plan through run, as above.  The first step writes the
 * --sql script's SET once; a step alone in its transaction (uncommitted
 * == i: rolling back loses only this one) may be retried. */
int lm_lock_retry_step(lm_env *env, const lm_plan *plan, size_t i,
                       size_t uncommitted, const char *command,
                       lm_step_fn run);

#endif
