/*
 * op_alter.c - the op calls that change an existing table: alter_column,
 * create_index / drop_index, the constraint operations and
 * batch_alter_table.  Each call checks its arguments (raising an error that
 * names the operation, the argument and the script line) and builds an
 * operation value; the executor decides what happens to it.
 *
 * Every operation has one builder, shared by its op.* form (which names
 * the table) and its batch form (where the batch names it): the builder
 * reads its arguments from given stack positions.
 */
#include <lauxlib.h>
#include <string.h>

#include "op_internal.h"
#include "keep.h"

#define BATCH_META "luamig.batch"

/* Where a builder finds its arguments: the operation's own name (index,
 * constraint or column; 0 when it has none) and the first argument after
 * the name and the table. */
typedef struct args {
  int name;
  int rest;
} args;

typedef void (*builder)(lua_State *L, lm_arena *a, args at, lm_op *op);

static const char *opt_name(lua_State *L, lm_arena *a, int idx, const char *op,
                            const char *what) {
  if (lua_isnoneornil(L, idx)) return NULL;
  return lm_arena_strdup(a, lm_op_check_name(L, idx, op, what));
}

/* A string option and its dialect-named forms (postgresql_using, ...):
 * the plain one when given, else the running dialect's, as Alembic's
 * dialect keyword arguments apply on their dialect only.  Every form
 * given is checked. */
static const char *dialect_string(lua_State *L, lm_arena *a, int o,
                                  const char *op, const char *option) {
  const char *s = lm_op_opt_string(L, a, o, option, op), *own;
  const char *const *forms = lm_op_dialect_forms(L, a, op, option, &own);
  for (size_t i = 0; forms[i]; i++) {
    const char *v = lm_op_opt_string(L, a, o, forms[i], op);
    if (!s && forms[i] == own) s = v;
  }
  return s;
}

/* The same for a boolean that is set by any of its forms. */
static int dialect_flag(lua_State *L, lm_arena *a, int o, const char *op,
                        const char *option) {
  int v = lm_op_opt_bool(L, o, option, op, 0);
  const char *own;
  const char *const *forms = lm_op_dialect_forms(L, a, op, option, &own);
  for (size_t i = 0; forms[i]; i++)
    if (lm_op_opt_bool(L, o, forms[i], op, 0) && forms[i] == own) v = 1;
  return v;
}

/* ---- the builders ----------------------------------------------------- */

/* batch.add_column(colspec, opts): opts may place the column. */
static void b_add_column(lua_State *L, lm_arena *a, args at, lm_op *op) {
  static const char *const keys[] = {"schema", "insert_before",
                                     "insert_after", NULL};
  op->kind = LM_OP_ADD_COLUMN;
  op->columns = lm_arena_alloc(a, sizeof *op->columns);
  op->ncolumns = 1;
  lm_op_parse_column(L, a, at.rest, "add_column", &op->columns[0]);
  lm_op_check_opts(L, at.rest + 1, "add_column", keys);
  op->schema = lm_op_opt_string(L, a, at.rest + 1, "schema", "add_column");
  op->insert_before = lm_op_opt_string(L, a, at.rest + 1, "insert_before",
                                       "add_column");
  op->insert_after = lm_op_opt_string(L, a, at.rest + 1, "insert_after",
                                      "add_column");
  if (op->insert_before && op->insert_after)
    luaL_error(L, "add_column: give insert_before or insert_after, not both");
  lm_naming_columns(L, a, "add_column", op);
}

static void b_drop_column(lua_State *L, lm_arena *a, args at, lm_op *op) {
  static const char *const keys[] = {"schema", "keep", NULL};
  op->kind = LM_OP_DROP_COLUMN;
  op->name = lm_arena_strdup(a, lm_op_check_name(L, at.name, "drop_column",
                                                 "the column name"));
  lm_op_check_opts(L, at.rest, "drop_column", keys);
  op->schema = lm_op_opt_string(L, a, at.rest, "schema", "drop_column");
  op->keep = lm_keep_option(L, at.rest, "drop_column");
}

/* A field of the options table at idx, pushed; returns its Lua type. */
static int field(lua_State *L, int idx, const char *key) {
  if (lua_isnoneornil(L, idx)) {
    lua_pushnil(L);
    return LUA_TNIL;
  }
  return lua_getfield(L, idx, key);
}

/* A type given as `type` or Alembic's `type_`. */
static void alter_type(lua_State *L, lm_arena *a, int o, const char *key,
                       const char *alt, lm_type *t) {
  memset(t, 0, sizeof *t);
  t->length = t->precision = t->scale = -1;
  if (field(L, o, key) == LUA_TNIL) {
    lua_pop(L, 1);
    field(L, o, alt);
  }
  if (!lua_isnil(L, -1)) lm_op_parse_type(L, a, -1, "alter_column", t);
  lua_pop(L, 1);
}

/* nullable = true/false, or nil (unchanged). */
static int tri_bool(lua_State *L, int o, const char *key, const char *op) {
  int t = field(L, o, key);
  int v = -1;
  if (t == LUA_TBOOLEAN) v = lua_toboolean(L, -1);
  else if (t != LUA_TNIL)
    luaL_error(L, "%s: %s must be a boolean, not a %s", op, key,
               luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

static void b_alter_column(lua_State *L, lm_arena *a, args at, lm_op *op) {
  static const char *const keys[] = {
    "nullable", "type", "type_", "new_column_name", "server_default",
    "comment", "existing_type", "existing_nullable",
    "existing_server_default", "existing_comment", "using", "schema",
    "computed", "identity", "existing_identity", NULL};
  const char *name = "alter_column";
  int o = at.rest;
  op->kind = LM_OP_ALTER_COLUMN;
  op->name = lm_arena_strdup(a, lm_op_check_name(L, at.name, name,
                                                 "the column name"));
  lm_op_check_opts(L, o, name, keys);
  if (field(L, o, "computed") != LUA_TNIL)
    luaL_error(L, "%s: adding or removing computed (GENERATED ALWAYS AS) on "
               "an existing column is not supported: add a new column and "
               "drop the old one", name);
  lua_pop(L, 1);
  lm_alter *al = &op->alter;
  al->set_nullable = tri_bool(L, o, "nullable", name);
  al->existing_nullable = tri_bool(L, o, "existing_nullable", name);
  alter_type(L, a, o, "type", "type_", &al->type);
  alter_type(L, a, o, "existing_type", "existing_type", &al->existing_type);
  al->new_name = lm_op_opt_string(L, a, o, "new_column_name", name);
  field(L, o, "server_default");
  lm_op_parse_default(L, a, lua_gettop(L), name, 1, &al->server_default);
  lua_pop(L, 1);
  field(L, o, "existing_server_default");
  lm_op_parse_default(L, a, lua_gettop(L), name, 1,
                      &al->existing_server_default);
  lua_pop(L, 1);
  int t = field(L, o, "comment");
  if (t == LUA_TSTRING) {
    al->comment = lm_arena_strdup(a, lm_op_tostring(L, -1, name, "comment"));
    al->comment_given = 1;
  } else if (t == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
    al->comment_given = 1;      /* comment = false removes it */
  } else if (t != LUA_TNIL) {
    luaL_error(L, "%s: comment must be a string or false, not a %s", name,
               luaL_typename(L, -1));
  }
  lua_pop(L, 1);
  al->using_expr = dialect_string(L, a, o, name, "using");
  op->schema = lm_op_opt_string(L, a, o, "schema", name);
  if (field(L, o, "identity") == LUA_TBOOLEAN && !lua_toboolean(L, -1))
    al->identity_drop = 1;
  else
    lm_op_parse_identity(L, -1, name, "identity", &al->identity);
  lua_pop(L, 1);
  field(L, o, "existing_identity");
  lm_op_parse_identity(L, -1, name, "existing_identity",
                       &al->existing_identity);
  lua_pop(L, 1);
}

/* Index columns: names, or op.text("expr") for expressions. */
static void index_columns(lua_State *L, lm_arena *a, int idx, lm_index *ix) {
  const char *kind, *sql;
  idx = lua_absindex(L, idx);
  if (lua_type(L, idx) == LUA_TSTRING || lm_op_is_fragment(L, idx, &kind,
                                                           &sql)) {
    const char **cols = lm_arena_alloc(a, sizeof *cols);
    int *expr = lm_arena_alloc(a, sizeof *expr);
    expr[0] = lua_type(L, idx) != LUA_TSTRING;
    cols[0] = lm_arena_strdup(a, expr[0] ? sql
                                         : lm_op_tostring(L, idx, "create_index",
                                                          "the column"));
    ix->columns = cols;
    ix->is_expr = expr;
    ix->ncolumns = 1;
    return;
  }
  if (!lua_istable(L, idx))
    luaL_error(L, "create_index: the columns must be a list of names or "
               "op.text(...) expressions, not a %s", luaL_typename(L, idx));
  size_t n = (size_t)luaL_len(L, idx);
  if (!n) luaL_error(L, "create_index: the columns must not be empty");
  const char **cols = lm_arena_alloc(a, n * sizeof *cols);
  int *expr = lm_arena_alloc(a, n * sizeof *expr);
  for (size_t i = 0; i < n; i++) {
    lua_geti(L, idx, (lua_Integer)i + 1);
    if (lua_type(L, -1) == LUA_TSTRING && *lua_tostring(L, -1)) {
      cols[i] = lm_arena_strdup(a, lm_op_tostring(L, -1, "create_index",
                                                  "a column"));
    } else if (lm_op_is_fragment(L, lua_gettop(L), &kind, &sql)) {
      cols[i] = lm_arena_strdup(a, sql);
      expr[i] = 1;
    } else {
      luaL_error(L, "create_index: column %d must be a name or "
                 "op.text(...), not a %s", (int)i + 1, luaL_typename(L, -1));
    }
    lua_pop(L, 1);
  }
  ix->columns = cols;
  ix->is_expr = expr;
  ix->ncolumns = n;
}

/* A string or op.text(...) option (where = ...). */
static const char *opt_sql(lua_State *L, lm_arena *a, int o, const char *key,
                           const char *op) {
  const char *kind, *sql;
  int t = field(L, o, key);
  const char *s = NULL;
  if (t == LUA_TSTRING) s = lm_arena_strdup(a, lm_op_tostring(L, -1, op, key));
  else if (lm_op_is_fragment(L, lua_gettop(L), &kind, &sql))
    s = lm_arena_strdup(a, sql);
  else if (t != LUA_TNIL)
    luaL_error(L, "%s: %s must be SQL (a string or op.text), not a %s", op,
               key, luaL_typename(L, -1));
  lua_pop(L, 1);
  return s;
}

static void b_create_index(lua_State *L, lm_arena *a, args at, lm_op *op) {
  static const char *const keys[] = {
    "unique", "where", "if_not_exists", "concurrently", "schema", "include",
    "using", NULL};
  const char *name = "create_index";
  int o = at.rest + 1;
  op->kind = LM_OP_CREATE_INDEX;
  op->name = opt_name(L, a, at.name, name, "the index name");
  if (lua_isnoneornil(L, at.rest))
    luaL_error(L, "create_index: the columns are missing");
  index_columns(L, a, at.rest, &op->index);
  lm_naming n = {.table = op->table, .name = op->name,
                 .columns = op->index.columns,
                 .ncolumns = op->index.ncolumns};
  op->name = lm_naming_name(L, a, name, "ix", &n);
  if (!op->name)
    luaL_error(L, "create_index: the index name must be a string (nil "
               "needs a naming_convention with ix)");
  lm_op_check_opts(L, o, name, keys);
  op->index.unique = lm_op_opt_bool(L, o, "unique", name, 0);
  const char *own;
  op->index.where = opt_sql(L, a, o, "where", name);
  const char *const *wheres = lm_op_dialect_forms(L, a, name, "where", &own);
  for (size_t i = 0; wheres[i]; i++) {
    const char *w = opt_sql(L, a, o, wheres[i], name);
    if (w && !op->index.where && wheres[i] == own) op->index.where = w;
  }
  op->index.concurrently = dialect_flag(L, a, o, name, "concurrently");
  op->if_not_exists = lm_op_opt_bool(L, o, "if_not_exists", name, 0);
  op->schema = lm_op_opt_string(L, a, o, "schema", name);
  /* include, else the running dialect's form of it (another dialect's is
   * not read) */
  lm_op_dialect_forms(L, a, name, "include", &own);
  const char *const includes[] = {"include", own};
  for (size_t i = 0; i < 2 && includes[i]; i++) {
    if (field(L, o, includes[i]) != LUA_TNIL && !op->index.include)
      op->index.include = lm_op_string_array(L, a, -1, name, includes[i],
                                             &op->index.ninclude);
    lua_pop(L, 1);
  }
  op->index.method = dialect_string(L, a, o, name, "using");
}

/* op.create_table_comment(table, comment, opts) and
 * op.drop_table_comment(table, opts). */
static void b_table_comment(lua_State *L, lm_arena *a, args at, lm_op *op) {
  static const char *const keys[] = {"schema", "existing_comment", NULL};
  const char *name = "create_table_comment";
  op->kind = LM_OP_TABLE_COMMENT;
  if (lua_type(L, at.rest) != LUA_TSTRING)
    luaL_error(L, "%s: the comment must be a string, not a %s", name,
               luaL_typename(L, at.rest));
  op->comment = lm_arena_strdup(a, lm_op_tostring(L, at.rest, name,
                                                  "the comment"));
  lm_op_check_opts(L, at.rest + 1, name, keys);
  op->schema = lm_op_opt_string(L, a, at.rest + 1, "schema", name);
}

static void b_drop_table_comment(lua_State *L, lm_arena *a, args at,
                                 lm_op *op) {
  static const char *const keys[] = {"schema", "existing_comment", NULL};
  const char *name = "drop_table_comment";
  op->kind = LM_OP_TABLE_COMMENT;
  lm_op_check_opts(L, at.rest, name, keys);
  op->schema = lm_op_opt_string(L, a, at.rest, "schema", name);
}

static void b_drop_index(lua_State *L, lm_arena *a, args at, lm_op *op) {
  static const char *const keys[] = {"if_exists", "concurrently", "schema",
                                     NULL};
  const char *name = "drop_index";
  op->kind = LM_OP_DROP_INDEX;
  op->name = lm_arena_strdup(a, lm_op_check_name(L, at.name, name,
                                                 "the index name"));
  lm_op_check_opts(L, at.rest, name, keys);
  op->if_exists = lm_op_opt_bool(L, at.rest, "if_exists", name, 0);
  op->index.concurrently = dialect_flag(L, a, at.rest, name, "concurrently");
  op->schema = lm_op_opt_string(L, a, at.rest, "schema", name);
}

/* The one constraint an add-constraint operation carries. */
static lm_constraint *one_constraint(lm_arena *a, lm_op *op,
                                     lm_constraint_kind kind) {
  op->kind = LM_OP_ADD_CONSTRAINT;
  op->constraints = lm_arena_alloc(a, sizeof *op->constraints);
  op->nconstraints = 1;
  lm_constraint *c = &op->constraints[0];
  c->kind = kind;
  c->deferrable = -1;
  return c;
}

static void b_create_unique(lua_State *L, lm_arena *a, args at, lm_op *op) {
  static const char *const keys[] = {"schema", "using_index", NULL};
  const char *name = "create_unique_constraint";
  lm_constraint *c = one_constraint(a, op, LM_CON_UNIQUE);
  c->name = opt_name(L, a, at.name, name, "the constraint name");
  c->columns = lm_op_string_array(L, a, at.rest, name, "the columns",
                                  &c->ncolumns);
  lm_op_check_opts(L, at.rest + 1, name, keys);
  op->schema = lm_op_opt_string(L, a, at.rest + 1, "schema", name);
  c->using_index = lm_op_opt_string(L, a, at.rest + 1, "using_index", name);
  lm_naming_constraint(L, a, name, op->table, c);
}

static void b_create_primary(lua_State *L, lm_arena *a, args at, lm_op *op) {
  static const char *const keys[] = {"schema", NULL};
  const char *name = "create_primary_key";
  lm_constraint *c = one_constraint(a, op, LM_CON_PRIMARY_KEY);
  c->name = opt_name(L, a, at.name, name, "the constraint name");
  c->columns = lm_op_string_array(L, a, at.rest, name, "the columns",
                                  &c->ncolumns);
  lm_op_check_opts(L, at.rest + 1, name, keys);
  op->schema = lm_op_opt_string(L, a, at.rest + 1, "schema", name);
  lm_naming_constraint(L, a, name, op->table, c);
}

static void b_create_check(lua_State *L, lm_arena *a, args at, lm_op *op) {
  static const char *const keys[] = {"schema", "not_valid", NULL};
  const char *name = "create_check_constraint";
  const char *kind, *sql;
  lm_constraint *c = one_constraint(a, op, LM_CON_CHECK);
  c->name = opt_name(L, a, at.name, name, "the constraint name");
  if (lua_type(L, at.rest) == LUA_TSTRING && *lua_tostring(L, at.rest))
    c->condition = lm_arena_strdup(a, lm_op_tostring(L, at.rest, name,
                                                     "the condition"));
  else if (lm_op_is_fragment(L, at.rest, &kind, &sql))
    c->condition = lm_arena_strdup(a, sql);
  else
    luaL_error(L, "%s: the condition must be SQL (a string or op.text), not "
               "a %s", name, luaL_typename(L, at.rest));
  lm_op_check_opts(L, at.rest + 1, name, keys);
  op->schema = lm_op_opt_string(L, a, at.rest + 1, "schema", name);
  c->not_valid = lm_op_opt_bool(L, at.rest + 1, "not_valid", name, 0);
  lm_naming_constraint(L, a, name, op->table, c);
}

static void b_create_foreign(lua_State *L, lm_arena *a, args at, lm_op *op) {
  static const char *const keys[] = {
    "ondelete", "onupdate", "deferrable", "initially", "source_schema",
    "referent_schema", "schema", "match", "not_valid", NULL};
  const char *name = "create_foreign_key";
  int o = at.rest + 3;
  lm_constraint *c = one_constraint(a, op, LM_CON_FOREIGN_KEY);
  c->name = opt_name(L, a, at.name, name, "the constraint name");
  c->ref_table = lm_arena_strdup(a, lm_op_check_name(L, at.rest, name,
                                                     "the referent table"));
  c->columns = lm_op_string_array(L, a, at.rest + 1, name,
                                  "the local columns", &c->ncolumns);
  c->ref_columns = lm_op_string_array(L, a, at.rest + 2, name,
                                      "the remote columns", &c->nref_columns);
  if (c->ncolumns != c->nref_columns)
    luaL_error(L, "%s: %d local columns but %d remote columns", name,
               (int)c->ncolumns, (int)c->nref_columns);
  lm_op_check_opts(L, o, name, keys);
  c->ondelete = lm_op_opt_string(L, a, o, "ondelete", name);
  c->onupdate = lm_op_opt_string(L, a, o, "onupdate", name);
  c->initially = lm_op_opt_string(L, a, o, "initially", name);
  c->match = lm_op_opt_string(L, a, o, "match", name);
  c->ref_schema = lm_op_opt_string(L, a, o, "referent_schema", name);
  int d = tri_bool(L, o, "deferrable", name);
  c->deferrable = d;
  c->not_valid = lm_op_opt_bool(L, o, "not_valid", name, 0);
  const char *schema = lm_op_opt_string(L, a, o, "source_schema", name);
  if (!schema) schema = lm_op_opt_string(L, a, o, "schema", name);
  if (schema) op->schema = schema;
  lm_naming_constraint(L, a, name, op->table, c);
}

/* create_exclude_constraint(name, table, {{"col", "="},
 * {op.text("expr"), "&&"}}, {using = "gist", where = ...}). */
static void b_create_exclude(lua_State *L, lm_arena *a, args at, lm_op *op) {
  static const char *const keys[] = {"using", "where", "schema",
                                     "deferrable", "initially", NULL};
  const char *name = "create_exclude_constraint";
  const char *kind, *sql;
  lm_constraint *c = one_constraint(a, op, LM_CON_EXCLUDE);
  c->name = opt_name(L, a, at.name, name, "the constraint name");
  int el = at.rest;
  if (!lua_istable(L, el) || !luaL_len(L, el))
    luaL_error(L, "%s: the elements must be a list of {column or "
               "op.text(expr), operator} pairs", name);
  size_t n = (size_t)luaL_len(L, el);
  const char **cols = lm_arena_alloc(a, n * sizeof *cols);
  const char **ops = lm_arena_alloc(a, n * sizeof *ops);
  int *expr = lm_arena_alloc(a, n * sizeof *expr);
  for (size_t i = 0; i < n; i++) {
    lua_geti(L, el, (lua_Integer)i + 1);
    int e = lua_gettop(L);
    if (!lua_istable(L, e) || lm_op_is_fragment(L, e, &kind, &sql))
      luaL_error(L, "%s: element %d must be {column or op.text(expr), "
                 "operator}", name, (int)i + 1);
    lua_geti(L, e, 1);
    if (lua_type(L, -1) == LUA_TSTRING && *lua_tostring(L, -1)) {
      cols[i] = lm_arena_strdup(a, lm_op_tostring(L, -1, name, "a column"));
    } else if (lm_op_is_fragment(L, lua_gettop(L), &kind, &sql)) {
      cols[i] = lm_arena_strdup(a, sql);
      expr[i] = 1;
    } else {
      luaL_error(L, "%s: element %d starts with a column name or "
                 "op.text(expr)", name, (int)i + 1);
    }
    lua_geti(L, e, 2);
    if (lua_type(L, -1) != LUA_TSTRING || !*lua_tostring(L, -1))
      luaL_error(L, "%s: element %d needs its operator (\"=\", \"&&\")",
                 name, (int)i + 1);
    ops[i] = lm_arena_strdup(a, lm_op_tostring(L, -1, name, "an operator"));
    lua_pop(L, 3);
  }
  c->columns = cols;
  c->ncolumns = n;
  c->operators = ops;
  c->is_expr = expr;
  int o = at.rest + 1;
  lm_op_check_opts(L, o, name, keys);
  c->method = lm_op_opt_string(L, a, o, "using", name);
  c->condition = opt_sql(L, a, o, "where", name);
  c->initially = lm_op_opt_string(L, a, o, "initially", name);
  c->deferrable = tri_bool(L, o, "deferrable", name);
  op->schema = lm_op_opt_string(L, a, o, "schema", name);
  if (!c->name)
    luaL_error(L, "%s: the constraint name must be a string", name);
}

static void b_drop_constraint(lua_State *L, lm_arena *a, args at, lm_op *op) {
  static const char *const keys[] = {"type_", "schema", "if_exists", NULL};
  static const char *const types[] = {"foreignkey", "unique", "check",
                                      "primary", NULL};
  const char *name = "drop_constraint";
  op->kind = LM_OP_DROP_CONSTRAINT;
  op->name = lm_arena_strdup(a, lm_op_check_name(L, at.name, name,
                                                 "the constraint name"));
  lm_op_check_opts(L, at.rest, name, keys);
  op->constraint_type = lm_op_opt_string(L, a, at.rest, "type_", name);
  if (op->constraint_type) {
    int ok = 0;
    for (size_t i = 0; types[i]; i++)
      if (strcmp(types[i], op->constraint_type) == 0) ok = 1;
    if (!ok)
      luaL_error(L, "%s: unknown type_ '%s' (foreignkey, unique, check, "
                 "primary)", name, op->constraint_type);
  }
  op->if_exists = lm_op_opt_bool(L, at.rest, "if_exists", name, 0);
  op->schema = lm_op_opt_string(L, a, at.rest, "schema", name);
  if (op->constraint_type) {
    /* An explicit name a %(constraint_name)s template turns into the full
     * one, as the constraint's creation did. */
    static const char *const kinds[] = {"fk", "uq", "ck", "pk"};
    size_t k = 0;
    while (strcmp(types[k], op->constraint_type) != 0) k++;
    lm_naming n = {.table = op->table, .name = op->name};
    op->name = lm_naming_name(L, a, name, kinds[k], &n);
  }
}

/* validate_constraint(name, table, {schema}): check the rows of a
 * constraint made with not_valid = true (PostgreSQL; nothing on SQLite). */
static void b_validate(lua_State *L, lm_arena *a, args at, lm_op *op) {
  static const char *const keys[] = {"schema", NULL};
  const char *name = "validate_constraint";
  op->kind = LM_OP_VALIDATE_CONSTRAINT;
  op->name = lm_arena_strdup(a, lm_op_check_name(L, at.name, name,
                                                 "the constraint name"));
  lm_op_check_opts(L, at.rest, name, keys);
  op->schema = lm_op_opt_string(L, a, at.rest, "schema", name);
}

/* ---- the op.* forms ---------------------------------------------------- */

/* Build with the table at `table_arg` and apply.  The arena goes above the
 * arguments (settop) so it is freed even when a check raises. */
static int run(lua_State *L, builder b, const char *op_name, int nargs,
               int table_arg, args at) {
  lua_settop(L, nargs);
  lm_env *env = lm_op_get_env(L);
  lm_arena *a = lm_op_push_arena(L);
  lm_op op;
  memset(&op, 0, sizeof op);
  op.alter.set_nullable = op.alter.existing_nullable = -1;
  op.table = lm_arena_strdup(a, lm_op_check_name(L, table_arg, op_name,
                                                 "the table name"));
  b(L, a, at, &op);
  lm_op_apply_or_raise(L, env, &op, a);
  return 0;
}

static int op_alter_column(lua_State *L) {
  return run(L, b_alter_column, "alter_column", 3, 1, (args){2, 3});
}
static int op_create_index(lua_State *L) {
  return run(L, b_create_index, "create_index", 4, 2, (args){1, 3});
}
static int op_drop_index(lua_State *L) {
  return run(L, b_drop_index, "drop_index", 3, 2, (args){1, 3});
}
static int op_create_unique(lua_State *L) {
  return run(L, b_create_unique, "create_unique_constraint", 4, 2,
             (args){1, 3});
}
static int op_create_check(lua_State *L) {
  return run(L, b_create_check, "create_check_constraint", 4, 2, (args){1, 3});
}
static int op_create_primary(lua_State *L) {
  return run(L, b_create_primary, "create_primary_key", 4, 2, (args){1, 3});
}
static int op_create_foreign(lua_State *L) {
  return run(L, b_create_foreign, "create_foreign_key", 6, 2, (args){1, 3});
}
static int op_validate_constraint(lua_State *L) {
  return run(L, b_validate, "validate_constraint", 3, 2, (args){1, 3});
}
static int op_table_comment(lua_State *L) {
  return run(L, b_table_comment, "create_table_comment", 3, 1, (args){0, 2});
}
static int op_drop_table_comment(lua_State *L) {
  return run(L, b_drop_table_comment, "drop_table_comment", 2, 1,
             (args){0, 2});
}
static int op_create_exclude(lua_State *L) {
  return run(L, b_create_exclude, "create_exclude_constraint", 4, 2,
             (args){1, 3});
}
static int op_drop_constraint(lua_State *L) {
  return run(L, b_drop_constraint, "drop_constraint", 3, 2, (args){1, 3});
}

/* ---- batch_alter_table -------------------------------------------------- */

/* The ops a batch gathers, in the arena of the batch's userdata. */
typedef struct batch {
  lm_arena arena;
  lm_op *ops;
  size_t n, cap;
  const char *table, *schema;
  int open;                     /* calls are accepted */
} batch;

static int batch_gc(lua_State *L) {
  batch *b = luaL_checkudata(L, 1, BATCH_META);
  lm_arena_free(&b->arena);
  return 0;
}

static const struct {
  const char *name;
  builder fn;
  int name_first;
} batch_ops[] = {
  {"add_column", b_add_column, 0},
  {"drop_column", b_drop_column, 1},
  {"alter_column", b_alter_column, 1},
  {"create_index", b_create_index, 1},
  {"drop_index", b_drop_index, 1},
  {"create_unique_constraint", b_create_unique, 1},
  {"create_check_constraint", b_create_check, 1},
  {"create_primary_key", b_create_primary, 1},
  {"create_foreign_key", b_create_foreign, 1},
  {"drop_constraint", b_drop_constraint, 1},
  {"create_exclude_constraint", b_create_exclude, 1},
};

/* batch.NAME(...): build into the batch; upvalues: the batch and the
 * index of the operation in batch_ops. */
static int batch_call(lua_State *L) {
  batch *b = lua_touserdata(L, lua_upvalueindex(1));
  size_t k = (size_t)lua_tointeger(L, lua_upvalueindex(2));
  builder fn = batch_ops[k].fn;
  const char *op_name = batch_ops[k].name;
  int name_first = batch_ops[k].name_first;
  if (!b->open)
    luaL_error(L, "batch.%s: the batch is over (call it inside the "
               "function given to batch_alter_table)", op_name);
  if (b->n == b->cap) {
    size_t ncap = b->cap ? b->cap * 2 : 8;
    lm_op *fresh = lm_arena_alloc(&b->arena, ncap * sizeof *fresh);
    if (b->n) memcpy(fresh, b->ops, b->n * sizeof *fresh);
    b->ops = fresh;
    b->cap = ncap;
  }
  lm_op op;
  memset(&op, 0, sizeof op);
  op.alter.set_nullable = op.alter.existing_nullable = -1;
  op.table = b->table;
  fn(L, &b->arena, name_first ? (args){1, 2} : (args){0, 1}, &op);
  if (!op.schema) op.schema = b->schema;
  b->ops[b->n++] = op;
  return 0;
}

/* op.batch_alter_table(table, [opts,] function(batch) ... end): the calls
 * made on `batch` become one operation, one rebuild where one is needed. */
static int op_batch_alter_table(lua_State *L) {
  static const char *const keys[] = {"schema", "recreate", NULL};
  const char *name = "batch_alter_table";
  int fn_arg = lua_type(L, 2) == LUA_TFUNCTION ? 2 : 3;
  lua_settop(L, 3);
  lm_env *env = lm_op_get_env(L);
  const char *table = lm_op_check_name(L, 1, name, "the table name");
  if (lua_type(L, fn_arg) != LUA_TFUNCTION)
    luaL_error(L, "%s: the last argument must be a function(batch), not a %s",
               name, luaL_typename(L, fn_arg));
  int o = fn_arg == 3 ? 2 : 0;
  if (o) lm_op_check_opts(L, o, name, keys);
  batch *b = lua_newuserdatauv(L, sizeof *b, 0);       /* stack: ... batch */
  memset(b, 0, sizeof *b);
  lm_arena_init(&b->arena);
  luaL_setmetatable(L, BATCH_META);
  int bidx = lua_gettop(L);
  b->table = lm_arena_strdup(&b->arena, table);
  b->schema = o ? lm_op_opt_string(L, &b->arena, o, "schema", name) : NULL;
  const char *recreate = o ? lm_op_opt_string(L, &b->arena, o, "recreate",
                                              name) : NULL;
  int mode = 0;
  if (recreate && strcmp(recreate, "always") == 0) mode = 1;
  else if (recreate && strcmp(recreate, "never") == 0) mode = -1;
  else if (recreate && strcmp(recreate, "auto") != 0)
    luaL_error(L, "%s: recreate must be \"auto\", \"always\" or \"never\"",
               name);
  b->open = 1;
  lua_newtable(L);                                 /* stack: ... batch api */
  for (size_t i = 0; i < sizeof batch_ops / sizeof *batch_ops; i++) {
    lua_pushvalue(L, bidx);
    lua_pushinteger(L, (lua_Integer)i);
    lua_pushcclosure(L, batch_call, 2);
    lua_setfield(L, -2, batch_ops[i].name);
  }
  lua_pushvalue(L, fn_arg);
  lua_insert(L, -2);                            /* stack: ... batch fn api */
  lua_call(L, 1, 0);        /* an error propagates; the gc frees the batch */
  b->open = 0;
  if (!b->n) return 0;
  lm_op op;
  memset(&op, 0, sizeof op);
  op.kind = LM_OP_BATCH;
  op.table = b->table;
  op.schema = b->schema;
  op.ops = b->ops;
  op.nops = b->n;
  op.recreate = mode;
  lm_err err;
  lm_err_init(&err);
  int rc = lm_op_apply(env, &op, &err);
  if (rc != LM_OK) lm_op_raise(L, &err);
  return 0;
}

static const luaL_Reg alter_functions[] = {
  {"alter_column", op_alter_column},
  {"create_index", op_create_index},
  {"drop_index", op_drop_index},
  {"create_unique_constraint", op_create_unique},
  {"create_check_constraint", op_create_check},
  {"create_primary_key", op_create_primary},
  {"create_foreign_key", op_create_foreign},
  {"drop_constraint", op_drop_constraint},
  {"create_exclude_constraint", op_create_exclude},
  {"create_table_comment", op_table_comment},
  {"drop_table_comment", op_drop_table_comment},
  {"batch_alter_table", op_batch_alter_table},
  {"validate_constraint", op_validate_constraint},
  {NULL, NULL}};

void lm_op_alter_register(lua_State *L) {
  if (luaL_newmetatable(L, BATCH_META)) {
    lua_pushcfunction(L, batch_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_setfuncs(L, alter_functions, 0);
}
