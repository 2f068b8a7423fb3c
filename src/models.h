/*
 * models.h - models files (DESIGN section 4, "Models") read into the one
 * schema model, for `check`, autogenerate and `schema --models`.  A
 * models file's tables become create_table and create_index operation
 * values, replayed into a model (replay.c) and normalized the way the
 * dialect reads a database back, so that a model and the database it made
 * compare equal (schema_diff.h).
 */
#ifndef LM_MODELS_H
#define LM_MODELS_H

#include <lua.h>

#include "core.h"
#include "schema.h"

/* Read the models file at `path` into `out` (initialised, empty), for the
 * environment's dialect (picked from the URL; no connection is needed).
 * LM_OK, or LM_ERROR with env->err naming the file, line, table and
 * column (a syntax error, an unknown type, a foreign key to a missing
 * table, a duplicate column, a value that is no table). */
int lm_models_load(lm_env *env, const char *path, lm_schema *out);

/* The models file a command uses: `given` (--models FILE), else the
 * configuration's `models`; an error saying how to name one when there is
 * none. */
int lm_models_path(lm_env *env, const char *given, const char **out);

/* Leave out of s the tables the configuration's include_tables /
 * exclude_tables leave out (names or fnmatch patterns, "schema.table" or
 * "table"). */
void lm_models_filter(const lm_env *env, lm_schema *s);

/* The database is at the head of the scripts (one head, the database at
 * it); otherwise LM_ERROR with a message naming the command to run. */
int lm_models_at_head(lm_env *env);

/* Push a table of the model as a Lua table (name, schema, comment,
 * columns, constraints, indexes), the form lua/models.lua and
 * lua/autogen.lua render. */
void lm_models_push_table(lua_State *L, const lm_mtable *t);
/* One part, in the same form (a column needs its table: how its primary
 * key numbers it). */
void lm_models_push_column(lua_State *L, const lm_mtable *t,
                           const lm_mcolumn *c);
void lm_models_push_constraint(lua_State *L, const lm_mconstraint *mc);
void lm_models_push_index(lua_State *L, const lm_mindex *mi);
/* {tables = {...}}: every table of s. */
void lm_models_push_schema(lua_State *L, const lm_schema *s);

#endif
