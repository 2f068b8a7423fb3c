/*
 * backfill.h - what the files of op.backfill share (op_backfill.c, the
 * loop; backfill_state.c, where a commit_every run got to;
 * backfill_pipeline.c, the write of a batch on a thread of its own): the
 * state of a backfill in progress and of its batches.
 */
#ifndef LM_BACKFILL_H
#define LM_BACKFILL_H

#include <pthread.h>
#include <string.h>

#include "op_data.h"
#include "op_internal.h"
#include "progress.h"

/* One column value a function returned: for the row'th changed row of
 * the batch, the col'th column the run has seen. */
typedef struct change {
  size_t row, col;
  lm_value v;
} change;

struct backfill;

/* One batch: its rows as read (keys first), what the function changed,
 * the writer's layout of it and the outcome of its write.  Strings of the
 * rows live in rowpool, those of the changes in pool, referred to by
 * offset (in v.i) until the pool is complete, so a batch allocates
 * nothing once the buffers have grown to size. */
typedef struct slot {
  struct backfill *owner;
  lm_value *rows;               /* nread rows of ncols values */
  size_t nread, caprows;
  lm_buf rowpool, pool;
  change *changes;
  size_t nchanges, capchanges;
  size_t *changed;              /* batch row of each changed row */
  size_t nchanged, capchanged;
  const char **usedcols;        /* the columns this batch sets */
  size_t nused, capused;
  lm_value *matrix;             /* the writer's rows */
  size_t capmatrix;
  unsigned char *set;           /* per row and column: set, or NULL */
  size_t capset;
  int all;                      /* every changed row sets every column */
  /* the write */
  pthread_t thread;
  int writing;                  /* the thread runs */
  int rc;
  int64_t affected;
  lm_err err;
} slot;

/* A backfill in progress. */
typedef struct backfill {
  lm_hold hold;                 /* first: env->hold points here */
  lm_hold *outer_hold;          /* env->hold when the backfill began */
  lm_env *env;
  const lm_dialect *d;
  const char *table, *schema, *where, *name, *revision;
  const char *const *keys;
  size_t nkeys;
  const char *const *columns;   /* NULL: every column */
  size_t ncolumns;
  int64_t batch, commit_every;
  int order;                    /* 1 ascending, -1 descending */
  int pipelined;                /* write batch n while fn runs over n+1 */
  const lm_value *fn_row;       /* the row fn is running on, or NULL */
  size_t ncols;                 /* values per row read */
  const char **colnames;        /* their names */
  /* resources, released on every path */
  lm_cursor *cur;
  lm_writer *writer;
  int own_tx;
  lm_arena names;               /* column names the function set */
  lm_buf sql_first, sql_next, last_pool;
  slot slots[2];
  lm_value *last;               /* the last key read (nkeys) */
  int have_last;
  const char **gcols;           /* columns set by the function, run-wide */
  size_t ngcols, capgcols;
  size_t *remap;                /* run-wide column -> batch column */
  size_t capremap;
  /* counts */
  int64_t read, updated, skipped;
  int64_t prior, prior_updated, prior_skipped;  /* by interrupted runs */
  int64_t in_tx;                /* rows read since the last commit */
  lm_progress progress;
  int progress_started;
  lm_err err;
  lm_err fail_code;             /* the code of the failure body_fail raised
                                   (no message: nothing to free) */
} backfill;

/* Grow an array to hold n elements of size sz. */
static inline void *lm_backfill_grow(void *p, size_t *cap, size_t n, size_t sz) {
  if (n <= *cap) return p;
  size_t c = *cap ? *cap : 64;
  while (c < n) c *= 2;
  *cap = c;
  return lm_xrealloc(p, c * sz);
}

/* Copy a value's bytes into pool, leaving their offset in v->i: the pool
 * may move as it grows, so pointers are made only when it is complete. */
static inline void lm_backfill_pool_value(lm_buf *pool, lm_value *v) {
  if (v->type != LM_V_TEXT && v->type != LM_V_BLOB) return;
  v->i = (int64_t)pool->len;
  lm_buf_add(pool, v->s ? v->s : "", v->len);
  lm_buf_putc(pool, '\0');
  v->s = NULL;
}

static inline void lm_backfill_pool_fix(const lm_buf *pool, lm_value *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (v[i].type == LM_V_TEXT || v[i].type == LM_V_BLOB)
      v[i].s = pool->data + v[i].i;
}


/* ---- where a commit_every backfill got to (backfill_state.c) ---------- */

/* Create the state table if needed, in a transaction of its own. */
int lm_backfill_state_ensure(backfill *b);
/* Read where an interrupted run of this backfill got to, if one did. */
int lm_backfill_state_load(backfill *b);
/* Record the last key written, in the transaction about to commit. */
int lm_backfill_state_save(backfill *b);
/* The backfill is complete: forget its state. */
int lm_backfill_state_clear(backfill *b);

/* ---- the write (backfill_pipeline.c) ----------------------------------- */

void lm_backfill_write_start(backfill *b, slot *s);
void lm_backfill_write_join(backfill *b, slot *s);
int lm_backfill_write_wait(backfill *b, slot *s);
/* The backfill's lm_hold: an op.* call or a finalizer waits for the write. */
void lm_backfill_release(lua_State *L, lm_hold *hold);
void lm_backfill_quiesce(lm_hold *hold);

#endif
