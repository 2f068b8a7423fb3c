/*
 * module_commands.c - the module's methods that run a command:
 * upgrade, downgrade, sql, stamp, status, schema, verify and revision.
 * Each checks its arguments (raising on misuse), runs the command through
 * the C API or the core, and returns its result or nil, message, code.
 */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_args.h"
#include "embedded.h"
#include "module.h"
#include "oom.h"

typedef int (*migrate_fn)(char ***, lm_env *, const char *);

static int migrate(lua_State *L, const char *method, migrate_fn fn) {
  lm_mod_runner *r = lm_mod_check_idle(L, method);
  const char *target = lm_mod_check_string(L, 2, method, "the target");
  char **applied;
  lm_mod_command_start(r, L, method);
  int rc = fn(&applied, r->env, target);
  r->busy = NULL;
  if (rc != LM_OK)
    return lm_mod_command_end(L, r, method, rc, lm_mod_push_fail(L, r));
  lm_mod_push_list(L, applied);
  lm_free_list(applied);
  return lm_mod_command_end(L, r, method, rc, 1);
}

int lm_mod_upgrade(lua_State *L) {
  return migrate(L, "upgrade", lm_upgrade);
}

int lm_mod_downgrade(lua_State *L) {
  return migrate(L, "downgrade", lm_downgrade);
}

int lm_mod_sql(lua_State *L) {
  lm_mod_runner *r = lm_mod_check_idle(L, "sql");
  const char *command = lm_mod_check_string(L, 2, "sql", "the command");
  const char *target = lm_mod_check_string(L, 3, "sql", "the target");
  char *sql;
  lm_mod_command_start(r, L, "sql");
  int rc = lm_sql(&sql, r->env, command, target);
  r->busy = NULL;
  if (rc != LM_OK) return lm_mod_command_end(L, r, "sql", rc,
                                        lm_mod_push_fail(L, r));
  lua_pushstring(L, sql);
  free(sql);
  return lm_mod_command_end(L, r, "sql", rc, 1);
}

/* Argument idx as a list of strings: a string, a list of strings, or
 * (optional) nothing.  Raises naming the method and what the strings are
 * (`one` and `many`: "revision", "revisions").  The strings are anchored
 * in a table of the userdata pushed, so the caller's table may change
 * under a callback without freeing them; *n is their number. */
static const char **check_names(lua_State *L, int idx, const char *method,
                                const char *one, const char *many,
                                int optional, size_t *n) {
  *n = 0;
  if (lua_type(L, idx) == LUA_TTABLE) {
    *n = lua_rawlen(L, idx);
    for (size_t i = 1; i <= *n; i++) {
      lua_rawgeti(L, idx, (lua_Integer)i);
      if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "luamig: m:%s(): %s %d must be a string (got %s)",
                   method, one, (int)i, luaL_typename(L, -1));
      lua_pop(L, 1);
    }
  } else if (lua_type(L, idx) == LUA_TSTRING) {
    *n = 1;
  } else if (!optional || !lua_isnoneornil(L, idx)) {
    luaL_error(L, "luamig: m:%s(): the %s must be a string or a list of "
               "strings (got %s)", method, many, luaL_typename(L, idx));
  }
  const char **names =
      lua_newuserdatauv(L, (*n ? *n : 1) * sizeof *names, 1);
  lua_createtable(L, (int)*n, 0);
  for (size_t i = 0; i < *n; i++) {
    if (lua_type(L, idx) == LUA_TSTRING) lua_pushvalue(L, idx);
    else lua_rawgeti(L, idx, (lua_Integer)i + 1);
    names[i] = lua_tostring(L, -1);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setiuservalue(L, -2, 1);
  return names;
}

/* m:stamp(rev or {revs}, {purge = true}).  The arguments live on the Lua
 * stack until the stamp is done, so a raise leaks nothing. */
int lm_mod_stamp(lua_State *L) {
  lm_mod_runner *r = lm_mod_check_idle(L, "stamp");
  lua_settop(L, 3);             /* the names' userdata goes above the options */
  size_t n;
  const char **revs =
      check_names(L, 2, "stamp", "revision", "revisions", 0, &n);
  if (!lua_isnoneornil(L, 3) && !lua_istable(L, 3))
    luaL_error(L, "luamig: m:stamp(): the options must be a table (got %s)",
               luaL_typename(L, 3));
  int purge = 0;
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "purge");
    purge = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
  lm_mod_command_start(r, L, "stamp");
  int rc = lm_stamp(r->env, revs, n, purge);
  r->busy = NULL;
  if (rc != LM_OK)
    return lm_mod_command_end(L, r, "stamp", rc,
                                        lm_mod_push_fail(L, r));
  lua_pushboolean(L, 1);
  return lm_mod_command_end(L, r, "stamp", rc, 1);
}

static int status_read(lm_env *env, void *st) {
  return lm_status_read(env, st);
}

/* m:status(): the fields of `status --json`. */
int lm_mod_status(lua_State *L) {
  lm_mod_runner *r = lm_mod_check_idle(L, "status");
  lm_env *env = r->env;
  lm_mod_command_start(r, L, "status");
  lm_status st;
  int rc = lm_mod_core(env, status_read, &st);
  r->busy = NULL;
  int nres;
  if (rc != LM_OK) {
    nres = lm_mod_push_fail(L, r);
  } else {
    nres = 1;
    lua_createtable(L, 0, 7);
    lm_mod_push_strings(L, (const char *const *)st.heads.items, st.heads.n);
    lua_setfield(L, -2, "current");
    lua_newtable(L);
    for (size_t i = 0, k = 0; i < st.pending.nsteps; i++) {
      if (st.pending.steps[i].rev < 0) continue;
      lua_pushstring(L, lm_graph_rev(env->graph, (size_t)st.pending.steps[i].rev)->id);
      lua_rawseti(L, -2, (lua_Integer)++k);
    }
    lua_setfield(L, -2, "pending");
    if (st.pending_error) {
      lua_pushstring(L, st.pending_error);
      lua_setfield(L, -2, "pending_error");
    }
    lua_createtable(L, (int)st.drift.drifted.n, 0);
    for (size_t i = 0; i < st.drift.drifted.n; i++) {
      /* "rev\tpath\tlogged\tfile" */
      static const char *const keys[] = {"revision", "path",
                                         "logged_checksum", "file_checksum"};
      const char *p = st.drift.drifted.items[i];
      lua_createtable(L, 0, 4);
      for (int f = 0; f < 4; f++) {
        const char *tab = strchr(p, '\t');
        size_t len = tab ? (size_t)(tab - p) : strlen(p);
        lua_pushlstring(L, p, len);
        lua_setfield(L, -2, keys[f]);
        p = tab ? tab + 1 : p + len;
      }
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "drifted");
    lm_mod_push_strings(L, (const char *const *)st.drift.missing.items, st.drift.missing.n);
    lua_setfield(L, -2, "missing");
    if (st.dirty) {
      lua_pushstring(L, lm_buf_str(&st.dirty_mark));
      lua_setfield(L, -2, "dirty");
    }
    if (st.locked) {
      lua_pushstring(L, lm_buf_str(&st.lock_holder));
      lua_setfield(L, -2, "lock");
    }
  }
  if (!lm_oom_spent(env)) lm_status_free(&st);   /* else half-made */
  return lm_mod_command_end(L, r, "status", rc, nres);
}

/* ---- schema and verify: the commands' JSON, as Lua tables ------------- */

/* Load an embedded lua/ file ("luamig.NAME") into L and run it, leaving
 * what it returns. */
static void push_embedded(lua_State *L, const char *module) {
  for (const lm_embedded *e = lm_embedded_files; e->module; e++) {
    if (strcmp(e->module, module) != 0) continue;
    const char *chunk = lua_pushfstring(L, "=%s", module);
    if (luaL_loadbufferx(L, e->source, e->len, chunk, "t") != LUA_OK)
      lua_error(L);
    lua_remove(L, -2);
    lua_pushstring(L, module);
    lua_call(L, 1, 1);
    return;
  }
  luaL_error(L, "%s is not compiled into this luamig", module);
}

/* Stack: 1 the JSON text (light userdata).  Its value decoded by
 * luamig.json. */
static int decode_json(lua_State *L) {
  const char *json = lua_touserdata(L, 1);
  push_embedded(L, "luamig.json");
  lua_getfield(L, -1, "decode");
  lua_pushstring(L, json);
  lua_call(L, 1, 1);
  return 1;
}

/* The JSON text the core wrote (malloc'ed, freed here whatever happens)
 * pushed as a table; raises if it cannot be. */
void lm_mod_push_json(lua_State *L, char *json) {
  lua_pushcfunction(L, decode_json);
  lua_pushlightuserdata(L, json);
  int status = lua_pcall(L, 1, 1, 0);
  free(json);
  if (status != LUA_OK) lua_error(L);
}

/* m:schema([tables]): the fields of `schema --json`; tables is a name or
 * a list of names (all tables when absent). */
int lm_mod_schema(lua_State *L) {
  lm_mod_runner *r = lm_mod_check_idle(L, "schema");
  lua_settop(L, 2);
  size_t n;
  const char **names = check_names(L, 2, "schema", "table", "tables", 1, &n);
  char *json;
  lm_mod_command_start(r, L, "schema");
  int rc = lm_schema_json(&json, r->env, names, n);
  r->busy = NULL;
  if (rc != LM_OK) return lm_mod_command_end(L, r, "schema", rc,
                                        lm_mod_push_fail(L, r));
  lm_mod_push_json(L, json);
  return lm_mod_command_end(L, r, "schema", rc, 1);
}

/* m:verify{scratch_url = URL}: the fields of `verify --json` when every
 * revision verifies; else nil, the problems as `verify` prints them, and
 * that table (ok = false) as a third value. */
int lm_mod_verify(lua_State *L) {
  lm_mod_runner *r = lm_mod_check_idle(L, "verify");
  if (!lua_isnoneornil(L, 2) && !lua_istable(L, 2))
    luaL_error(L, "luamig: m:verify(): the options must be a table (got %s)",
               luaL_typename(L, 2));
  const char *scratch_url = NULL;
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "scratch_url");
    if (!lua_isnil(L, -1))
      scratch_url = lm_mod_check_string(L, -1, "verify", "scratch_url");
    /* stays on the stack, referenced */
  }
  char *json;
  lm_mod_command_start(r, L, "verify");
  int rc = lm_verify(&json, r->env, scratch_url);
  r->busy = NULL;
  if (!json) return lm_mod_command_end(L, r, "verify", rc,
                                        lm_mod_push_fail(L, r));
  if (rc == LM_OK) {
    lm_mod_push_json(L, json);
    return lm_mod_command_end(L, r, "verify", rc, 1);
  }
  luaL_pushfail(L);
  lua_pushstring(L, lm_errmsg(r->env));
  lm_mod_push_json(L, json);
  return lm_mod_command_end(L, r, "verify", rc, 3);
}

/* ---- revision{} -------------------------------------------------------- */

/* An optional string field of the options at idx (borrowed: the table
 * keeps it). */
static const char *rev_string(lua_State *L, int idx, const char *key) {
  lua_getfield(L, idx, key);
  const char *s = NULL;
  if (lua_type(L, -1) == LUA_TSTRING) s = lua_tostring(L, -1);
  else if (!lua_isnil(L, -1))
    luaL_error(L, "luamig: m:revision(): %s must be a string (got %s)", key,
               luaL_typename(L, -1));
  lua_pop(L, 1);
  return s;
}

/* A string or a list of strings (checked by rev_check), appended to out
 * (borrowed). */
static void rev_strings(lua_State *L, int idx, const char *key,
                        lm_strvec *out) {
  lua_getfield(L, idx, key);
  if (lua_type(L, -1) == LUA_TSTRING) {
    lm_strvec_push(out, (char *)lua_tostring(L, -1));
  } else if (lua_istable(L, -1)) {
    for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, -1); i++) {
      lua_rawgeti(L, -1, i);
      lm_strvec_push(out, (char *)lua_tostring(L, -1));
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
}

/* The fields of the revision{} options, checked before anything is
 * allocated so that a raise leaks nothing. */
static void rev_check(lua_State *L) {
  if (!lua_istable(L, 2))
    luaL_error(L, "luamig: m:revision(): the options must be a table (got "
               "%s)", luaL_typename(L, 2));
  static const char *const strings[] = {"message", "head", "rev_id"};
  for (size_t i = 0; i < sizeof strings / sizeof *strings; i++)
    rev_string(L, 2, strings[i]);
  static const char *const lists[] = {"branch_labels", "depends_on"};
  for (size_t i = 0; i < 2; i++) {
    lua_getfield(L, 2, lists[i]);
    int t = lua_type(L, -1);
    if (t == LUA_TTABLE) {
      for (lua_Integer k = 1; k <= (lua_Integer)lua_rawlen(L, -1); k++) {
        if (lua_rawgeti(L, -1, k) != LUA_TSTRING)
          luaL_error(L, "luamig: m:revision(): %s[%d] must be a string "
                     "(got %s)", lists[i], (int)k, luaL_typename(L, -1));
        lua_pop(L, 1);
      }
    } else if (t != LUA_TNIL && t != LUA_TSTRING) {
      luaL_error(L, "luamig: m:revision(): %s must be a string or a list of "
                 "strings (got %s)", lists[i], luaL_typename(L, -1));
    }
    lua_pop(L, 1);
  }
}

/* What m:revision() asks of the core: the new script written, and the
 * ids there were before, to find the new one after. */
typedef struct revision_call {
  lm_args *args;
  lm_strvec before;
  lm_map known;
} revision_call;

static int revision_write(lm_env *env, void *payload) {
  revision_call *c = payload;
  int rc = lm_scripts_load(env);
  for (size_t i = 0; rc == LM_OK && i < lm_graph_size(env->graph); i++)
    lm_strvec_push(&c->before, lm_xstrdup(lm_graph_rev(env->graph, i)->id));
  for (size_t i = 0; i < c->before.n; i++)
    lm_map_put(&c->known, c->before.items[i], c->before.items[i]);
  if (rc == LM_OK) rc = lm_cmd_revision(env, c->args);
  /* The graph is read again, new script included. */
  if (rc == LM_OK) {
    lm_scripts_free(env);
    rc = lm_scripts_load(env);
  }
  return rc;
}

/* m:revision{message =, head =, splice =, branch_labels =, depends_on =,
 * rev_id =, autogenerate =}: writes a new script as `luamig revision`
 * does and returns it as history() lists it. */
int lm_mod_revision(lua_State *L) {
  lm_mod_runner *r = lm_mod_check_idle(L, "revision");
  rev_check(L);
  lm_env *env = r->env;
  lm_args a;
  memset(&a, 0, sizeof a);
  a.silent = 1;
  a.message = rev_string(L, 2, "message");
  a.head = rev_string(L, 2, "head");
  a.rev_id = rev_string(L, 2, "rev_id");
  lua_getfield(L, 2, "splice");
  a.splice = lua_toboolean(L, -1);
  lua_getfield(L, 2, "autogenerate");
  a.autogenerate = lua_toboolean(L, -1);
  lua_pop(L, 2);
  rev_strings(L, 2, "branch_labels", &a.branch_labels);
  rev_strings(L, 2, "depends_on", &a.depends_on);

  lm_mod_command_start(r, L, "revision");
  revision_call c = {.args = &a, .before = LM_STRVEC_INIT};
  lm_map_init(&c.known);
  int rc = lm_mod_core(env, revision_write, &c);
  r->busy = NULL;
  free(a.branch_labels.items);
  free(a.depends_on.items);
  int nres;
  if (rc != LM_OK) {
    nres = lm_mod_push_fail(L, r);
  } else {
    size_t n = lm_graph_size(env->graph), idx = n;
    for (size_t i = 0; i < n && idx == n; i++)
      if (!lm_map_get(&c.known, lm_graph_rev(env->graph, i)->id)) idx = i;
    if (idx < n) {
      lm_mod_push_revision(L, env, idx);
      nres = 1;
    } else {
      nres = lm_mod_push_fail_err(L, "the new revision script was written "
                                  "but does not load as a revision", NULL);
    }
  }
  if (!lm_oom_spent(env)) {
    lm_map_free(&c.known);
    lm_strvec_free(&c.before);
  }
  return lm_mod_command_end(L, r, "revision", rc, nres);
}
