/*
 * cli_check.c - `luamig check`: do the models match the database at head?
 * Exit 0 when they do, 1 listing the differences one per line (or as
 * JSON), for CI, as `alembic check`.  What is not compared is listed
 * either way.  It only reads: no lock, nothing written.
 */
#include <stdio.h>

#include "autogen.h"
#include "models.h"

int lm_cmd_check(lm_env *env, lm_args *a) {
  const char *path;
  if (lm_models_path(env, a->models, &path) != LM_OK)
    return lm_cli_fail(env, LM_ERROR);
  lm_compare c;
  lm_compare_init(&c);
  int rc = lm_compare_run(env, path, &c);
  if (rc != LM_OK) {
    lm_compare_free(&c);
    return lm_cli_fail(env, rc);
  }
  lm_buf out = LM_BUF_INIT;
  if (a->json) {
    lm_compare_json(&c, &out);
    lm_buf_putc(&out, '\n');
  } else {
    for (size_t i = 0; i < c.n; i++) {
      lm_diff_item_line(c.items[i], &out);
      lm_buf_putc(&out, '\n');
    }
    for (size_t i = 0; i < c.not_compared.n; i++)
      lm_buf_printf(&out, "not compared: %s\n", c.not_compared.items[i]);
    if (!c.n) lm_buf_puts(&out, "models match the database\n");
  }
  fputs(lm_buf_str(&out), stdout);
  int differ = c.n > 0;
  lm_buf_free(&out);
  lm_compare_free(&c);
  return differ ? 1 : 0;
}
