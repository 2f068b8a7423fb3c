/*
 * cli_lint.c - `luamig lint [RANGE] [--all] [--json | --format FMT]`: the
 * findings of lint.c on stdout, a summary on stderr (not with -q); exit 1
 * when an error no script acknowledges remains.  It only reads.
 */
#include <stdio.h>
#include <string.h>

#include "cli_args.h"
#include "lint.h"

int lm_cmd_lint(lm_env *env, lm_args *a) {
  const char *format = a->format ? a->format : a->json ? "json" : "text";
  if (strcmp(format, "text") != 0 && strcmp(format, "json") != 0 &&
      strcmp(format, "sarif") != 0) {
    fprintf(stderr, "luamig: lint --format takes text, json or sarif, not "
            "'%s'\n", format);
    return 2;
  }
  if (a->json && strcmp(format, "json") != 0) {
    fprintf(stderr, "luamig: lint: --json and --format %s do not combine\n",
            format);
    return 2;
  }
  lm_lint_report report;
  memset(&report, 0, sizeof report);
  const char *range = a->pos.n ? a->pos.items[0] : NULL;
  int rc = lm_lint_run(env, range, a->all, &report);
  if (rc != LM_OK) {
    lm_lint_report_free(&report);
    return lm_cli_fail(env, rc);
  }
  lm_buf out = LM_BUF_INIT;
  if (strcmp(format, "json") == 0) lm_lint_json(&report, &out);
  else if (strcmp(format, "sarif") == 0) lm_lint_sarif(&report, &out);
  else lm_lint_text(&report, &out);
  if (strcmp(format, "text") != 0) lm_buf_putc(&out, '\n');
  fputs(lm_buf_str(&out), stdout);
  lm_buf_free(&out);
  size_t errors = lm_lint_errors(&report), acknowledged = 0, other = 0;
  for (size_t i = 0; i < report.n; i++) {
    acknowledged += report.items[i].acknowledged;
    other += !report.items[i].acknowledged &&
             report.items[i].severity != LM_SEV_ERROR;
  }
  if (!env->quiet)
    fprintf(stderr, "lint: %zu revision%s: %zu error%s, %zu other finding%s, "
            "%zu acknowledged\n", report.nrevisions,
            report.nrevisions == 1 ? "" : "s", errors, errors == 1 ? "" : "s",
            other, other == 1 ? "" : "s", acknowledged);
  lm_lint_report_free(&report);
  return errors ? 1 : 0;
}
