/*
 * config.c - luamig.lua, the environment's configuration: a Lua chunk
 * returning a table.  Lookup: -c FILE, else $LUAMIG_CONFIG, else
 * ./luamig.lua.  The URL comes from --url, else $LUAMIG_URL, else the file.
 */
#define _POSIX_C_SOURCE 200809L
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "lint.h"
#include "op_internal.h"

static const char *const known_keys[] = {
  "url", "script_location", "version_table", "version_table_schema",
  "log_table", "transaction_per_migration", "lock_timeout", "models",
  "strict_checksums", "naming_convention", "ops", "include_schemas",
  "protected_tables", "large_table_rows", "lint", "statement_lock_timeout",
  "lock_retries", "include_tables", "exclude_tables",
  "keep_dropped", "backup", NULL};

/* Directory part of a path ("." when there is none). */
static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return lm_xstrdup(".");
  if (slash == path) return lm_xstrdup("/");
  return lm_xstrndup(path, (size_t)(slash - path));
}

/* Read a string field of the config table at the top of the stack. */
static int string_field(lua_State *L, lm_env *env, const char *key,
                        char **out) {
  lua_getfield(L, -1, key);
  int t = lua_type(L, -1);
  if (t == LUA_TSTRING) {
    free(*out);
    *out = lm_xstrdup(lua_tostring(L, -1));
  } else if (t != LUA_TNIL) {
    lua_pop(L, 1);
    return lm_err_set(&env->err, "%s: %s must be a string, not a %s",
                      env->config_path, key, lua_typename(L, t));
  }
  lua_pop(L, 1);
  return LM_OK;
}

/* Read a boolean field of the config table at the top of the stack. */
static int bool_field(lua_State *L, lm_env *env, const char *key, int *out) {
  lua_getfield(L, -1, key);
  int rc = LM_OK;
  if (lua_isboolean(L, -1)) *out = lua_toboolean(L, -1);
  else if (!lua_isnil(L, -1))
    rc = lm_err_set(&env->err, "%s: %s must be a boolean, not a %s",
                    env->config_path, key, luaL_typename(L, -1));
  lua_pop(L, 1);
  return rc;
}

static int check_keys(lua_State *L, lm_env *env) {
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pop(L, 1);   /* stack: cfg key */
    if (lua_type(L, -1) != LUA_TSTRING) {
      lua_pop(L, 1);
      return lm_err_set(&env->err, "%s: the returned table must have string "
                        "keys", env->config_path);
    }
    const char *key = lua_tostring(L, -1);
    int known = 0;
    for (size_t i = 0; known_keys[i]; i++)
      if (strcmp(key, known_keys[i]) == 0) known = 1;
    if (!known) {
      lm_err_set(&env->err, "%s: unknown setting '%s' (known: url, "
                 "script_location, version_table, version_table_schema, "
                 "log_table, transaction_per_migration, lock_timeout, models, "
                 "strict_checksums, naming_convention, ops, include_schemas, "
                 "protected_tables, large_table_rows, lint, "
                 "statement_lock_timeout, lock_retries, include_tables, exclude_tables, "
                 "keep_dropped, backup)",
                 env->config_path, key);
      lua_pop(L, 1);
      return LM_ERROR;
    }
  }
  return LM_OK;
}

/* include_schemas, include_tables, exclude_tables: lists of names. */
static int names_field(lua_State *L, lm_env *env, const char *key,
                       lm_strvec *out) {
  lua_getfield(L, -1, key);
  int rc = LM_OK;
  if (lua_istable(L, -1)) {
    lua_Integer n = luaL_len(L, -1);
    for (lua_Integer i = 1; rc == LM_OK && i <= n; i++) {
      lua_geti(L, -1, i);
      if (lua_type(L, -1) == LUA_TSTRING && *lua_tostring(L, -1))
        lm_strvec_push(out, lm_xstrdup(lua_tostring(L, -1)));
      else
        rc = lm_err_set(&env->err, "%s: %s[%lld] must be a name, not a %s",
                        env->config_path, key, (long long)i,
                        luaL_typename(L, -1));
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    rc = lm_err_set(&env->err, "%s: %s must be a list of names",
                    env->config_path, key);
  }
  lua_pop(L, 1);
  return rc;
}

/* include_schemas: a list of schema names. */
static int include_schemas_field(lua_State *L, lm_env *env) {
  lua_getfield(L, -1, "include_schemas");
  int rc = LM_OK;
  if (lua_istable(L, -1)) {
    lua_Integer n = luaL_len(L, -1);
    for (lua_Integer i = 1; rc == LM_OK && i <= n; i++) {
      lua_geti(L, -1, i);
      if (lua_type(L, -1) == LUA_TSTRING && *lua_tostring(L, -1))
        lm_strvec_push(&env->include_schemas,
                       lm_xstrdup(lua_tostring(L, -1)));
      else
        rc = lm_err_set(&env->err, "%s: include_schemas[%lld] must be a "
                        "schema name, not a %s", env->config_path,
                        (long long)i, luaL_typename(L, -1));
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    rc = lm_err_set(&env->err, "%s: include_schemas must be a list of "
                    "schema names", env->config_path);
  }
  lua_pop(L, 1);
  return rc;
}

/* The settings of the config table at index 2; env at index 1.  Run
 * protected: reading a field may call the table's __index, which may
 * raise or loop.  Returns the status as an integer. */
static int read_settings(lua_State *L) {
  lm_env *env = lua_touserdata(L, 1);
  lua_settop(L, 2);                      /* stack: env cfg */
  int rc = check_keys(L, env);
  if (rc == LM_OK) rc = string_field(L, env, "url", &env->url);
  if (rc == LM_OK)
    rc = string_field(L, env, "script_location", &env->script_location);
  if (rc == LM_OK)
    rc = string_field(L, env, "version_table", &env->version_table);
  if (rc == LM_OK)
    rc = string_field(L, env, "version_table_schema",
                      &env->version_table_schema);
  if (rc == LM_OK) rc = string_field(L, env, "log_table", &env->log_table);
  if (rc == LM_OK) {
    lua_getfield(L, -1, "transaction_per_migration");
    if (lua_isboolean(L, -1))
      env->transaction_per_migration = lua_toboolean(L, -1);
    else if (!lua_isnil(L, -1))
      rc = lm_err_set(&env->err, "%s: transaction_per_migration must be a "
                      "boolean", env->config_path);
    lua_pop(L, 1);
  }
  if (rc == LM_OK) rc = include_schemas_field(L, env);
  if (rc == LM_OK) rc = lm_safety_config_read(L, env);   /* lint, locks */
  if (rc == LM_OK)
    rc = names_field(L, env, "include_tables", &env->include_tables);
  if (rc == LM_OK)
    rc = names_field(L, env, "exclude_tables", &env->exclude_tables);
  if (rc == LM_OK) {
    /* models = "models.lua": relative to the config file. */
    char *models = NULL;
    rc = string_field(L, env, "models", &models);
    if (rc == LM_OK && models) {
      char *dir = dir_of(env->config_path);
      env->models = models[0] == '/' || strcmp(dir, ".") == 0
                        ? lm_xstrdup(models)
                        : lm_xasprintf("%s/%s", dir, models);
      free(dir);
    }
    free(models);
  }
  if (rc == LM_OK) {
    lua_getfield(L, -1, "strict_checksums");
    if (lua_isboolean(L, -1)) env->strict_checksums = lua_toboolean(L, -1);
    else if (!lua_isnil(L, -1))
      rc = lm_err_set(&env->err, "%s: strict_checksums must be a boolean",
                      env->config_path);
    lua_pop(L, 1);
  }
  if (rc == LM_OK) rc = bool_field(L, env, "keep_dropped", &env->keep_dropped);
  if (rc == LM_OK) rc = bool_field(L, env, "backup", &env->backup);
  if (rc == LM_OK) {
    lua_getfield(L, -1, "naming_convention");
    rc = lm_naming_check(L, -1, env->config_path, &env->err);
    lua_pop(L, 1);
  }
  if (rc == LM_OK) {
    /* ops = "ops.lua": user-defined ops, relative to the config file. */
    char *ops = NULL;
    rc = string_field(L, env, "ops", &ops);
    if (rc == LM_OK && ops) {
      char *dir = dir_of(env->config_path);
      char *path = ops[0] == '/' ? lm_xstrdup(ops)
                                 : lm_xasprintf("%s/%s", dir, ops);
      rc = lm_op_user_load(L, path, &env->err);
      free(path);
      free(dir);
    }
    free(ops);
  }
  if (rc == LM_OK) {
    lua_getfield(L, -1, "lock_timeout");
    if (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) >= 0)
      env->lock_timeout = lua_tonumber(L, -1);
    else if (!lua_isnil(L, -1))
      rc = lm_err_set(&env->err, "%s: lock_timeout must be a number of "
                      "seconds", env->config_path);
    lua_pop(L, 1);
  }
  lua_pushinteger(L, rc);
  return 1;
}

/* Run the config chunk and read its table, both protected. */
static int read_file_config(lm_env *env) {
  lua_State *L = env->L;
  lua_pushcfunction(L, lm_lua_message_handler);
  int handler = lua_gettop(L);
  if (luaL_loadfile(L, env->config_path) != LUA_OK ||
      lua_pcall(L, 0, 1, handler) != LUA_OK) {
    lm_err_set(&env->err, "cannot load configuration: %s",
               lua_tostring(L, -1));
    lua_settop(L, handler - 1);
    return LM_ERROR;
  }
  if (!lua_istable(L, -1)) {
    lm_err_set(&env->err, "%s must return a table, not a %s",
               env->config_path, luaL_typename(L, -1));
    lua_settop(L, handler - 1);
    return LM_ERROR;
  }
  lua_pushcfunction(L, read_settings);
  lua_pushlightuserdata(L, env);
  lua_pushvalue(L, -3);                  /* stack: handler cfg fn env cfg */
  int rc;
  if (lua_pcall(L, 2, 1, handler) != LUA_OK)
    rc = lm_err_set(&env->err, "cannot read configuration %s: %s",
                    env->config_path, lua_tostring(L, -1));
  else
    rc = (int)lua_tointeger(L, -1);
  lua_settop(L, handler - 1);
  return rc;
}

int lm_config_load(lm_env *env, const lm_options *opts) {
  env->transaction_per_migration = 1;
  env->lock_timeout = 60;
  env->quiet = opts->quiet;
  lm_sandbox_install(env->L);

  const char *path = opts->config_path;
  int explicit_path = path != NULL;
  if (!path && getenv("LUAMIG_CONFIG") && *getenv("LUAMIG_CONFIG")) {
    path = getenv("LUAMIG_CONFIG");
    explicit_path = 1;
  }
  if (!path) path = "luamig.lua";
  if (access(path, F_OK) == 0) {
    env->config_path = lm_xstrdup(path);
    if (read_file_config(env) != LM_OK) return LM_ERROR;
  } else if (explicit_path) {
    return lm_err_set(&env->err, "configuration file %s not found", path);
  }

  /* Script locations are relative to the config file, so `-c` works from
   * any directory. */
  if (opts->script_location) {
    free(env->script_location);
    env->script_location = lm_xstrdup(opts->script_location);
  } else {
    const char *loc = env->script_location ? env->script_location
                                           : "migrations";
    char *resolved;
    if (loc[0] != '/' && env->config_path) {
      char *dir = dir_of(env->config_path);
      resolved = strcmp(dir, ".") == 0 ? lm_xstrdup(loc)
                                       : lm_xasprintf("%s/%s", dir, loc);
      free(dir);
    } else {
      resolved = lm_xstrdup(loc);
    }
    free(env->script_location);
    env->script_location = resolved;
  }
  if (opts->url) {
    free(env->url);
    env->url = lm_xstrdup(opts->url);
  } else if (getenv("LUAMIG_URL") && *getenv("LUAMIG_URL")) {
    free(env->url);
    env->url = lm_xstrdup(getenv("LUAMIG_URL"));
  }
  if (opts->version_table) {
    free(env->version_table);
    env->version_table = lm_xstrdup(opts->version_table);
  }
  if (!env->version_table) env->version_table = lm_xstrdup("luamig_version");
  if (!env->log_table) env->log_table = lm_xstrdup("luamig_log");
  for (size_t i = 0; i < opts->nx; i++) {
    const char *kv = opts->x[i];
    const char *eq = strchr(kv, '=');
    if (!eq || eq == kv)
      return lm_err_usage(&env->err, "bad -x argument '%s': expected "
                          "key=value", kv);
    lm_strvec_push(&env->x, lm_xstrdup(kv));
  }
  return LM_OK;
}
