/*
 * op_internal.h - what the files behind the op table share: argument
 * checks that raise a Lua error naming the operation, the argument and the
 * script line, and the parsers of column, constraint, type and default
 * specs (op_spec.c), used by the schema-changing operations (op.c,
 * op_alter.c).
 */
#ifndef LM_OP_INTERNAL_H
#define LM_OP_INTERNAL_H

#include <lua.h>

#include "core.h"

#define SQLFRAG_META "luamig.sqlfragment"

lm_env *lm_op_get_env(lua_State *L);
/* The string at idx (NULL if it is none); one holding a NUL byte, which C
 * would silently cut, raises an error naming `what`. */
const char *lm_op_tostring(lua_State *L, int idx, const char *op,
                           const char *what);
/* A non-empty string argument, strictly (no number coercion). */
const char *lm_op_check_name(lua_State *L, int arg, const char *op,
                             const char *what);
/* nil or a table whose keys are all in `allowed` (NULL-terminated) or
 * dialect-named options of `op` that a dialect declares
 * (lm_dialect.options). */
void lm_op_check_opts(lua_State *L, int idx, const char *op,
                      const char *const *allowed);
/* The dialect-named forms of `option` of `op` ("postgresql_where" for
 * create_index's "where"), one per registered dialect declaring it,
 * NULL-terminated, in the arena; *own is the running dialect's, or NULL.
 * A caller reads each (so a bad value is an error on any database) and
 * applies *own's only. */
const char *const *lm_op_dialect_forms(lua_State *L, lm_arena *a,
                                       const char *op, const char *option,
                                       const char **own);
const char *lm_op_opt_string(lua_State *L, lm_arena *a, int idx,
                             const char *key, const char *op);
int lm_op_opt_bool(lua_State *L, int idx, const char *key, const char *op,
                   int dflt);
/* A name or a list of names. */
const char *const *lm_op_string_array(lua_State *L, lm_arena *a, int idx,
                                      const char *op, const char *what,
                                      size_t *n);
void lm_op_parse_type(lua_State *L, lm_arena *a, int idx, const char *op,
                      lm_type *t);
void lm_op_parse_default(lua_State *L, lm_arena *a, int idx, const char *op,
                         int allow_drop, lm_default *d);
void lm_op_parse_column(lua_State *L, lm_arena *a, int idx, const char *op,
                        lm_column *c);
void lm_op_parse_constraint(lua_State *L, lm_arena *a, int idx,
                            const char *op, lm_constraint *c);
/* identity = true or {always, start, increment, minvalue, maxvalue,
 * cycle, cache} at idx, into id (id->given stays 0 for nil). */
void lm_op_parse_identity(lua_State *L, int idx, const char *op,
                          const char *key, lm_identity *id);
/* An op.text / op.func / op.literal fragment: its kind and SQL. */
int lm_op_is_fragment(lua_State *L, int idx, const char **kind,
                      const char **sql);
/* Hand op to the executor and free the arena; a failure raises. */
void lm_op_apply_or_raise(lua_State *L, lm_env *env, const lm_op *op,
                          lm_arena *a);

/* op_naming.c: the naming convention.  What a constraint or index is
 * named after. */
typedef struct lm_naming {
  const char *table;
  const char *name;             /* the name given, or NULL */
  const char *const *columns;
  size_t ncolumns;
  const char *ref_table;
  const char *const *ref_columns;
  size_t nref_columns;
} lm_naming;

/* Check the configuration's naming_convention (the value at idx, nil for
 * none) and keep it for the ops; where names the configuration file. */
int lm_naming_check(lua_State *L, int idx, const char *where, lm_err *err);
/* The name of a constraint or index of `kind` (ix, uq, ck, fk, pk): the
 * given one, or the convention's; NULL leaves naming to the database.
 * A name the convention cannot make raises an error naming `op`. */
const char *lm_naming_name(lua_State *L, lm_arena *a, const char *op,
                           const char *kind, const lm_naming *n);
/* op.f, added to the op table on top of the stack. */
void lm_naming_register(lua_State *L);
/* Name the unnamed keys and indexes of a column (create_table,
 * add_column), and the constraints of create_table. */
void lm_naming_columns(lua_State *L, lm_arena *a, const char *op, lm_op *o);
void lm_naming_constraint(lua_State *L, lm_arena *a, const char *op,
                          const char *table, lm_constraint *c);

/* op.c: the ops op.c itself defines, added to the table on top. */
void lm_op_register_core(lua_State *L);
/* op_user.c: load and check the configuration's ops file (names clashing
 * with an op are refused), then add its functions to each op table. */
int lm_op_user_load(lua_State *L, const char *path, lm_err *err);
void lm_op_user_register(lua_State *L);

/* op_alter.c: alter_column, indexes, constraints and batch_alter_table,
 * added to the op table on top of the stack. */
void lm_op_alter_register(lua_State *L);

#endif
