/*
 * exec_record.c - the recording executor (exec_record.h).  The lint
 * command installs it: every op.* call is handed to an observer with the
 * line of the script that made it, then replayed on the recorder's model,
 * so that the next call sees the schema as the earlier ones left it.
 */
#include <string.h>

#include <lauxlib.h>

#include "exec_record.h"
#include "executor.h"
#include "op_data.h"
#include "op_internal.h"

void lm_recorder_init(lm_recorder *r) {
  memset(r, 0, sizeof *r);
  lm_schema_init(&r->model);
}

void lm_recorder_free(lm_recorder *r) { lm_schema_free(&r->model); }

/* The line of the running script that made the call: the innermost Lua
 * frame of that file (an ops file or a helper may sit in between), else
 * the innermost Lua frame. */
static int script_line(lua_State *L, const char *path) {
  lua_Debug ar;
  int fallback = 0;
  for (int level = 1; lua_getstack(L, level, &ar); level++) {
    if (!lua_getinfo(L, "Sl", &ar) || ar.currentline <= 0) continue;
    if (path && ar.source[0] == '@' && strcmp(ar.source + 1, path) == 0)
      return ar.currentline;
    if (!fallback) fallback = ar.currentline;
  }
  return fallback;
}

static void observe(lm_env *env, lm_record *rec, lua_State *L) {
  lm_recorder *r = env->recorder;
  rec->line = script_line(L, env->running);
  if (r->observe) r->observe(r->payload, rec, &r->model);
}

static int record_apply(lm_env *env, const lm_op *op, int64_t *affected,
                        lm_err *err) {
  (void)err;
  lm_recorder *r = env->recorder;
  if (affected) *affected = 0;
  lm_record rec = {.kind = LM_REC_OP, .op = op};
  observe(env, &rec, env->L);
  if (op->kind == LM_OP_EXECUTE) {
    r->executed++;
    /* The dialect follows what it can of raw SQL on the model. */
    if (env->dialect && env->dialect->replay_sql)
      env->dialect->replay_sql(&r->model, op->sql, "lint");
    return LM_OK;
  }
  /* An operation the model cannot follow leaves its table unknown; the
   * recorder carries on, as running it might have. */
  lm_err e;
  lm_err_init(&e);
  if (lm_schema_apply(&r->model, op, &e) != LM_OK) {
    lm_mtable *t = lm_schema_table(&r->model, op->schema, op->table);
    if (t) t->unknown_since = lm_schema_str(&r->model, "lint");
  }
  lm_err_free(&e);
  return LM_OK;
}

/* op.query: recorded; the loop over its rows runs no times. */
static int record_query(lua_State *L) {
  lm_env *env = lm_op_env(L);
  const char *sql = lm_data_sql(L, 1, "query", "the SQL");
  if (env->recorder) {
    lm_record rec = {.kind = LM_REC_QUERY, .sql = sql};
    observe(env, &rec, L);
  }
  lua_pushcfunction(L, lm_op_no_rows);
  return 1;
}

int lm_op_no_rows(lua_State *L) {
  (void)L;
  return 0;
}

/* op.backfill(table, opts, fn): recorded, fn not called. */
static int record_backfill(lua_State *L) {
  lm_env *env = lm_op_env(L);
  const char *table = lm_op_check_name(L, 1, "backfill", "the table name");
  if (!lua_isfunction(L, 3))
    luaL_error(L, "backfill: the third argument must be a function(row), "
               "not a %s", luaL_typename(L, 3));
  const char *schema = NULL;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "schema");
    schema = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
  }
  if (env->recorder) {
    lm_record rec = {.kind = LM_REC_BACKFILL, .schema = schema,
                     .table = table};
    observe(env, &rec, L);
  }
  lua_createtable(L, 0, 4);
  static const char *const fields[] = {"read", "updated", "skipped", NULL};
  for (size_t i = 0; fields[i]; i++) {
    lua_pushinteger(L, 0);
    lua_setfield(L, -2, fields[i]);
  }
  lua_pushnumber(L, 0);
  lua_setfield(L, -2, "seconds");
  return 1;
}

const lm_executor lm_executor_record = {
  .version = 1,
  .name = "record",
  .offline = 1,
  .apply = record_apply,
  .sql = lm_exec_none_sql,
  .data = lm_exec_none_data,
  .begin = lm_exec_none_begin,
  .commit = lm_exec_none_commit,
  .rollback = lm_exec_none_rollback,
  .tx_check = lm_exec_none_tx_check,
  .version_change = lm_exec_none_version_change,
  .log_start = lm_exec_none_log_start,
  .log = lm_exec_none_log,
  .log_end = lm_exec_none_log_end,
  .step = lm_exec_none_step,
  .failed = lm_exec_none_failed,
};

void lm_recorder_install(lm_env *env, lm_recorder *r) {
  env->recorder = r;
  r->saved = lm_exec_use(env, &lm_executor_record);
  /* The op table is built once per environment: build it now and put
   * the recording data functions in it. */
  lua_State *L = env->L;
  lm_op_push_table(env);
  lua_pushcfunction(L, record_query);
  lua_setfield(L, -2, "query");
  lua_pushcfunction(L, record_backfill);
  lua_setfield(L, -2, "backfill");
  lua_pop(L, 1);
}

void lm_recorder_remove(lm_env *env) {
  lm_exec_use(env, env->recorder->saved);
  env->recorder = NULL;
  lm_op_push_table(env);        /* the op table's own query and backfill */
  lm_op_data_register(env->L);
  lua_pop(env->L, 1);
}
