/*
 * autogen.h - models against the live database, for `luamig check` and
 * `luamig revision --autogenerate`: both schemas read into the one model,
 * filtered by the configuration, compared with the one diff
 * (schema_diff.h), and the differences sorted into those a migration can
 * make and those that are not compared (listed, never dropped silently).
 */
#ifndef LM_AUTOGEN_H
#define LM_AUTOGEN_H

#include <lua.h>

#include "cli_args.h"
#include "schema_diff.h"

typedef struct lm_compare {
  lm_schema db, models;         /* from = the database, to = the models */
  lm_diff diff;
  const lm_diff_item **items;   /* the differences compared */
  size_t n;
  lm_strvec not_compared;       /* one line each: what and why */
} lm_compare;

void lm_compare_init(lm_compare *c);
void lm_compare_free(lm_compare *c);

/* Load the models (models_path), check the database is at head, read it,
 * and compare.  LM_OK, or LM_ERROR with env->err set. */
int lm_compare_run(lm_env *env, const char *models_path, lm_compare *c);
/* What `check --json` prints: {match, differences, not_compared}. */
void lm_compare_json(const lm_compare *c, lm_buf *out);

/* cli_check.c */
int lm_cmd_check(lm_env *env, lm_args *a);

/* autogen.c: push the changes a migration makes, in order (the list
 * lua/autogen.lua renders), then the not-compared lines: two values. */
void lm_autogen_push(lua_State *L, const lm_compare *c);

#endif
