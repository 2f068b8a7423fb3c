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

typedef int (*lm_step_fn)(lm_env *env, const lm_step *st,
                          const char *command);

/* Run one step of a plan through run, as above.  first: the plan's first
 * step (the --sql script gets its SET once); alone: no earlier step's work
 * waits in the open transaction, so rolling back loses only this one. */
int lm_lock_retry_step(lm_env *env, const lm_step *st, const char *command,
                       lm_step_fn run, int first, int alone);

#endif
