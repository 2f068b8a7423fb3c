/*
 * module_review.c - the module's methods that review before anything
 * runs: m:check() (do the models match the database?) and m:lint() (the
 * findings of lint), each returning the fields of the command's --json
 * output as Lua tables.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "autogen.h"
#include "lint.h"
#include "models.h"
#include "module.h"

/* An optional table of options at idx; raises on another kind. */
static void check_options(lua_State *L, int idx, const char *method) {
  if (!lua_isnoneornil(L, idx) && !lua_istable(L, idx))
    luaL_error(L, "luamig: m:%s(): the options must be a table (got %s)",
               method, luaL_typename(L, idx));
}

/* A string option of the table at idx, or NULL; left on the stack. */
static const char *string_option(lua_State *L, int idx, const char *method,
                                 const char *key) {
  if (!lua_istable(L, idx)) return NULL;
  lua_getfield(L, idx, key);
  return lua_isnil(L, -1) ? NULL : lm_mod_check_string(L, -1, method, key);
}

typedef struct review_call {
  const char *models, *range;   /* check; lint */
  int all;                      /* lint */
  char *json;                   /* the result, malloc'ed */
} review_call;

static int check_run(lm_env *env, void *payload) {
  review_call *c = payload;
  const char *path;
  if (lm_models_path(env, c->models, &path) != LM_OK) return LM_ERROR;
  lm_compare cmp;
  lm_compare_init(&cmp);
  int rc = lm_compare_run(env, path, &cmp);
  if (rc == LM_OK) {
    lm_buf out = LM_BUF_INIT;
    lm_compare_json(&cmp, &out);
    c->json = lm_buf_detach(&out);
  }
  lm_compare_free(&cmp);
  return rc;
}

static int lint_run(lm_env *env, void *payload) {
  review_call *c = payload;
  lm_lint_report report;
  memset(&report, 0, sizeof report);
  int rc = lm_lint_run(env, c->range, c->all, &report);
  if (rc == LM_OK) {
    lm_buf out = LM_BUF_INIT;
    lm_lint_json(&report, &out);
    c->json = lm_buf_detach(&out);
  }
  lm_lint_report_free(&report);
  return rc;
}

/* Run fn as m:METHOD(), pushing its JSON as a table or the failure. */
static int review(lua_State *L, lm_mod_runner *r, const char *method,
                  int (*fn)(lm_env *, void *), review_call *c) {
  lm_mod_command_start(r, L, method);
  int rc = lm_mod_core(r->env, fn, c);
  r->busy = NULL;
  if (rc != LM_OK) {
    free(c->json);
    return lm_mod_command_end(L, r, method, rc, lm_mod_push_fail(L, r));
  }
  lm_mod_push_json(L, c->json);
  return lm_mod_command_end(L, r, method, rc, 1);
}

/* m:check{models = FILE}: {match, differences, not_compared}, as
 * `check --json` prints it; a difference is not a failure of the call
 * (match is false). */
int lm_mod_check(lua_State *L) {
  lm_mod_runner *r = lm_mod_check_idle(L, "check");
  lua_settop(L, 2);
  check_options(L, 2, "check");
  review_call c = {0};
  c.models = string_option(L, 2, "check", "models");
  return review(L, r, "check", check_run, &c);
}

/* m:lint{range = R, all = true}: the findings, as `lint --json` lists
 * them ({code, severity, revision, file, line, message, acknowledged}). */
int lm_mod_lint(lua_State *L) {
  lm_mod_runner *r = lm_mod_check_idle(L, "lint");
  lua_settop(L, 2);
  check_options(L, 2, "lint");
  review_call c = {0};
  c.range = string_option(L, 2, "lint", "range");
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "all");
    c.all = lua_toboolean(L, -1);
  }
  return review(L, r, "lint", lint_run, &c);
}
