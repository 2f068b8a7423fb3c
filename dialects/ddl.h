/*
 * ddl.h - the DDL every SQL dialect shares (CREATE TABLE with its columns and
 * constraints, DROP TABLE, ADD/DROP COLUMN, indexes), written once and
 * parameterised by a dialect's traits: how it spells types, defaults and
 * identifiers.  A dialect's compile() calls lm_ddl_compile() for what it
 * does not handle itself.
 */
#ifndef LM_DDL_H
#define LM_DDL_H

#include "dialect.h"

typedef struct lm_ddl_traits {
  const char *dialect;          /* the dialect's name, for per-dialect types */
  void (*quote_ident)(lm_buf *out, const char *ident);
  /* Append a column type.  autoinc is LM_AUTO_TRUE when the column is the
   * table's lone autoincrementing integer primary key, LM_AUTO_IDENTITY when
   * identity was asked for, LM_AUTO_FALSE otherwise. */
  int (*render_type)(lm_buf *out, const lm_type *type, lm_autoinc autoinc,
                     lm_err *err);
  /* Append a server default's SQL (without the DEFAULT keyword). */
  int (*render_default)(lm_buf *out, const lm_default *def, lm_err *err);
  /* Appended after the type when identity is asked for, or NULL. */
  const char *identity_clause;
  /* COMMENT ON TABLE / COLUMN statements are emitted. */
  int supports_comments;
  /* Append the statements that create the trigger keeping a column's
   * onupdate value (lm_onupdate_trigger_name names it), or NULL when the
   * dialect cannot.  if_not_exists: the table may be there already
   * (create_table's option), and its trigger with it. */
  int (*onupdate_trigger)(lm_strvec *out, const char *schema,
                          const char *table, const char *column,
                          const lm_default *value, int if_not_exists,
                          lm_err *err);
  /* ADD COLUMN writes the column alone and its keys as ALTER TABLE ...
   * ADD constraint statements after it, as Alembic does; otherwise the
   * keys are inline (SQLite, which has no ADD constraint). */
  int add_column_keys_apart;
  /* A foreign key names its referent without a schema: SQLite's can only
   * reference a table in the same database (the dialect checks that). */
  int references_unqualified;
  /* Computed columns are STORED only (PostgreSQL): persisted = false is
   * refused, and STORED is written when persisted is not said. */
  int computed_stored_only;
  /* Append " CHECK (...)" keeping an enum column's values, for a dialect
   * without enum types; NULL when the type holds them. */
  void (*enum_check)(lm_buf *out, const char *column, const lm_type *type);
} lm_ddl_traits;

int lm_ddl_compile(const lm_ddl_traits *t, const lm_op *op, lm_strvec *out,
                   lm_err *err);

/* Building blocks, for dialects that compile some operations differently. */
void lm_ddl_qualified(const lm_ddl_traits *t, lm_buf *out, const char *schema,
                      const char *name);
/* Does this column autoincrement (a lone integer primary key)? */
lm_autoinc lm_ddl_column_autoinc(const lm_op *op, const lm_column *col);
int lm_ddl_column(const lm_ddl_traits *t, lm_buf *out, const lm_op *op,
                  const lm_column *col, int in_create_table, lm_err *err);
void lm_ddl_constraint(const lm_ddl_traits *t, lm_buf *out,
                       const lm_constraint *con);
/* " (INCREMENT BY n START WITH n ...)" for the options given, in
 * SQLAlchemy's order; nothing when none is. */
void lm_ddl_identity_options(lm_buf *out, const lm_identity *id);
/* The FOREIGN KEY a column's references = ... declares. */
lm_constraint lm_ddl_column_fk(const lm_column *col);
/* Append text between `mark` characters, a mark inside doubled: "name"
 * for identifiers, 'text' for string literals, as SQL spells both. */
void lm_ddl_quoted(lm_buf *out, char mark, const char *s, size_t len);

/* The default name an index=true column gets: ix_<table>_<column>. */
char *lm_ddl_index_name(const char *table, const char *column);

#endif
