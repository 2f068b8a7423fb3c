/*
 * executor.h - what happens to the work a migration asks for (DESIGN 8).
 *
 * An executor is a struct of function pointers, as a dialect is: the
 * runner (runner.c), the op table (op*.c) and the data operations call
 * only through env->exec and never ask which executor it is.  Three are
 * defined, one file each:
 *
 *   exec_online.c   compile through the dialect and run on the connection
 *   exec_offline.c  compile and write the --sql script, keeping a schema
 *                   model so that a rebuild knows the tables' shapes
 *   exec_replay.c   only follow operations on that model (the revisions
 *                   before a --sql range, run by lm_run_replay)
 *
 * Adding one (a recorder for lint, a walker for verify) is adding a file:
 * define a `const lm_executor lm_executor_NAME` with every member filled
 * (a member with nothing to do returns LM_OK), declare it at the end of
 * this header, and have the command that needs it switch to it with
 * lm_exec_use around its run.  Members that fail return LM_ERROR with a
 * message in err.
 */
#ifndef LM_EXECUTOR_H
#define LM_EXECUTOR_H

#include "core.h"
#include "data_op.h"

/* One row of the log (luamig_log).  Online, a script's row is written
 * when it starts, with status "running", and ended ("ok" or "dirty")
 * when it ends: inside the migration's transaction nobody sees it
 * running; outside one (transactional = false) it is committed before
 * the first change that cannot be undone, so that a run killed from
 * there on leaves the database dirty. */
typedef struct lm_log_row {
  const char *revision, *direction, *checksum, *started_at;
  double duration;
  const char *status;           /* "running", "ok" or "dirty" */
  const char *message;          /* the error, for a dirty row */
} lm_log_row;

/* The transactional = false script being run: its log row and whether it
 * is committed. */
struct lm_nontx {
  lm_log_row row;
  int marked;                   /* the "running" row is committed */
  int marking;                  /* being written: statements go straight on */
  int resumable;                /* a backfill committed a saved position */
};

/* A step of a plan starts or has finished (executor `step`). */
typedef struct lm_step_note {
  int done;                     /* 0: it starts; 1: it finished */
  const lm_script *script;      /* NULL for a stamp */
  const char *direction;        /* "upgrade", "downgrade", "stamp" */
  const char *what;             /* "a, b -> c" */
  const char *doc;              /* the script's short doc, or NULL */
  const char *revision;         /* what the log records */
  double seconds;               /* done: how long it took */
} lm_step_note;

/* A step failed (executor `failed`): env->err says why; the executor
 * undoes what it can and says what stays. */
typedef struct lm_step_failure {
  const char *command;
  const lm_script *script;      /* NULL for a stamp */
  lm_log_row *row;              /* its log row */
  int in_tx;                    /* it ran in luamig's transaction */
  int started;                  /* a "running" row was written for it */
  const struct lm_nontx *nontx; /* !in_tx: what was committed */
  const lm_plan *plan;          /* the plan, its step that failed and the */
  size_t failed, first_uncommitted;   /* first the transaction held */
  int ddl_rolls_back;           /* the dialect's transactional_ddl: a
                                   rollback undoes schema changes too */
} lm_step_failure;

typedef struct lm_executor {
  int version;                  /* 1 */
  const char *name;             /* "online", "offline", "replay" */
  int offline;                  /* what op.offline says: no database to read */

  /* A schema operation (LM_OP_EXECUTE: its SQL, *affected its rows). */
  int (*apply)(lm_env *env, const lm_op *op, int64_t *affected, lm_err *err);
  /* One statement with $n parameters. */
  int (*sql)(lm_env *env, const char *sql, size_t nparams,
             const lm_value *params, int64_t *affected, lm_err *err);
  /* A data operation at one of its phases (data_op.h). */
  int (*data)(lm_env *env, lm_data_op *op, lm_err *err);

  /* Transactions.  The runner keeps env->tx_open: begin is called when
   * none is open; commit (resumable: a rerun resumes the work it holds)
   * and rollback end the open one and clear env->tx_open. */
  int (*begin)(lm_env *env, lm_err *err);
  int (*commit)(lm_env *env, int resumable, lm_err *err);
  void (*rollback)(lm_env *env);
  /* LM_ERROR when the transaction luamig opened is no longer there. */
  int (*tx_check)(lm_env *env, lm_err *err);

  /* The version table and the log. */
  int (*version_change)(lm_env *env, const lm_vt_action *a, lm_err *err);
  /* A script starts: record its "running" row where a run can stop
   * between statements; *started says whether one was written. */
  int (*log_start)(lm_env *env, const lm_log_row *row, int *started,
                   lm_err *err);
  /* Append a finished row. */
  int (*log)(lm_env *env, const lm_log_row *row, lm_err *err);
  /* End the "running" row log_start wrote; *found = 0 when it is gone. */
  int (*log_end)(lm_env *env, const lm_log_row *row, int *found,
                 lm_err *err);

  /* Tell a person (or the script being written) about a step. */
  void (*step)(lm_env *env, const lm_step_note *note);
  void (*failed)(lm_env *env, const lm_step_failure *f);
} lm_executor;

/* Switch env to exec; returns the one it had. */
const lm_executor *lm_exec_use(lm_env *env, const lm_executor *exec);

/* executor.c: what the executors share. */
/* The revision whose script is running, for messages; NULL outside one. */
const char *lm_exec_revision(lm_env *env);
/* The schema model the offline and replay executors keep (in the Lua
 * registry, so it goes with the environment).  fresh: an offline run
 * that has written nothing yet starts from an empty model. */
lm_schema *lm_exec_model(lm_env *env, int fresh);
/* Follow an operation on the model; one it cannot follow makes its
 * table unknown from this revision on, so a later rebuild says so
 * instead of guessing. */
void lm_exec_follow(lm_env *env, lm_schema *model, const lm_op *op);
/* The refusal of a read where there is no database (offline, replay). */
int lm_exec_refuse_read(const lm_data_op *op, lm_err *err);

/* The executors. */
/* exec_none.c: members for an executor without a database, to fill its
 * struct with: nothing runs or is recorded, a transaction only ends. */
int lm_exec_none_sql(lm_env *env, const char *sql, size_t nparams,
                     const lm_value *params, int64_t *affected, lm_err *err);
int lm_exec_none_data(lm_env *env, lm_data_op *op, lm_err *err);
int lm_exec_none_begin(lm_env *env, lm_err *err);
int lm_exec_none_commit(lm_env *env, int resumable, lm_err *err);
void lm_exec_none_rollback(lm_env *env);
int lm_exec_none_tx_check(lm_env *env, lm_err *err);
int lm_exec_none_version_change(lm_env *env, const lm_vt_action *a,
                                lm_err *err);
int lm_exec_none_log_start(lm_env *env, const lm_log_row *row, int *started,
                           lm_err *err);
int lm_exec_none_log(lm_env *env, const lm_log_row *row, lm_err *err);
int lm_exec_none_log_end(lm_env *env, const lm_log_row *row, int *found,
                         lm_err *err);
void lm_exec_none_step(lm_env *env, const lm_step_note *note);
void lm_exec_none_failed(lm_env *env, const lm_step_failure *f);

extern const lm_executor lm_executor_online;
extern const lm_executor lm_executor_offline;
extern const lm_executor lm_executor_replay;
extern const lm_executor lm_executor_record;   /* exec_record.c (lint) */

#endif
