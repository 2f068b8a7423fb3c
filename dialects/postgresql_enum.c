/*
 * postgresql_enum.c - enum types on PostgreSQL, as SQLAlchemy's Enum makes
 * them: a column of {enum = {...}, name = "status_t"} creates the type
 * with the table (CREATE TYPE status_t AS ENUM (...)) unless it exists,
 * drop_table drops the types no other table uses, and alter_column adds
 * the values a type lacks (ALTER TYPE ... ADD VALUE).  What exists is read
 * from the catalog online and from the replayed model offline.
 */
#include <stdlib.h>
#include <string.h>

#include "../src/schema.h"
#include "ddl.h"
#include "postgresql.h"
#include "postgresql_enum.h"

/* An enum type as it stands: exists, and its values. */
typedef struct enum_state {
  int exists;
  lm_strvec values;
} enum_state;

static void quoted_name(lm_buf *b, const char *name) {
  lm_pg_quote_ident(b, name);
}

/* Run a one-column query with text parameters; rows into out. */
static int query_column(const lm_compile_ctx *ctx, const char *sql, int n,
                        const char *const *vals, lm_strvec *out, lm_err *err) {
  PGresult *res = PQexecParams(ctx->conn->pg, sql, n, NULL, vals, NULL, NULL,
                               0);
  if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
    lm_pg_result_error(ctx->conn, res, sql, err);
    PQclear(res);
    return LM_ERROR;
  }
  for (int i = 0; i < PQntuples(res); i++)
    lm_strvec_push(out, lm_xstrdup(PQgetvalue(res, i, 0)));
  PQclear(res);
  return LM_OK;
}

static int online(const lm_compile_ctx *ctx) {
  return ctx->conn && !ctx->offline;
}

/* The model's column of that enum type, skipping table `skip` (or NULL). */
static const lm_mcolumn *model_user(const lm_compile_ctx *ctx,
                                    const char *name, const lm_mtable *skip) {
  for (size_t i = 0; ctx->model && i < ctx->model->ntables; i++) {
    const lm_mtable *t = &ctx->model->tables[i];
    if (t == skip) continue;
    for (size_t j = 0; j < t->ncolumns; j++)
      if (t->columns[j].type.kind == LM_T_ENUM &&
          strcmp(t->columns[j].type.enum_name, name) == 0)
        return &t->columns[j];
  }
  return NULL;
}

static int enum_state_read(const lm_compile_ctx *ctx, const char *name,
                           enum_state *st, lm_err *err) {
  memset(st, 0, sizeof *st);
  if (online(ctx)) {
    lm_buf q = LM_BUF_INIT;
    quoted_name(&q, name);
    const char *vals[1] = {lm_buf_str(&q)};
    lm_strvec found = {0};
    int rc = query_column(ctx, "SELECT pg_catalog.to_regtype($1) IS NOT NULL",
                          1, vals, &found, err);
    if (rc == LM_OK) st->exists = found.n && strcmp(found.items[0], "t") == 0;
    lm_strvec_free(&found);
    if (rc == LM_OK && st->exists)
      rc = query_column(ctx, "SELECT enumlabel FROM pg_catalog.pg_enum WHERE "
                        "enumtypid = pg_catalog.to_regtype($1) ORDER BY "
                        "enumsortorder", 1, vals, &st->values, err);
    lm_buf_free(&q);
    return rc;
  }
  const lm_mcolumn *c = model_user(ctx, name, NULL);
  if (c) {
    st->exists = 1;
    for (size_t i = 0; i < c->type.nenum_values; i++)
      lm_strvec_push(&st->values, lm_xstrdup(c->type.enum_values[i]));
  }
  return LM_OK;
}

static char *create_type(const lm_type *type) {
  lm_buf b = LM_BUF_INIT;
  lm_buf_puts(&b, "CREATE TYPE ");
  quoted_name(&b, type->enum_name);
  lm_buf_puts(&b, " AS ENUM (");
  for (size_t i = 0; i < type->nenum_values; i++) {
    if (i) lm_buf_puts(&b, ", ");
    lm_ddl_quoted(&b, '\'', type->enum_values[i],
                  strlen(type->enum_values[i]));
  }
  lm_buf_putc(&b, ')');
  return lm_buf_detach(&b);
}

int lm_pg_enum_create(const lm_compile_ctx *ctx, const lm_op *op,
                      lm_strvec *out, lm_err *err) {
  for (size_t i = 0; i < op->ncolumns; i++) {
    const lm_type *ty = &op->columns[i].type;
    if (ty->kind != LM_T_ENUM) continue;
    int seen = 0;
    for (size_t j = 0; j < i; j++)
      if (op->columns[j].type.kind == LM_T_ENUM &&
          strcmp(op->columns[j].type.enum_name, ty->enum_name) == 0)
        seen = 1;
    if (seen) continue;
    enum_state st;
    if (enum_state_read(ctx, ty->enum_name, &st, err) != LM_OK) return LM_ERROR;
    if (!st.exists) lm_strvec_push(out, create_type(ty));
    lm_strvec_free(&st.values);
  }
  return LM_OK;
}

int lm_pg_enum_unused(const lm_compile_ctx *ctx, const lm_op *op,
                      lm_strvec *types, lm_err *err) {
  if (online(ctx)) {
    static const char sql[] =
        "SELECT DISTINCT t.oid::pg_catalog.regtype::text "
        "FROM pg_catalog.pg_attribute a "
        "JOIN pg_catalog.pg_type t ON t.oid = a.atttypid AND t.typtype = 'e' "
        "WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attnum > 0 "
        "AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute o "
        "WHERE o.atttypid = t.oid AND o.attrelid <> a.attrelid "
        "AND o.attnum > 0 AND NOT o.attisdropped) ORDER BY 1";
    lm_buf q = LM_BUF_INIT;
    lm_ddl_qualified(&lm_pg_traits, &q, op->schema, op->table);
    const char *vals[1] = {lm_buf_str(&q)};
    int rc = query_column(ctx, sql, 1, vals, types, err);
    lm_buf_free(&q);
    return rc;
  }
  lm_mtable *t = ctx->model ? lm_schema_table(ctx->model, op->schema,
                                              op->table) : NULL;
  for (size_t i = 0; t && i < t->ncolumns; i++) {
    const lm_type *ty = &t->columns[i].type;
    if (ty->kind != LM_T_ENUM || model_user(ctx, ty->enum_name, t)) continue;
    lm_buf q = LM_BUF_INIT;
    quoted_name(&q, ty->enum_name);
    int dup = 0;
    for (size_t j = 0; j < types->n; j++)
      dup |= strcmp(types->items[j], lm_buf_str(&q)) == 0;
    if (dup) lm_buf_free(&q);
    else lm_strvec_push(types, lm_buf_detach(&q));
  }
  return LM_OK;
}

/* Is the column's type the enum already? */
static int column_is(const lm_compile_ctx *ctx, const lm_op *op,
                     const char *name, int *is, lm_err *err) {
  *is = 0;
  if (online(ctx)) {
    lm_buf tbl = LM_BUF_INIT, ty = LM_BUF_INIT;
    lm_ddl_qualified(&lm_pg_traits, &tbl, op->schema, op->table);
    quoted_name(&ty, name);
    const char *vals[3] = {lm_buf_str(&tbl), op->name, lm_buf_str(&ty)};
    lm_strvec found = {0};
    int rc = query_column(ctx, "SELECT 1 FROM pg_catalog.pg_attribute WHERE "
                          "attrelid = pg_catalog.to_regclass($1) AND attname "
                          "= $2 AND atttypid = pg_catalog.to_regtype($3)", 3,
                          vals, &found, err);
    *is = found.n > 0;
    lm_strvec_free(&found);
    lm_buf_free(&tbl);
    lm_buf_free(&ty);
    return rc;
  }
  lm_mtable *t = ctx->model ? lm_schema_table(ctx->model, op->schema,
                                              op->table) : NULL;
  lm_mcolumn *c = t ? lm_mtable_column(t, op->name) : NULL;
  *is = c && c->type.kind == LM_T_ENUM && strcmp(c->type.enum_name, name) == 0;
  return LM_OK;
}

int lm_pg_enum_alter(const lm_compile_ctx *ctx, const lm_op *op,
                     lm_strvec *out, lm_err *err) {
  const lm_type *ty = &op->alter.type;
  enum_state st;
  if (enum_state_read(ctx, ty->enum_name, &st, err) != LM_OK) return LM_ERROR;
  int rc = LM_OK;
  if (!st.exists) {
    lm_strvec_push(out, create_type(ty));
  } else {
    /* PostgreSQL adds values; it cannot take one away. */
    for (size_t i = 0; rc == LM_OK && i < st.values.n; i++) {
      int kept = 0;
      for (size_t j = 0; j < ty->nenum_values; j++)
        kept |= strcmp(ty->enum_values[j], st.values.items[i]) == 0;
      if (!kept)
        rc = lm_err_set(err, "alter_column %s.%s: enum %s has the value '%s' "
                        "that the new list lacks; PostgreSQL cannot drop an "
                        "enum value", op->table, op->name, ty->enum_name,
                        st.values.items[i]);
    }
    for (size_t j = 0; rc == LM_OK && j < ty->nenum_values; j++) {
      int has = 0;
      for (size_t i = 0; i < st.values.n; i++)
        has |= strcmp(ty->enum_values[j], st.values.items[i]) == 0;
      if (has) continue;
      lm_buf b = LM_BUF_INIT;
      lm_buf_puts(&b, "ALTER TYPE ");
      quoted_name(&b, ty->enum_name);
      lm_buf_puts(&b, " ADD VALUE ");
      lm_ddl_quoted(&b, '\'', ty->enum_values[j],
                    strlen(ty->enum_values[j]));
      if (j > 0) {
        lm_buf_puts(&b, " AFTER ");
        lm_ddl_quoted(&b, '\'', ty->enum_values[j - 1],
                      strlen(ty->enum_values[j - 1]));
      }
      lm_strvec_push(out, lm_buf_detach(&b));
    }
  }
  lm_strvec_free(&st.values);
  int is = 0;
  if (rc == LM_OK) rc = column_is(ctx, op, ty->enum_name, &is, err);
  if (rc == LM_OK && !is) {
    lm_buf b = LM_BUF_INIT, col = LM_BUF_INIT, tn = LM_BUF_INIT;
    lm_pg_quote_ident(&col, op->name);
    quoted_name(&tn, ty->enum_name);
    lm_buf_puts(&b, "ALTER TABLE ");
    lm_ddl_qualified(&lm_pg_traits, &b, op->schema, op->table);
    lm_buf_printf(&b, " ALTER COLUMN %s TYPE %s USING ", lm_buf_str(&col),
                  lm_buf_str(&tn));
    if (op->alter.using_expr) lm_buf_puts(&b, op->alter.using_expr);
    else lm_buf_printf(&b, "%s::text::%s", lm_buf_str(&col), lm_buf_str(&tn));
    lm_strvec_push(out, lm_buf_detach(&b));
    lm_buf_free(&col);
    lm_buf_free(&tn);
  }
  return rc;
}
