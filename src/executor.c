/*
 * executor.c - the calls the core makes on the current executor
 * (executor.h), and what the executors share: the running revision and
 * the schema model of the offline and replay executors.
 */
#include <string.h>

#include <lauxlib.h>

#include "executor.h"
#include "lua_registry.h"
#include "schema.h"

#define MODEL_KEY "luamig.executor"

const lm_executor *lm_exec_use(lm_env *env, const lm_executor *exec) {
  const lm_executor *was = env->exec;
  env->exec = exec;
  return was;
}

int lm_exec_sql(lm_env *env, const char *sql, size_t nparams,
                const lm_value *params, int64_t *affected, lm_err *err) {
  return env->exec->sql(env, sql, nparams, params, affected, err);
}

int lm_op_apply(lm_env *env, const lm_op *op, lm_err *err) {
  return env->exec->apply(env, op, NULL, err);
}

int lm_op_apply_execute(lm_env *env, const lm_op *op, int64_t *affected,
                        lm_err *err) {
  return env->exec->apply(env, op, affected, err);
}

const char *lm_exec_revision(lm_env *env) {
  if (!env->running) return NULL;
  for (size_t i = 0; i < env->nscripts; i++)
    if (env->scripts[i].path && strcmp(env->scripts[i].path, env->running) == 0)
      return env->scripts[i].rev.id;
  return NULL;
}

/* ---- the model ----------------------------------------------------------- */

typedef struct model_ud {
  lm_schema model;
} model_ud;

static int model_gc(lua_State *L) {
  model_ud *m = lua_touserdata(L, 1);
  lm_schema_free(&m->model);
  return 0;
}

lm_schema *lm_exec_model(lm_env *env, int fresh) {
  lua_State *L = env->L;
  int created;
  model_ud *m = lm_registry_userdata(L, MODEL_KEY, sizeof *m, model_gc,
                                     &created);
  if (created) lm_schema_init(&m->model);
  if (fresh && env->sql_out && env->sql_out->len == 0)
    lm_schema_reset(&m->model);
  return &m->model;
}

void lm_exec_follow(lm_env *env, lm_schema *model, const lm_op *op) {
  lm_err err;
  lm_err_init(&err);
  if (lm_schema_apply(model, op, &err) != LM_OK) {
    lm_mtable *t = lm_schema_table(model, op->schema, op->table);
    const char *rev = lm_exec_revision(env);
    if (t) t->unknown_since = lm_schema_str(model, rev ? rev : "?");
  }
  lm_err_free(&err);
}
