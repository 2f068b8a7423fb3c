/*
 * cli_schema.c - `luamig schema [TABLE...] [--json]`: the live database's
 * schema in the portable text form (schema_text.c), or the model as JSON.
 * It only reads: no lock, no version table.
 */
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli_args.h"
#include "introspect.h"
#include "models.h"
#include "schema_text.h"

/* Does the table answer to `arg` ("name" or "schema.name"), compared as
 * the database compares names? */
static int names_table(const lm_schema *s, const lm_mtable *t,
                       const char *arg) {
  int (*cmp)(const char *, const char *) =
      s->nocase_names ? strcasecmp : strcmp;
  const char *dot = strchr(arg, '.');
  if (cmp(arg, t->name) == 0) return 1;
  if (!dot || !t->schema) return 0;
  size_t n = (size_t)(dot - arg);
  return strlen(t->schema) == n &&
         (s->nocase_names ? strncasecmp(arg, t->schema, n)
                          : strncmp(arg, t->schema, n)) == 0 &&
         cmp(dot + 1, t->name) == 0;
}

static int is_view(const lm_schema *s, const char *arg) {
  int (*cmp)(const char *, const char *) =
      s->nocase_names ? strcasecmp : strcmp;
  for (size_t i = 0; i < s->nviews; i++)
    if (cmp(arg, s->views[i].name) == 0) return 1;
  return 0;
}

int lm_schema_report(lm_env *env, const char *const *tables, size_t ntables,
                     int json, lm_buf *out) {
  lm_schema s;
  lm_schema_init(&s);
  int rc = lm_introspect_database(env, &s);
  char *only = NULL;
  if (rc == LM_OK && ntables) {
    only = lm_xcalloc(s.ntables + 1, 1);
    for (size_t k = 0; rc == LM_OK && k < ntables; k++) {
      const char *arg = tables[k];
      int found = 0;
      for (size_t i = 0; i < s.ntables; i++)
        if (names_table(&s, &s.tables[i], arg)) only[i] = found = 1;
      if (found) continue;
      if (is_view(&s, arg))
        rc = lm_err_set(&env->err, "%s is a view: luamig schema lists views "
                        "but does not describe them", arg);
      else if (lm_is_luamig_table(env, arg))
        rc = lm_err_set(&env->err, "%s is luamig's own table: luamig schema "
                        "leaves it out", arg);
      else
        rc = lm_err_set(&env->err, "no table %s in the database", arg);
    }
  }
  if (rc == LM_OK) {
    if (json) {
      lm_schema_model_json(out, &s, only);
    } else if (only) {
      int first = 1;
      for (size_t i = 0; i < s.ntables; i++) {
        if (!only[i]) continue;
        if (!first) lm_buf_putc(out, '\n');
        first = 0;
        lm_mtable_text(out, &s.tables[i]);
      }
    } else {
      lm_schema_text(out, &s);
    }
  }
  free(only);
  lm_schema_free(&s);
  return rc;
}

/* schema --models: the tables (all, or those named) as a models file
 * (lua/models.lua renders it), the configuration's table filters
 * applied, so that `luamig check` against it is clean. */
static int models_file(lm_env *env, lm_args *a, lm_buf *out) {
  lm_schema s;
  lm_schema_init(&s);
  int rc = lm_introspect_database(env, &s);
  if (rc == LM_OK) lm_models_filter(env, &s);
  if (rc == LM_OK && a->pos.n) {
    size_t k = 0;
    for (size_t i = 0; i < s.ntables; i++) {
      int named = 0;
      for (size_t j = 0; j < a->pos.n; j++)
        named |= names_table(&s, &s.tables[i], a->pos.items[j]);
      if (named) s.tables[k++] = s.tables[i];
    }
    for (size_t j = 0; j < a->pos.n && rc == LM_OK; j++) {
      int found = 0;
      for (size_t i = 0; i < k; i++)
        found |= names_table(&s, &s.tables[i], a->pos.items[j]);
      if (!found)
        rc = lm_err_set(&env->err, "no table %s in the database",
                        a->pos.items[j]);
    }
    s.ntables = k;
  }
  if (rc == LM_OK) {
    lm_models_push_schema(env->L, &s);
    rc = lm_lua_call(env, "luamig.models", "render", 1);
    if (rc == LM_OK) {
      lm_buf_puts(out, lua_tostring(env->L, -1));
      lua_pop(env->L, 1);
    }
  }
  lm_schema_free(&s);
  return rc;
}

int lm_cmd_schema(lm_env *env, lm_args *a) {
  lm_buf out = LM_BUF_INIT;
  if (a->models_out) {
    if (a->json) {
      fprintf(stderr, "luamig: schema --models writes a models file; it "
              "does not combine with --json\n");
      return 2;
    }
    int rc = models_file(env, a, &out);
    if (rc == LM_OK) fputs(lm_buf_str(&out), stdout);
    lm_buf_free(&out);
    return rc == LM_OK ? 0 : lm_cli_fail(env, rc);
  }
  int rc = lm_schema_report(env, (const char *const *)a->pos.items, a->pos.n,
                            a->json, &out);
  if (rc == LM_OK) {
    if (a->json) lm_buf_putc(&out, '\n');
    fputs(lm_buf_str(&out), stdout);
  }
  lm_buf_free(&out);
  return rc == LM_OK ? 0 : lm_cli_fail(env, rc);
}
