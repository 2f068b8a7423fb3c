/*
 * sqlite_ddl.c - how the SQLite dialect writes SQL: identifiers quoted as
 * SQLAlchemy quotes them, literals for --sql output, the declared types
 * and defaults SQLAlchemy writes, and the choice, operation by operation,
 * between SQLite's own ALTER TABLE and a rebuild of the table
 * (sqlite_rebuild.c) where SQLite has no ALTER for the change.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sqlite_ddl.h"

/* ---- identifiers and literals ---------------------------------------- */

/* SQLite's keywords that SQLAlchemy quotes. */
static const char *const reserved[] = {
  "abort", "action", "add", "after", "all", "alter", "analyze", "and", "as",
  "asc", "attach", "autoincrement", "before", "begin", "between", "by",
  "cascade", "case", "cast", "check", "collate", "column", "commit",
  "conflict", "constraint", "create", "cross", "current_date",
  "current_time", "current_timestamp", "database", "default", "deferrable",
  "deferred", "delete", "desc", "detach", "distinct", "drop", "each", "else",
  "end", "escape", "except", "exclusive", "exists", "explain", "false",
  "fail", "for", "foreign", "from", "full", "glob", "group", "having", "if",
  "ignore", "immediate", "in", "index", "indexed", "initially", "inner",
  "insert", "instead", "intersect", "into", "is", "isnull", "join", "key",
  "left", "like", "limit", "match", "natural", "not", "notnull", "null", "of",
  "offset", "on", "or", "order", "outer", "plan", "pragma", "primary",
  "query", "raise", "references", "reindex", "rename", "replace", "restrict",
  "right", "rollback", "row", "select", "set", "table", "temp", "temporary",
  "then", "to", "transaction", "trigger", "true", "union", "unique",
  "update", "using", "vacuum", "values", "view", "virtual", "when", "where",
  NULL};

static int needs_quotes(const char *ident) {
  if (!*ident || isdigit((unsigned char)*ident) || *ident == '$') return 1;
  for (const char *p = ident; *p; p++)
    if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) ||
          *p == '_' || *p == '$'))
      return 1;
  for (size_t i = 0; reserved[i]; i++)
    if (strcmp(reserved[i], ident) == 0) return 1;
  return 0;
}

void lm_sqlite_quote_ident(lm_buf *out, const char *ident) {
  if (!needs_quotes(ident)) {
    lm_buf_puts(out, ident);
    return;
  }
  lm_ddl_quoted(out, '"', ident, strlen(ident));
}

static void quote_string(lm_buf *out, const char *s, size_t len) {
  lm_ddl_quoted(out, '\'', s, len);
}

void lm_sqlite_render_literal(lm_buf *out, const lm_value *v) {
  switch (v->type) {
  case LM_V_NULL: lm_buf_puts(out, "NULL"); break;
  case LM_V_INT:
  case LM_V_BOOL: lm_buf_printf(out, "%lld", (long long)v->i); break;
  case LM_V_FLOAT: lm_buf_printf(out, "%.17g", v->f); break;
  case LM_V_TEXT: quote_string(out, v->s, v->len); break;
  case LM_V_BLOB:
    lm_buf_puts(out, "X'");
    for (size_t i = 0; i < v->len; i++)
      lm_buf_printf(out, "%02X", (unsigned char)v->s[i]);
    lm_buf_putc(out, '\'');
    break;
  }
}

/* ---- types and defaults ---------------------------------------------- */

/* The declared types SQLAlchemy writes on SQLite, so schemas match. */
static int sqlite_render_type(lm_buf *out, const lm_type *type,
                              lm_autoinc autoinc, lm_err *err) {
  (void)autoinc;   /* INTEGER PRIMARY KEY is the rowid: it autoincrements */
  switch (type->kind) {
  case LM_T_INTEGER: lm_buf_puts(out, "INTEGER"); break;
  case LM_T_BIGINT: lm_buf_puts(out, "BIGINT"); break;
  case LM_T_SMALLINT: lm_buf_puts(out, "SMALLINT"); break;
  case LM_T_STRING:
    if (type->length >= 0) lm_buf_printf(out, "VARCHAR(%d)", type->length);
    else lm_buf_puts(out, "VARCHAR");
    break;
  case LM_T_TEXT: lm_buf_puts(out, "TEXT"); break;
  case LM_T_BOOLEAN: lm_buf_puts(out, "BOOLEAN"); break;
  case LM_T_FLOAT: lm_buf_puts(out, "FLOAT"); break;
  case LM_T_NUMERIC:
    if (type->precision >= 0 && type->scale >= 0)
      lm_buf_printf(out, "NUMERIC(%d, %d)", type->precision, type->scale);
    else if (type->precision >= 0)
      lm_buf_printf(out, "NUMERIC(%d)", type->precision);
    else
      lm_buf_puts(out, "NUMERIC");
    break;
  case LM_T_DATE: lm_buf_puts(out, "DATE"); break;
  case LM_T_DATETIME:
  case LM_T_TIMESTAMPTZ: lm_buf_puts(out, "DATETIME"); break;
  case LM_T_TIME: lm_buf_puts(out, "TIME"); break;
  case LM_T_JSON: lm_buf_puts(out, "JSON"); break;
  case LM_T_UUID: lm_buf_puts(out, "CHAR(32)"); break;
  case LM_T_BINARY: lm_buf_puts(out, "BLOB"); break;
  case LM_T_RAW: lm_buf_puts(out, type->raw); break;
  case LM_T_PER_DIALECT: {
    const char *raw = lm_type_choice(type, "sqlite");
    if (!raw) return lm_err_set(err, "the type names no choice for sqlite");
    lm_buf_puts(out, raw);
    break;
  }
  case LM_T_ENUM:
    lm_buf_printf(out, "VARCHAR(%zu)", lm_type_enum_width(type));
    break;
  case LM_T_NONE: return lm_err_set(err, "no type given");
  }
  return LM_OK;
}

void lm_sqlite_enum_check(lm_buf *out, const char *column,
                          const lm_type *type) {
  lm_buf_puts(out, "CHECK (");
  lm_sqlite_quote_ident(out, column);
  lm_buf_puts(out, " IN (");
  for (size_t i = 0; i < type->nenum_values; i++) {
    if (i) lm_buf_puts(out, ", ");
    quote_string(out, type->enum_values[i], strlen(type->enum_values[i]));
  }
  lm_buf_puts(out, "))");
}

static void sqlite_enum_check(lm_buf *out, const char *column,
                              const lm_type *type) {
  lm_buf_putc(out, ' ');
  lm_sqlite_enum_check(out, column, type);
}

static int sqlite_render_default(lm_buf *out, const lm_default *def,
                                 lm_err *err) {
  switch (def->kind) {
  case LM_DEF_STRING: quote_string(out, def->text, strlen(def->text)); break;
  case LM_DEF_INT:
  case LM_DEF_BOOL: lm_buf_printf(out, "%lld", (long long)def->i); break;
  case LM_DEF_FLOAT: lm_buf_printf(out, "%.17g", def->f); break;
  /* SQLite requires an expression default to be parenthesised. */
  case LM_DEF_SQL: lm_buf_printf(out, "(%s)", def->text); break;
  case LM_DEF_FUNC:
    if (strcmp(def->text, "now") == 0) lm_buf_puts(out, "(CURRENT_TIMESTAMP)");
    else lm_buf_printf(out, "(%s())", def->text);
    break;
  case LM_DEF_RAW: lm_buf_puts(out, def->text); break;
  default: return lm_err_set(err, "no default to render");
  }
  return LM_OK;
}

/* ---- onupdate triggers -------------------------------------------------- */

/* SQLite triggers cannot assign NEW.col, so the row is updated again after
 * the user's UPDATE, by rowid.  The WHEN clause keeps a value the UPDATE
 * set itself (the column changed); the WHERE clause skips a value already
 * in place, so even with recursive_triggers on, the trigger's own UPDATE
 * (which changes the column) does not set it again. */
static int onupdate_trigger_sql(lm_buf *out, const char *schema,
                                const char *table, const char *name,
                                const char *column, const lm_default *value,
                                int if_not_exists, lm_err *err) {
  lm_buf col = LM_BUF_INIT, v = LM_BUF_INIT;
  lm_sqlite_quote_ident(&col, column);
  if (sqlite_render_default(&v, value, err) != LM_OK) {
    lm_buf_free(&col);
    return LM_ERROR;
  }
  const char *c = lm_buf_str(&col);
  lm_buf_puts(out, if_not_exists ? "CREATE TRIGGER IF NOT EXISTS "
                                  : "CREATE TRIGGER ");
  lm_ddl_qualified(&lm_sqlite_traits, out, schema, name);
  lm_buf_puts(out, " AFTER UPDATE ON ");
  lm_sqlite_quote_ident(out, table);
  lm_buf_printf(out, " FOR EACH ROW WHEN NEW.%s IS OLD.%s\nBEGIN\n\tUPDATE ",
                c, c);
  lm_sqlite_quote_ident(out, table);     /* never qualified inside a trigger */
  lm_buf_printf(out, " SET %s = %s\n\tWHERE rowid = NEW.rowid AND %s IS NOT "
                "%s;\nEND", c, lm_buf_str(&v), c, lm_buf_str(&v));
  lm_buf_free(&col);
  lm_buf_free(&v);
  return LM_OK;
}

static int sqlite_onupdate_trigger(lm_strvec *out, const char *schema,
                                   const char *table, const char *column,
                                   const lm_default *value, int if_not_exists,
                                   lm_err *err) {
  lm_buf b = LM_BUF_INIT;
  char *name = lm_onupdate_trigger_name(table, column);
  int rc = onupdate_trigger_sql(&b, schema, table, name, column, value,
                                if_not_exists, err);
  free(name);
  if (rc == LM_OK) lm_strvec_push(out, lm_buf_detach(&b));
  lm_buf_free(&b);
  return rc;
}

int lm_sqlite_trigger_sql(lm_buf *out, const char *schema, const char *table,
                          const lm_mtrigger *tr, lm_err *err) {
  if (tr->sql) {
    lm_buf_puts(out, tr->sql);
    return LM_OK;
  }
  return onupdate_trigger_sql(out, schema, table, tr->name, tr->column,
                              &tr->onupdate, 0, err);
}

const lm_ddl_traits lm_sqlite_traits = {
  .dialect = "sqlite",
  .quote_ident = lm_sqlite_quote_ident,
  .render_type = sqlite_render_type,
  .render_default = sqlite_render_default,
  .identity_clause = NULL,
  .supports_comments = 0,
  .onupdate_trigger = sqlite_onupdate_trigger,
  .references_unqualified = 1,
  .enum_check = sqlite_enum_check,
};

/* ---- indexes ---------------------------------------------------------- */

/* An index lives in its table's database, so a schema qualifies the index
 * name and never the table (SQLite's syntax). */
void lm_sqlite_index_sql(lm_buf *out, const char *schema, const char *table,
                         const lm_mindex *mi, int if_not_exists) {
  if (mi->sql) {
    lm_buf_puts(out, mi->sql);
    return;
  }
  const lm_index *ix = &mi->ix;
  lm_buf_puts(out, ix->unique ? "CREATE UNIQUE INDEX " : "CREATE INDEX ");
  if (if_not_exists) lm_buf_puts(out, "IF NOT EXISTS ");
  lm_ddl_qualified(&lm_sqlite_traits, out, schema, mi->name);
  lm_buf_puts(out, " ON ");
  lm_sqlite_quote_ident(out, table);
  lm_buf_puts(out, " (");
  for (size_t i = 0; i < ix->ncolumns; i++) {
    if (i) lm_buf_puts(out, ", ");
    if (ix->is_expr && ix->is_expr[i]) lm_buf_puts(out, ix->columns[i]);
    else lm_sqlite_quote_ident(out, ix->columns[i]);
  }
  lm_buf_putc(out, ')');
  if (ix->where) lm_buf_printf(out, " WHERE %s", ix->where);
}

/* ---- the shape of a table --------------------------------------------- */

/* A table's current shape, copied into tmp: online from the database,
 * offline from the model the migrations so far give. */
static int load_table(const lm_compile_ctx *ctx, lm_schema *tmp,
                      const lm_op *op, lm_mtable **out, lm_err *err) {
  if (ctx->conn) {
    int found = 0;
    if (lm_sqlite_introspect(ctx->conn, op->schema, op->table, tmp, &found,
                             err) != LM_OK)
      return LM_ERROR;
    if (!found)
      return lm_err_set(err, "no table %s in the database", op->table);
    *out = lm_schema_table(tmp, op->schema, op->table);
    return *out ? LM_OK : lm_err_set(err, "no table %s", op->table);
  }
  const char *rev = ctx->revision ? ctx->revision : "?";
  if (ctx->model && ctx->model->unknown_since)
    return lm_err_set(err, "cannot write the SQLite rebuild of table %s "
                      "offline (revision %s): revision %s ran SQL that "
                      "luamig cannot follow, so the table's shape is "
                      "unknown; run this migration online instead",
                      op->table, rev, ctx->model->unknown_since);
  lm_mtable *t = ctx->model ? lm_schema_table(ctx->model, op->schema,
                                              op->table) : NULL;
  if (!t)
    return lm_err_set(err, "cannot write the SQLite rebuild of table %s "
                      "offline (revision %s): no earlier migration creates "
                      "it, so its shape is unknown", op->table, rev);
  if (t->unknown_since)
    return lm_err_set(err, "cannot write the SQLite rebuild of table %s "
                      "offline (revision %s): revision %s changed the table "
                      "with raw SQL (op.execute) that luamig cannot follow, "
                      "so its shape is unknown; run this migration online "
                      "instead", op->table, rev, t->unknown_since);
  *out = lm_schema_copy_table(tmp, t);
  return LM_OK;
}

/* ---- which changes need a rebuild ------------------------------------- */

/* ALTER TABLE ADD COLUMN refuses keys, NOT NULL without a default and
 * defaults that are not constants. */
static int add_needs_rebuild(const lm_column *c) {
  lm_default_kind d = c->server_default.kind;
  if (c->computed) return c->persisted == 1 || c->primary_key || c->unique;
  return c->primary_key || c->unique || d == LM_DEF_SQL || d == LM_DEF_FUNC ||
         (!c->nullable && d == LM_DEF_NONE);
}

/* ALTER TABLE DROP COLUMN refuses a column that a key, an index, a
 * foreign key, another column's CHECK or a trigger uses. */
static int drop_needs_rebuild(const lm_mtable *t, const char *col) {
  for (size_t i = 0; i < t->nconstraints; i++) {
    const lm_mconstraint *c = &t->constraints[i];
    if (c->con.kind == LM_CON_CHECK && c->column &&
        strcmp(c->column, col) == 0)
      continue;             /* the column's own CHECK goes with it */
    if (lm_mconstraint_uses(c, col)) return 1;
  }
  for (size_t i = 0; i < t->nindexes; i++)
    if (lm_mindex_uses(&t->indexes[i], col)) return 1;
  for (size_t i = 0; i < t->ntriggers; i++)
    if (lm_sql_mentions(t->triggers[i].sql, col) ||
        (t->triggers[i].column && strcmp(t->triggers[i].column, col) == 0))
      return 1;
  for (size_t i = 0; i < t->ncolumns; i++)
    if (t->columns[i].generated && lm_sql_mentions(t->columns[i].extra, col))
      return 1;
  return 0;
}

/* alter_column changes SQLite can make in place: a rename, and what SQLite
 * does not store (comments). */
static int alter_needs_rebuild(const lm_alter *a) {
  return a->type.kind != LM_T_NONE || a->set_nullable >= 0 ||
         a->server_default.kind != LM_DEF_NONE;
}

/* Does this op need a rebuild on the table's current shape t? */
static int needs_rebuild(const lm_mtable *t, const lm_op *op) {
  switch (op->kind) {
  case LM_OP_ADD_COLUMN:
    return op->insert_before || op->insert_after ||
           add_needs_rebuild(&op->columns[0]);
  case LM_OP_DROP_COLUMN: return t && drop_needs_rebuild(t, op->name);
  case LM_OP_ALTER_COLUMN: return alter_needs_rebuild(&op->alter);
  case LM_OP_ADD_CONSTRAINT:
  case LM_OP_DROP_CONSTRAINT: return 1;
  default: return 0;
  }
}

/* ---- compiling --------------------------------------------------------- */

static void alter_table(lm_buf *b, const lm_op *op) {
  lm_buf_puts(b, "ALTER TABLE ");
  lm_ddl_qualified(&lm_sqlite_traits, b, op->schema, op->table);
  lm_buf_putc(b, ' ');
}

/* What SQLite does in place, without reading the table. */
static int compile_native(const lm_op *op, lm_strvec *out, lm_err *err) {
  lm_buf b = LM_BUF_INIT;
  switch (op->kind) {
  case LM_OP_ALTER_COLUMN:
    if (op->alter.new_name) {
      alter_table(&b, op);
      lm_buf_puts(&b, "RENAME COLUMN ");
      lm_sqlite_quote_ident(&b, op->name);
      lm_buf_puts(&b, " TO ");
      lm_sqlite_quote_ident(&b, op->alter.new_name);
      lm_strvec_push(out, lm_buf_detach(&b));
    }
    return LM_OK;         /* a comment alone: SQLite keeps none */
  case LM_OP_CREATE_INDEX: {
    lm_mindex mi = {.name = op->name, .ix = op->index};
    lm_sqlite_index_sql(&b, op->schema, op->table, &mi, op->if_not_exists);
    lm_strvec_push(out, lm_buf_detach(&b));
    return LM_OK;
  }
  case LM_OP_DROP_INDEX:
    lm_buf_puts(&b, "DROP INDEX ");
    if (op->if_exists) lm_buf_puts(&b, "IF EXISTS ");
    lm_ddl_qualified(&lm_sqlite_traits, &b, op->schema, op->name);
    lm_strvec_push(out, lm_buf_detach(&b));
    return LM_OK;
  case LM_OP_EXECUTE:
    return lm_err_set(err, "execute is run by the core, not compiled");
  case LM_OP_VALIDATE_CONSTRAINT:
    return LM_OK;         /* SQLite checks a constraint as it adds it */
  default:
    return lm_ddl_compile(&lm_sqlite_traits, op, out, err);
  }
}

/* One rebuild for all of ops, on the table they name. */
static int rebuild(const lm_compile_ctx *ctx, const lm_op *head,
                   const lm_op *ops, size_t nops, lm_strvec *out,
                   lm_err *err) {
  lm_schema tmp;
  lm_schema_init(&tmp);
  lm_mtable *t = NULL;
  int rc = load_table(ctx, &tmp, head, &t, err);
  if (rc == LM_OK) rc = lm_sqlite_rebuild(ctx, &tmp, t, ops, nops, out, err);
  lm_schema_free(&tmp);
  if (rc != LM_OK) lm_err_prefix(err, "rebuilding table %s", head->table);
  return rc;
}

/* drop_column: in place when SQLite allows it, else a rebuild; both need
 * the table's shape to tell. */
static int drop_column(const lm_compile_ctx *ctx, const lm_op *op,
                       lm_strvec *out, lm_err *err) {
  lm_schema tmp;
  lm_schema_init(&tmp);
  lm_mtable *t = NULL;
  int rc = load_table(ctx, &tmp, op, &t, err);
  if (rc == LM_OK && !lm_mtable_column(t, op->name))
    rc = lm_err_set(err, "table %s has no column %s", op->table, op->name);
  lm_mtrigger *tr = rc == LM_OK ? lm_mtable_onupdate_trigger(t, op->name)
                                : NULL;
  if (tr) {
    /* The column's onupdate trigger goes first: SQLite would keep it,
     * naming a column that is no more. */
    lm_buf b = LM_BUF_INIT;
    lm_buf_puts(&b, "DROP TRIGGER ");
    lm_ddl_qualified(&lm_sqlite_traits, &b, op->schema, tr->name);
    lm_strvec_push(out, lm_buf_detach(&b));
    size_t at = (size_t)(tr - t->triggers);
    memmove(tr, tr + 1, (t->ntriggers - at - 1) * sizeof *tr);
    t->ntriggers--;
  }
  if (rc == LM_OK) {
    if (drop_needs_rebuild(t, op->name))
      rc = lm_sqlite_rebuild(ctx, &tmp, t, op, 1, out, err);
    else
      rc = lm_ddl_compile(&lm_sqlite_traits, op, out, err);
  }
  lm_schema_free(&tmp);
  if (rc != LM_OK) lm_err_prefix(err, "drop_column %s.%s", op->table, op->name);
  return rc;
}

/* A batch: in place, op by op, when none of its changes needs a rebuild
 * (and recreate is not "always"); else one rebuild for all of them. */
static int batch(const lm_compile_ctx *ctx, const lm_op *op, lm_strvec *out,
                 lm_err *err) {
  int need = op->recreate == 1;
  int has_drop = 0;
  for (size_t i = 0; i < op->nops; i++) {
    if (op->ops[i].kind == LM_OP_DROP_COLUMN) has_drop = 1;
    else if (needs_rebuild(NULL, &op->ops[i])) need = 1;
  }
  if (!need && has_drop) {
    /* Whether a drop needs a rebuild depends on the table. */
    lm_schema tmp;
    lm_schema_init(&tmp);
    lm_mtable *t = NULL;
    int rc = load_table(ctx, &tmp, op, &t, err);
    for (size_t i = 0; rc == LM_OK && i < op->nops; i++)
      if (op->ops[i].kind == LM_OP_DROP_COLUMN &&
          needs_rebuild(t, &op->ops[i]))
        need = 1;
    lm_schema_free(&tmp);
    if (rc != LM_OK) return rc;
  }
  if (need && op->recreate == -1)
    return lm_err_set(err, "batch_alter_table %s: recreate = \"never\", but "
                      "SQLite cannot make these changes without rebuilding "
                      "the table", op->table);
  if (need) return rebuild(ctx, op, op->ops, op->nops, out, err);
  for (size_t i = 0; i < op->nops; i++)
    if (compile_native(&op->ops[i], out, err) != LM_OK) return LM_ERROR;
  return LM_OK;
}

/* Does the op (or a batch's) add a column with onupdate = SQL? */
static const lm_column *adds_onupdate(const lm_op *op) {
  if (op->kind == LM_OP_ADD_COLUMN &&
      op->columns[0].onupdate_value.kind != LM_DEF_NONE)
    return &op->columns[0];
  for (size_t i = 0; op->kind == LM_OP_BATCH && i < op->nops; i++) {
    const lm_column *col = adds_onupdate(&op->ops[i]);
    if (col) return col;
  }
  return NULL;
}

/* An onupdate trigger finds its row by rowid, which a WITHOUT ROWID table
 * lacks: refuse rather than write a trigger that fails on every UPDATE.
 * A table whose shape is unknown is left to the ALTER TABLE. */
static int check_onupdate_rowid(const lm_compile_ctx *ctx, const lm_op *op,
                                lm_err *err) {
  const lm_column *col = adds_onupdate(op);
  if (!col) return LM_OK;
  lm_schema tmp;
  lm_schema_init(&tmp);
  lm_mtable *t = NULL;
  lm_err unknown;
  lm_err_init(&unknown);
  int rc = LM_OK;
  if (load_table(ctx, &tmp, op, &t, &unknown) == LM_OK && t->options) {
    for (const char *p = t->options; *p && rc == LM_OK; p++)
      if (strncasecmp(p, "WITHOUT", 7) == 0 && !isalnum((unsigned char)p[7]))
        rc = lm_err_set(err, "add_column %s.%s: onupdate needs a trigger "
                        "that finds the row by rowid, and %s is a WITHOUT "
                        "ROWID table", op->table, col->name, op->table);
  }
  lm_err_free(&unknown);
  lm_schema_free(&tmp);
  return rc;
}

/* A foreign key's referent in another schema (another attached database):
 * SQLite cannot reference it, so refuse rather than drop the key, as
 * SQLAlchemy's SQLite dialect does. */
static int check_ref_schema(const lm_op *op, const char *ref_schema,
                            lm_err *err) {
  if (!ref_schema || (op->schema && strcmp(op->schema, ref_schema) == 0))
    return LM_OK;
  return lm_err_set(err, "%s: a foreign key references a table in schema "
                    "%s, but SQLite can only reference a table in the same "
                    "database (%s)", op->table, ref_schema,
                    op->schema ? op->schema : "main");
}

/* An autoincrementing column asked for explicitly: SQLite has it only as
 * the rowid, a table's one INTEGER PRIMARY KEY. */
static int check_autoinc(const lm_op *op, const lm_column *col, lm_err *err) {
  if (col->autoincrement != LM_AUTO_TRUE &&
      col->autoincrement != LM_AUTO_IDENTITY)
    return LM_OK;
  const lm_identity *id = &col->identity;
  if (id->always_given || id->has_start || id->has_increment ||
      id->has_minvalue || id->has_maxvalue || id->has_cache || id->cycle >= 0)
    return lm_err_set(err, "%s.%s: identity options: SQLite has no identity "
                      "columns (a lone INTEGER PRIMARY KEY is the rowid, "
                      "which autoincrements without options)", op->table,
                      col->name);
  size_t pk = 0;
  for (size_t i = 0; i < op->ncolumns; i++) pk += op->columns[i].primary_key;
  for (size_t i = 0; i < op->nconstraints; i++)
    if (op->constraints[i].kind == LM_CON_PRIMARY_KEY)
      pk += op->constraints[i].ncolumns;
  if (col->primary_key && pk == 1 && col->type.kind == LM_T_INTEGER)
    return LM_OK;
  return lm_err_set(err, "%s.%s: autoincrement = %s: SQLite autoincrements "
                    "only a table's one INTEGER PRIMARY KEY (the rowid)",
                    op->table, col->name,
                    col->autoincrement == LM_AUTO_TRUE ? "true"
                                                       : "\"identity\"");
}

/* What SQLite has no way to honour is refused, never dropped. */
static int check_supported(const lm_op *op, lm_err *err) {
  for (size_t i = 0; i < op->ncolumns; i++)
    if (check_autoinc(op, &op->columns[i], err) != LM_OK) return LM_ERROR;
  if (op->kind == LM_OP_ALTER_COLUMN &&
      (op->alter.identity.given || op->alter.identity_drop))
    return lm_err_set(err, "alter_column %s.%s: SQLite has no identity "
                      "columns", op->table, op->name);
  if (op->kind == LM_OP_ALTER_COLUMN && op->alter.using_expr)
    return lm_err_set(err, "alter_column %s.%s: using is PostgreSQL's; a "
                      "SQLite rebuild copies the values as they are (give "
                      "postgresql_using for a PostgreSQL-only USING)",
                      op->table, op->name);
  for (size_t i = 0; i < op->nconstraints; i++)
    if (op->constraints[i].kind == LM_CON_EXCLUDE)
      return lm_err_set(err, "create_exclude_constraint %s: SQLite has no "
                        "exclusion constraints", op->constraints[i].name);
  if (op->kind == LM_OP_TABLE_COMMENT)
    return lm_err_set(err, "%s_table_comment %s: SQLite keeps no comments",
                      op->comment ? "create" : "drop", op->table);
  if (op->kind == LM_OP_CREATE_INDEX && (op->index.ninclude ||
                                         op->index.method))
    return lm_err_set(err, "create_index %s: SQLite has no %s (give "
                      "postgresql_%s for a PostgreSQL-only option)", op->name,
                      op->index.ninclude ? "INCLUDE" : "index methods (USING)",
                      op->index.ninclude ? "include" : "using");
  if ((op->kind == LM_OP_CREATE_INDEX || op->kind == LM_OP_DROP_INDEX) &&
      op->index.concurrently)
    return lm_err_set(err, "%s %s: SQLite has no CONCURRENTLY (give "
                      "postgresql_concurrently for a PostgreSQL-only option)",
                      op->kind == LM_OP_CREATE_INDEX ? "create_index"
                                                     : "drop_index",
                      op->name);
  return LM_OK;
}

static int check_op(const lm_op *op, lm_err *err) {
  if (check_supported(op, err) != LM_OK) return LM_ERROR;
  for (size_t i = 0; i < op->ncolumns; i++)
    if (check_ref_schema(op, op->columns[i].ref_schema, err) != LM_OK)
      return LM_ERROR;
  for (size_t i = 0; i < op->nconstraints; i++)
    if (op->constraints[i].kind == LM_CON_FOREIGN_KEY &&
        check_ref_schema(op, op->constraints[i].ref_schema, err) != LM_OK)
      return LM_ERROR;
  for (size_t i = 0; op->kind == LM_OP_BATCH && i < op->nops; i++)
    if (check_op(&op->ops[i], err) != LM_OK) return LM_ERROR;
  return LM_OK;
}

int lm_sqlite_compile(const lm_compile_ctx *ctx, const lm_op *op,
                      lm_strvec *out, lm_err *err) {
  if (check_onupdate_rowid(ctx, op, err) != LM_OK) return LM_ERROR;
  if (check_op(op, err) != LM_OK) return LM_ERROR;
  switch (op->kind) {
  case LM_OP_BATCH:
    return batch(ctx, op, out, err);
  case LM_OP_DROP_COLUMN:
    return drop_column(ctx, op, out, err);
  case LM_OP_ADD_COLUMN:
  case LM_OP_ALTER_COLUMN:
  case LM_OP_ADD_CONSTRAINT:
  case LM_OP_DROP_CONSTRAINT:
    if (needs_rebuild(NULL, op)) return rebuild(ctx, op, op, 1, out, err);
    return compile_native(op, out, err);
  default:
    return compile_native(op, out, err);
  }
}
