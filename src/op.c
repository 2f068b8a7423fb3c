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

/* Options table: check that every key is one the operation knows. */
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
    if (!ok) luaL_error(L, "%s: unknown option '%s'", op, key);
  }
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

/* ---- types and defaults ---------------------------------------------- */

static const struct {
  const char *name;
  lm_type_kind kind;
} type_names[] = {
  {"integer", LM_T_INTEGER}, {"bigint", LM_T_BIGINT},
  {"smallint", LM_T_SMALLINT}, {"string", LM_T_STRING},
  {"text", LM_T_TEXT}, {"boolean", LM_T_BOOLEAN}, {"float", LM_T_FLOAT},
  {"numeric", LM_T_NUMERIC}, {"date", LM_T_DATE},
  {"datetime", LM_T_DATETIME}, {"timestamptz", LM_T_TIMESTAMPTZ},
  {"time", LM_T_TIME}, {"json", LM_T_JSON}, {"uuid", LM_T_UUID},
  {"binary", LM_T_BINARY}, {NULL, LM_T_NONE}};

/* The bounds a portable numeric(p, s) keeps to: PostgreSQL's precision
 * range, and a scale every PostgreSQL version takes (0 to p). */
#define NUMERIC_MAX_PRECISION 1000

static void check_numeric(lua_State *L, const char *op, const char *s, int p,
                          int has_scale, int q) {
  if (p < 1 || p > NUMERIC_MAX_PRECISION || (has_scale && (q < 0 || q > p)))
    luaL_error(L, "%s: type %s: numeric(p, s) needs a precision p from 1 to "
               "%d and a scale s from 0 to p", op, s, NUMERIC_MAX_PRECISION);
}

/* "string(40)", "numeric(10,2)" or a portable name; anything else is the
 * dialect's own type, passed through verbatim.  A portable type with
 * arguments out of range is refused rather than passed on. */
static void parse_type_string(lua_State *L, lm_arena *a, const char *op,
                              const char *s, lm_type *t) {
  t->length = t->precision = t->scale = -1;
  size_t name_len = strcspn(s, "(");
  for (size_t i = 0; type_names[i].name; i++) {
    if (strlen(type_names[i].name) != name_len ||
        strncmp(type_names[i].name, s, name_len) != 0)
      continue;
    const char *args = s + name_len;
    if (!*args) {
      t->kind = type_names[i].kind;
      return;
    }
    int p = -1, q = -1, used = 0;
    if (type_names[i].kind == LM_T_STRING &&
        sscanf(args, "(%d)%n", &p, &used) == 1 && !args[used]) {
      if (p < 1)
        luaL_error(L, "%s: type %s: string(n) needs a length n of at least 1",
                   op, s);
      t->kind = LM_T_STRING;
      t->length = p;
      return;
    }
    if (type_names[i].kind == LM_T_NUMERIC) {
      if (sscanf(args, "(%d , %d)%n", &p, &q, &used) == 2 && !args[used]) {
        check_numeric(L, op, s, p, 1, q);
        t->kind = LM_T_NUMERIC;
        t->precision = p;
        t->scale = q;
        return;
      }
      used = 0;
      if (sscanf(args, "(%d)%n", &p, &used) == 1 && !args[used]) {
        check_numeric(L, op, s, p, 0, 0);
        t->kind = LM_T_NUMERIC;
        t->precision = p;
        return;
      }
    }
    break;
  }
  t->kind = LM_T_RAW;
  t->raw = lm_arena_strdup(a, s);
}

/* {enum = {"draft", "sent"}, name = "status_t"}. */
static void parse_enum(lua_State *L, lm_arena *a, int idx, const char *op,
                       lm_type *t) {
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
    if (strcmp(k, "enum") != 0 && strcmp(k, "name") != 0)
      luaL_error(L, "%s: an enum type has enum = {values} and name, not "
                 "'%s'", op, k);
  }
  lua_getfield(L, idx, "name");
  if (lua_type(L, -1) != LUA_TSTRING || !*lua_tostring(L, -1))
    luaL_error(L, "%s: an enum type needs name = \"...\" (PostgreSQL "
               "creates a type of that name)", op);
  lua_pop(L, 1);
  t->kind = LM_T_ENUM;
  t->enum_name = lm_op_opt_string(L, a, idx, "name", op);
  lua_getfield(L, idx, "enum");
  t->enum_values = lm_op_string_array(L, a, -1, op, "enum values",
                                      &t->nenum_values);
  for (size_t i = 0; i < t->nenum_values; i++)
    if (!*t->enum_values[i])
      luaL_error(L, "%s: enum %s: a value must not be empty", op,
                 t->enum_name);
  lua_pop(L, 1);
}

size_t lm_type_enum_width(const lm_type *type) {
  size_t w = 0;
  for (size_t i = 0; i < type->nenum_values; i++)
    if (strlen(type->enum_values[i]) > w) w = strlen(type->enum_values[i]);
  return w;
}

void lm_op_parse_type(lua_State *L, lm_arena *a, int idx, const char *op,
                       lm_type *t) {
  idx = lua_absindex(L, idx);
  memset(t, 0, sizeof *t);
  t->length = t->precision = t->scale = -1;
  if (lua_type(L, idx) == LUA_TSTRING) {
    parse_type_string(L, a, op, lm_op_tostring(L, idx, op, "the type"), t);
    return;
  }
  if (!lua_istable(L, idx))
    luaL_error(L, "%s: a column type must be a string or a table of "
               "dialect = type, not a %s", op, luaL_typename(L, idx));
  if (lua_getfield(L, idx, "enum") != LUA_TNIL) {
    lua_pop(L, 1);
    parse_enum(L, a, idx, op, t);
    return;
  }
  lua_pop(L, 1);
  size_t n = 0;
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "%s: a per-dialect type maps dialect names to type "
                 "strings", op);
    n++;
    lua_pop(L, 1);
  }
  t->kind = LM_T_PER_DIALECT;
  t->choice_dialect = lm_arena_alloc(a, (n ? n : 1) * sizeof(char *));
  t->choice_type = lm_arena_alloc(a, (n ? n : 1) * sizeof(char *));
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    t->choice_dialect[t->nchoices] =
        lm_arena_strdup(a, lm_op_tostring(L, -2, op, "a dialect name"));
    t->choice_type[t->nchoices] =
        lm_arena_strdup(a, lm_op_tostring(L, -1, op, "the type"));
    t->nchoices++;
    lua_pop(L, 1);
  }
}

const char *lm_type_choice(const lm_type *type, const char *dialect) {
  for (size_t i = 0; i < type->nchoices; i++)
    if (strcmp(type->choice_dialect[i], dialect) == 0)
      return type->choice_type[i];
  return NULL;
}

/* An SQL fragment made by op.text / op.func: {kind = ..., sql = ...}. */
int lm_op_is_fragment(lua_State *L, int idx, const char **kind,
                       const char **sql) {
  if (!lua_istable(L, idx) || !lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, SQLFRAG_META);
  int yes = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  if (!yes) return 0;
  lua_getfield(L, idx, "kind");
  *kind = lua_tostring(L, -1);
  lua_getfield(L, idx, "sql");
  *sql = lua_tostring(L, -1);
  lua_pop(L, 2);   /* both strings stay referenced by the table */
  return *kind && *sql;
}

void lm_op_parse_default(lua_State *L, lm_arena *a, int idx, const char *op,
                          int allow_drop, lm_default *d) {
  const char *kind, *sql;
  memset(d, 0, sizeof *d);
  switch (lua_type(L, idx)) {
  case LUA_TNIL:
  case LUA_TNONE:
    return;
  case LUA_TSTRING:
    d->kind = LM_DEF_STRING;
    d->text = lm_arena_strdup(a, lm_op_tostring(L, idx, op, "a default"));
    return;
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) {
      d->kind = LM_DEF_INT;
      d->i = lua_tointeger(L, idx);
    } else {
      d->kind = LM_DEF_FLOAT;
      d->f = lua_tonumber(L, idx);
    }
    return;
  case LUA_TBOOLEAN:
    if (allow_drop && !lua_toboolean(L, idx)) {
      d->kind = LM_DEF_DROP;
      return;
    }
    d->kind = LM_DEF_BOOL;
    d->i = lua_toboolean(L, idx);
    return;
  default:
    if (lm_op_is_fragment(L, idx, &kind, &sql) &&
        strcmp(kind, "literal") == 0) {
      /* op.literal(v) as a default is v itself, rendered per dialect. */
      lua_getfield(L, idx, "value");
      lm_op_parse_default(L, a, lua_gettop(L), op, 0, d);
      lua_pop(L, 1);
      return;
    }
    if (lm_op_is_fragment(L, idx, &kind, &sql)) {
      d->kind = strcmp(kind, "func") == 0 ? LM_DEF_FUNC : LM_DEF_SQL;
      d->text = lm_arena_strdup(a, sql);
      return;
    }
    luaL_error(L, "%s: server_default must be a string, number, boolean, "
               "op.text(...) or op.func.name(), not a %s", op,
               luaL_typename(L, idx));
  }
}

/* ---- column and constraint specs -------------------------------------- */

/* A column's onupdate: a string is its foreign key's ON UPDATE action; SQL
 * (op.func.now(), op.text(...), op.literal(v)) is the value the column
 * takes on every UPDATE of its row, as SQLAlchemy's onupdate means. */
static void parse_onupdate(lua_State *L, lm_arena *a, int idx, const char *op,
                           lm_column *c) {
  const char *kind, *sql;
  if (lua_isnil(L, idx)) return;
  if (lua_type(L, idx) == LUA_TSTRING) {
    c->onupdate = lm_arena_strdup(a, lm_op_tostring(L, idx, op, "onupdate"));
    if (!c->ref_table)
      luaL_error(L, "%s: column %s: onupdate = \"%s\" is a foreign key's ON "
                 "UPDATE action, but the column has no references; for a "
                 "value set on every UPDATE, give SQL: op.func.now() or "
                 "op.text(\"...\")", op, c->name, c->onupdate);
    return;
  }
  if (!lm_op_is_fragment(L, idx, &kind, &sql))
    luaL_error(L, "%s: column %s: onupdate must be a foreign-key action (a "
               "string such as \"CASCADE\") or SQL (op.func.now(), "
               "op.text(\"...\")), not a %s", op, c->name,
               luaL_typename(L, idx));
  lm_op_parse_default(L, a, idx, op, 0, &c->onupdate_value);
}

static const char *const column_keys[] = {
  "nullable", "primary_key", "unique", "index", "server_default",
  "autoincrement", "references", "ondelete", "onupdate", "comment", "check",
  "computed", "persisted", "identity", NULL};

/* SQL given as a string or op.text(...), copied; NULL when nil. */
static const char *sql_field(lua_State *L, lm_arena *a, int idx,
                             const char *op, const char *col,
                             const char *key) {
  const char *kind, *sql;
  if (lua_type(L, idx) == LUA_TSTRING && *lua_tostring(L, idx))
    return lm_arena_strdup(a, lm_op_tostring(L, idx, op, key));
  if (lm_op_is_fragment(L, idx, &kind, &sql) && strcmp(kind, "text") == 0)
    return lm_arena_strdup(a, sql);
  if (!lua_isnil(L, idx))
    luaL_error(L, "%s: column %s: %s must be SQL (a string or op.text), not "
               "a %s", op, col, key, luaL_typename(L, idx));
  return NULL;
}

void lm_op_parse_identity(lua_State *L, int idx, const char *op,
                          const char *key, lm_identity *id) {
  static const char *const keys[] = {"always", "start", "increment",
                                     "minvalue", "maxvalue", "cycle",
                                     "cache", NULL};
  idx = lua_absindex(L, idx);
  memset(id, 0, sizeof *id);
  id->cycle = -1;
  if (lua_isnil(L, idx)) return;
  if (lua_isboolean(L, idx) && lua_toboolean(L, idx)) {
    id->given = 1;
    return;
  }
  if (!lua_istable(L, idx))
    luaL_error(L, "%s: %s must be true or a table of identity options "
               "(always, start, increment, minvalue, maxvalue, cycle, "
               "cache), not a %s", op, key, luaL_typename(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
    int ok = 0;
    for (size_t i = 0; keys[i]; i++) ok |= strcmp(keys[i], k) == 0;
    if (!ok) luaL_error(L, "%s: unknown %s option '%s'", op, key, k);
  }
  id->given = 1;
  struct { const char *name; int64_t *v; int *has; } nums[] = {
    {"start", &id->start, &id->has_start},
    {"increment", &id->increment, &id->has_increment},
    {"minvalue", &id->minvalue, &id->has_minvalue},
    {"maxvalue", &id->maxvalue, &id->has_maxvalue},
    {"cache", &id->cache, &id->has_cache}};
  for (size_t i = 0; i < sizeof nums / sizeof *nums; i++) {
    lua_getfield(L, idx, nums[i].name);
    if (lua_isinteger(L, -1)) {
      *nums[i].v = lua_tointeger(L, -1);
      *nums[i].has = 1;
    } else if (!lua_isnil(L, -1)) {
      luaL_error(L, "%s: %s.%s must be an integer", op, key, nums[i].name);
    }
    lua_pop(L, 1);
  }
  lua_getfield(L, idx, "always");
  id->always_given = !lua_isnil(L, -1);
  lua_pop(L, 1);
  id->always = lm_op_opt_bool(L, idx, "always", op, 0);
  lua_getfield(L, idx, "cycle");
  if (lua_isboolean(L, -1)) id->cycle = lua_toboolean(L, -1);
  else if (!lua_isnil(L, -1))
    luaL_error(L, "%s: %s.cycle must be a boolean", op, key);
  lua_pop(L, 1);
}

/* check = SQL or {SQL, name = ...}; computed = SQL, persisted = bool. */
static void parse_check_computed(lua_State *L, lm_arena *a, int idx,
                                 const char *op, lm_column *c) {
  const char *kind, *sql;
  lua_getfield(L, idx, "check");
  if (lua_istable(L, -1) && !lm_op_is_fragment(L, -1, &kind, &sql)) {
    int t = lua_gettop(L);
    c->check_name = lm_op_opt_string(L, a, t, "name", op);
    lua_geti(L, t, 1);
    c->check = sql_field(L, a, lua_gettop(L), op, c->name, "check");
    if (!c->check)
      luaL_error(L, "%s: column %s: check = {sql, name = ...} needs its SQL",
                 op, c->name);
    lua_pop(L, 1);
  } else {
    c->check = sql_field(L, a, lua_gettop(L), op, c->name, "check");
  }
  lua_pop(L, 1);
  lua_getfield(L, idx, "computed");
  c->computed = sql_field(L, a, lua_gettop(L), op, c->name, "computed");
  lua_pop(L, 1);
  lua_getfield(L, idx, "persisted");
  c->persisted = -1;
  if (lua_isboolean(L, -1)) c->persisted = lua_toboolean(L, -1);
  else if (!lua_isnil(L, -1))
    luaL_error(L, "%s: column %s: persisted must be a boolean", op, c->name);
  lua_pop(L, 1);
  if (c->persisted >= 0 && !c->computed)
    luaL_error(L, "%s: column %s: persisted goes with computed = SQL", op,
               c->name);
  if (c->computed && c->server_default.kind != LM_DEF_NONE)
    luaL_error(L, "%s: column %s: a computed column has no server_default",
               op, c->name);
}

void lm_op_parse_column(lua_State *L, lm_arena *a, int idx, const char *op,
                         lm_column *c) {
  idx = lua_absindex(L, idx);
  memset(c, 0, sizeof *c);
  if (!lua_istable(L, idx))
    luaL_error(L, "%s: a column spec must be a table {name, type, ...}, not "
               "a %s", op, luaL_typename(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TNUMBER) {
      lua_Integer k = lua_tointeger(L, -1);
      if (k != 1 && k != 2)
        luaL_error(L, "%s: a column spec has a name and a type, then "
                   "options", op);
      continue;
    }
    const char *key = lua_tostring(L, -1);
    int ok = 0;
    for (size_t i = 0; column_keys[i]; i++)
      if (key && strcmp(column_keys[i], key) == 0) ok = 1;
    if (!ok) luaL_error(L, "%s: unknown column option '%s'", op,
                        key ? key : "?");
  }
  lua_geti(L, idx, 1);
  if (lua_type(L, -1) != LUA_TSTRING || !*lua_tostring(L, -1))
    luaL_error(L, "%s: a column spec starts with the column name (a string)",
               op);
  c->name = lm_arena_strdup(a, lm_op_tostring(L, -1, op, "the column name"));
  lua_pop(L, 1);
  lua_geti(L, idx, 2);
  if (lua_isnil(L, -1))
    luaL_error(L, "%s: column %s has no type", op, c->name);
  lm_op_parse_type(L, a, -1, op, &c->type);
  lua_pop(L, 1);
  c->primary_key = lm_op_opt_bool(L, idx, "primary_key", op, 0);
  lua_getfield(L, idx, "nullable");
  c->nullable_given = !lua_isnil(L, -1);
  lua_pop(L, 1);
  c->nullable = lm_op_opt_bool(L, idx, "nullable", op, !c->primary_key);
  c->unique = lm_op_opt_bool(L, idx, "unique", op, 0);
  c->index = lm_op_opt_bool(L, idx, "index", op, 0);
  lua_getfield(L, idx, "server_default");
  lm_op_parse_default(L, a, lua_gettop(L), op, 0, &c->server_default);
  lua_pop(L, 1);
  lua_getfield(L, idx, "autoincrement");
  if (lua_isboolean(L, -1))
    c->autoincrement = lua_toboolean(L, -1) ? LM_AUTO_TRUE : LM_AUTO_FALSE;
  else if (lua_type(L, -1) == LUA_TSTRING &&
           strcmp(lua_tostring(L, -1), "identity") == 0)
    c->autoincrement = LM_AUTO_IDENTITY;
  else if (lua_type(L, -1) == LUA_TSTRING &&
           strcmp(lua_tostring(L, -1), "auto") == 0)
    c->autoincrement = LM_AUTO_DEFAULT;
  else if (!lua_isnil(L, -1))
    luaL_error(L, "%s: autoincrement must be true, false or \"identity\"",
               op);
  lua_pop(L, 1);
  const char *ref = lm_op_opt_string(L, a, idx, "references", op);
  if (ref) {
    /* "table.column" or "schema.table.column", as SQLAlchemy's
     * ForeignKey reads it: the schema is all before the table. */
    const char *dot = strrchr(ref, '.');
    if (!dot || dot == ref || !dot[1])
      luaL_error(L, "%s: references must be \"table.column\" or "
                 "\"schema.table.column\", not \"%s\"", op, ref);
    const char *start = ref;      /* the table's first character */
    for (const char *p = dot; p-- > ref;)
      if (*p == '.') {
        start = p + 1;
        break;
      }
    if (start == dot || start == ref + 1)
      luaL_error(L, "%s: references must be \"table.column\" or "
                 "\"schema.table.column\", not \"%s\"", op, ref);
    if (start != ref)
      c->ref_schema = lm_arena_strndup(a, ref, (size_t)(start - 1 - ref));
    c->ref_table = lm_arena_strndup(a, start, (size_t)(dot - start));
    c->ref_column = dot + 1;
  }
  c->ondelete = lm_op_opt_string(L, a, idx, "ondelete", op);
  if (c->ondelete && !c->ref_table)
    luaL_error(L, "%s: column %s: ondelete = \"%s\" is a foreign key's ON "
               "DELETE action, but the column has no references", op, c->name,
               c->ondelete);
  if (c->autoincrement == LM_AUTO_TRUE &&
      (!c->primary_key || !(c->type.kind == LM_T_INTEGER ||
                            c->type.kind == LM_T_BIGINT ||
                            c->type.kind == LM_T_SMALLINT)))
    luaL_error(L, "%s: column %s: autoincrement = true needs an integer "
               "primary key column", op, c->name);
  lua_getfield(L, idx, "onupdate");
  parse_onupdate(L, a, lua_gettop(L), op, c);
  lua_pop(L, 1);
  c->comment = lm_op_opt_string(L, a, idx, "comment", op);
  parse_check_computed(L, a, idx, op, c);
  lua_getfield(L, idx, "identity");
  lm_op_parse_identity(L, -1, op, "identity", &c->identity);
  lua_pop(L, 1);
  if (c->identity.given) {
    if (c->autoincrement == LM_AUTO_FALSE || c->autoincrement == LM_AUTO_TRUE)
      luaL_error(L, "%s: column %s: identity and autoincrement = %s "
                 "contradict each other", op, c->name,
                 c->autoincrement == LM_AUTO_TRUE ? "true" : "false");
    c->autoincrement = LM_AUTO_IDENTITY;
  }
}

static const char *const constraint_keys[] = {
  "name", "ondelete", "onupdate", "deferrable", "initially", "schema", "match",
  NULL};

void lm_op_parse_constraint(lua_State *L, lm_arena *a, int idx,
                             const char *op, lm_constraint *c) {
  idx = lua_absindex(L, idx);
  memset(c, 0, sizeof *c);
  c->deferrable = -1;
  if (!lua_istable(L, idx))
    luaL_error(L, "%s: a constraint spec must be a table, not a %s", op,
               luaL_typename(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TNUMBER) continue;
    const char *key = lua_tostring(L, -1);
    int ok = 0;
    for (size_t i = 0; constraint_keys[i]; i++)
      if (key && strcmp(constraint_keys[i], key) == 0) ok = 1;
    if (!ok) luaL_error(L, "%s: unknown constraint option '%s'", op,
                        key ? key : "?");
  }
  lua_geti(L, idx, 1);
  const char *kind = lua_tostring(L, -1);
  if (!kind) luaL_error(L, "%s: a constraint spec starts with its kind", op);
  if (strcmp(kind, "primary_key") == 0) c->kind = LM_CON_PRIMARY_KEY;
  else if (strcmp(kind, "unique") == 0) c->kind = LM_CON_UNIQUE;
  else if (strcmp(kind, "check") == 0) c->kind = LM_CON_CHECK;
  else if (strcmp(kind, "foreign_key") == 0) c->kind = LM_CON_FOREIGN_KEY;
  else
    luaL_error(L, "%s: unknown constraint kind '%s' (primary_key, unique, "
               "check, foreign_key)", op, kind);
  lua_pop(L, 1);
  c->name = lm_op_opt_string(L, a, idx, "name", op);
  lua_geti(L, idx, 2);
  if (c->kind == LM_CON_CHECK) {
    const char *kind2, *sql;
    if (lua_type(L, -1) == LUA_TSTRING)
      c->condition = lm_arena_strdup(a, lm_op_tostring(L, -1, op,
                                                       "the condition"));
    else if (lm_op_is_fragment(L, lua_gettop(L), &kind2, &sql))
      c->condition = lm_arena_strdup(a, sql);
    else
      luaL_error(L, "%s: a check constraint needs its SQL condition", op);
  } else {
    c->columns = lm_op_string_array(L, a, -1, op, "constraint columns",
                              &c->ncolumns);
  }
  lua_pop(L, 1);
  if (c->kind == LM_CON_FOREIGN_KEY) {
    lua_geti(L, idx, 3);
    if (lua_type(L, -1) != LUA_TSTRING)
      luaL_error(L, "%s: a foreign key names its referent table third", op);
    c->ref_table = lm_arena_strdup(a, lm_op_tostring(L, -1, op,
                                                     "the referent table"));
    lua_pop(L, 1);
    lua_geti(L, idx, 4);
    c->ref_columns = lm_op_string_array(L, a, -1, op, "referent columns",
                                  &c->nref_columns);
    lua_pop(L, 1);
    if (c->nref_columns != c->ncolumns)
      luaL_error(L, "%s: a foreign key needs as many referent columns as "
                 "local ones", op);
    c->ref_schema = lm_op_opt_string(L, a, idx, "schema", op);
    c->ondelete = lm_op_opt_string(L, a, idx, "ondelete", op);
    c->onupdate = lm_op_opt_string(L, a, idx, "onupdate", op);
    c->initially = lm_op_opt_string(L, a, idx, "initially", op);
    c->match = lm_op_opt_string(L, a, idx, "match", op);
    lua_getfield(L, idx, "deferrable");
    if (lua_isboolean(L, -1)) c->deferrable = lua_toboolean(L, -1);
    lua_pop(L, 1);
  }
}

/* ---- applying ----------------------------------------------------------- */

/* Raise a failure as a Lua error that starts with the script line. */
int lm_op_raise(lua_State *L, lm_err *err) {
  luaL_where(L, 1);
  lua_pushstring(L, lm_err_msg(err));
  lua_concat(L, 2);
  /* The script may let this error through as it is: remember its text
   * and code (lm_script_call gives the code back when the text matches). */
  lua_getfield(L, LUA_REGISTRYINDEX, ENV_KEY);
  lm_env *env = lua_touserdata(L, -1);
  lua_pop(L, 1);
  if (env) {
    lm_err_set(&env->raised, "%s", lua_tostring(L, -1));
    lm_err_copy_code(&env->raised, err);
  }
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
  static const char *const keys[] = {"schema", "if_exists", NULL};
  lm_env *env = lm_op_get_env(L);
  lm_arena *a = lm_op_push_arena(L);
  lm_op op = {.kind = LM_OP_DROP_TABLE};
  op.table = lm_arena_strdup(a, lm_op_check_name(L, 1, "drop_table",
                                           "the table name"));
  lm_op_check_opts(L, 2, "drop_table", keys);
  op.schema = lm_op_opt_string(L, a, 2, "schema", "drop_table");
  op.if_exists = lm_op_opt_bool(L, 2, "if_exists", "drop_table", 0);
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
  static const char *const keys[] = {"schema", NULL};
  lm_env *env = lm_op_get_env(L);
  lm_arena *a = lm_op_push_arena(L);
  lm_op op = {.kind = LM_OP_DROP_COLUMN};
  op.table = lm_arena_strdup(a, lm_op_check_name(L, 1, "drop_column",
                                           "the table name"));
  op.name = lm_arena_strdup(a, lm_op_check_name(L, 2, "drop_column",
                                          "the column name"));
  lm_op_check_opts(L, 3, "drop_column", keys);
  op.schema = lm_op_opt_string(L, a, 3, "schema", "drop_column");
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
