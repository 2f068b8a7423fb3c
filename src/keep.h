/*
 * keep.h - kept data: what a drop_table or drop_column of an upgrade
 * removes is kept (keep = true, or keep_dropped in the config) and put
 * back when the downgrade of that revision makes the table or column
 * again.  Backups before a run (backup.c).
 */
#ifndef LM_KEEP_H
#define LM_KEEP_H

#include "core.h"

struct lua_State;

/* The catalogue of what is kept, beside the version table. */
#define LM_KEPT_TABLE "luamig_kept"

/* keep = true | false in a drop's options at idx: 1, -1, or 0 when not
 * given; another value raises. */
int lm_keep_option(struct lua_State *L, int idx, const char *op);

/* The online executor's hooks (exec_online.c).  Before an operation:
 * keep what it removes; *done = 1 when keeping did its work (a table
 * moved away). */
int lm_keep_before(lm_env *env, const lm_op *op, int *done, lm_err *err);
/* After an operation ran online: refill a column or table the downgrade
 * made again from what its upgrade kept. */
int lm_keep_after(lm_env *env, const lm_op *op, lm_err *err);
/* After a script's function (script.c), with its status: on success the
 * indexes and constraints of what was refilled are made again and the
 * kept copies removed; returns rc or the failure of that. */
int lm_keep_finish(lm_env *env, const char *revision, int rc);

/* One row of the catalogue. */
typedef struct lm_kept {
  long long id;
  char *revision, *kind, *schema, *table, *column, *kept_as, *kept_at;
  long long rows;
  long long bytes;              /* -1 unknown */
  double age;                   /* seconds since it was kept */
} lm_kept;

/* Every kept item, oldest first (none when the catalogue is missing). */
int lm_kept_read(lm_env *env, lm_kept **out, size_t *n);
void lm_kept_free(lm_kept *rows, size_t n);
/* Drop a kept copy and its catalogue row (in the caller's transaction). */
int lm_kept_remove(lm_env *env, const lm_kept *row);
/* "persons.role" or "table roles": what a row kept, into out. */
void lm_kept_describe(lm_buf *out, const lm_kept *row);
/* 1234567 as "1,234,567". */
void lm_group_digits(lm_buf *out, long long n);

/* backup.c: before an upgrade's first migration, under the run lock. */
int lm_backup_run(lm_env *env, const lm_plan *plan,
                  const char *const *heads, size_t nheads);

#endif
