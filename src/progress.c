/*
 * progress.c - the progress line of long data operations (progress.h).
 *
 * The line is rewritten in place with a carriage return and padded to
 * the width of the previous one, so no terminal control sequence is
 * needed to erase it; colour, the only escape code used, is dropped when
 * NO_COLOR is set (no-color.org: present and not empty) or TERM is dumb.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "progress.h"
#include "util.h"

/* Redraw at most this often: a terminal is slow next to a backfill. */
#define DRAW_EVERY 0.2
#define TICK_EVERY 1.0

void lm_progress_count(char *out, size_t size, int64_t n) {
  char digits[32];
  int len = snprintf(digits, sizeof digits, "%lld",
                     (long long)(n < 0 ? -n : n));
  size_t k = 0;
  if (n < 0 && k + 1 < size) out[k++] = '-';
  for (int i = 0; i < len && k + 1 < size; i++) {
    if (i && (len - i) % 3 == 0 && k + 1 < size) out[k++] = ',';
    if (k + 1 < size) out[k++] = digits[i];
  }
  out[k] = '\0';
}

void lm_progress_start(lm_progress *p, const char *label, int64_t total,
                       int quiet) {
  memset(p, 0, sizeof *p);
  snprintf(p->label, sizeof p->label, "%s", label);
  p->total = total;
  p->draw = !quiet && isatty(STDERR_FILENO);
  const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");
  /* A dumb terminal shows escape codes as text. */
  p->color = !(nc && *nc) && !(term && strcmp(term, "dumb") == 0);
  p->start = p->last_draw = p->last_tick = lm_now();
}

double lm_progress_elapsed(const lm_progress *p) {
  return lm_now() - p->start;
}

/* "1:02:03" or "2:03". */
static void format_duration(char *out, size_t size, double secs) {
  long s = secs < 0 ? 0 : (long)(secs + 0.5);
  if (s >= 3600)
    snprintf(out, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else
    snprintf(out, size, "%ld:%02ld", s / 60, s % 60);
}

/* Draw the line: label, rows (of total, percent), rate, ETA. */
static void draw(lm_progress *p, double now) {
  char done[32], total[32], rate_s[32], eta[32] = "";
  double secs = now - p->start;
  double rate = secs > 0 ? (double)p->done / secs : 0;
  lm_progress_count(done, sizeof done, p->done);
  lm_progress_count(rate_s, sizeof rate_s, (int64_t)rate);
  lm_buf b = LM_BUF_INIT;
  lm_buf_putc(&b, '\r');
  if (p->color) lm_buf_puts(&b, "\033[1m");
  lm_buf_puts(&b, p->label);
  if (p->color) lm_buf_puts(&b, "\033[0m");
  lm_buf_printf(&b, ": %s", done);
  /* A total below what is done already is a stale estimate: no ETA. */
  if (p->total > 0 && p->total >= p->done) {
    lm_progress_count(total, sizeof total, p->total);
    lm_buf_printf(&b, " / %s rows (%d%%)", total,
                  (int)(100.0 * (double)p->done / (double)p->total));
    if (rate > 0)
      format_duration(eta, sizeof eta, (double)(p->total - p->done) / rate);
  } else {
    lm_buf_puts(&b, " rows");
  }
  lm_buf_printf(&b, ", %s rows/s", rate_s);
  if (*eta) {
    lm_buf_puts(&b, ", ETA ");
    if (p->color) lm_buf_puts(&b, "\033[36m");
    lm_buf_puts(&b, eta);
    if (p->color) lm_buf_puts(&b, "\033[0m");
  }
  /* Cover what a previous, longer line left behind. */
  int width = (int)b.len - 1 - (p->color ? (*eta ? 17 : 8) : 0);
  for (int i = width; i < p->width; i++) lm_buf_putc(&b, ' ');
  p->width = width;
  fputs(lm_buf_str(&b), stderr);
  fflush(stderr);
  lm_buf_free(&b);
  p->drawn = 1;
  p->last_draw = now;
}

int lm_progress_update(lm_progress *p, int64_t done) {
  p->done = done;
  double now = lm_now();
  if (p->draw && now - p->last_draw >= DRAW_EVERY) draw(p, now);
  if (now - p->last_tick >= TICK_EVERY) {
    p->last_tick = now;
    return 1;
  }
  return 0;
}

void lm_progress_finish(lm_progress *p) {
  if (!p->drawn) return;
  /* Blank the line, then return to its start. */
  fprintf(stderr, "\r%*s\r", p->width, "");
  fflush(stderr);
  p->drawn = 0;
}
