/*
 * backfill_pipeline.c - the write of a backfill's batch: laid out as the
 * dialect's writer takes it and run on a thread of its own while the
 * function runs over the next batch (or here and now when not pipelined).
 * While a write is in flight the connection is the writer's: an op.* call
 * from the function waits for it first (the backfill's lm_hold).
 */
#define _POSIX_C_SOURCE 200809L   /* sigset_t, pthread_sigmask */
#include <lauxlib.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "backfill.h"
#include "oom.h"

/* ---- the write ------------------------------------------------------------- */

/* Lay a batch's changes out as the writer takes them: one row per
 * changed row, its keys then the columns this batch sets, and a flag per
 * column when not every row sets every one. */
static void layout(backfill *b, slot *s) {
  s->nused = 0;
  if (!s->nchanged) return;
  b->remap = lm_backfill_grow(b->remap, &b->capremap, b->ngcols, sizeof *b->remap);
  s->usedcols = lm_backfill_grow(s->usedcols, &s->capused, b->ngcols,
                     sizeof *s->usedcols);
  for (size_t i = 0; i < b->ngcols; i++) b->remap[i] = (size_t)-1;
  for (size_t i = 0; i < s->nchanges; i++) {
    change *c = &s->changes[i];
    if (b->remap[c->col] == (size_t)-1) {
      b->remap[c->col] = s->nused;
      s->usedcols[s->nused++] = b->gcols[c->col];
    }
    lm_backfill_pool_fix(&s->pool, &c->v, 1);
  }
  size_t width = b->nkeys + s->nused;
  s->matrix = lm_backfill_grow(s->matrix, &s->capmatrix, s->nchanged * width,
                   sizeof *s->matrix);
  s->set = lm_backfill_grow(s->set, &s->capset, s->nchanged * s->nused, 1);
  memset(s->matrix, 0, s->nchanged * width * sizeof *s->matrix);
  memset(s->set, 0, s->nchanged * s->nused);
  for (size_t r = 0; r < s->nchanged; r++)
    memcpy(&s->matrix[r * width], &s->rows[s->changed[r] * b->ncols],
           b->nkeys * sizeof *s->matrix);
  for (size_t i = 0; i < s->nchanges; i++) {
    change *c = &s->changes[i];
    size_t j = b->remap[c->col];
    s->matrix[c->row * width + b->nkeys + j] = c->v;
    s->set[c->row * s->nused + j] = 1;
  }
  s->all = 1;
  for (size_t i = 0; s->all && i < s->nchanged * s->nused; i++)
    s->all = s->set[i];
}

/* The write itself; it touches the slot, the writer and the connection,
 * never Lua. */
static void *write_failed(slot *s) {
  s->rc = LM_ERROR;
  lm_oom_set(&s->err);
  return NULL;
}

static void *write_thread(void *arg) {
  slot *s = arg;
  /* Memory running out while writing fails this write, not the process. */
  LM_OOM_GUARD(NULL, 0, write_failed(s));
  backfill *b = s->owner;
  s->rc = b->d->writer_run(b->writer, s->nused, s->usedcols, s->nchanged,
                           s->matrix, s->all ? NULL : s->set, &s->affected,
                           &s->err);
  return NULL;
}

/* Start writing a batch: on a thread of its own when pipelined (with
 * every signal blocked there, so that handlers run on the main thread),
 * else here and now. */
void lm_backfill_write_start(backfill *b, slot *s) {
  layout(b, s);
  s->rc = LM_OK;
  s->affected = 0;
  if (!s->nchanged) return;
  if (b->pipelined) {
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int started = pthread_create(&s->thread, NULL, write_thread, s) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (started) {
      s->writing = 1;
      b->env->hold = &b->hold;
      return;
    }
  }
  write_thread(s);
}

/* Wait for a batch's write thread, if one runs: the connection is free
 * afterwards.  The write's outcome stays in the slot. */
void lm_backfill_write_join(backfill *b, slot *s) {
  if (!s->writing) return;
  pthread_join(s->thread, NULL);
  s->writing = 0;
  b->env->hold = b->outer_hold;
}

/* Wait for a batch's write and count what it updated.  LM_OK when it
 * succeeded, else its error is moved to b->err.  Waiting twice is
 * harmless. */
int lm_backfill_write_wait(backfill *b, slot *s) {
  lm_backfill_write_join(b, s);
  b->updated += s->affected;
  s->affected = 0;
  if (s->rc == LM_OK) return LM_OK;
  s->rc = LM_OK;
  lm_err_move(&b->err, &s->err);
  return LM_ERROR;
}

/* fn calls an op.* function while the previous batch is being written:
 * the write finishes first, and what the function then reads includes
 * it, as without the pipeline.  A failed write is raised here and stays
 * in its slot, so that the loop reports it even if fn catches this. */
void lm_backfill_release(lua_State *L, lm_hold *hold) {
  backfill *b = (backfill *)hold;
  for (int i = 0; i < 2; i++) lm_backfill_write_join(b, &b->slots[i]);
  for (int i = 0; i < 2; i++)
    if (b->slots[i].rc != LM_OK) {
      b->fn_row = NULL;   /* the write failed, not the function */
      luaL_error(L, "backfill %s: %s", b->table,
                 lm_err_msg(&b->slots[i].err));
    }
}

/* A finalizer is about to use the connection: let the write finish. */
void lm_backfill_quiesce(lm_hold *hold) {
  backfill *b = (backfill *)hold;
  for (int i = 0; i < 2; i++) lm_backfill_write_join(b, &b->slots[i]);
}
