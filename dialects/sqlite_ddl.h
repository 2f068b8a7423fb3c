/*
 * sqlite_ddl.h - how the SQLite dialect writes SQL, shared by its files:
 * the traits for the shared DDL (sqlite_ddl.c), the rebuild of a table by
 * the 12-step procedure (sqlite_rebuild.c), and reading a table's shape
 * back from its CREATE statements (sqlite_parse.c).
 */
#ifndef LM_SQLITE_DDL_H
#define LM_SQLITE_DDL_H

#include "../src/schema.h"
#include "ddl.h"
#include "sqlite.h"

extern const lm_ddl_traits lm_sqlite_traits;

/* sqlite_ddl.c */
void lm_sqlite_render_literal(lm_buf *out, const lm_value *v);
int lm_sqlite_compile(const lm_compile_ctx *ctx, const lm_op *op,
                      lm_strvec *out, lm_err *err);
/* CREATE [UNIQUE] INDEX for a model index (its own text when it has one). */
void lm_sqlite_index_sql(lm_buf *out, const char *schema, const char *table,
                         const lm_mindex *ix, int if_not_exists);
/* CREATE TRIGGER for a model trigger: its own text, or the onupdate
 * trigger written from its parts. */
int lm_sqlite_trigger_sql(lm_buf *out, const char *schema, const char *table,
                          const lm_mtrigger *tr, lm_err *err);

/* sqlite_rebuild.c: the statements that give `old` (a table of `tmp`) the
 * shape the ops describe, by the 12-step procedure; renames of existing
 * columns follow as ALTER TABLE RENAME COLUMN. */
int lm_sqlite_rebuild(const lm_compile_ctx *ctx, lm_schema *tmp,
                      lm_mtable *old, const lm_op *ops, size_t nops,
                      lm_strvec *out, lm_err *err);

/* sqlite_parse.c */
/* Read a CREATE TABLE statement into a new table of `model`. */
int lm_sqlite_parse_table(lm_schema *model, const char *schema,
                          const char *sql, lm_mtable **out, lm_err *err);
int lm_sqlite_introspect(lm_conn *conn, const char *schema, const char *table,
                         lm_schema *model, int *found, lm_err *err);
/* A CREATE INDEX statement's structure (its columns or expressions,
 * UNIQUE, WHERE), in the model's arena. */
int lm_sqlite_parse_index(lm_schema *model, const char *sql, lm_index *out,
                          lm_err *err);
/* sqlite_introspect.c: dialect.h, read_type. */
void lm_sqlite_read_type(lm_schema *s, lm_type *t);
/* sqlite_introspect.c: dialect.h, introspect_schema. */
int lm_sqlite_introspect_schema(lm_conn *conn, const char *const *schemas,
                                size_t nschemas, const char *const *skip,
                                size_t nskip, lm_schema *out, lm_err *err);
void lm_sqlite_replay_sql(lm_schema *model, const char *sql,
                          const char *revision);

/* CHECK (col IN ('a', 'b')): how SQLite keeps an enum type's values. */
void lm_sqlite_enum_check(lm_buf *out, const char *column,
                          const lm_type *type);

#endif
