/*
 * core_sql.c - the statements the core runs for itself (the version
 * table, the log, a backfill's keyset read and saved position, one row's
 * INSERT, a read of a table's rows), written here from a description so
 * that no SQL is composed in src/.  Standard SQL that both dialects
 * accept; names go through the dialect's quote_ident, a schema-qualified
 * table through lm_ddl_qualified.
 */
#include "ddl.h"

void lm_sql_qualified(const lm_dialect *d, lm_buf *out, const char *schema,
                      const char *name) {
  lm_ddl_traits t = {.dialect = d->name, .quote_ident = d->quote_ident};
  lm_ddl_qualified(&t, out, schema, name);
}

/* The table, schema-qualified when it has one. */
static void table_name(const lm_dialect *d, lm_buf *out,
                       const lm_sql_spec *s) {
  lm_sql_qualified(d, out, s->schema, s->table);
}

static void name_list(const lm_dialect *d, lm_buf *out,
                      const char *const *names, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (i) lm_buf_puts(out, ", ");
    d->quote_ident(out, names[i]);
  }
}

/* The key columns as "k" or "(k1, k2)", or the parameters "$1" or
 * "($1, $2)" that compare with them. */
static void key_tuple(const lm_dialect *d, lm_buf *out, const lm_sql_spec *s,
                      int params) {
  if (s->nkeys > 1) lm_buf_putc(out, '(');
  for (size_t i = 0; i < s->nkeys; i++) {
    if (i) lm_buf_puts(out, ", ");
    if (params) lm_buf_printf(out, "$%zu", i + 1);
    else d->quote_ident(out, s->keys[i]);
  }
  if (s->nkeys > 1) lm_buf_putc(out, ')');
}

/* SELECT keys, columns FROM t WHERE (where) AND keys > $last ORDER BY
 * keys LIMIT $n.  A row comparison keeps composite keys exact and uses
 * their index. */
static void keyset_read(const lm_dialect *d, lm_buf *out,
                        const lm_sql_spec *s) {
  lm_buf_puts(out, "SELECT ");
  for (size_t i = 0; i < s->nkeys; i++) {
    d->quote_ident(out, s->keys[i]);
    lm_buf_puts(out, ", ");
  }
  if (!s->columns) lm_buf_putc(out, '*');
  else name_list(d, out, s->columns, s->ncolumns);
  lm_buf_puts(out, " FROM ");
  table_name(d, out, s);
  if (s->where) lm_buf_printf(out, " WHERE (%s)", s->where);
  if (s->after) {
    lm_buf_puts(out, s->where ? " AND " : " WHERE ");
    key_tuple(d, out, s, 0);
    lm_buf_puts(out, s->order > 0 ? " > " : " < ");
    key_tuple(d, out, s, 1);
  }
  lm_buf_puts(out, " ORDER BY ");
  for (size_t i = 0; i < s->nkeys; i++) {
    if (i) lm_buf_puts(out, ", ");
    d->quote_ident(out, s->keys[i]);
    if (s->order < 0) lm_buf_puts(out, " DESC");
  }
  lm_buf_printf(out, " LIMIT $%zu", s->after ? s->nkeys + 1 : 1);
}

static void standard(const lm_dialect *d, lm_buf *out, const lm_sql_spec *s) {
  switch (s->kind) {
  case LM_SQL_VERSION_READ:
    lm_buf_puts(out, "SELECT version_num FROM ");
    table_name(d, out, s);
    break;
  case LM_SQL_VERSION_INSERT:
    lm_buf_puts(out, "INSERT INTO ");
    table_name(d, out, s);
    lm_buf_puts(out, " (version_num) VALUES ($1)");
    break;
  case LM_SQL_VERSION_DELETE:
    lm_buf_puts(out, "DELETE FROM ");
    table_name(d, out, s);
    lm_buf_puts(out, " WHERE version_num = $1");
    break;
  case LM_SQL_VERSION_UPDATE:
    lm_buf_puts(out, "UPDATE ");
    table_name(d, out, s);
    lm_buf_puts(out, " SET version_num = $1 WHERE version_num = $2");
    break;
  case LM_SQL_VERSION_PURGE:
    lm_buf_puts(out, "DELETE FROM ");
    table_name(d, out, s);
    break;
  case LM_SQL_LOG_INSERT:
    lm_buf_puts(out, "INSERT INTO ");
    table_name(d, out, s);
    lm_buf_puts(out, " (revision, direction, checksum, started_at, "
                "duration, run_by, status, message) VALUES ($1, $2, $3, ");
    lm_buf_puts(out, s->now ? "CURRENT_TIMESTAMP, $4, $5, $6, $7)"
                            : "$4, $5, $6, $7, $8)");
    break;
  case LM_SQL_LOG_END:
    lm_buf_puts(out, "UPDATE ");
    table_name(d, out, s);
    lm_buf_puts(out, " SET status = $1, duration = $2, message = $3 WHERE "
                "revision = $4 AND direction = $5 AND started_at = $6 AND "
                "status = 'running'");
    break;
  case LM_SQL_LOG_DIRTY:
    lm_buf_puts(out, "SELECT direction, status, revision, started_at, "
                "message FROM ");
    table_name(d, out, s);
    lm_buf_puts(out, " WHERE status <> 'ok' OR direction = 'stamp' "
                "ORDER BY id");
    break;
  case LM_SQL_LOG_CHECKSUMS:
    lm_buf_puts(out, "SELECT revision, direction, checksum FROM ");
    table_name(d, out, s);
    lm_buf_puts(out, " WHERE status = 'ok' ORDER BY id");
    break;
  case LM_SQL_STATE_READ:
    lm_buf_puts(out, "SELECT last_key, rows_read, rows_updated, "
                "rows_skipped FROM ");
    table_name(d, out, s);
    lm_buf_puts(out, " WHERE revision = $1 AND name = $2");
    break;
  case LM_SQL_STATE_UPDATE:
    lm_buf_puts(out, "UPDATE ");
    table_name(d, out, s);
    lm_buf_puts(out, " SET last_key = $1, rows_read = $2, rows_updated = "
                "$3, rows_skipped = $4 WHERE revision = $5 AND name = $6");
    break;
  case LM_SQL_STATE_INSERT:
    lm_buf_puts(out, "INSERT INTO ");
    table_name(d, out, s);
    lm_buf_puts(out, " (last_key, rows_read, rows_updated, rows_skipped, "
                "revision, name) VALUES ($1, $2, $3, $4, $5, $6)");
    break;
  case LM_SQL_STATE_DELETE:
    lm_buf_puts(out, "DELETE FROM ");
    table_name(d, out, s);
    lm_buf_puts(out, " WHERE revision = $1 AND name = $2");
    break;
  case LM_SQL_KEYSET_READ:
    keyset_read(d, out, s);
    break;
  case LM_SQL_INSERT_ROW:
    lm_buf_puts(out, "INSERT INTO ");
    table_name(d, out, s);
    lm_buf_puts(out, " (");
    name_list(d, out, s->columns, s->ncolumns);
    lm_buf_puts(out, ") VALUES (");
    for (size_t i = 0; i < s->ncolumns; i++)
      lm_buf_printf(out, "%s$%zu", i ? ", " : "", i + 1);
    lm_buf_putc(out, ')');
    break;
  case LM_SQL_READ_ROWS:
    lm_buf_puts(out, "SELECT ");
    if (s->ncolumns) name_list(d, out, s->columns, s->ncolumns);
    else lm_buf_puts(out, "1");
    lm_buf_puts(out, " FROM ");
    table_name(d, out, s);
    break;
  }
}

void lm_core_sql(const lm_dialect *d, lm_buf *out, const lm_sql_spec *s) {
  if (d->version >= 11 && d->core_sql) d->core_sql(out, s);
  else standard(d, out, s);
}
