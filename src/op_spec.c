/*
 * op_spec.c - the parsers of the specs the schema operations take: types
 * (a name such as "varchar(20)" or a table), defaults, identity, and
 * column and constraint specs.  Each reads a Lua value, raises a Lua error
 * naming the operation and the field on a bad one, and fills a part of an
 * operation value (operation.h) in the caller's arena.
 */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "op_internal.h"

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

