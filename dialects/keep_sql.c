/*
 * keep_sql.c - the statements of kept data (keep_sql.h), composed here so
 * that src/keep.c writes no SQL.  Names go through lm_sql_qualified and
 * the dialect's quote_ident.
 */
#include "keep_sql.h"

void lm_keep_sql_next_id(const lm_dialect *d, lm_buf *out,
                         const char *schema, const char *catalogue) {
  lm_buf_puts(out, "SELECT COALESCE(MAX(id), 0) + 1 FROM ");
  lm_sql_qualified(d, out, schema, catalogue);
}

void lm_keep_sql_catalogue_insert(const lm_dialect *d, lm_buf *out,
                                  const char *schema, const char *catalogue) {
  lm_buf_puts(out, "INSERT INTO ");
  lm_sql_qualified(d, out, schema, catalogue);
  lm_buf_puts(out, " (id, revision, kind, table_schema, table_name, "
              "column_name, kept_as, key_columns, definition, dependents, "
              "row_count, kept_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, "
              "$9, $10, $11, $12)");
}

void lm_keep_sql_catalogue_find(const lm_dialect *d, lm_buf *out,
                                const char *schema, const char *catalogue) {
  lm_buf_puts(out, "SELECT id, kept_as, key_columns, dependents, row_count "
              "FROM ");
  lm_sql_qualified(d, out, schema, catalogue);
  lm_buf_puts(out, " WHERE revision = $1 AND kind = $2 AND table_name = $3 "
              "AND COALESCE(table_schema, '') = $4 AND "
              "COALESCE(column_name, '') = $5 ORDER BY id DESC");
}

void lm_keep_sql_catalogue_list(const lm_dialect *d, lm_buf *out,
                                const char *schema, const char *catalogue) {
  lm_buf_puts(out, "SELECT id, revision, kind, table_schema, table_name, "
              "column_name, kept_as, row_count, kept_at FROM ");
  lm_sql_qualified(d, out, schema, catalogue);
  lm_buf_puts(out, " ORDER BY id");
}

void lm_keep_sql_catalogue_delete(const lm_dialect *d, lm_buf *out,
                                  const char *schema, const char *catalogue) {
  lm_buf_puts(out, "DELETE FROM ");
  lm_sql_qualified(d, out, schema, catalogue);
  lm_buf_puts(out, " WHERE id = $1");
}

/* SELECT keys, column FROM table: what a kept column holds. */
static void kept_columns(const lm_dialect *d, lm_buf *out, const char *schema,
                         const char *table, const char *const *keys,
                         size_t nkeys, const char *column) {
  lm_buf_puts(out, "SELECT ");
  for (size_t i = 0; i < nkeys; i++) {
    d->quote_ident(out, keys[i]);
    lm_buf_puts(out, ", ");
  }
  d->quote_ident(out, column);
  lm_buf_puts(out, " FROM ");
  lm_sql_qualified(d, out, schema, table);
}

void lm_keep_sql_column_create(const lm_dialect *d, lm_buf *out,
                               const char *kept_schema, const char *kept,
                               const char *schema, const char *table,
                               const char *const *keys, size_t nkeys,
                               const char *column, int empty) {
  lm_buf_puts(out, "CREATE TABLE ");
  lm_sql_qualified(d, out, kept_schema, kept);
  lm_buf_puts(out, " AS ");
  kept_columns(d, out, schema, table, keys, nkeys, column);
  if (empty) lm_buf_puts(out, " WHERE 1 = 0");
}

void lm_keep_sql_column_fill(const lm_dialect *d, lm_buf *out,
                             const char *kept_schema, const char *kept,
                             const char *schema, const char *table,
                             const char *const *keys, size_t nkeys,
                             const char *column) {
  lm_buf_puts(out, "INSERT INTO ");
  lm_sql_qualified(d, out, kept_schema, kept);
  lm_buf_putc(out, ' ');
  kept_columns(d, out, schema, table, keys, nkeys, column);
}

void lm_keep_sql_column_refill(const lm_dialect *d, lm_buf *out,
                               const char *schema, const char *table,
                               const char *kept_schema, const char *kept,
                               const char *const *keys, size_t nkeys,
                               const char *column) {
  lm_buf_puts(out, "UPDATE ");
  lm_sql_qualified(d, out, schema, table);
  lm_buf_puts(out, " AS luamig_t SET ");
  d->quote_ident(out, column);
  lm_buf_puts(out, " = luamig_k.");
  d->quote_ident(out, column);
  lm_buf_puts(out, " FROM ");
  lm_sql_qualified(d, out, kept_schema, kept);
  lm_buf_puts(out, " AS luamig_k WHERE ");
  for (size_t i = 0; i < nkeys; i++) {
    lm_buf_puts(out, i ? " AND luamig_t." : "luamig_t.");
    d->quote_ident(out, keys[i]);
    lm_buf_puts(out, " = luamig_k.");
    d->quote_ident(out, keys[i]);
  }
}

void lm_keep_sql_count(const lm_dialect *d, lm_buf *out, const char *schema,
                       const char *table) {
  lm_buf_puts(out, "SELECT count(*) FROM ");
  lm_sql_qualified(d, out, schema, table);
}

void lm_keep_sql_no_rows(const lm_dialect *d, lm_buf *out,
                         const char *schema, const char *table) {
  lm_buf_puts(out, "SELECT * FROM ");
  lm_sql_qualified(d, out, schema, table);
  lm_buf_puts(out, " WHERE 1 = 0");
}

void lm_keep_sql_drop(const lm_dialect *d, lm_buf *out, const char *schema,
                      const char *table, int if_exists) {
  lm_buf_puts(out, if_exists ? "DROP TABLE IF EXISTS " : "DROP TABLE ");
  lm_sql_qualified(d, out, schema, table);
}
