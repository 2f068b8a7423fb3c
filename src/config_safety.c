/*
 * config_safety.c - the configuration keys of lint and of lock-safe runs
 * (DESIGN 10): protected_tables, large_table_rows, lint = {disable,
 * severity}, statement_lock_timeout, lock_retries.  Checked when the
 * configuration loads, kept in a userdata in the Lua registry (it goes
 * away with the environment).
 */
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "lint.h"
#include "lua_registry.h"

#define SAFETY_KEY "luamig.safety"

static int safety_gc(lua_State *L) {
  lm_safety_config *c = lua_touserdata(L, 1);
  lm_strvec_free(&c->protected_tables);
  free(c->disabled);
  free(c->severity);
  c->disabled = NULL;
  c->severity = NULL;
  return 0;
}

static lm_safety_config *settings(lua_State *L) {
  int created;
  lm_safety_config *c = lm_registry_userdata(L, SAFETY_KEY, sizeof *c,
                                             safety_gc, &created);
  if (created) {
    c->large_table_rows = 100000;
    c->disabled = lm_xcalloc(lm_lint_nrules, 1);
    c->severity = lm_xmalloc(lm_lint_nrules);
    memset(c->severity, -1, lm_lint_nrules);
  }
  return c;
}

const lm_safety_config *lm_safety_config_of(lm_env *env) {
  return settings(env->L);
}

/* A rule code at the top of the stack, for `what` in the message. */
static int rule_at_top(lua_State *L, lm_env *env, const char *what) {
  int rule = lua_type(L, -1) == LUA_TSTRING
                 ? lm_lint_rule_index(lua_tostring(L, -1)) : -1;
  if (rule < 0)
    lm_err_set(&env->err, "%s: %s: '%s' is not a lint rule code (see "
               "README, \"luamig lint\")", env->config_path, what,
               lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                              : luaL_typename(L, -1));
  return rule;
}

static int read_lint(lua_State *L, lm_env *env, lm_safety_config *c) {
  static const char *const keys[] = {"disable", "severity", NULL};
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pop(L, 1);
    int ok = 0;
    for (size_t i = 0; keys[i]; i++)
      ok |= lua_type(L, -1) == LUA_TSTRING &&
            strcmp(lua_tostring(L, -1), keys[i]) == 0;
    if (!ok) {
      lm_err_set(&env->err, "%s: lint: unknown key '%s' (known: disable, "
                 "severity)", env->config_path, luaL_tolstring(L, -1, NULL));
      lua_pop(L, 2);
      return LM_ERROR;
    }
  }
  lua_getfield(L, -1, "disable");
  if (lua_istable(L, -1)) {
    lua_Integer n = luaL_len(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_geti(L, -1, i);
      int rule = rule_at_top(L, env, "lint.disable");
      lua_pop(L, 1);
      if (rule < 0) {
        lua_pop(L, 1);
        return LM_ERROR;
      }
      c->disabled[rule] = 1;
    }
  } else if (!lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return lm_err_set(&env->err, "%s: lint.disable must be a list of rule "
                      "codes", env->config_path);
  }
  lua_pop(L, 1);
  lua_getfield(L, -1, "severity");
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {          /* stack: severity key value */
      lua_pushvalue(L, -2);
      int rule = rule_at_top(L, env, "lint.severity");
      lua_pop(L, 1);
      int sev = lua_type(L, -1) == LUA_TSTRING
                    ? lm_severity_parse(lua_tostring(L, -1)) : -1;
      if (rule >= 0 && sev < 0)
        lm_err_set(&env->err, "%s: lint.severity.%s must be \"error\", "
                   "\"warning\" or \"info\"", env->config_path,
                   lm_lint_rules[rule].code);
      if (rule < 0 || sev < 0) {
        lua_pop(L, 3);
        return LM_ERROR;
      }
      c->severity[rule] = (signed char)sev;
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return lm_err_set(&env->err, "%s: lint.severity must be a table of rule "
                      "code = \"error\"|\"warning\"|\"info\"",
                      env->config_path);
  }
  lua_pop(L, 1);
  return LM_OK;
}

/* "5s", "500ms", "2min" or a number of seconds. */
static int parse_duration(lua_State *L, double *out) {
  if (lua_type(L, -1) == LUA_TNUMBER) {
    *out = lua_tonumber(L, -1);
    return *out >= 0;
  }
  if (lua_type(L, -1) != LUA_TSTRING) return 0;
  const char *s = lua_tostring(L, -1);
  char *end;
  double v = strtod(s, &end);
  if (end == s || v < 0) return 0;
  if (strcmp(end, "ms") == 0) v /= 1000;
  else if (strcmp(end, "min") == 0) v *= 60;
  else if (strcmp(end, "s") != 0 && *end) return 0;
  *out = v;
  return 1;
}

int lm_safety_config_read(lua_State *L, lm_env *env) {
  lm_safety_config *c = settings(L);
  int rc = LM_OK;
  lua_getfield(L, -1, "protected_tables");
  if (lua_istable(L, -1)) {
    lua_Integer n = luaL_len(L, -1);
    for (lua_Integer i = 1; rc == LM_OK && i <= n; i++) {
      lua_geti(L, -1, i);
      if (lua_type(L, -1) == LUA_TSTRING && *lua_tostring(L, -1))
        lm_strvec_push(&c->protected_tables, lm_xstrdup(lua_tostring(L, -1)));
      else
        rc = lm_err_set(&env->err, "%s: protected_tables[%lld] must be a "
                        "table name or pattern, not a %s", env->config_path,
                        (long long)i, luaL_typename(L, -1));
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    rc = lm_err_set(&env->err, "%s: protected_tables must be a list of "
                    "table names or patterns (\"audit_*\")", env->config_path);
  }
  lua_pop(L, 1);
  if (rc != LM_OK) return rc;
  lua_getfield(L, -1, "large_table_rows");
  if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0)
    c->large_table_rows = lua_tointeger(L, -1);
  else if (!lua_isnil(L, -1))
    rc = lm_err_set(&env->err, "%s: large_table_rows must be a number of "
                    "rows", env->config_path);
  lua_pop(L, 1);
  if (rc != LM_OK) return rc;
  lua_getfield(L, -1, "lint");
  if (lua_istable(L, -1)) rc = read_lint(L, env, c);
  else if (!lua_isnil(L, -1))
    rc = lm_err_set(&env->err, "%s: lint must be a table {disable = {...}, "
                    "severity = {...}}", env->config_path);
  lua_pop(L, 1);
  if (rc != LM_OK) return rc;
  lua_getfield(L, -1, "statement_lock_timeout");
  if (!lua_isnil(L, -1) && !parse_duration(L, &c->statement_lock_timeout))
    rc = lm_err_set(&env->err, "%s: statement_lock_timeout must be a "
                    "duration such as \"5s\" or \"500ms\"", env->config_path);
  lua_pop(L, 1);
  if (rc != LM_OK) return rc;
  lua_getfield(L, -1, "lock_retries");
  if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0 &&
      lua_tointeger(L, -1) <= 1000)
    c->lock_retries = (int)lua_tointeger(L, -1);
  else if (!lua_isnil(L, -1))
    rc = lm_err_set(&env->err, "%s: lock_retries must be a whole number "
                    "from 0 to 1000", env->config_path);
  lua_pop(L, 1);
  return rc;
}
