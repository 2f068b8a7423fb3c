/*
 * postgresql_enum.h - enum types on PostgreSQL (postgresql_enum.c).
 */
#ifndef LM_POSTGRESQL_ENUM_H
#define LM_POSTGRESQL_ENUM_H

#include "dialect.h"

/* CREATE TYPE for the enum columns of create_table / add_column whose type
 * does not exist yet. */
int lm_pg_enum_create(const lm_compile_ctx *ctx, const lm_op *op,
                      lm_strvec *out, lm_err *err);
/* The enum types (quoted names) drop_table's table uses and no other
 * table does, read before the drop. */
int lm_pg_enum_unused(const lm_compile_ctx *ctx, const lm_op *op,
                      lm_strvec *types, lm_err *err);
/* alter_column to an enum type: create it or add the values it lacks,
 * then change the column's type unless it has it already. */
int lm_pg_enum_alter(const lm_compile_ctx *ctx, const lm_op *op,
                     lm_strvec *out, lm_err *err);

#endif
