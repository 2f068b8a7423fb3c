/*
 * cli_kept.c - `luamig kept [REV]`: what drops kept (revision, object,
 * rows, size, age); `kept --purge [--older-than 30d] [REV]` removes it,
 * each removal logged to luamig_log, all in one transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_args.h"
#include "keep.h"

/* "30d", "12h", "90m", "45s", "2w" in seconds; -1 when malformed. */
static double parse_age(const char *s) {
  char *end;
  double n = strtod(s, &end);
  if (end == s || n < 0 || !end[0] || end[1]) return -1;
  switch (*end) {
  case 's': return n;
  case 'm': return n * 60;
  case 'h': return n * 3600;
  case 'd': return n * 86400;
  case 'w': return n * 7 * 86400;
  default: return -1;
  }
}

static void human_bytes(lm_buf *out, long long bytes) {
  if (bytes < 0) lm_buf_puts(out, "?");
  else if (bytes < 10 * 1024) lm_buf_printf(out, "%lld B", bytes);
  else if (bytes < 10LL * 1024 * 1024) lm_buf_printf(out, "%lld kB", bytes / 1024);
  else lm_buf_printf(out, "%lld MB", bytes / (1024 * 1024));
}

static void human_age(lm_buf *out, double s) {
  if (s < 120) lm_buf_printf(out, "%.0fs", s);
  else if (s < 7200) lm_buf_printf(out, "%.0fm", s / 60);
  else if (s < 172800) lm_buf_printf(out, "%.0fh", s / 3600);
  else lm_buf_printf(out, "%.0fd", s / 86400);
}

static void json_row(lm_buf *out, const lm_kept *k) {
  lm_buf what = LM_BUF_INIT;
  lm_kept_describe(&what, k);
  lm_buf_puts(out, "{\"revision\": ");
  lm_json_string(out, k->revision ? k->revision : "");
  lm_buf_puts(out, ", \"kind\": ");
  lm_json_string(out, k->kind ? k->kind : "");
  lm_buf_puts(out, ", \"object\": ");
  lm_json_string(out, lm_buf_str(&what));
  lm_buf_puts(out, ", \"schema\": ");
  if (k->schema) lm_json_string(out, k->schema);
  else lm_buf_puts(out, "null");
  lm_buf_puts(out, ", \"table\": ");
  lm_json_string(out, k->table ? k->table : "");
  lm_buf_puts(out, ", \"column\": ");
  if (k->column) lm_json_string(out, k->column);
  else lm_buf_puts(out, "null");
  lm_buf_puts(out, ", \"kept_as\": ");
  lm_json_string(out, k->kept_as ? k->kept_as : "");
  lm_buf_printf(out, ", \"rows\": %lld, \"bytes\": ", k->rows);
  if (k->bytes >= 0) lm_buf_printf(out, "%lld", k->bytes);
  else lm_buf_puts(out, "null");
  lm_buf_puts(out, ", \"kept_at\": ");
  lm_json_string(out, k->kept_at ? k->kept_at : "");
  lm_buf_printf(out, ", \"age_seconds\": %.0f}", k->age);
  lm_buf_free(&what);
}

/* Does the row match REV (an id or its prefix) and the age limit? */
static int selected(const lm_kept *k, const char *rev, double older) {
  if (rev && (!k->revision || strncmp(k->revision, rev, strlen(rev)) != 0))
    return 0;
  return older < 0 || k->age >= older;
}

static int purge(lm_env *env, lm_args *a, const char *rev, double older,
                 lm_buf *out) {
  lm_kept *rows = NULL;
  size_t n = 0, purged = 0;
  int rc = lm_begin_run(env);
  if (rc == LM_OK) rc = lm_kept_read(env, &rows, &n);
  if (rc == LM_OK) rc = lm_tx_begin(env);
  if (a->json) lm_buf_puts(out, "{\"purged\": [");
  for (size_t i = 0; rc == LM_OK && i < n; i++) {
    if (!selected(&rows[i], rev, older)) continue;
    lm_buf what = LM_BUF_INIT, msg = LM_BUF_INIT;
    lm_kept_describe(&what, &rows[i]);
    lm_buf_printf(&msg, "purged the kept %s (", lm_buf_str(&what));
    lm_group_digits(&msg, rows[i].rows);
    lm_buf_printf(&msg, " row%s, kept at %s)", rows[i].rows == 1 ? "" : "s",
                  rows[i].kept_at ? rows[i].kept_at : "?");
    rc = lm_kept_remove(env, &rows[i]);
    if (rc == LM_OK)
      rc = lm_log_note(env, rows[i].revision, "purge", NULL, lm_buf_str(&msg),
                       &env->err);
    if (rc == LM_OK && a->json) {
      lm_buf_puts(out, purged ? ", " : "");
      json_row(out, &rows[i]);
    } else if (rc == LM_OK) {
      lm_buf_printf(out, "%s %s\n", rows[i].revision, lm_buf_str(&msg));
    }
    purged += rc == LM_OK;
    lm_buf_free(&what);
    lm_buf_free(&msg);
  }
  if (rc == LM_OK) rc = lm_tx_commit(env);
  if (rc != LM_OK) lm_tx_rollback(env);
  if (a->json) lm_buf_puts(out, "]}\n");
  else if (rc == LM_OK && !purged && !env->quiet)
    fputs("Nothing kept matches: nothing purged.\n", stderr);
  lm_kept_free(rows, n);
  return rc;
}

static int list(lm_env *env, lm_args *a, const char *rev, lm_buf *out) {
  lm_kept *rows = NULL;
  size_t n = 0, shown = 0;
  int rc = lm_kept_read(env, &rows, &n);
  if (rc != LM_OK) return rc;
  if (a->json) lm_buf_putc(out, '[');
  for (size_t i = 0; i < n; i++) {
    if (!selected(&rows[i], rev, -1)) continue;
    if (a->json) {
      lm_buf_puts(out, shown ? ",\n " : "");
      json_row(out, &rows[i]);
    } else {
      lm_buf what = LM_BUF_INIT, size = LM_BUF_INIT, age = LM_BUF_INIT,
             count = LM_BUF_INIT;
      lm_kept_describe(&what, &rows[i]);
      human_bytes(&size, rows[i].bytes);
      human_age(&age, rows[i].age);
      lm_group_digits(&count, rows[i].rows);
      if (!shown)
        lm_buf_printf(out, "%-12s %-32s %12s %10s %6s\n", "REVISION",
                      "OBJECT", "ROWS", "SIZE", "AGE");
      lm_buf_printf(out, "%-12s %-32s %12s %10s %6s\n", rows[i].revision,
                    lm_buf_str(&what), lm_buf_str(&count), lm_buf_str(&size),
                    lm_buf_str(&age));
      lm_buf_free(&what);
      lm_buf_free(&size);
      lm_buf_free(&age);
      lm_buf_free(&count);
    }
    shown++;
  }
  if (a->json) lm_buf_puts(out, "]\n");
  else if (!shown && !env->quiet) fputs("Nothing is kept.\n", stderr);
  lm_kept_free(rows, n);
  return LM_OK;
}

int lm_cmd_kept(lm_env *env, lm_args *a) {
  const char *rev = a->pos.n ? a->pos.items[0] : NULL;
  double older = -1;
  if (a->older_than) {
    if (!a->purge)
      return lm_cli_fail(env, lm_err_usage(&env->err, "--older-than works "
                         "only with --purge"));
    older = parse_age(a->older_than);
    if (older < 0)
      return lm_cli_fail(env, lm_err_usage(&env->err, "--older-than %s: "
                         "expected a number and a unit, like 30d, 12h, 90m "
                         "or 2w", a->older_than));
  }
  lm_buf out = LM_BUF_INIT;
  int rc = a->purge ? purge(env, a, rev, older, &out) : list(env, a, rev, &out);
  if (rc == LM_OK) fputs(lm_buf_str(&out), stdout);
  lm_buf_free(&out);
  return rc == LM_OK ? 0 : lm_cli_fail(env, rc);
}

/* status: "2 (1,259 rows, 64 kB)" or "none"; and the JSON object. */
int lm_kept_summary(lm_env *env, lm_buf *text, lm_buf *json) {
  lm_kept *rows = NULL;
  size_t n = 0;
  long long total = 0, bytes = 0;
  int rc = lm_kept_read(env, &rows, &n);
  for (size_t i = 0; rc == LM_OK && i < n; i++) {
    total += rows[i].rows;
    bytes = bytes < 0 || rows[i].bytes < 0 ? -1 : bytes + rows[i].bytes;
  }
  lm_kept_free(rows, n);
  if (rc != LM_OK) return rc;
  if (!n) {
    lm_buf_puts(text, "none");
  } else {
    lm_buf_printf(text, "%zu (", n);
    lm_group_digits(text, total);
    lm_buf_printf(text, " row%s, ", total == 1 ? "" : "s");
    human_bytes(text, bytes);
    lm_buf_puts(text, "; see luamig kept)");
  }
  lm_buf_printf(json, "{\"count\": %zu, \"rows\": %lld, \"bytes\": ", n, total);
  if (bytes >= 0) lm_buf_printf(json, "%lld}", bytes);
  else lm_buf_puts(json, "null}");
  return LM_OK;
}
