/*
 * api.c - the public C interface (luamig.h): open an environment, run
 * commands, close.  The command line and the Lua module are built on it.
 */
#define _POSIX_C_SOURCE 200809L
#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "cli_args.h"
#include "core.h"
#include "executor.h"
#include "embedded.h"
#include "keep.h"
#include "lua_heap.h"
#include "oom.h"
#include "schema.h"

/* package.searchers entry for the embedded lua/ files ("luamig.NAME"). */
static int embedded_searcher(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  for (const lm_embedded *e = lm_embedded_files; e->module; e++) {
    if (strcmp(e->module, name) != 0) continue;
    if (luaL_loadbufferx(L, e->source, e->len, e->module, "t") != LUA_OK)
      return lua_error(L);
    lua_pushstring(L, name);
    return 2;
  }
  lua_pushfstring(L, "no embedded module '%s'", name);
  return 1;
}

static void install_searcher(lua_State *L) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "searchers");
  lua_pushcfunction(L, embedded_searcher);
  lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
  lua_pop(L, 2);
}

int lm_lua_call(lm_env *env, const char *module, const char *fn, int nargs) {
  lua_State *L = env->L;
  lua_getglobal(L, "require");
  lua_pushstring(L, module);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
    lm_err_set(&env->err, "%s", lua_tostring(L, -1));
    lua_pop(L, 1 + nargs);
    return LM_ERROR;
  }
  lua_getfield(L, -1, fn);
  lua_remove(L, -2);
  lua_insert(L, -1 - nargs);
  if (lua_pcall(L, nargs, 1, 0) != LUA_OK) {
    lm_err_set(&env->err, "%s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return LM_ERROR;
  }
  return LM_OK;
}

static int open_env(lm_env **out, const lm_options *opts) {
  static const lm_options none = {0};
  if (!opts) opts = &none;
  lm_env *env = lm_xcalloc(1, sizeof *env);
  *out = env;
  lm_err_init(&env->err);
  lm_err_init(&env->raised);
  lm_arena_init(&env->script_arena);
  env->exec = &lm_executor_online;
  env->on_event = opts->on_event;
  env->event_payload = opts->event_payload;
  env->statements = opts->statements;
  env->L = lm_lua_newstate(&env->lua_heap);
  if (!env->L) return lm_err_set(&env->err, "cannot create a Lua state");
  luaL_openlibs(env->L);
  install_searcher(env->L);
  return lm_config_load(env, opts);
}

int lm_open(lm_env **out, const lm_options *opts) {
  LM_OOM_OPEN(out, LM_ERROR);
  return open_env(out, opts);
}

void lm_close(lm_env *env) {
  if (!env) return;
  LM_OOM_CLOSE(env);
  lm_tx_rollback(env);
  lm_disconnect(env);
  lm_scripts_free(env);
  lm_lua_close(env->L, env->lua_heap);
  lm_url_free(&env->parsed_url);
  free(env->config_path);
  free(env->url);
  free(env->script_location);
  free(env->version_table);
  free(env->version_table_schema);
  free(env->log_table);
  lm_strvec_free(&env->x);
  lm_strvec_free(&env->include_schemas);
  free(env->models);
  lm_strvec_free(&env->include_tables);
  lm_strvec_free(&env->exclude_tables);
  lm_err_free(&env->err);
  lm_err_free(&env->raised);
  free(env);
}

const char *lm_errcode(const lm_env *env) {
  return env ? lm_err_code(&env->err) : "";
}

void lm_errinfo(const char **revision, const char **file, int *line,
                const char **sqlstate, const lm_env *env) {
  const lm_err *e = env ? &env->err : NULL;
  if (revision) *revision = e ? e->revision : NULL;
  if (file) *file = e ? e->file : NULL;
  if (line) *line = e ? e->line : 0;
  if (sqlstate) *sqlstate = e ? e->sqlstate : "";
}

const char *lm_errmsg(const lm_env *env) {
  if (!env) return "out of memory";
  return lm_err_msg(&env->err);
}

void lm_ids(lm_env *env, const lm_revlist *l, lm_strvec *out) {
  for (size_t i = 0; i < l->n; i++)
    lm_strvec_push(out, lm_xstrdup(lm_graph_rev(env->graph, l->idx[i])->id));
}

/* A strvec handed out as a NULL-terminated list. */
static char **to_list(lm_strvec *v) {
  lm_strvec_push(v, NULL);
  char **list = v->items;
  v->items = NULL;
  v->n = v->cap = 0;
  return list;
}

void lm_free_list(char **list) {
  if (!list) return;
  for (char **p = list; *p; p++) free(*p);
  free(list);
}

/* A command that writes (or renders a script) cannot start while another
 * runs on the same env, as it would from that one's on_event: it would
 * commit, unlock or switch to offline what that one is in the middle of. */
static int enter(lm_env *env, const char *command) {
  if (env->command)
    return lm_err_usage(&env->err, "%s cannot run while %s runs on the same "
                        "environment (from its on_event); only lm_current "
                        "can", command, env->command);
  env->command = command;
  return LM_OK;
}

/* The end of a command: what it left open (a transaction, a script's
 * queries) and the run lock go.  The connection stays for the env's life,
 * so an in-memory database lives as long as the env; the lock is taken
 * again by the next command that writes. */
static int leave(lm_env *env, int rc) {
  lm_tx_rollback(env);
  lm_op_data_release(env);
  lm_release_lock(env);
  env->command = NULL;
  return rc;
}

typedef int (*planner)(const lm_graph *, const char *, const char *const *,
                       size_t, lm_plan *, lm_err *);

/* upgrade and downgrade: lock, read the heads under the lock, plan, run. */
static int migrate(lm_env *env, const char *command, planner plan_fn,
                   const char *target, char ***applied) {
  if (applied) *applied = NULL;
  if (!target || !*target)
    return lm_err_usage(&env->err, "%s needs a target (e.g. head, +1, an "
                        "id)", command);
  if (enter(env, command) != LM_OK) return LM_EUSAGE;
  if (lm_scripts_load(env) != LM_OK || lm_begin_run(env) != LM_OK ||
      lm_preflight(env) != LM_OK)
    return leave(env, env->err.code ? env->err.code : LM_ERROR);
  lm_strvec heads = LM_STRVEC_INIT, done = LM_STRVEC_INIT;
  lm_plan plan = {0};
  int rc = lm_read_heads(env, &heads);
  if (rc == LM_OK)
    rc = plan_fn(env->graph, target, (const char *const *)heads.items,
                 heads.n, &plan, &env->err);
  if (rc == LM_OK && env->backup && plan.nsteps &&
      strcmp(command, "upgrade") == 0)
    rc = lm_backup_run(env, &plan, (const char *const *)heads.items, heads.n);
  if (rc == LM_OK) rc = lm_run_plan(env, &plan, command, &done);
  lm_plan_free(&plan);
  lm_strvec_free(&heads);
  if (rc == LM_OK && applied) *applied = to_list(&done);
  lm_strvec_free(&done);
  return leave(env, rc);
}

int lm_upgrade(char ***applied, lm_env *env, const char *target) {
  LM_OOM_ENTRY(env, LM_ERROR);
  return migrate(env, "upgrade", lm_graph_plan_upgrade, target, applied);
}

int lm_downgrade(char ***applied, lm_env *env, const char *target) {
  LM_OOM_ENTRY(env, LM_ERROR);
  return migrate(env, "downgrade", lm_graph_plan_downgrade, target, applied);
}

/* Also called back from a running command's on_event, on its connection
 * (and inside its transaction). */
int lm_current(char ***out, lm_env *env) {
  *out = NULL;
  LM_OOM_ENTRY(env, LM_ERROR);
  /* From a backfill's progress event: its batch write finishes first. */
  if (env->hold) {
    if (!env->hold->quiesce)
      return lm_err_set(&env->err, "current cannot read now: the running "
                        "%s is streaming a bulk insert on the connection",
                        env->command ? env->command : "command");
    env->hold->quiesce(env->hold);
  }
  lm_strvec heads = LM_STRVEC_INIT;
  int rc = lm_connect(env);
  if (rc == LM_OK) rc = lm_read_heads(env, &heads);
  if (rc == LM_OK) *out = to_list(&heads);
  lm_strvec_free(&heads);
  return rc;
}

/* Resolve the FROM of a FROM:TO range into revision ids. */
static int resolve_ids(lm_env *env, const char *target, lm_strvec *out) {
  lm_revlist l = {0};
  if (lm_graph_resolve(env->graph, target, NULL, 0, &l, &env->err) != LM_OK)
    return LM_ERROR;
  lm_ids(env, &l, out);
  lm_revlist_free(&l);
  return LM_OK;
}

int lm_stamp(lm_env *env, const char *const *revs, size_t nrevs, int purge) {
  LM_OOM_ENTRY(env, LM_ERROR);
  if (!nrevs) return lm_err_usage(&env->err, "stamp needs a revision");
  if (enter(env, "stamp") != LM_OK) return LM_EUSAGE;
  if (lm_scripts_load(env) != LM_OK || lm_begin_run(env) != LM_OK)
    return leave(env, LM_ERROR);
  lm_strvec heads = LM_STRVEC_INIT;
  lm_plan plan = {0};
  int dirty = 0;
  lm_buf why = LM_BUF_INIT;
  int rc = lm_check_dirty(env, &dirty, &why);
  lm_buf_free(&why);
  if (rc == LM_OK && !purge) rc = lm_read_heads(env, &heads);
  if (rc == LM_OK)
    rc = lm_graph_plan_stamp(env->graph, revs, nrevs,
                             (const char *const *)heads.items, heads.n, purge,
                             &plan, &env->err);
  /* The purge and the new rows commit together. */
  int tpm = env->transaction_per_migration;
  env->transaction_per_migration = 0;
  if (rc == LM_OK) rc = lm_tx_begin(env);
  if (rc == LM_OK && purge) rc = lm_purge_versions(env);
  if (rc == LM_OK) rc = lm_run_plan(env, &plan, "stamp", NULL);
  else lm_tx_rollback(env);
  if (rc == LM_OK && dirty) rc = lm_stamp_clear_dirty(env, plan.nsteps == 0);
  env->transaction_per_migration = tpm;
  lm_plan_free(&plan);
  lm_strvec_free(&heads);
  return leave(env, rc);
}

/* Does a plan leave the version table empty?  Count its rows step by step
 * from the starting heads. */
static int ends_at_base(const lm_plan *plan, size_t start) {
  long rows = (long)start;
  for (size_t i = 0; i < plan->nsteps; i++)
    for (size_t k = 0; k < plan->steps[i].nactions; k++) {
      lm_vt_kind kind = plan->steps[i].actions[k].kind;
      rows += kind == LM_VT_INSERT ? 1 : kind == LM_VT_DELETE ? -1 : 0;
    }
  return rows == 0 && plan->nsteps > 0;
}

/* Offline: the same walk, written as a script instead of run. */
int lm_sql(char **sql, lm_env *env, const char *command,
           const char *target) {
  *sql = NULL;
  LM_OOM_ENTRY(env, LM_ERROR);
  if (!target || !*target)
    return lm_err_usage(&env->err, "%s --sql needs a target", command);
  if (lm_pick_dialect(env) != LM_OK || lm_scripts_load(env) != LM_OK)
    return LM_ERROR;
  int is_up = strcmp(command, "upgrade") == 0;
  int is_down = strcmp(command, "downgrade") == 0;
  int is_stamp = strcmp(command, "stamp") == 0;
  if (!is_up && !is_down && !is_stamp)
    return lm_err_usage(&env->err, "--sql works with upgrade, downgrade and "
                        "stamp, not %s", command);
  char *from = NULL;
  const char *to = target;
  const char *colon = strchr(target, ':');
  if (colon) {
    from = lm_xstrndup(target, (size_t)(colon - target));
    to = colon + 1;
  }
  if (is_down && !from) {
    return lm_err_usage(&env->err, "downgrade with --sql needs a range "
                        "FROM:TO, since there is no database to read the "
                        "current revision from");
  }
  if (enter(env, "sql") != LM_OK) {
    free(from);
    return LM_EUSAGE;
  }
  lm_strvec start = LM_STRVEC_INIT;
  lm_plan plan = {0};
  lm_buf out = LM_BUF_INIT;
  const lm_executor *was = lm_exec_use(env, &lm_executor_offline);
  env->sql_out = &out;
  int rc = from && *from && strcmp(from, "base") != 0
               ? resolve_ids(env, from, &start) : LM_OK;
  const char *const *cur = (const char *const *)start.items;
  if (rc == LM_OK) {
    if (is_up)
      rc = lm_graph_plan_upgrade(env->graph, to, cur, start.n, &plan,
                                 &env->err);
    else if (is_down)
      rc = lm_graph_plan_downgrade(env->graph, to, cur, start.n, &plan,
                                   &env->err);
    else
      rc = lm_graph_plan_stamp(env->graph, &to, 1, cur, start.n, 0, &plan,
                               &env->err);
  }
  if (rc == LM_OK) rc = lm_offline_preamble(env, start.n == 0 && !is_down);
  if (rc == LM_OK) rc = lm_run_replay(env, cur, start.n);
  if (rc == LM_OK) rc = lm_run_plan(env, &plan, command, NULL);
  if (rc == LM_OK && is_down && ends_at_base(&plan, start.n))
    rc = lm_offline_drop_version_table(env);
  lm_tx_rollback(env);   /* a BEGIN a failure left: offline, only a flag */
  lm_exec_use(env, was);
  env->sql_out = NULL;
  lm_plan_free(&plan);
  lm_strvec_free(&start);
  free(from);
  if (rc == LM_OK) *sql = lm_buf_detach(&out);
  lm_buf_free(&out);
  return leave(env, rc);
}

int lm_heads(char ***out, lm_env *env) {
  *out = NULL;
  LM_OOM_ENTRY(env, LM_ERROR);
  lm_revlist l = {0};
  lm_strvec ids = LM_STRVEC_INIT;
  int rc = lm_scripts_load(env);
  if (rc == LM_OK) rc = lm_graph_heads(env->graph, &l);
  if (rc == LM_OK) {
    lm_ids(env, &l, &ids);
    *out = to_list(&ids);
  }
  lm_revlist_free(&l);
  lm_strvec_free(&ids);
  return rc;
}

int lm_schema_json(char **json, lm_env *env, const char *const *tables,
                   size_t ntables) {
  *json = NULL;
  LM_OOM_ENTRY(env, LM_ERROR);
  lm_buf out = LM_BUF_INIT;
  int rc = lm_schema_report(env, tables, ntables, 1, &out);
  if (rc == LM_OK) *json = lm_buf_detach(&out);
  lm_buf_free(&out);
  return rc;
}

int lm_verify(char **json, lm_env *env, const char *scratch_url) {
  *json = NULL;
  LM_OOM_ENTRY(env, LM_ERROR);
  if (enter(env, "verify") != LM_OK) return LM_EUSAGE;
  lm_buf report = LM_BUF_INIT, problems = LM_BUF_INIT;
  int code = lm_verify_report(env, scratch_url, &report, &problems);
  int rc = LM_OK;
  if (code) {
    /* the problems as the command prints them, without the last newline */
    if (problems.len && problems.data[problems.len - 1] == '\n')
      problems.data[--problems.len] = '\0';
    lm_err_set(&env->err, "%s", lm_buf_str(&problems));
    rc = code == 2 ? LM_EUSAGE : LM_ERROR;
    env->err.code = rc;
  }
  *json = lm_buf_detach(&report);
  lm_buf_free(&report);
  lm_buf_free(&problems);
  return leave(env, rc);
}

const char *lm_version(void) {
  return LUAMIG_VERSION;
}
