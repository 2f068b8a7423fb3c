/*
 * executor.c - what happens to an operation value: the online executor
 * compiles it through the dialect and runs it; the offline executor
 * compiles it and appends it to the --sql script, with parameters
 * rendered as escaped literals, and replays it on a schema model so that a
 * dialect that must rebuild a table knows its shape without a database.
 * The replayer alone (lm_exec_replay) runs earlier revisions into the model
 * without writing anything, for a --sql range that does not start at base.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "core.h"
#include "exec_record.h"
#include "keep.h"
#include "schema.h"

#define STATE_KEY "luamig.executor"

/* What the offline executor keeps between operations of one run. */
typedef struct exec_state {
  lm_schema model;
  int replaying;        /* lm_exec_replay: only the model changes */
} exec_state;

static int state_gc(lua_State *L) {
  exec_state *st = lua_touserdata(L, 1);
  lm_schema_free(&st->model);
  return 0;
}

/* The state lives in the Lua registry of the environment, so it goes away
 * with the environment and needs no field in it. */
static exec_state *state(lm_env *env) {
  lua_State *L = env->L;
  if (lua_getfield(L, LUA_REGISTRYINDEX, STATE_KEY) == LUA_TUSERDATA) {
    exec_state *st = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return st;
  }
  lua_pop(L, 1);
  exec_state *st = lua_newuserdatauv(L, sizeof *st, 0);
  memset(st, 0, sizeof *st);
  lm_schema_init(&st->model);
  lua_createtable(L, 0, 1);
  lua_pushcfunction(L, state_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  lua_setfield(L, LUA_REGISTRYINDEX, STATE_KEY);
  return st;
}

/* An offline run starts with an empty script: start from an empty model. */
static exec_state *offline_state(lm_env *env) {
  exec_state *st = state(env);
  if (!st->replaying && env->sql_out && env->sql_out->len == 0)
    lm_schema_reset(&st->model);
  return st;
}

/* The revision whose script is running, for messages; NULL outside one. */
static const char *running_revision(lm_env *env) {
  if (!env->running) return NULL;
  for (size_t i = 0; i < env->nscripts; i++)
    if (env->scripts[i].path && strcmp(env->scripts[i].path, env->running) == 0)
      return env->scripts[i].rev.id;
  return NULL;
}

/* Placeholders are the dialect's to find: only its tokenizer knows
 * which "$1" sits inside a string, a quoted name or a comment. */
static int render_params(const lm_dialect *d, const char *sql, size_t nparams,
                         const lm_value *params, lm_buf *out, lm_err *err) {
  if (d->version < 6 || !d->render_params)
    return lm_err_set(err, "the %s dialect cannot write a statement with "
                      "parameters into --sql output\n  in: %s", d->name, sql);
  return d->render_params(out, sql, nparams, params, err);
}

/* One statement of the offline script, as Alembic writes them. */
static void offline_statement(lm_env *env, const char *sql) {
  lm_buf_puts(env->sql_out, sql);
  size_t len = strlen(sql);
  while (len && isspace((unsigned char)sql[len - 1])) len--;
  if (!len || sql[len - 1] != ';') lm_buf_putc(env->sql_out, ';');
  lm_buf_puts(env->sql_out, "\n\n");
}

int lm_exec_sql(lm_env *env, const char *sql, size_t nparams,
                const lm_value *params, int64_t *affected, lm_err *err) {
  if (env->recorder) {          /* lint: recorded by the op, not run */
    if (affected) *affected = 0;
    return LM_OK;
  }
  if (env->mode == LM_EXEC_OFFLINE) {
    exec_state *st = offline_state(env);
    if (st->replaying) {
      if (affected) *affected = 0;
      return LM_OK;
    }
    if (!nparams) {
      offline_statement(env, sql);
    } else {
      lm_buf b = LM_BUF_INIT;
      int rc = render_params(env->dialect, sql, nparams, params, &b, err);
      if (rc == LM_OK) offline_statement(env, lm_buf_str(&b));
      lm_buf_free(&b);
      if (rc != LM_OK) return rc;
    }
    if (affected) *affected = 0;
    return LM_OK;
  }
  /* Online, each statement of a migration checks that the transaction
   * luamig opened is still there, before (a failure the script caught may
   * have ended it) and after (the statement may end it).  Outside one, a
   * non-transactional script's first change is preceded by its "running"
   * log row.  Once SIGINT or SIGTERM arrived nothing more runs: outside
   * a transaction, it would commit. */
  if (lm_signal_received)
    return lm_err_set(err, "interrupted by %s", lm_signal_received == SIGINT
                                                    ? "SIGINT" : "SIGTERM");
  if (lm_tx_check(env, err) != LM_OK) return LM_ERROR;
  if (!env->tx_open && lm_nontx_mark(env, err) != LM_OK) return LM_ERROR;
  if (env->statements && env->on_event) {
    lm_event ev = {LM_EVENT_STATEMENT, running_revision(env), sql};
    env->on_event(&ev, env->event_payload);
  }
  int rc = env->dialect->exec(env->conn, sql, nparams, params, affected, err);
  if (rc == LM_OK && lm_tx_check(env, err) != LM_OK) return LM_ERROR;
  return rc;
}

/* Raw SQL offline: the dialect follows what it can on the model. */
int lm_op_apply_execute(lm_env *env, const lm_op *op, int64_t *affected,
                        lm_err *err) {
  if (env->recorder) {
    if (affected) *affected = 0;
    return lm_record_op(env, op, err);
  }
  int kept;   /* raw SQL keeps nothing; offline, a backup notes it */
  if (lm_keep_before(env, op, &kept, err) != LM_OK) return LM_ERROR;
  if (env->mode == LM_EXEC_OFFLINE && env->dialect->replay_sql) {
    exec_state *st = offline_state(env);
    const char *rev = running_revision(env);
    env->dialect->replay_sql(&st->model, op->sql, rev ? rev : "?");
  }
  return lm_exec_sql(env, op->sql, op->nparams, op->params, affected, err);
}

/* Keep the offline model in step with an operation just written.  An
 * operation the model cannot follow makes its table unknown from this
 * revision on, so a later rebuild says so instead of guessing. */
static void replay(lm_env *env, exec_state *st, const lm_op *op) {
  lm_err err;
  lm_err_init(&err);
  if (lm_schema_apply(&st->model, op, &err) != LM_OK) {
    lm_mtable *t = lm_schema_table(&st->model, op->schema, op->table);
    const char *rev = running_revision(env);
    if (t) t->unknown_since = lm_schema_str(&st->model, rev ? rev : "?");
  }
  lm_err_free(&err);
}

int lm_op_apply(lm_env *env, const lm_op *op, lm_err *err) {
  if (env->recorder) return lm_record_op(env, op, err);
  if (op->kind == LM_OP_EXECUTE)
    return lm_op_apply_execute(env, op, NULL, err);
  int offline = env->mode == LM_EXEC_OFFLINE;
  /* A drop may keep what it removes; a moved table needs no drop. */
  int kept = 0;
  if (lm_keep_before(env, op, &kept, err) != LM_OK) return LM_ERROR;
  if (kept) return LM_OK;
  exec_state *st = offline ? offline_state(env) : NULL;
  if (st && st->replaying) {
    replay(env, st, op);
    return LM_OK;
  }
  /* Offline, the model is the truth, not a connection the module keeps. */
  lm_compile_ctx ctx = {.conn = offline ? NULL : env->conn,
                        .offline = offline,
                        .model = st ? &st->model : NULL,
                        .revision = running_revision(env)};
  lm_strvec stmts = LM_STRVEC_INIT;
  int rc = env->dialect->compile(&ctx, op, &stmts, err);
  for (size_t i = 0; rc == LM_OK && i < stmts.n; i++)
    rc = lm_exec_sql(env, stmts.items[i], 0, NULL, NULL, err);
  lm_strvec_free(&stmts);
  if (rc == LM_OK && st) replay(env, st, op);
  if (rc == LM_OK && !offline) rc = lm_keep_after(env, op, err);
  return rc;
}

/* Offline, before a range that starts at `heads`: run the upgrades from
 * base to those heads into the model only, so that the range's rebuilds
 * know the tables' shapes. */
int lm_exec_replay(lm_env *env, const char *const *heads, size_t nheads) {
  if (env->mode != LM_EXEC_OFFLINE || !nheads) return LM_OK;
  exec_state *st = offline_state(env);
  lm_strvec done = LM_STRVEC_INIT;
  int rc = LM_OK;
  st->replaying = 1;
  for (size_t h = 0; rc == LM_OK && h < nheads; h++) {
    lm_plan plan = {0};
    rc = lm_graph_plan_upgrade(env->graph, heads[h],
                               (const char *const *)done.items, done.n,
                               &plan, &env->err);
    for (size_t i = 0; rc == LM_OK && i < plan.nsteps; i++) {
      const lm_step *step = &plan.steps[i];
      lm_script *s = step->rev >= 0 ? lm_script_at(env, (size_t)step->rev)
                                    : NULL;
      if (s) rc = lm_script_run(env, s, 1);
    }
    lm_plan_free(&plan);
    if (rc == LM_OK) lm_strvec_push(&done, lm_xstrdup(heads[h]));
  }
  st->replaying = 0;
  lm_strvec_free(&done);
  if (rc != LM_OK)
    lm_err_prefix(&env->err, "replaying the revisions before the range");
  return rc;
}
