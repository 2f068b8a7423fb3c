/*
 * op.c - the op table a migration receives: each op.* call checks its Lua
 * arguments, builds an operation value (operation.h) and hands it to the
 * environment's executor (lm_op_apply).  Misuse raises a Lua error that
 * names the operation, the argument and, through luaL_error, the script
 * line; nothing reaches the database before the arguments are checked.
 *
 * Operation values live in an arena held by a userdata, so an error raised
 * half-way through parsing frees everything when the userdata is collected.
 */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "executor.h"
#include "op_internal.h"
#include "keep.h"

#define ENV_KEY "luamig.env"
#define ARENA_META "luamig.arena"
#define NULL_KEY "luamig.null"

lm_env *lm_op_get_env(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, ENV_KEY);
  lm_env *env = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (!env) luaL_error(L, "luamig: op used outside a migration");
  /* Called from a bulk insert's generator or a backfill's function: the
   * connection is freed (rows sent, writes finished) first. */
  if (env->hold) env->hold->release(L, env->hold);
  return env;
}

lm_env *lm_op_env(lua_State *L) {
  return lm_op_get_env(L);
}

/* ---- argument checks -------------------------------------------------- */

/* The string at idx, which must be one.  C strings end at a NUL, so a
 * string holding one would silently lose its tail: refuse it. */
const char *lm_op_tostring(lua_State *L, int idx, const char *op,
                           const char *what) {
  size_t len;
  const char *s = lua_tolstring(L, idx, &len);
  if (s && strlen(s) != len)
    luaL_error(L, "%s: %s must not contain a NUL byte (\\0)", op, what);
  return s;
}

/* A string argument, strictly (Lua would turn a number into a string). */
const char *lm_op_check_name(lua_State *L, int arg, const char *op,
                              const char *what) {
  if (lua_type(L, arg) != LUA_TSTRING)
    luaL_error(L, "%s: %s must be a string, not a %s", op, what,
               luaL_typename(L, arg));
  const char *s = lm_op_tostring(L, arg, op, what);
  if (!*s) luaL_error(L, "%s: %s must not be empty", op, what);
  return s;
}

/* The registered dialect whose name prefixes key ("postgresql_where"),
 * with *option the rest ("where"); NULL when none does. */
static const lm_dialect *key_dialect(const char *key, const char **option) {
  for (size_t i = 0; lm_dialects[i]; i++) {
    size_t n = strlen(lm_dialects[i]->name);
    if (strncmp(key, lm_dialects[i]->name, n) == 0 && key[n] == '_') {
      *option = key + n + 1;
      return lm_dialects[i];
    }
  }
  return NULL;
}

/* Does dialect d declare `option` of operation `op` as its own? */
static int dialect_declares(const lm_dialect *d, const char *op,
                            const char *option) {
  if (d->version < 7 || !d->options) return 0;
  for (const lm_dialect_option *o = d->options; o->op; o++)
    if (strcmp(o->op, op) == 0 && strcmp(o->option, option) == 0) return 1;
  return 0;
}

/* Options table: check that every key is one the operation knows, or a
 * dialect-named option a registered dialect declares for it. */
void lm_op_check_opts(lua_State *L, int idx, const char *op,
                       const char *const *allowed) {
  if (lua_isnoneornil(L, idx)) return;
  if (!lua_istable(L, idx))
    luaL_error(L, "%s: options must be a table, not a %s", op,
               luaL_typename(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "%s: unexpected positional value in options", op);
    const char *key = lua_tostring(L, -1);
    int ok = 0;
    for (size_t i = 0; allowed[i]; i++)
      if (strcmp(allowed[i], key) == 0) ok = 1;
    const char *option;
    const lm_dialect *d = ok ? NULL : key_dialect(key, &option);
    if (d && dialect_declares(d, op, option)) ok = 1;
    if (!ok) luaL_error(L, "%s: unknown option '%s'", op, key);
  }
}

const char *const *lm_op_dialect_forms(lua_State *L, lm_arena *a,
                                       const char *op, const char *option,
                                       const char **own) {
  const lm_dialect *running = lm_op_get_env(L)->dialect;
  size_t n = 0;
  while (lm_dialects[n]) n++;
  const char **forms = lm_arena_alloc(a, (n + 1) * sizeof *forms);
  size_t k = 0;
  *own = NULL;
  for (size_t i = 0; i < n; i++) {
    const lm_dialect *d = lm_dialects[i];
    if (!dialect_declares(d, op, option)) continue;
    lm_buf b = LM_BUF_INIT;
    lm_buf_printf(&b, "%s_%s", d->name, option);
    forms[k] = lm_arena_strdup(a, lm_buf_str(&b));
    lm_buf_free(&b);
    if (d == running) *own = forms[k];
    k++;
  }
  return forms;
}

/* Optional string field of the table at idx; NULL when absent. */
const char *lm_op_opt_string(lua_State *L, lm_arena *a, int idx,
                              const char *key, const char *op) {
  if (lua_isnoneornil(L, idx)) return NULL;
  lua_getfield(L, idx, key);
  const char *s = NULL;
  if (lua_type(L, -1) == LUA_TSTRING)
    s = lm_arena_strdup(a, lm_op_tostring(L, -1, op, key));
  else if (!lua_isnil(L, -1))
    luaL_error(L, "%s: %s must be a string, not a %s", op, key,
               luaL_typename(L, -1));
  lua_pop(L, 1);
  return s;
}

int lm_op_opt_bool(lua_State *L, int idx, const char *key, const char *op,
                    int dflt) {
  if (lua_isnoneornil(L, idx)) return dflt;
  lua_getfield(L, idx, key);
  int v = dflt;
  if (lua_isboolean(L, -1)) v = lua_toboolean(L, -1);
  else if (!lua_isnil(L, -1))
    luaL_error(L, "%s: %s must be a boolean, not a %s", op, key,
               luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

/* An arena owned by a userdata left on the stack. */
static int arena_gc(lua_State *L) {
  lm_arena_free(luaL_checkudata(L, 1, ARENA_META));
  return 0;
}

lm_arena *lm_op_push_arena(lua_State *L) {
  lm_arena *a = lua_newuserdatauv(L, sizeof *a, 0);
  lm_arena_init(a);
  luaL_setmetatable(L, ARENA_META);
  return a;
}

/* A list of strings (column names) at idx. */
const char *const *lm_op_string_array(lua_State *L, lm_arena *a, int idx,
                                       const char *op, const char *what,
                                       size_t *n) {
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TSTRING) {
    const char **out = lm_arena_alloc(a, sizeof *out);
    out[0] = lm_arena_strdup(a, lm_op_tostring(L, idx, op, what));
    *n = 1;
    return out;
  }
  if (!lua_istable(L, idx))
    luaL_error(L, "%s: %s must be a list of names, not a %s", op, what,
               luaL_typename(L, idx));
  size_t len = (size_t)luaL_len(L, idx);
  if (!len) luaL_error(L, "%s: %s must not be empty", op, what);
  const char **out = lm_arena_alloc(a, len * sizeof *out);
  for (size_t i = 0; i < len; i++) {
    lua_geti(L, idx, (lua_Integer)i + 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "%s: %s[%d] must be a string", op, what, (int)i + 1);
    out[i] = lm_arena_strdup(a, lm_op_tostring(L, -1, op, what));
    lua_pop(L, 1);
  }
  *n = len;
  return out;
}

/* ---- applying ----------------------------------------------------------- */

/* Raise a failure as a Lua error that starts with the script line. */
void lm_op_note_raised(lua_State *L, const lm_err *code) {
  /* The script may let this error through as it is: remember its text
   * and code (lm_script_call gives the code back when the text matches). */
  lua_getfield(L, LUA_REGISTRYINDEX, ENV_KEY);
  lm_env *env = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (env) {
    lm_err_set(&env->raised, "%s", lua_tostring(L, -1));
    lm_err_copy_code(&env->raised, code);
  }
}

int lm_op_raise(lua_State *L, lm_err *err) {
  luaL_where(L, 1);
  lua_pushstring(L, lm_err_msg(err));
  lua_concat(L, 2);
  lm_op_note_raised(L, err);
  lm_err_free(err);
  return lua_error(L);
}

/* Run the op through the executor; a failure becomes a Lua error carrying
 * the database's message and the SQL. */
void lm_op_apply_or_raise(lua_State *L, lm_env *env, const lm_op *op,
                           lm_arena *a) {
  lm_err err;
  lm_err_init(&err);
  int rc = lm_op_apply(env, op, &err);
  lm_arena_free(a);
  if (rc != LM_OK) lm_op_raise(L, &err);
}

static int op_create_table(lua_State *L) {
  lua_settop(L, 3);   /* the arena goes above the arguments */
  static const char *const keys[] = {"constraints", "schema",
                                     "if_not_exists", "comment", NULL};
  const char *name = "create_table";
  lm_env *env = lm_op_get_env(L);
  lm_arena *a = lm_op_push_arena(L);
  lm_op op = {.kind = LM_OP_CREATE_TABLE};
  op.table = lm_arena_strdup(a, lm_op_check_name(L, 1, name, "the table name"));
  luaL_checktype(L, 2, LUA_TTABLE);
  lm_op_check_opts(L, 3, name, keys);
  size_t n = (size_t)luaL_len(L, 2);
  if (!n) luaL_error(L, "create_table: table %s has no columns", op.table);
  op.columns = lm_arena_alloc(a, n * sizeof *op.columns);
  op.ncolumns = n;
  for (size_t i = 0; i < n; i++) {
    lua_geti(L, 2, (lua_Integer)i + 1);
    lm_op_parse_column(L, a, -1, name, &op.columns[i]);
    lua_pop(L, 1);
  }
  if (!lua_isnoneornil(L, 3)) {
    lua_getfield(L, 3, "constraints");
    if (lua_istable(L, -1)) {
      size_t nc = (size_t)luaL_len(L, -1);
      op.constraints = lm_arena_alloc(a, (nc ? nc : 1) *
                                              sizeof *op.constraints);
      op.nconstraints = nc;
      for (size_t i = 0; i < nc; i++) {
        lua_geti(L, -1, (lua_Integer)i + 1);
        lm_op_parse_constraint(L, a, -1, name, &op.constraints[i]);
        lua_pop(L, 1);
      }
    } else if (!lua_isnil(L, -1)) {
      luaL_error(L, "create_table: constraints must be a list");
    }
    lua_pop(L, 1);
  }
  op.schema = lm_op_opt_string(L, a, 3, "schema", name);
  op.comment = lm_op_opt_string(L, a, 3, "comment", name);
  op.if_not_exists = lm_op_opt_bool(L, 3, "if_not_exists", name, 0);
  lm_naming_columns(L, a, name, &op);
  lm_op_apply_or_raise(L, env, &op, a);
  return 0;
}

static int op_drop_table(lua_State *L) {
  lua_settop(L, 2);   /* the arena goes above the arguments */
  static const char *const keys[] = {"schema", "if_exists", "keep", NULL};
  lm_env *env = lm_op_get_env(L);
  lm_arena *a = lm_op_push_arena(L);
  lm_op op = {.kind = LM_OP_DROP_TABLE};
  op.table = lm_arena_strdup(a, lm_op_check_name(L, 1, "drop_table",
                                           "the table name"));
  lm_op_check_opts(L, 2, "drop_table", keys);
  op.schema = lm_op_opt_string(L, a, 2, "schema", "drop_table");
  op.if_exists = lm_op_opt_bool(L, 2, "if_exists", "drop_table", 0);
  op.keep = lm_keep_option(L, 2, "drop_table");
  lm_op_apply_or_raise(L, env, &op, a);
  return 0;
}

static int op_rename_table(lua_State *L) {
  lua_settop(L, 3);   /* the arena goes above the arguments */
  static const char *const keys[] = {"schema", NULL};
  lm_env *env = lm_op_get_env(L);
  lm_arena *a = lm_op_push_arena(L);
  lm_op op = {.kind = LM_OP_RENAME_TABLE};
  op.table = lm_arena_strdup(a, lm_op_check_name(L, 1, "rename_table",
                                           "the old table name"));
  op.name = lm_arena_strdup(a, lm_op_check_name(L, 2, "rename_table",
                                          "the new table name"));
  lm_op_check_opts(L, 3, "rename_table", keys);
  op.schema = lm_op_opt_string(L, a, 3, "schema", "rename_table");
  lm_op_apply_or_raise(L, env, &op, a);
  return 0;
}

static int op_add_column(lua_State *L) {
  lua_settop(L, 3);   /* the arena goes above the arguments */
  static const char *const keys[] = {"schema", NULL};
  lm_env *env = lm_op_get_env(L);
  lm_arena *a = lm_op_push_arena(L);
  lm_op op = {.kind = LM_OP_ADD_COLUMN};
  op.table = lm_arena_strdup(a, lm_op_check_name(L, 1, "add_column",
                                           "the table name"));
  op.columns = lm_arena_alloc(a, sizeof *op.columns);
  op.ncolumns = 1;
  lm_op_parse_column(L, a, 2, "add_column", &op.columns[0]);
  lm_op_check_opts(L, 3, "add_column", keys);
  op.schema = lm_op_opt_string(L, a, 3, "schema", "add_column");
  lm_naming_columns(L, a, "add_column", &op);
  lm_op_apply_or_raise(L, env, &op, a);
  return 0;
}

static int op_drop_column(lua_State *L) {
  lua_settop(L, 3);   /* the arena goes above the arguments */
  static const char *const keys[] = {"schema", "keep", NULL};
  lm_env *env = lm_op_get_env(L);
  lm_arena *a = lm_op_push_arena(L);
  lm_op op = {.kind = LM_OP_DROP_COLUMN};
  op.table = lm_arena_strdup(a, lm_op_check_name(L, 1, "drop_column",
                                           "the table name"));
  op.name = lm_arena_strdup(a, lm_op_check_name(L, 2, "drop_column",
                                          "the column name"));
  lm_op_check_opts(L, 3, "drop_column", keys);
  op.schema = lm_op_opt_string(L, a, 3, "schema", "drop_column");
  op.keep = lm_keep_option(L, 3, "drop_column");
  lm_op_apply_or_raise(L, env, &op, a);
  return 0;
}

/* A Lua value as an lm_value, strings not copied (they stay valid while
 * the value is on the stack).  0 when the value has no SQL counterpart. */
int lm_op_value(lua_State *L, int idx, lm_value *v) {
  idx = lua_absindex(L, idx);
  memset(v, 0, sizeof *v);
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
    v->type = LM_V_NULL;
    return 1;
  case LUA_TBOOLEAN:
    v->type = LM_V_BOOL;
    v->i = lua_toboolean(L, idx);
    return 1;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) {
      v->type = LM_V_INT;
      v->i = lua_tointeger(L, idx);
    } else {
      v->type = LM_V_FLOAT;
      v->f = lua_tonumber(L, idx);
    }
    return 1;
  case LUA_TSTRING:
    v->s = lua_tolstring(L, idx, &v->len);
    /* Bytes that are not UTF-8 text (binary data) bind as a blob. */
    v->type = lm_data_is_text(v->s, v->len) ? LM_V_TEXT : LM_V_BLOB;
    return 1;
  case LUA_TTABLE: {
    lua_getfield(L, LUA_REGISTRYINDEX, NULL_KEY);
    int is_null = lua_rawequal(L, -1, idx);
    lua_pop(L, 1);
    v->type = LM_V_NULL;
    return is_null;
  }
  default:
    return 0;
  }
}

/* A Lua value as a bound parameter, strings copied into the arena. */
void lm_op_to_value(lua_State *L, lm_arena *a, int idx, const char *op,
                    int pos, lm_value *v) {
  if (!lm_op_value(L, idx, v))
    luaL_error(L, "%s: parameter $%d must be nil, op.null, a boolean, number "
               "or string, not a %s", op, pos, luaL_typename(L, idx));
  if (v->type == LM_V_TEXT || v->type == LM_V_BLOB)
    v->s = lm_arena_strndup(a, v->s, v->len);
}

static int op_execute(lua_State *L) {
  lua_settop(L, 2);   /* the arena goes above the arguments */
  lm_env *env = lm_op_get_env(L);
  lm_arena *a = lm_op_push_arena(L);
  lm_op op = {.kind = LM_OP_EXECUTE};
  const char *kind, *sql;
  if (lm_op_is_fragment(L, 1, &kind, &sql))
    op.sql = lm_arena_strdup(a, sql);
  else
    op.sql = lm_arena_strdup(a, lm_op_check_name(L, 1, "execute", "the SQL"));
  if (!lua_isnoneornil(L, 2)) {
    luaL_checktype(L, 2, LUA_TTABLE);
    /* params.n counts trailing nils, as table.pack does. */
    lua_getfield(L, 2, "n");
    size_t n = lua_isinteger(L, -1) ? (size_t)lua_tointeger(L, -1)
                                    : (size_t)luaL_len(L, 2);
    lua_pop(L, 1);
    lm_value *params = lm_arena_alloc(a, (n ? n : 1) * sizeof *params);
    for (size_t i = 0; i < n; i++) {
      lua_geti(L, 2, (lua_Integer)i + 1);
      lm_op_to_value(L, a, -1, "execute", (int)i + 1, &params[i]);
      lua_pop(L, 1);
    }
    op.params = params;
    op.nparams = n;
  }
  lm_err err;
  lm_err_init(&err);
  int64_t affected = 0;
  int rc = lm_op_apply_execute(env, &op, &affected, &err);
  lm_arena_free(a);
  if (rc != LM_OK) return lm_op_raise(L, &err);
  lua_pushinteger(L, (lua_Integer)affected);
  return 1;
}

static int null_tostring(lua_State *L) {
  lua_pushliteral(L, "op.null");
  return 1;
}

static int null_newindex(lua_State *L) {
  return luaL_error(L, "op.null is read-only");
}

void lm_op_push_null(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, NULL_KEY);
}

/* op.text("sql"): an SQL fragment used as-is. */
static int op_text(lua_State *L) {
  const char *sql = lm_op_check_name(L, 1, "text", "the SQL");
  lua_createtable(L, 0, 2);
  lua_pushliteral(L, "text");
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, sql);
  lua_setfield(L, -2, "sql");
  luaL_setmetatable(L, SQLFRAG_META);
  return 1;
}

/* op.func.NAME(): a call the dialect spells its own way (now()). */
static int func_call(lua_State *L) {
  lua_createtable(L, 0, 2);
  lua_pushliteral(L, "func");
  lua_setfield(L, -2, "kind");
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_setfield(L, -2, "sql");
  luaL_setmetatable(L, SQLFRAG_META);
  return 1;
}

static int func_index(lua_State *L) {
  lm_op_check_name(L, 2, "func", "the function name");
  lua_pushvalue(L, 2);
  lua_pushcclosure(L, func_call, 1);
  return 1;
}

/* op.literal(v): v written as the dialect's literal (quotes doubled);
 * as a server_default it is the value itself. */
static int op_literal(lua_State *L) {
  lm_env *env = lm_op_get_env(L);
  int t = lua_type(L, 1);
  if (t != LUA_TSTRING && t != LUA_TNUMBER && t != LUA_TBOOLEAN)
    luaL_error(L, "literal: the value must be a string, number or boolean, "
               "not a %s", luaL_typename(L, 1));
  lm_arena *a = lm_op_push_arena(L);
  lm_value v;
  lm_op_to_value(L, a, 1, "literal", 1, &v);
  lm_buf b = LM_BUF_INIT;
  if (env->dialect) env->dialect->render_literal(&b, &v);
  lua_createtable(L, 0, 3);
  lua_pushliteral(L, "literal");
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, lm_buf_str(&b));
  lua_setfield(L, -2, "sql");
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "value");
  luaL_setmetatable(L, SQLFRAG_META);
  lm_buf_free(&b);
  return 1;
}

static int fragment_tostring(lua_State *L) {
  lua_getfield(L, 1, "sql");
  return 1;
}

static const luaL_Reg op_functions[] = {
  {"create_table", op_create_table},
  {"drop_table", op_drop_table},
  {"rename_table", op_rename_table},
  {"add_column", op_add_column},
  {"drop_column", op_drop_column},
  {"execute", op_execute},
  {"text", op_text},
  {"literal", op_literal},
  {NULL, NULL}};

void lm_op_register_core(lua_State *L) {
  luaL_setfuncs(L, op_functions, 0);
}

/* Build the op table once per environment and cache it in the registry. */
void lm_op_push_table(lm_env *env) {
  lua_State *L = env->L;
  lua_pushlightuserdata(L, env);
  lua_setfield(L, LUA_REGISTRYINDEX, ENV_KEY);
  if (lua_getfield(L, LUA_REGISTRYINDEX, "luamig.op") == LUA_TTABLE) {
    lua_pushboolean(L, env->exec->offline);
    lua_setfield(L, -2, "offline");
    return;
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, ARENA_META)) {
    lua_pushcfunction(L, arena_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, SQLFRAG_META)) {
    lua_pushcfunction(L, fragment_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  lua_newtable(L);
  lm_op_register_core(L);
  lua_newtable(L);                       /* op.func */
  lua_newtable(L);
  lua_pushcfunction(L, func_index);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  lua_setfield(L, -2, "func");
  /* op.null: a unique, read-only value that prints as "op.null" */
  lua_newtable(L);
  lua_createtable(L, 0, 3);
  lua_pushcfunction(L, null_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushcfunction(L, null_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushliteral(L, "op.null");
  lua_setfield(L, -2, "__name");
  lua_setmetatable(L, -2);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, NULL_KEY);
  lua_setfield(L, -2, "null");
  lua_pushstring(L, env->dialect ? env->dialect->name : "");
  lua_setfield(L, -2, "dialect");
  lua_pushboolean(L, env->exec->offline);
  lua_setfield(L, -2, "offline");
  lua_newtable(L);                       /* op.x */
  for (size_t i = 0; i < env->x.n; i++) {
    const char *kv = env->x.items[i];
    const char *eq = strchr(kv, '=');
    lua_pushlstring(L, kv, (size_t)(eq - kv));
    lua_pushstring(L, eq + 1);
    lua_settable(L, -3);
  }
  lua_setfield(L, -2, "x");
  lm_op_alter_register(L);
  lm_naming_register(L);
  lm_op_data_register(L);
  lm_op_user_register(L);
  lua_pushvalue(L, -1);
  lua_setfield(L, LUA_REGISTRYINDEX, "luamig.op");
}
