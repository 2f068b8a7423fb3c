/*
 * op_data.h - what the data operations (op_data.c: op.query,
 * op.bulk_insert; op_backfill.c: op.backfill) share: argument checks that
 * raise errors naming the operation (with op_internal.h's), and
 * conversions between Lua values and lm_values.  Each builds an
 * lm_data_op (data_op.h) for the executor.
 */
#ifndef LM_OP_DATA_H
#define LM_OP_DATA_H

#include <lua.h>

#include "core.h"

/* SQL given as a string or op.text(...). */
const char *lm_data_sql(lua_State *L, int idx, const char *op,
                        const char *what);
/* Options: a string (NULL when absent), a positive integer. */
const char *lm_data_opt_string(lua_State *L, int idx, const char *key,
                               const char *op);
lua_Integer lm_data_opt_count(lua_State *L, int idx, const char *key,
                              const char *op, lua_Integer dflt);
/* A Lua value as a column value: nil and op.null are NULL, a string that
 * is not UTF-8 text is a blob.  Strings are not copied. */
void lm_data_value(lua_State *L, int idx, const char *op, const char *col,
                   lm_value *v);
/* Push a database value; NULL pushes the value at null_idx (op.null). */
void lm_data_push(lua_State *L, const lm_value *v, int null_idx);

/* op_bulk.c */
int lm_op_bulk_insert(lua_State *L);

/* op_backfill.c */
int lm_op_backfill(lua_State *L);

#endif
