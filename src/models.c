/*
 * models.c - a models file into the schema model.  lua/models.lua loads
 * the file in its own environment (op bound to the fragment helpers
 * only); here each table's specs are read by the op API's own parsers
 * (op.c) into a create_table value and its indexes into create_index
 * values, replayed into the model (replay.c), and the result normalized
 * as the dialect reads a database back (dialect.h, read_type;
 * introspect_norm.h), so a model and the database it made compare equal.
 * Errors name the file and line (found in the text by lua/models.lua),
 * the table and the column.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <fnmatch.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "introspect_norm.h"
#include "models.h"
#include "op_internal.h"
#include "schema_text.h"

/* What is being read, for the location of an error. */
typedef struct load_ctx {
  lm_env *env;
  lm_schema *out;
  char table[256], part[256];   /* the table and column/index being read */
} load_ctx;

static void set_where(load_ctx *c, const char *table, const char *part) {
  snprintf(c->table, sizeof c->table, "%s", table ? table : "");
  snprintf(c->part, sizeof c->part, "%s", part ? part : "");
}

/* ---- types ------------------------------------------------------------ */

/* Type names a database knows, beyond the portable ones: a models file
 * naming anything else has a typo (a dialect's own type not listed here
 * goes in a per-dialect table, {postgresql = "...", sqlite = "..."}). */
static const char *const native_types[] = {
  "int", "int2", "int4", "int8", "integer", "bigint", "smallint", "tinyint",
  "mediumint", "serial", "bigserial", "smallserial", "real", "double",
  "float4", "float8", "decimal", "numeric", "money", "char", "character",
  "varchar", "nchar", "nvarchar", "clob", "citext", "bytea", "blob",
  "jsonb", "xml", "inet", "cidr", "macaddr", "macaddr8", "interval",
  "timestamp", "timestamptz", "timetz", "datetime", "bit", "varbit", "bool",
  "tsvector", "tsquery", "point", "line", "lseg", "box", "path", "polygon",
  "circle", "oid", "hstore", "int4range", "int8range", "numrange", "float",
  "text", "boolean", "date", "time", "json", "uuid",
  "tsrange", "tstzrange", "daterange", "ltree", "geometry", "geography",
  NULL};

static int known_native_type(const char *raw) {
  size_t n = 0;
  while (raw[n] && (isalnum((unsigned char)raw[n]) || raw[n] == '_')) n++;
  if (raw[0] == '"') return 1;          /* a quoted type name is meant */
  for (size_t i = 0; native_types[i]; i++)
    if (strlen(native_types[i]) == n && strncasecmp(raw, native_types[i], n) == 0)
      return 1;
  return 0;
}

/* ---- reading one table ----------------------------------------------- */

static const char *const table_keys[] = {"constraints", "indexes", "comment",
                                         NULL};
static const char *const index_keys[] = {"unique", "where", "using", NULL};

/* A string or op.text(...) at idx, copied; NULL for nil. */
static const char *sql_value(lua_State *L, lm_arena *a, int idx,
                             const char *what) {
  const char *kind, *sql;
  if (lua_isnil(L, idx)) return NULL;
  if (lua_type(L, idx) == LUA_TSTRING)
    return lm_arena_strdup(a, lm_op_tostring(L, idx, "models", what));
  if (lm_op_is_fragment(L, lua_absindex(L, idx), &kind, &sql) && strcmp(kind, "text") == 0)
    return lm_arena_strdup(a, sql);
  luaL_error(L, "%s must be SQL (a string or op.text), not a %s", what,
             luaL_typename(L, idx));
  return NULL;
}

/* {"ix_name", {cols or op.text(expr)}, unique = ..., where = ...} at idx
 * into a create_index value. */
static void read_index(lua_State *L, load_ctx *c, lm_arena *a, int idx,
                       const char *table, lm_op *op) {
  idx = lua_absindex(L, idx);
  memset(op, 0, sizeof *op);
  op->kind = LM_OP_CREATE_INDEX;
  op->table = table;
  if (!lua_istable(L, idx))
    luaL_error(L, "an index spec must be a table {\"ix_name\", {columns}, "
               "unique = ..., where = ...}, not a %s", luaL_typename(L, idx));
  lua_geti(L, idx, 1);
  if (lua_type(L, -1) != LUA_TSTRING || !*lua_tostring(L, -1))
    luaL_error(L, "an index spec starts with the index name (a string)");
  op->name = lm_arena_strdup(a, lm_op_tostring(L, -1, "models", "index"));
  set_where(c, table, op->name);
  lua_pop(L, 1);
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TNUMBER) {
      if (lua_tointeger(L, -1) != 1 && lua_tointeger(L, -1) != 2)
        luaL_error(L, "index %s: an index spec has a name and columns, "
                   "then options", op->name);
      continue;
    }
    const char *key = lua_tostring(L, -1);
    int ok = 0;
    for (size_t i = 0; index_keys[i]; i++)
      ok |= key && strcmp(key, index_keys[i]) == 0;
    if (!ok)
      luaL_error(L, "index %s: unknown option '%s' (unique, where, using)",
                 op->name, key ? key : "?");
  }
  lua_geti(L, idx, 2);
  int cols = lua_gettop(L);
  const char *kind, *sql;
  size_t n = 0;
  if (lua_type(L, cols) == LUA_TSTRING || lm_op_is_fragment(L, cols, &kind,
                                                             &sql)) {
    lua_createtable(L, 1, 0);        /* one column: a list of it */
    lua_pushvalue(L, cols);
    lua_rawseti(L, -2, 1);
    lua_replace(L, cols);
  }
  if (!lua_istable(L, cols))
    luaL_error(L, "index %s: the columns must be a list of names or "
               "op.text(expression)", op->name);
  n = (size_t)luaL_len(L, cols);
  if (!n) luaL_error(L, "index %s has no columns", op->name);
  const char **names = lm_arena_alloc(a, n * sizeof *names);
  int *is_expr = lm_arena_alloc(a, n * sizeof *is_expr);
  for (size_t i = 0; i < n; i++) {
    lua_geti(L, cols, (lua_Integer)i + 1);
    if (lua_type(L, -1) == LUA_TSTRING && *lua_tostring(L, -1)) {
      names[i] = lm_arena_strdup(a, lm_op_tostring(L, -1, "models", "index"));
      is_expr[i] = 0;
    } else if (lm_op_is_fragment(L, lua_gettop(L), &kind, &sql) &&
               strcmp(kind, "text") == 0) {
      names[i] = lm_arena_strdup(a, sql);
      is_expr[i] = 1;
    } else {
      luaL_error(L, "index %s: column %d must be a name or "
                 "op.text(expression), not a %s", op->name, (int)i + 1,
                 luaL_typename(L, -1));
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  op->index.columns = names;
  op->index.is_expr = is_expr;
  op->index.ncolumns = n;
  op->index.unique = lm_op_opt_bool(L, idx, "unique", "models", 0);
  lua_getfield(L, idx, "where");
  op->index.where = sql_value(L, a, lua_gettop(L), "where");
  lua_pop(L, 1);
  op->index.method = lm_op_opt_string(L, a, idx, "using", "models");
}

/* The table model at idx, named `name`, into the schema model. */
static void read_table(lua_State *L, load_ctx *c, const char *name, int idx) {
  lm_arena *a = lm_op_push_arena(L);
  set_where(c, name, NULL);
  if (!lua_istable(L, idx))
    luaL_error(L, "the model of a table must be a table of column specs, "
               "not a %s", luaL_typename(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TNUMBER) continue;
    const char *key = lua_tostring(L, -1);
    int ok = 0;
    for (size_t i = 0; table_keys[i]; i++)
      ok |= key && strcmp(key, table_keys[i]) == 0;
    if (!ok)
      luaL_error(L, "unknown key '%s' (a table's model lists column specs, "
                 "then constraints, indexes and comment)", key ? key : "?");
  }
  lm_op op = {.kind = LM_OP_CREATE_TABLE};
  op.table = lm_arena_strdup(a, name);
  size_t n = (size_t)luaL_len(L, idx);
  if (!n) luaL_error(L, "the table has no columns");
  op.columns = lm_arena_alloc(a, n * sizeof *op.columns);
  op.ncolumns = n;
  for (size_t i = 0; i < n; i++) {
    lua_geti(L, idx, (lua_Integer)i + 1);
    lua_geti(L, -1, 1);
    set_where(c, name, lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
                                                       : NULL);
    lua_pop(L, 1);
    lm_column *col = &op.columns[i];
    lm_op_parse_column(L, a, -1, "column", col);
    lua_pop(L, 1);
    for (size_t k = 0; k < i; k++)
      if (strcmp(op.columns[k].name, col->name) == 0)
        luaL_error(L, "duplicate column %s", col->name);
    if (col->type.kind == LM_T_PER_DIALECT &&
        !lm_type_choice(&col->type, c->env->dialect->name))
      luaL_error(L, "the type names no choice for %s, the database's "
                 "dialect", c->env->dialect->name);
    if (col->type.kind == LM_T_RAW && !known_native_type(col->type.raw))
      luaL_error(L, "unknown type '%s' (portable types: integer, bigint, "
                 "smallint, string, string(n), text, boolean, float, "
                 "numeric(p,s), date, datetime, timestamptz, time, json, "
                 "uuid, binary; a dialect's own type: {postgresql = "
                 "\"...\", sqlite = \"...\"})", col->type.raw);
  }
  set_where(c, name, NULL);
  lua_getfield(L, idx, "constraints");
  if (lua_istable(L, -1)) {
    size_t nc = (size_t)luaL_len(L, -1);
    op.constraints = lm_arena_alloc(a, (nc ? nc : 1) * sizeof *op.constraints);
    op.nconstraints = nc;
    for (size_t i = 0; i < nc; i++) {
      lua_geti(L, -1, (lua_Integer)i + 1);
      lm_op_parse_constraint(L, a, -1, "constraint", &op.constraints[i]);
      lua_pop(L, 1);
      lm_naming_constraint(L, a, "models", op.table, &op.constraints[i]);
    }
  } else if (!lua_isnil(L, -1)) {
    luaL_error(L, "constraints must be a list of constraint specs");
  }
  lua_pop(L, 1);
  op.comment = lm_op_opt_string(L, a, idx, "comment", "models");
  lm_naming_columns(L, a, "models", &op);
  lm_err err;
  lm_err_init(&err);
  if (lm_schema_apply(c->out, &op, &err) != LM_OK) {
    lua_pushstring(L, lm_err_msg(&err));
    lm_err_free(&err);
    lua_error(L);
  }
  lua_getfield(L, idx, "indexes");
  if (lua_istable(L, -1)) {
    size_t ni = (size_t)luaL_len(L, -1);
    for (size_t i = 0; i < ni; i++) {
      lm_op ix;
      lua_geti(L, -1, (lua_Integer)i + 1);
      read_index(L, c, a, -1, op.table, &ix);
      lua_pop(L, 1);
      if (lm_schema_apply(c->out, &ix, &err) != LM_OK) {
        lua_pushstring(L, lm_err_msg(&err));
        lm_err_free(&err);
        lua_error(L);
      }
    }
  } else if (!lua_isnil(L, -1)) {
    luaL_error(L, "indexes must be a list of index specs");
  }
  lua_pop(L, 2);                         /* indexes, arena */
}

/* ---- checks across tables -------------------------------------------- */

static int has_column(const lm_mtable *t, const char *name) {
  return lm_mtable_column_pos(t, name) >= 0;
}

/* Every key and index names columns its table has, and every foreign key
 * a table and columns of the models. */
static void check_references(lua_State *L, load_ctx *c) {
  lm_schema *s = c->out;
  for (size_t i = 0; i < s->ntables; i++) {
    lm_mtable *t = &s->tables[i];
    for (size_t k = 0; k < t->nconstraints; k++) {
      const lm_constraint *con = &t->constraints[k].con;
      if (con->kind == LM_CON_CHECK) continue;
      for (size_t j = 0; j < con->ncolumns; j++)
        if (!has_column(t, con->columns[j])) {
          set_where(c, t->name, con->columns[j]);
          luaL_error(L, "a constraint names column %s, which the table does "
                     "not have", con->columns[j]);
        }
      if (con->kind != LM_CON_FOREIGN_KEY) continue;
      set_where(c, t->name, con->ncolumns ? con->columns[0] : NULL);
      const lm_mtable *r = lm_schema_table(s, con->ref_schema, con->ref_table);
      if (!r)
        luaL_error(L, "foreign key to %s%s%s, which is not in the models",
                   con->ref_schema ? con->ref_schema : "",
                   con->ref_schema ? "." : "", con->ref_table);
      for (size_t j = 0; j < con->nref_columns; j++)
        if (!has_column(r, con->ref_columns[j]))
          luaL_error(L, "foreign key to %s.%s, a column %s does not have",
                     con->ref_table, con->ref_columns[j], con->ref_table);
    }
    for (size_t k = 0; k < t->nindexes; k++) {
      const lm_index *ix = &t->indexes[k].ix;
      set_where(c, t->name, t->indexes[k].name);
      for (size_t j = 0; j < ix->ncolumns; j++)
        if (!ix->is_expr[j] && !has_column(t, ix->columns[j]))
          luaL_error(L, "index %s names column %s, which the table does not "
                     "have", t->indexes[k].name, ix->columns[j]);
      for (size_t j = k; j-- > 0;)
        if (strcmp(t->indexes[j].name, t->indexes[k].name) == 0)
          luaL_error(L, "duplicate index %s", t->indexes[k].name);
    }
  }
}

/* ---- normalizing ------------------------------------------------------- */

static int number_type(const lm_type *t) {
  return t->kind == LM_T_INTEGER || t->kind == LM_T_BIGINT ||
         t->kind == LM_T_SMALLINT || t->kind == LM_T_NUMERIC ||
         t->kind == LM_T_FLOAT;
}

/* A default as introspection reads it back: SQL through the same
 * normalizer, a quoted whole number on a number column as that number. */
static void norm_default(lm_schema *s, const lm_mcolumn *c, lm_default *d) {
  if (d->kind == LM_DEF_SQL) {
    lm_norm_default(s, d, d->text);
  } else if (d->kind == LM_DEF_STRING && number_type(&c->type)) {
    char *end;
    long long v = strtoll(d->text, &end, 10);
    if (*d->text && !*end) {
      d->kind = LM_DEF_INT;
      d->i = v;
    }
  } else if (d->kind == LM_DEF_INT && c->type.kind == LM_T_BOOLEAN &&
             (d->i == 0 || d->i == 1)) {
    d->kind = LM_DEF_BOOL;
  }
}

static void normalize(lm_env *env, lm_schema *s) {
  const lm_dialect *d = env->dialect;
  for (size_t i = 0; i < s->ntables; i++) {
    lm_mtable *t = &s->tables[i];
    for (size_t k = 0; k < t->ncolumns; k++) {
      lm_mcolumn *c = &t->columns[k];
      if (d->version >= 9 && d->read_type) d->read_type(s, &c->type);
      norm_default(s, c, &c->server_default);
    }
    for (size_t k = 0; k < t->nconstraints; k++) {
      lm_constraint *con = &t->constraints[k].con;
      con->condition = lm_norm_expr(s, con->condition);
      if (con->kind != LM_CON_FOREIGN_KEY) continue;
      con->ondelete = lm_norm_action(s, con->ondelete);
      con->onupdate = lm_norm_action(s, con->onupdate);
      if (con->deferrable < 0) con->deferrable = 0;
      con->initially = con->deferrable ? lm_norm_action(s, con->initially)
                                       : NULL;
      if (con->initially && strcmp(con->initially, "IMMEDIATE") == 0)
        con->initially = NULL;
    }
    for (size_t k = 0; k < t->nindexes; k++) {
      lm_index *ix = &t->indexes[k].ix;
      /* the access method as introspection gives it: none for btree */
      if (ix->method && strcasecmp(ix->method, "btree") != 0) {
        lm_buf m = LM_BUF_INIT;
        for (const char *p = ix->method; *p; p++)
          lm_buf_putc(&m, (char)tolower((unsigned char)*p));
        t->indexes[k].method = lm_schema_str(s, lm_buf_str(&m));
        lm_buf_free(&m);
      }
      for (size_t j = 0; j < ix->ncolumns; j++)
        if (ix->is_expr && ix->is_expr[j])
          ((const char **)ix->columns)[j] = lm_norm_expr(s, ix->columns[j]);
      ix->where = lm_norm_expr(s, ix->where);
    }
  }
  lm_schema_sort(s);
}

/* ---- loading ----------------------------------------------------------- */

static int compare_strings(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Protected: the loaded file's table at 2 (from lua/models.lua), the
 * context at 1.  Reads every table in name order. */
static int build_models(lua_State *L) {
  load_ctx *c = lua_touserdata(L, 1);
  lua_getfield(L, 2, "models");          /* stack: ctx loaded models */
  if (!lua_istable(L, 3))
    return luaL_error(L, "a models file must return a table of table "
                      "models (name = {column specs...}), not a %s",
                      luaL_typename(L, 3));
  lm_strvec names = LM_STRVEC_INIT;
  lua_pushnil(L);
  while (lua_next(L, 3)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) {
      lm_strvec_free(&names);
      return luaL_error(L, "a models file's table is keyed by table names; "
                        "found a %s key", luaL_typename(L, -1));
    }
    lm_strvec_push(&names, lm_xstrdup(lua_tostring(L, -1)));
  }
  qsort(names.items, names.n, sizeof *names.items, compare_strings);
  /* The names go on the Lua stack as strings: an error raised while a
   * table is read must not leak the vector. */
  lua_createtable(L, (int)names.n, 0);
  for (size_t i = 0; i < names.n; i++) {
    lua_pushstring(L, names.items[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lm_strvec_free(&names);
  int list = lua_gettop(L);
  for (lua_Integer i = 1, n = luaL_len(L, list); i <= n; i++) {
    lua_geti(L, list, i);
    const char *name = lua_tostring(L, -1);
    lua_getfield(L, 3, name);
    read_table(L, c, name, lua_gettop(L));
    lua_pop(L, 2);
  }
  check_references(L, c);
  return 0;
}

int lm_models_load(lm_env *env, const char *path, lm_schema *out) {
  lua_State *L = env->L;
  if (!env->dialect && lm_pick_dialect(env) != LM_OK) return LM_ERROR;
  int base = lua_gettop(L);
  /* op in a models file: the fragment helpers only */
  lm_op_push_table(env);
  lua_createtable(L, 0, 5);
  static const char *const helpers[] = {"text", "func", "literal", "null",
                                        "dialect", NULL};
  for (size_t i = 0; helpers[i]; i++) {
    lua_getfield(L, -2, helpers[i]);
    lua_setfield(L, -2, helpers[i]);
  }
  lua_remove(L, -2);
  lua_pushstring(L, path);
  lua_insert(L, -2);                     /* stack: path fragments */
  if (lm_lua_call(env, "luamig.models", "load", 2) != LM_OK) {
    lm_err_prefix(&env->err, "cannot load models");
    lm_err_kind(&env->err, "models_error");
    lua_settop(L, base);
    return LM_ERROR;
  }
  int loaded = lua_gettop(L);
  load_ctx ctx = {.env = env, .out = out};
  lua_pushcfunction(L, lm_lua_message_handler);
  lua_pushcfunction(L, build_models);
  lua_pushlightuserdata(L, &ctx);
  lua_pushvalue(L, loaded);
  int rc = LM_OK;
  if (lua_pcall(L, 2, 0, loaded + 1) != LUA_OK) {
    char *msg = lm_xstrdup(lua_tostring(L, -1));
    lua_settop(L, loaded);
    /* where: "file:line" of the table (and part) being read */
    lua_getglobal(L, "require");
    lua_pushliteral(L, "luamig.models");
    const char *where = path;
    if (lua_pcall(L, 1, 1, 0) == LUA_OK) {
      lua_getfield(L, -1, "locate");
      lua_pushvalue(L, loaded);
      if (*ctx.table) lua_pushstring(L, ctx.table);
      else lua_pushnil(L);
      if (*ctx.part) lua_pushstring(L, ctx.part);
      else lua_pushnil(L);
      if (lua_pcall(L, 3, 1, 0) == LUA_OK && lua_isstring(L, -1))
        where = lua_tostring(L, -1);
    }
    /* the op parsers' messages start with the op name they were given */
    const char *m = msg;
    if (strncmp(m, "column: ", 8) == 0) m += 8;
    else if (strncmp(m, "constraint: ", 12) == 0) m += 12;
    else if (strncmp(m, "models: ", 8) == 0) m += 8;
    if (*ctx.table && *ctx.part)
      rc = lm_err_set(&env->err, "%s: table %s, %s: %s", where, ctx.table,
                      ctx.part, m);
    else if (*ctx.table)
      rc = lm_err_set(&env->err, "%s: table %s: %s", where, ctx.table, m);
    else
      rc = lm_err_set(&env->err, "%s: %s", where, m);
    free(msg);
    lm_err_kind(&env->err, "models_error");
  }
  lua_settop(L, base);
  if (rc == LM_OK) normalize(env, out);
  return rc;
}

int lm_models_path(lm_env *env, const char *given, const char **out) {
  *out = given ? given : env->models;
  if (*out) return LM_OK;
  return lm_err_set(&env->err, "no models file: set models = \"models.lua\" "
                    "in %s or give --models FILE (`luamig schema --models` "
                    "writes one from the database)",
                    env->config_path ? env->config_path : "luamig.lua");
}

/* ---- filters ----------------------------------------------------------- */

static int matches(const lm_strvec *patterns, const lm_mtable *t) {
  for (size_t i = 0; i < patterns->n; i++) {
    const char *p = patterns->items[i];
    if (fnmatch(p, t->name, 0) == 0) return 1;
    if (t->schema && strchr(p, '.')) {
      char *full = lm_xasprintf("%s.%s", t->schema, t->name);
      int yes = fnmatch(p, full, 0) == 0;
      free(full);
      if (yes) return 1;
    }
  }
  return 0;
}

void lm_models_filter(const lm_env *env, lm_schema *s) {
  size_t k = 0;
  for (size_t i = 0; i < s->ntables; i++) {
    const lm_mtable *t = &s->tables[i];
    if (env->include_tables.n && !matches(&env->include_tables, t)) continue;
    if (matches(&env->exclude_tables, t)) continue;
    s->tables[k++] = s->tables[i];
  }
  s->ntables = k;
}

/* ---- the database at head ---------------------------------------------- */

int lm_models_at_head(lm_env *env) {
  char **current = NULL;
  int rc = lm_scripts_load(env);
  if (rc == LM_OK) rc = lm_current(&current, env);
  if (rc != LM_OK) return LM_ERROR;
  size_t n = 0;
  while (current[n]) n++;
  lm_revlist cur = {0}, heads = {0};
  rc = lm_graph_current(env->graph, (const char *const *)current, n, &cur,
                        &env->err);
  if (rc == LM_OK) rc = lm_graph_heads(env->graph, &heads);
  int same = rc == LM_OK && heads.n == cur.n;
  for (size_t i = 0; same && i < heads.n; i++) {
    int found = 0;
    for (size_t k = 0; k < cur.n; k++) found |= cur.idx[k] == heads.idx[i];
    same = found;
  }
  if (rc == LM_OK && !same) {
    lm_buf at = LM_BUF_INIT, want = LM_BUF_INIT;
    for (size_t k = 0; k < n; k++)
      lm_buf_printf(&at, "%s%s", k ? ", " : "", current[k]);
    for (size_t i = 0; i < heads.n; i++)
      lm_buf_printf(&want, "%s%s", i ? ", " : "",
                    lm_graph_rev(env->graph, heads.idx[i])->id);
    rc = lm_err_set(&env->err, "the database is not at head (it is at %s; "
                    "the head%s %s %s): run `luamig upgrade head` first",
                    n ? lm_buf_str(&at) : "base", heads.n == 1 ? "" : "s",
                    heads.n == 1 ? "is" : "are",
                    heads.n ? lm_buf_str(&want) : "none");
    if (heads.n > 1)
      lm_err_set(&env->err, "the scripts have %zu heads (%s): join them with "
                 "`luamig merge heads -m MSG`, then `luamig upgrade head`",
                 heads.n, lm_buf_str(&want));
    lm_err_kind(&env->err, "not_at_head");
    lm_buf_free(&at);
    lm_buf_free(&want);
  }
  lm_revlist_free(&cur);
  lm_revlist_free(&heads);
  lm_free_list(current);
  return rc;
}

/* ---- a model as Lua tables (for the renderers) -------------------------- */

static void set_string(lua_State *L, const char *key, const char *value) {
  if (!value) return;
  lua_pushstring(L, value);
  lua_setfield(L, -2, key);
}

static void push_names(lua_State *L, const char *const *names, size_t n) {
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushstring(L, names[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

static void push_default(lua_State *L, const lm_default *d) {
  static const char *const kinds[] = {
    [LM_DEF_STRING] = "string", [LM_DEF_INT] = "int", [LM_DEF_FLOAT] = "float",
    [LM_DEF_BOOL] = "bool", [LM_DEF_SQL] = "sql", [LM_DEF_FUNC] = "func",
    [LM_DEF_RAW] = "sql"};
  lua_createtable(L, 0, 2);
  lua_pushstring(L, kinds[d->kind]);
  lua_setfield(L, -2, "kind");
  switch (d->kind) {
  case LM_DEF_INT: lua_pushinteger(L, (lua_Integer)d->i); break;
  case LM_DEF_FLOAT: lua_pushnumber(L, d->f); break;
  case LM_DEF_BOOL: lua_pushboolean(L, (int)d->i); break;
  default: lua_pushstring(L, d->text ? d->text : ""); break;
  }
  lua_setfield(L, -2, "value");
}

/* The primary key's columns, or 0. */
static size_t pk_size(const lm_mtable *t) {
  for (size_t i = 0; i < t->nconstraints; i++)
    if (t->constraints[i].con.kind == LM_CON_PRIMARY_KEY)
      return t->constraints[i].con.ncolumns ? t->constraints[i].con.ncolumns
                                            : 1;
  return 0;
}

static void push_column(lua_State *L, const lm_mtable *t,
                        const lm_mcolumn *c) {
  lua_createtable(L, 0, 6);
  set_string(L, "name", c->name);
  lm_buf b = LM_BUF_INIT;
  lm_type_text(&b, &c->type);
  set_string(L, "type", lm_buf_str(&b));
  lm_buf_free(&b);
  lua_pushboolean(L, c->nullable);
  lua_setfield(L, -2, "nullable");
  if (c->server_default.kind != LM_DEF_NONE &&
      c->server_default.kind != LM_DEF_DROP) {
    push_default(L, &c->server_default);
    lua_setfield(L, -2, "default");
  }
  set_string(L, "comment", c->comment);
  /* how a lone integer primary key is numbered, where it needs saying */
  int integer = c->type.kind == LM_T_INTEGER || c->type.kind == LM_T_BIGINT ||
                c->type.kind == LM_T_SMALLINT;
  if (integer && pk_size(t) == 1) {
    int in_pk = 0;
    for (size_t i = 0; i < t->nconstraints; i++) {
      const lm_mconstraint *mc = &t->constraints[i];
      if (mc->con.kind != LM_CON_PRIMARY_KEY) continue;
      in_pk = (mc->con.ncolumns && strcmp(mc->con.columns[0], c->name) == 0) ||
              (mc->column && strcmp(mc->column, c->name) == 0);
    }
    if (in_pk && c->serial == LM_MSERIAL_NONE) {
      lua_pushboolean(L, 0);
      lua_setfield(L, -2, "autoincrement");
    } else if (in_pk && c->serial != LM_MSERIAL_SERIAL) {
      lua_pushliteral(L, "identity");
      lua_setfield(L, -2, "autoincrement");
    }
  }
}

void lm_models_push_constraint(lua_State *L, const lm_mconstraint *mc) {
  static const char *const kinds[] = {
    [LM_CON_PRIMARY_KEY] = "primary_key", [LM_CON_UNIQUE] = "unique",
    [LM_CON_CHECK] = "check", [LM_CON_FOREIGN_KEY] = "foreign_key",
    [LM_CON_EXCLUDE] = "exclude"};
  const lm_constraint *c = &mc->con;
  lua_createtable(L, 0, 8);
  set_string(L, "kind", kinds[c->kind]);
  set_string(L, "name", c->name);
  if (c->ncolumns) push_names(L, c->columns, c->ncolumns);
  else if (mc->column && c->kind != LM_CON_CHECK)
    push_names(L, &mc->column, 1);
  else
    lua_newtable(L);
  lua_setfield(L, -2, "columns");
  set_string(L, "condition", c->condition ? c->condition : mc->sql);
  if (c->kind == LM_CON_FOREIGN_KEY) {
    set_string(L, "ref_schema", c->ref_schema);
    set_string(L, "ref_table", c->ref_table);
    push_names(L, c->ref_columns, c->nref_columns);
    lua_setfield(L, -2, "ref_columns");
    set_string(L, "ondelete", c->ondelete);
    set_string(L, "onupdate", c->onupdate);
    if (c->deferrable == 1) {
      lua_pushboolean(L, 1);
      lua_setfield(L, -2, "deferrable");
    }
    set_string(L, "initially", c->initially);
  }
  if (c->kind == LM_CON_EXCLUDE) set_string(L, "sql", mc->sql);
}

void lm_models_push_index(lua_State *L, const lm_mindex *mi) {
  const lm_index *ix = &mi->ix;
  lua_createtable(L, 0, 5);
  set_string(L, "name", mi->name);
  lua_createtable(L, (int)ix->ncolumns, 0);
  for (size_t i = 0; i < ix->ncolumns; i++) {
    lua_createtable(L, 0, 2);
    set_string(L, "text", ix->columns[i]);
    lua_pushboolean(L, ix->is_expr && ix->is_expr[i]);
    lua_setfield(L, -2, "expr");
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "columns");
  lua_pushboolean(L, ix->unique);
  lua_setfield(L, -2, "unique");
  set_string(L, "where", ix->where);
  set_string(L, "method", mi->method);
  if (!ix->ncolumns) set_string(L, "sql", mi->sql);
}

void lm_models_push_column(lua_State *L, const lm_mtable *t,
                           const lm_mcolumn *c) {
  push_column(L, t, c);
}

void lm_models_push_table(lua_State *L, const lm_mtable *t) {
  lua_createtable(L, 0, 6);
  set_string(L, "name", t->name);
  set_string(L, "schema", t->schema);
  set_string(L, "comment", t->comment);
  lua_createtable(L, (int)t->ncolumns, 0);
  for (size_t i = 0; i < t->ncolumns; i++) {
    push_column(L, t, &t->columns[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "columns");
  lua_createtable(L, (int)t->nconstraints, 0);
  for (size_t i = 0; i < t->nconstraints; i++) {
    lm_models_push_constraint(L, &t->constraints[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "constraints");
  lua_createtable(L, (int)t->nindexes, 0);
  for (size_t i = 0; i < t->nindexes; i++) {
    lm_models_push_index(L, &t->indexes[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "indexes");
}

void lm_models_push_schema(lua_State *L, const lm_schema *s) {
  lua_createtable(L, 0, 1);
  lua_createtable(L, (int)s->ntables, 0);
  for (size_t i = 0; i < s->ntables; i++) {
    lm_models_push_table(L, &s->tables[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
  lua_setfield(L, -2, "tables");
}
