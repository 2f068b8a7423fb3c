/*
 * progress.h - a one-line progress display for long data operations:
 * rows done, rows per second and, when the total is known, an ETA.
 *
 * It draws only on a terminal (stderr is a TTY and the run is not quiet),
 * redrawing at most a few times a second, in colour unless NO_COLOR is
 * set.  Updating is cheap enough to call once per batch or per row.
 */
#ifndef LM_PROGRESS_H
#define LM_PROGRESS_H

#include <stdint.h>

typedef struct lm_progress {
  int draw;             /* stderr is a terminal and the run is not quiet */
  int color;            /* NO_COLOR is not set */
  int drawn;            /* a line is on screen (to be cleared) */
  int width;            /* its visible width */
  char label[96];       /* "backfill persons" */
  int64_t total;        /* rows expected; < 0 unknown */
  int64_t done;
  double start;         /* lm_now() at start */
  double last_draw;
  double last_tick;
} lm_progress;

/* Start showing progress for `label`; quiet suppresses the display. */
void lm_progress_start(lm_progress *p, const char *label, int64_t total,
                       int quiet);
/* Rows done so far.  Returns 1 about once a second (a "tick", whether
 * or not anything is drawn), for callers that report progress elsewhere
 * too; 0 otherwise. */
int lm_progress_update(lm_progress *p, int64_t done);
/* Clear the line; the caller prints its summary after. */
void lm_progress_finish(lm_progress *p);
/* Seconds since start. */
double lm_progress_elapsed(const lm_progress *p);
/* "1,234,567": a count with thousands separators, into out. */
void lm_progress_count(char *out, size_t size, int64_t n);

#endif
