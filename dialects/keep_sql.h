/*
 * keep_sql.h - the statements src/keep.c runs for kept data: the
 * catalogue (luamig_kept), the copy of a dropped column, its refill on the
 * way down, and what counts, reads and drops kept tables.  Standard SQL
 * that the dialects accept, written in keep_sql.c; every table is a schema
 * (NULL: the default one) and a name, quoted as the dialect quotes them.
 */
#ifndef LM_KEEP_SQL_H
#define LM_KEEP_SQL_H

#include "dialect.h"

/* ---- the catalogue ------------------------------------------------------ */

/* The next id: one more than the greatest, 1 when empty. */
void lm_keep_sql_next_id(const lm_dialect *d, lm_buf *out,
                         const char *schema, const char *catalogue);
/* One row: $1 id, $2 revision, $3 kind, $4 table_schema, $5 table_name,
 * $6 column_name, $7 kept_as, $8 key_columns, $9 definition,
 * $10 dependents, $11 row_count, $12 kept_at. */
void lm_keep_sql_catalogue_insert(const lm_dialect *d, lm_buf *out,
                                  const char *schema, const char *catalogue);
/* id, kept_as, key_columns, dependents, row_count of the rows for $1
 * revision, $2 kind, $3 table_name, $4 table_schema ('' for none),
 * $5 column_name ('' for none), newest first. */
void lm_keep_sql_catalogue_find(const lm_dialect *d, lm_buf *out,
                                const char *schema, const char *catalogue);
/* id, revision, kind, table_schema, table_name, column_name, kept_as,
 * row_count, kept_at of every row, oldest first. */
void lm_keep_sql_catalogue_list(const lm_dialect *d, lm_buf *out,
                                const char *schema, const char *catalogue);
/* Remove the row whose id is $1. */
void lm_keep_sql_catalogue_delete(const lm_dialect *d, lm_buf *out,
                                  const char *schema, const char *catalogue);

/* ---- kept tables -------------------------------------------------------- */

/* CREATE TABLE kept AS the keys and the column of the table; with `empty`,
 * made with no rows (lm_keep_sql_column_fill fills it). */
void lm_keep_sql_column_create(const lm_dialect *d, lm_buf *out,
                               const char *kept_schema, const char *kept,
                               const char *schema, const char *table,
                               const char *const *keys, size_t nkeys,
                               const char *column, int empty);
/* INSERT INTO kept the keys and the column of every row of the table. */
void lm_keep_sql_column_fill(const lm_dialect *d, lm_buf *out,
                             const char *kept_schema, const char *kept,
                             const char *schema, const char *table,
                             const char *const *keys, size_t nkeys,
                             const char *column);
/* UPDATE the table's column from the kept table, row by row on the keys. */
void lm_keep_sql_column_refill(const lm_dialect *d, lm_buf *out,
                               const char *schema, const char *table,
                               const char *kept_schema, const char *kept,
                               const char *const *keys, size_t nkeys,
                               const char *column);
/* The number of rows of a table. */
void lm_keep_sql_count(const lm_dialect *d, lm_buf *out, const char *schema,
                       const char *table);
/* No rows, every column: what a table's column names are read from. */
void lm_keep_sql_no_rows(const lm_dialect *d, lm_buf *out,
                         const char *schema, const char *table);
/* DROP TABLE, IF EXISTS with if_exists. */
void lm_keep_sql_drop(const lm_dialect *d, lm_buf *out, const char *schema,
                      const char *table, int if_exists);

#endif
