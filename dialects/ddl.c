/*
 * ddl.c - DDL shared by the SQL dialects, parameterised by lm_ddl_traits.
 *
 * CREATE TABLE follows the layout SQLAlchemy emits (columns first, then the
 * primary key, unique and foreign key constraints at table level), so the
 * schemas luamig creates match the ones Alembic users already have.
 */
#include <stdlib.h>
#include <string.h>

#include "ddl.h"

void lm_ddl_qualified(const lm_ddl_traits *t, lm_buf *out, const char *schema,
                      const char *name) {
  if (schema) {
    t->quote_ident(out, schema);
    lm_buf_putc(out, '.');
  }
  t->quote_ident(out, name);
}

static void ident_list(const lm_ddl_traits *t, lm_buf *out,
                       const char *const *names, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (i) lm_buf_puts(out, ", ");
    t->quote_ident(out, names[i]);
  }
}

static int is_integer_type(const lm_type *type) {
  return type->kind == LM_T_INTEGER || type->kind == LM_T_BIGINT ||
         type->kind == LM_T_SMALLINT;
}

/* SQLAlchemy's rule: the one integer column of a single-column primary key
 * autoincrements unless told otherwise. */
lm_autoinc lm_ddl_column_autoinc(const lm_op *op, const lm_column *col) {
  if (col->autoincrement == LM_AUTO_IDENTITY) return LM_AUTO_IDENTITY;
  if (col->autoincrement == LM_AUTO_FALSE || !col->primary_key ||
      !is_integer_type(&col->type))
    return LM_AUTO_FALSE;
  /* Asked for explicitly: even a column of a composite key, as
   * SQLAlchemy does. */
  if (col->autoincrement == LM_AUTO_TRUE) return LM_AUTO_TRUE;
  size_t pk_cols = 0;
  for (size_t i = 0; i < op->ncolumns; i++)
    if (op->columns[i].primary_key) pk_cols++;
  for (size_t i = 0; i < op->nconstraints; i++)
    if (op->constraints[i].kind == LM_CON_PRIMARY_KEY)
      pk_cols += op->constraints[i].ncolumns;
  return pk_cols == 1 ? LM_AUTO_TRUE : LM_AUTO_FALSE;
}

/* One column definition: name, type, default, NOT NULL.  Keys and unique
 * constraints of a created table go at table level (see create_table);
 * for ADD COLUMN they are inline, the only place ALTER TABLE allows them. */
int lm_ddl_column(const lm_ddl_traits *t, lm_buf *out, const lm_op *op,
                  const lm_column *col, int in_create_table, lm_err *err) {
  lm_autoinc autoinc = lm_ddl_column_autoinc(op, col);
  t->quote_ident(out, col->name);
  lm_buf_putc(out, ' ');
  if (t->render_type(out, &col->type, autoinc, err) != LM_OK) {
    lm_err_prefix(err, "column %s", col->name);
    return LM_ERROR;
  }
  if (autoinc == LM_AUTO_IDENTITY && t->identity_clause) {
    lm_buf_putc(out, ' ');
    lm_buf_puts(out, t->identity_clause);
  }
  if (col->server_default.kind != LM_DEF_NONE &&
      col->server_default.kind != LM_DEF_DROP) {
    lm_buf_puts(out, " DEFAULT ");
    if (t->render_default(out, &col->server_default, err) != LM_OK) {
      lm_err_prefix(err, "column %s", col->name);
      return LM_ERROR;
    }
  }
  if (col->computed) {
    if (t->computed_stored_only && col->persisted == 0)
      return lm_err_set(err, "column %s: persisted = false (VIRTUAL): the "
                        "%s dialect computes columns STORED only", col->name,
                        t->dialect);
    lm_buf_printf(out, " GENERATED ALWAYS AS (%s)", col->computed);
    if (col->persisted == 1 || t->computed_stored_only)
      lm_buf_puts(out, " STORED");
    else if (col->persisted == 0)
      lm_buf_puts(out, " VIRTUAL");
  }
  if (!col->nullable || col->primary_key) lm_buf_puts(out, " NOT NULL");
  if (col->check) {
    if (col->check_name) {
      lm_buf_puts(out, " CONSTRAINT ");
      t->quote_ident(out, col->check_name);
    }
    lm_buf_printf(out, " CHECK (%s)", col->check);
  }
  if (!in_create_table && !t->add_column_keys_apart) {
    if (col->primary_key) lm_buf_puts(out, " PRIMARY KEY");
    if (col->unique) lm_buf_puts(out, " UNIQUE");
    if (col->ref_table) {
      if (col->fk_name) {
        lm_buf_puts(out, " CONSTRAINT ");
        t->quote_ident(out, col->fk_name);
      }
      lm_buf_puts(out, " REFERENCES ");
      lm_ddl_qualified(t, out, t->references_unqualified ? NULL
                                                          : col->ref_schema,
                       col->ref_table);
      lm_buf_puts(out, " (");
      t->quote_ident(out, col->ref_column);
      lm_buf_putc(out, ')');
      if (col->ondelete) lm_buf_printf(out, " ON DELETE %s", col->ondelete);
      if (col->onupdate) lm_buf_printf(out, " ON UPDATE %s", col->onupdate);
    }
  }
  return LM_OK;
}

lm_constraint lm_ddl_column_fk(const lm_column *col) {
  return (lm_constraint){.kind = LM_CON_FOREIGN_KEY,
                         .name = col->fk_name,
                         .columns = &col->name,
                         .ncolumns = 1,
                         .ref_schema = col->ref_schema,
                         .ref_table = col->ref_table,
                         .ref_columns = &col->ref_column,
                         .nref_columns = 1,
                         .ondelete = col->ondelete,
                         .onupdate = col->onupdate,
                         .deferrable = -1};
}

/* A table-level constraint clause. */
void lm_ddl_constraint(const lm_ddl_traits *t, lm_buf *out,
                       const lm_constraint *con) {
  if (con->name) {
    lm_buf_puts(out, "CONSTRAINT ");
    t->quote_ident(out, con->name);
    lm_buf_putc(out, ' ');
  }
  switch (con->kind) {
  case LM_CON_PRIMARY_KEY:
    lm_buf_puts(out, "PRIMARY KEY (");
    ident_list(t, out, con->columns, con->ncolumns);
    lm_buf_putc(out, ')');
    break;
  case LM_CON_UNIQUE:
    lm_buf_puts(out, "UNIQUE (");
    ident_list(t, out, con->columns, con->ncolumns);
    lm_buf_putc(out, ')');
    break;
  case LM_CON_CHECK:
    lm_buf_printf(out, "CHECK (%s)", con->condition);
    break;
  case LM_CON_FOREIGN_KEY:
    lm_buf_puts(out, "FOREIGN KEY(");
    ident_list(t, out, con->columns, con->ncolumns);
    lm_buf_puts(out, ") REFERENCES ");
    lm_ddl_qualified(t, out, t->references_unqualified ? NULL
                                                      : con->ref_schema,
                     con->ref_table);
    lm_buf_puts(out, " (");
    ident_list(t, out, con->ref_columns, con->nref_columns);
    lm_buf_putc(out, ')');
    if (con->ondelete) lm_buf_printf(out, " ON DELETE %s", con->ondelete);
    if (con->onupdate) lm_buf_printf(out, " ON UPDATE %s", con->onupdate);
    if (con->deferrable == 1) lm_buf_puts(out, " DEFERRABLE");
    if (con->deferrable == 0) lm_buf_puts(out, " NOT DEFERRABLE");
    if (con->initially) lm_buf_printf(out, " INITIALLY %s", con->initially);
    break;
  }
}

void lm_ddl_quoted(lm_buf *out, char mark, const char *s, size_t len) {
  lm_buf_grow(out, len + 2);
  lm_buf_putc(out, mark);
  for (size_t i = 0; i < len; i++) {
    if (s[i] == mark) lm_buf_putc(out, mark);
    lm_buf_putc(out, s[i]);
  }
  lm_buf_putc(out, mark);
}

char *lm_ddl_index_name(const char *table, const char *column) {
  return lm_xasprintf("ix_%s_%s", table, column);
}

/* CREATE INDEX for a column declared with index = true. */
static void column_index(const lm_ddl_traits *t, const lm_op *op,
                         const lm_column *col, lm_strvec *out) {
  lm_buf b = LM_BUF_INIT;
  char *name = col->index_name ? lm_xstrdup(col->index_name)
                               : lm_ddl_index_name(op->table, col->name);
  lm_buf_puts(&b, col->unique ? "CREATE UNIQUE INDEX " : "CREATE INDEX ");
  t->quote_ident(&b, name);
  lm_buf_puts(&b, " ON ");
  lm_ddl_qualified(t, &b, op->schema, op->table);
  lm_buf_puts(&b, " (");
  t->quote_ident(&b, col->name);
  lm_buf_putc(&b, ')');
  free(name);
  lm_strvec_push(out, lm_buf_detach(&b));
}

static void comment_on(const lm_ddl_traits *t, const lm_op *op,
                       const char *column, const char *comment,
                       lm_strvec *out) {
  lm_buf b = LM_BUF_INIT;
  lm_buf_puts(&b, column ? "COMMENT ON COLUMN " : "COMMENT ON TABLE ");
  lm_ddl_qualified(t, &b, op->schema, op->table);
  if (column) {
    lm_buf_putc(&b, '.');
    t->quote_ident(&b, column);
  }
  lm_buf_puts(&b, " IS ");
  lm_ddl_quoted(&b, '\'', comment, strlen(comment));
  lm_strvec_push(out, lm_buf_detach(&b));
}

/* The trigger of a column declared with onupdate = SQL. */
static int column_onupdate(const lm_ddl_traits *t, const lm_op *op,
                           const lm_column *col, lm_strvec *out, lm_err *err) {
  if (col->onupdate_value.kind == LM_DEF_NONE) return LM_OK;
  if (!t->onupdate_trigger)
    return lm_err_set(err, "column %s: onupdate = SQL needs a trigger, which "
                      "the %s dialect cannot write", col->name, t->dialect);
  int if_not_exists = op->kind == LM_OP_CREATE_TABLE && op->if_not_exists;
  if (t->onupdate_trigger(out, op->schema, op->table, col->name,
                          &col->onupdate_value, if_not_exists,
                          err) != LM_OK) {
    lm_err_prefix(err, "column %s: onupdate", col->name);
    return LM_ERROR;
  }
  return LM_OK;
}

static int create_table(const lm_ddl_traits *t, const lm_op *op,
                        lm_strvec *out, lm_err *err) {
  lm_buf b = LM_BUF_INIT;
  lm_buf_puts(&b, "CREATE TABLE ");
  if (op->if_not_exists) lm_buf_puts(&b, "IF NOT EXISTS ");
  lm_ddl_qualified(t, &b, op->schema, op->table);
  lm_buf_puts(&b, " (");
  const char *sep = "\n\t";
  for (size_t i = 0; i < op->ncolumns; i++) {
    lm_buf_puts(&b, sep);
    if (lm_ddl_column(t, &b, op, &op->columns[i], 1, err) != LM_OK) {
      lm_buf_free(&b);
      return LM_ERROR;
    }
    sep = ", \n\t";
  }
  /* Column-level keys become table-level constraints, as SQLAlchemy does. */
  size_t npk = 0;
  for (size_t i = 0; i < op->ncolumns; i++)
    if (op->columns[i].primary_key) npk++;
  if (npk) {
    lm_buf_puts(&b, sep);
    if (op->pk_name) {
      lm_buf_puts(&b, "CONSTRAINT ");
      t->quote_ident(&b, op->pk_name);
      lm_buf_putc(&b, ' ');
    }
    lm_buf_puts(&b, "PRIMARY KEY (");
    size_t k = 0;
    for (size_t i = 0; i < op->ncolumns; i++)
      if (op->columns[i].primary_key) {
        if (k++) lm_buf_puts(&b, ", ");
        t->quote_ident(&b, op->columns[i].name);
      }
    lm_buf_putc(&b, ')');
  }
  for (size_t i = 0; i < op->ncolumns; i++) {
    const lm_column *col = &op->columns[i];
    if (col->unique && !col->index) {
      lm_constraint uq = {.kind = LM_CON_UNIQUE, .name = col->unique_name,
                          .columns = &col->name, .ncolumns = 1,
                          .deferrable = -1};
      lm_buf_puts(&b, sep);
      lm_ddl_constraint(t, &b, &uq);
    }
  }
  for (size_t i = 0; i < op->ncolumns; i++) {
    const lm_column *col = &op->columns[i];
    if (!col->ref_table) continue;
    lm_constraint fk = lm_ddl_column_fk(col);
    lm_buf_puts(&b, sep);
    lm_ddl_constraint(t, &b, &fk);
  }
  for (size_t i = 0; i < op->nconstraints; i++) {
    lm_buf_puts(&b, sep);
    lm_ddl_constraint(t, &b, &op->constraints[i]);
  }
  lm_buf_puts(&b, "\n)");
  lm_strvec_push(out, lm_buf_detach(&b));
  for (size_t i = 0; i < op->ncolumns; i++)
    if (op->columns[i].index) column_index(t, op, &op->columns[i], out);
  if (t->supports_comments) {
    if (op->comment) comment_on(t, op, NULL, op->comment, out);
    for (size_t i = 0; i < op->ncolumns; i++)
      if (op->columns[i].comment)
        comment_on(t, op, op->columns[i].name, op->columns[i].comment, out);
  }
  for (size_t i = 0; i < op->ncolumns; i++)
    if (column_onupdate(t, op, &op->columns[i], out, err) != LM_OK)
      return LM_ERROR;
  return LM_OK;
}

static int add_column(const lm_ddl_traits *t, const lm_op *op, lm_strvec *out,
                      lm_err *err) {
  const lm_column *col = &op->columns[0];
  lm_buf b = LM_BUF_INIT;
  lm_buf_puts(&b, "ALTER TABLE ");
  lm_ddl_qualified(t, &b, op->schema, op->table);
  lm_buf_puts(&b, " ADD COLUMN ");
  if (lm_ddl_column(t, &b, op, col, 0, err) != LM_OK) {
    lm_buf_free(&b);
    return LM_ERROR;
  }
  lm_strvec_push(out, lm_buf_detach(&b));
  if (t->add_column_keys_apart) {
    lm_constraint keys[3];
    size_t n = 0;
    if (col->primary_key)
      keys[n++] = (lm_constraint){.kind = LM_CON_PRIMARY_KEY,
                                  .name = op->pk_name,
                                  .columns = &col->name, .ncolumns = 1,
                                  .deferrable = -1};
    if (col->ref_table) keys[n++] = lm_ddl_column_fk(col);
    if (col->unique && !col->index)
      keys[n++] = (lm_constraint){.kind = LM_CON_UNIQUE,
                                  .name = col->unique_name,
                                  .columns = &col->name, .ncolumns = 1,
                                  .deferrable = -1};
    for (size_t i = 0; i < n; i++) {
      lm_buf_puts(&b, "ALTER TABLE ");
      lm_ddl_qualified(t, &b, op->schema, op->table);
      lm_buf_puts(&b, " ADD ");
      lm_ddl_constraint(t, &b, &keys[i]);
      lm_strvec_push(out, lm_buf_detach(&b));
    }
  }
  if (col->index) column_index(t, op, col, out);
  if (t->supports_comments && col->comment)
    comment_on(t, op, col->name, col->comment, out);
  return column_onupdate(t, op, col, out, err);
}

int lm_ddl_compile(const lm_ddl_traits *t, const lm_op *op, lm_strvec *out,
                   lm_err *err) {
  lm_buf b = LM_BUF_INIT;
  switch (op->kind) {
  case LM_OP_CREATE_TABLE:
    return create_table(t, op, out, err);
  case LM_OP_DROP_TABLE:
    lm_buf_puts(&b, "DROP TABLE ");
    if (op->if_exists) lm_buf_puts(&b, "IF EXISTS ");
    lm_ddl_qualified(t, &b, op->schema, op->table);
    break;
  case LM_OP_RENAME_TABLE:
    lm_buf_puts(&b, "ALTER TABLE ");
    lm_ddl_qualified(t, &b, op->schema, op->table);
    lm_buf_puts(&b, " RENAME TO ");
    t->quote_ident(&b, op->name);
    break;
  case LM_OP_ADD_COLUMN:
    return add_column(t, op, out, err);
  case LM_OP_DROP_COLUMN:
    lm_buf_puts(&b, "ALTER TABLE ");
    lm_ddl_qualified(t, &b, op->schema, op->table);
    lm_buf_puts(&b, " DROP COLUMN ");
    t->quote_ident(&b, op->name);
    break;
  default:
    return lm_err_set(err, "operation not supported by the %s dialect yet",
                      t->dialect);
  }
  lm_strvec_push(out, lm_buf_detach(&b));
  return LM_OK;
}
