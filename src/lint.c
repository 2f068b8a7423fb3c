/*
 * lint.c - lint's driver: which revisions, and each script's upgrade and
 * downgrade run against the recording executor (exec_record.c).  Every
 * revision from base is replayed in upgrade order so that the model holds
 * the schema each script starts from; the rules (lint_rules.c) report on
 * those in the range only.  A reachable database adds its row estimates.
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "introspect.h"
#include "lint.h"
#include "schema_diff.h"

/* The script's allow = {...}: codes it acknowledges.  An unknown code or
 * another kind of value is an error naming the script. */
static int read_allow(lm_env *env, lm_script *s, lm_strvec *out) {
  lua_State *L = env->L;
  int has;                      /* compiles the script when the cache held it */
  if (lm_script_has(env, s, "upgrade", &has) != LM_OK) return LM_ERROR;
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref);
  lua_getfield(L, -1, "allow");
  int rc = LM_OK;
  if (lua_istable(L, -1)) {
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; rc == LM_OK && i <= n; i++) {
      lua_rawgeti(L, -1, i);
      const char *code = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                        : NULL;
      if (code && lm_lint_rule_index(code) >= 0)
        lm_strvec_push(out, lm_xstrdup(code));
      else
        rc = lm_err_set(&env->err, "%s: allow[%lld] is %s%s%s, not a lint "
                        "rule code", s->path, (long long)i,
                        code ? "'" : "a ", code ? code : luaL_typename(L, -1),
                        code ? "'" : "");
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    rc = lm_err_set(&env->err, "%s: allow must be a list of lint rule codes, "
                    "not a %s", s->path, luaL_typename(L, -1));
  }
  lua_pop(L, 2);
  return rc;
}

/* The line a script's function starts on (1 when it has none). */
static int function_line(lm_env *env, lm_script *s, const char *fn) {
  lua_State *L = env->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref);
  lua_getfield(L, -1, fn);
  int line = 1;
  if (lua_isfunction(L, -1)) {
    lua_Debug ar;
    lua_pushvalue(L, -1);
    if (lua_getinfo(L, ">S", &ar) && ar.linedefined > 0) line = ar.linedefined;
  }
  lua_pop(L, 2);
  return line;
}

/* The line an error message names in the script ("path:LINE: ..."). */
static int error_line(const char *msg, const char *path) {
  const char *at = msg && path ? strstr(msg, path) : NULL;
  if (!at || at[strlen(path)] != ':') return 0;
  return atoi(at + strlen(path) + 1);
}

/* The tables one revision touches, as they were before its upgrade and
 * after it: the downgrade is compared on those only, and the model put
 * back to the state after the upgrade, without copying the whole schema
 * for every revision. */
typedef struct snapshot {
  lm_lint_ctx *lint;            /* the rules, during the upgrade */
  lm_schema before, after;
  lm_strvec touched;            /* "schema\x1ftable" */
  int downgrading;
} snapshot;

static char *table_key(const char *schema, const char *table) {
  return lm_xasprintf("%s\x1f%s", schema ? schema : "", table);
}

static void key_parts(const char *key, char **schema, const char **table) {
  const char *sep = strchr(key, '\x1f');
  *schema = sep == key ? NULL : lm_xstrndup(key, (size_t)(sep - key));
  *table = sep + 1;
}

static void copy_if_there(lm_schema *dst, lm_schema *src, const char *schema,
                          const char *table) {
  lm_mtable *t = lm_schema_table(src, schema, table);
  if (t) lm_schema_copy_table(dst, t);
}

static void touch(snapshot *sn, lm_schema *model, const char *schema,
                  const char *table) {
  if (!table) return;
  char *key = table_key(schema, table);
  for (size_t i = 0; i < sn->touched.n; i++)
    if (strcmp(sn->touched.items[i], key) == 0) {
      free(key);
      return;
    }
  lm_strvec_push(&sn->touched, key);
  copy_if_there(&sn->before, model, schema, table);
  /* First touched by the downgrade: the upgrade left it as it was. */
  if (sn->downgrading) copy_if_there(&sn->after, model, schema, table);
}

static void snapshot_observe(void *payload, const lm_record *rec,
                             lm_schema *model) {
  snapshot *sn = payload;
  if (rec->kind == LM_REC_OP) {
    touch(sn, model, rec->op->schema, rec->op->table);
    if (rec->op->kind == LM_OP_RENAME_TABLE)
      touch(sn, model, rec->op->schema, rec->op->name);
  }
  if (sn->lint) lm_lint_observe(sn->lint, rec, model);
}

/* The touched tables as they are in model, into out. */
static void touched_now(snapshot *sn, lm_schema *model, lm_schema *out) {
  for (size_t i = 0; i < sn->touched.n; i++) {
    char *schema;
    const char *table;
    key_parts(sn->touched.items[i], &schema, &table);
    copy_if_there(out, model, schema, table);
    free(schema);
  }
}

/* Put the touched tables back as the upgrade left them. */
static void restore(snapshot *sn, lm_schema *model) {
  for (size_t i = 0; i < sn->touched.n; i++) {
    char *schema;
    const char *table;
    key_parts(sn->touched.items[i], &schema, &table);
    lm_schema_drop_table(model, schema, table);
    copy_if_there(model, &sn->after, schema, table);
    free(schema);
  }
}

/* Which revisions lint reports on: in[i] for graph index i. */
static int pick_range(lm_env *env, const char *range, int all, int connected,
                      char *in) {
  size_t n = lm_graph_size(env->graph);
  lm_strvec heads = LM_STRVEC_INIT;
  int rc = LM_OK;
  if (connected && (!all || range)) rc = lm_read_heads(env, &heads);
  if (rc == LM_OK && range) {
    lm_revlist l = {0};
    rc = lm_graph_history(env->graph, range, (const char *const *)heads.items,
                          heads.n, &l, &env->err);
    for (size_t i = 0; rc == LM_OK && i < l.n; i++) in[l.idx[i]] = 1;
    lm_revlist_free(&l);
  } else if (rc == LM_OK && (all || !connected)) {
    memset(in, 1, n);
  } else if (rc == LM_OK) {
    lm_plan pending = {0};
    rc = lm_graph_plan_upgrade(env->graph, "heads",
                               (const char *const *)heads.items, heads.n,
                               &pending, &env->err);
    for (size_t i = 0; rc == LM_OK && i < pending.nsteps; i++)
      if (pending.steps[i].rev >= 0 && pending.steps[i].upgrade)
        in[pending.steps[i].rev] = 1;
    lm_plan_free(&pending);
  }
  lm_strvec_free(&heads);
  return rc;
}

static void check_heads(lm_lint_ctx *c) {
  lm_env *env = c->env;
  lm_revlist heads = {0};
  lm_graph_heads(env->graph, &heads);
  if (heads.n > 1) {
    lm_buf ids = LM_BUF_INIT;
    lm_graph_ids_joined(env->graph, &heads, &ids);
    /* Reported at each head, so that allow in a head acknowledges it. */
    for (size_t i = 0; i < heads.n; i++) {
      lm_script *s = lm_script_at(env, heads.idx[i]);
      lm_lint_ctx_start(c);
      c->reporting = 1;
      c->revision = s->rev.id;
      c->file = s->path;
      if (read_allow(env, s, &c->allow) != LM_OK) lm_strvec_free(&c->allow);
      lm_lint_add(c, "multiple_heads", 1, "the history has %zu heads: %s",
                  heads.n, lm_buf_str(&ids));
    }
    lm_buf_free(&ids);
  }
  lm_revlist_free(&heads);
}

/* The downgrade, recorded from the schema after the upgrade: it must
 * exist, run, and give back the schema before. */
static void check_downgrade(lm_lint_ctx *c, lm_recorder *r, lm_script *s,
                            snapshot *sn, int upgrade_executed) {
  lm_env *env = c->env;
  int has = 0;
  if (lm_script_has(env, s, "downgrade", &has) != LM_OK || !has) {
    lm_err_free(&env->err);
    lm_lint_add(c, "missing_downgrade", function_line(env, s, "upgrade"),
                "revision %s has no downgrade: it cannot be undone",
                s->rev.id);
    return;
  }
  touched_now(sn, &r->model, &sn->after);
  sn->downgrading = 1;
  sn->lint = NULL;
  r->executed = 0;
  int rc = lm_script_run(env, s, 0);
  if (rc != LM_OK) {
    const char *msg = lm_errmsg(env);
    int line = error_line(msg, s->path);
    lm_lint_add(c, "downgrade_fails", line ? line
                : function_line(env, s, "downgrade"),
                "the downgrade raises: %s", msg);
    lm_err_free(&env->err);
  } else if (!upgrade_executed && !r->executed) {
    /* Raw SQL in either direction: the model may not follow it. */
    lm_schema now;
    lm_schema_init(&now);
    touched_now(sn, &r->model, &now);
    lm_diff d;
    lm_diff_init(&d);
    lm_schema_diff(&d, &sn->before, &now);
    if (d.n) {
      lm_buf lines = LM_BUF_INIT;
      for (size_t i = 0; i < d.n; i++) {
        if (i) lm_buf_puts(&lines, "; ");
        lm_diff_item_line(&d.items[i], &lines);
      }
      lm_lint_add(c, "downgrade_not_inverse",
                  function_line(env, s, "downgrade"), "after upgrade and "
                  "downgrade the schema differs from before: %s",
                  lm_buf_str(&lines));
      lm_buf_free(&lines);
    }
    lm_diff_free(&d);
    lm_schema_free(&now);
  }
  restore(sn, &r->model);
}

/* One revision: its upgrade under the rules, then its downgrade. */
static int lint_revision(lm_lint_ctx *c, lm_recorder *r, lm_script *s,
                         int reporting) {
  lm_env *env = c->env;
  lm_lint_ctx_start(c);
  c->reporting = reporting;
  c->revision = s->rev.id;
  c->file = s->path;
  c->transactional = s->transactional;
  if (reporting && read_allow(env, s, &c->allow) != LM_OK) return LM_ERROR;
  snapshot sn;
  memset(&sn, 0, sizeof sn);
  sn.lint = c;
  lm_schema_init(&sn.before);
  lm_schema_init(&sn.after);
  sn.before.nocase_names = sn.after.nocase_names = r->model.nocase_names;
  r->observe = snapshot_observe;
  r->payload = &sn;
  r->executed = 0;
  int rc = lm_script_run(env, s, 1);
  if (rc != LM_OK) {
    lm_err_prefix(&env->err, "lint: the upgrade of %s raises", s->rev.id);
  } else if (reporting) {
    lm_lint_script_end(c, &r->model);
    c->report->nrevisions++;
    check_downgrade(c, r, s, &sn, r->executed);
  }
  r->observe = NULL;
  lm_schema_free(&sn.before);
  lm_schema_free(&sn.after);
  lm_strvec_free(&sn.touched);
  return rc;
}

/* Before the first revision not yet applied: the live database's tables
 * the replayed history does not know (made outside the migrations), so
 * that the rules see them as they are.  A schema lint cannot read only
 * leaves them out. */
static void add_live_tables(lm_env *env, lm_schema *model) {
  lm_schema live;
  lm_schema_init(&live);
  if (lm_introspect_database(env, &live) == LM_OK)
    for (size_t i = 0; i < live.ntables; i++)
      if (!lm_schema_table(model, live.tables[i].schema, live.tables[i].name))
        lm_schema_copy_table(model, &live.tables[i]);
  lm_err_free(&env->err);
  lm_schema_free(&live);
}

int lm_lint_run(lm_env *env, const char *range, int all,
                lm_lint_report *report) {
  if (lm_scripts_load(env) != LM_OK) return LM_ERROR;
  /* Without a URL lint still runs, every rule applying, no database. */
  if (!env->url) env->dialect = lm_dialect_for_lint();
  else if (lm_pick_dialect(env) != LM_OK) return LM_ERROR;
  if (!env->dialect) return lm_err_set(&env->err, "no dialect to lint for");
  int connected = env->url && lm_connect(env) == LM_OK;
  if (env->url && !connected && !all && !env->quiet)
    fprintf(stderr, "luamig: lint: cannot read the database (%s): linting "
            "every revision\n", lm_errmsg(env));
  lm_err_free(&env->err);

  size_t n = lm_graph_size(env->graph);
  if (!n) return LM_OK;
  char *in = lm_xcalloc(n ? n : 1, 1);
  lm_plan full = {0};
  int rc = lm_graph_plan_upgrade(env->graph, "heads", NULL, 0, &full,
                                 &env->err);
  if (rc == LM_OK) rc = pick_range(env, range, all, connected, in);

  lm_recorder r;
  lm_recorder_init(&r);
  lm_lint_ctx c;
  memset(&c, 0, sizeof c);
  c.env = env;
  c.cfg = lm_safety_config_of(env);
  c.report = report;
  c.lock_rules = env->dialect->version >= 12 && env->dialect->ddl_locks_block;
  if (rc == LM_OK) {
    int live_read = 0;
    lm_recorder_install(env, &r);
    for (size_t i = 0; rc == LM_OK && i < full.nsteps; i++) {
      const lm_step *step = &full.steps[i];
      lm_script *s = step->rev >= 0 ? lm_script_at(env, (size_t)step->rev)
                                    : NULL;
      if (s && in[step->rev] && connected && !all && !range && !live_read) {
        add_live_tables(env, &r.model);
        live_read = 1;
      }
      if (s) rc = lint_revision(&c, &r, s, in[step->rev]);
    }
    lm_recorder_remove(env);
    if (rc == LM_OK) check_heads(&c);
  }
  lm_lint_ctx_clear(&c);
  lm_recorder_free(&r);
  lm_plan_free(&full);
  free(in);
  return rc;
}
