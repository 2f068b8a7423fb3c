/*
 * postgresql_ddl.c - how the PostgreSQL dialect writes SQL: identifiers
 * quoted as SQLAlchemy quotes them, literals for --sql output, column types
 * and server defaults as SQLAlchemy and Alembic render them, and the
 * operations PostgreSQL spells its own way (ALTER COLUMN, indexes,
 * constraints).  The rest goes through the shared compiler in ddl.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/schema.h"
#include "ddl.h"
#include "postgresql.h"
#include "postgresql_enum.h"


/* ---- identifiers ----------------------------------------------------- */

/* SQLAlchemy's RESERVED_WORDS for PostgreSQL, plus the few words
 * PostgreSQL reserves that its list misses (collation, concurrently,
 * lateral, tablesample), which would otherwise fail as bare names. */
static const char *const reserved[] = {
  "all", "analyse", "analyze", "and", "any", "array", "as", "asc",
  "asymmetric", "authorization", "between", "binary", "both", "case", "cast",
  "check", "collate", "collation", "column", "concurrently", "constraint",
  "create", "cross", "current_catalog", "current_date", "current_role",
  "current_schema", "current_time", "current_timestamp", "current_user",
  "default", "deferrable", "desc", "distinct", "do", "else", "end", "except",
  "false", "fetch", "for", "foreign", "freeze", "from", "full", "grant",
  "group", "having", "ilike", "in", "initially", "inner", "intersect", "into",
  "is", "isnull", "join", "lateral", "leading", "left", "like", "limit",
  "localtime", "localtimestamp", "natural", "new", "not", "notnull", "null",
  "of", "off", "offset", "old", "on", "only", "or", "order", "outer", "over",
  "overlaps", "placing", "primary", "references", "returning", "right",
  "select", "session_user", "similar", "some", "symmetric", "table",
  "tablesample", "then", "to", "trailing", "true", "union", "unique", "user",
  "using", "variadic", "verbose", "when", "where", "window", "with",
};

static int is_reserved(const char *ident) {
  size_t lo = 0, hi = sizeof reserved / sizeof *reserved;
  while (lo < hi) {     /* the list is sorted */
    size_t mid = (lo + hi) / 2;
    int c = strcmp(ident, reserved[mid]);
    if (c == 0) return 1;
    if (c < 0) hi = mid;
    else lo = mid + 1;
  }
  return 0;
}

/* SQLAlchemy's rule: lower case letters, digits, '_' and '$', not starting
 * with a digit or '$', and not reserved, stays bare.  Anything else (upper
 * case included, since PostgreSQL folds bare names to lower case) is
 * quoted. */
static int needs_quotes(const char *ident) {
  if (!ident[0] || (ident[0] >= '0' && ident[0] <= '9') || ident[0] == '$')
    return 1;
  for (const char *p = ident; *p; p++) {
    char c = *p;
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '$'))
      return 1;
  }
  return is_reserved(ident);
}

void lm_pg_quote_ident(lm_buf *out, const char *ident) {
  if (!needs_quotes(ident)) {
    lm_buf_puts(out, ident);
    return;
  }
  lm_ddl_quoted(out, '"', ident, strlen(ident));
}

/* ---- literals -------------------------------------------------------- */

/* '...' with quotes doubled.  standard_conforming_strings is on (the
 * default since 9.1), so a backslash is an ordinary character. */
static void quote_string(lm_buf *out, const char *s, size_t len) {
  lm_ddl_quoted(out, '\'', s, len);
}

/* A float literal: the special values only exist as strings cast to a
 * float type. */
static void render_double(lm_buf *out, double d) {
  char num[64];
  lm_pg_format_double(num, sizeof num, d);
  if (d != d || d > 1.7976931348623157e308 || d < -1.7976931348623157e308)
    lm_buf_printf(out, "'%s'::float8", num);
  else
    lm_buf_puts(out, num);
}

void lm_pg_render_literal(lm_buf *out, const lm_value *v) {
  static const char hex[] = "0123456789abcdef";
  switch (v->type) {
  case LM_V_NULL: lm_buf_puts(out, "NULL"); break;
  case LM_V_INT: lm_buf_printf(out, "%lld", (long long)v->i); break;
  case LM_V_FLOAT: render_double(out, v->f); break;
  case LM_V_BOOL: lm_buf_puts(out, v->i ? "true" : "false"); break;
  case LM_V_TEXT: quote_string(out, v->s ? v->s : "", v->s ? v->len : 0); break;
  case LM_V_BLOB:
    lm_buf_puts(out, "'\\x");
    for (size_t i = 0; i < v->len; i++) {
      unsigned char b = (unsigned char)v->s[i];
      lm_buf_putc(out, hex[b >> 4]);
      lm_buf_putc(out, hex[b & 15]);
    }
    lm_buf_puts(out, "'::bytea");
    break;
  }
}

/* ---- types and defaults ---------------------------------------------- */

/* The type names SQLAlchemy writes for PostgreSQL, except float, which
 * is DOUBLE PRECISION (SQLAlchemy's FLOAT means the same on PostgreSQL).
 * An autoincrementing integer key is SERIAL, BIGSERIAL or SMALLSERIAL. */
static int pg_render_type(lm_buf *out, const lm_type *type, lm_autoinc autoinc,
                          lm_err *err) {
  int serial = autoinc == LM_AUTO_TRUE;
  switch (type->kind) {
  case LM_T_INTEGER: lm_buf_puts(out, serial ? "SERIAL" : "INTEGER"); break;
  case LM_T_BIGINT: lm_buf_puts(out, serial ? "BIGSERIAL" : "BIGINT"); break;
  case LM_T_SMALLINT:
    lm_buf_puts(out, serial ? "SMALLSERIAL" : "SMALLINT");
    break;
  case LM_T_STRING:
    if (type->length >= 0) lm_buf_printf(out, "VARCHAR(%d)", type->length);
    else lm_buf_puts(out, "VARCHAR");
    break;
  case LM_T_TEXT: lm_buf_puts(out, "TEXT"); break;
  case LM_T_BOOLEAN: lm_buf_puts(out, "BOOLEAN"); break;
  case LM_T_FLOAT: lm_buf_puts(out, "DOUBLE PRECISION"); break;
  case LM_T_NUMERIC:
    if (type->precision >= 0 && type->scale >= 0)
      lm_buf_printf(out, "NUMERIC(%d, %d)", type->precision, type->scale);
    else if (type->precision >= 0)
      lm_buf_printf(out, "NUMERIC(%d)", type->precision);
    else
      lm_buf_puts(out, "NUMERIC");
    break;
  case LM_T_DATE: lm_buf_puts(out, "DATE"); break;
  case LM_T_DATETIME: lm_buf_puts(out, "TIMESTAMP WITHOUT TIME ZONE"); break;
  case LM_T_TIMESTAMPTZ: lm_buf_puts(out, "TIMESTAMP WITH TIME ZONE"); break;
  case LM_T_TIME: lm_buf_puts(out, "TIME WITHOUT TIME ZONE"); break;
  case LM_T_JSON: lm_buf_puts(out, "JSON"); break;
  case LM_T_UUID: lm_buf_puts(out, "UUID"); break;
  case LM_T_BINARY: lm_buf_puts(out, "BYTEA"); break;
  case LM_T_RAW: lm_buf_puts(out, type->raw); break;
  case LM_T_PER_DIALECT: {
    const char *raw = lm_type_choice(type, "postgresql");
    if (!raw) {
      lm_buf names = LM_BUF_INIT;
      for (size_t i = 0; i < type->nchoices; i++)
        lm_buf_printf(&names, "%s%s", i ? ", " : "", type->choice_dialect[i]);
      lm_err_set(err, "the type has no choice for postgresql (it names: %s)",
                 type->nchoices ? lm_buf_str(&names) : "nothing");
      lm_buf_free(&names);
      return LM_ERROR;
    }
    lm_buf_puts(out, raw);
    break;
  }
  case LM_T_ENUM: lm_pg_quote_ident(out, type->enum_name); break;
  case LM_T_NONE: return lm_err_set(err, "no type given");
  }
  return LM_OK;
}

/* The SQL functions SQLAlchemy writes without parentheses (they are
 * keywords in PostgreSQL, and current_timestamp() is a syntax error). */
static int is_ansi_function(const char *name) {
  static const char *const ansi[] = {
    "current_date", "current_time", "current_timestamp", "current_user",
    "localtime", "localtimestamp", "session_user", "user",
  };
  for (size_t i = 0; i < sizeof ansi / sizeof *ansi; i++)
    if (strcmp(name, ansi[i]) == 0) return 1;
  return 0;
}

/* A server default as Alembic renders it on PostgreSQL. */
static int pg_render_default(lm_buf *out, const lm_default *def, lm_err *err) {
  switch (def->kind) {
  case LM_DEF_STRING: quote_string(out, def->text, strlen(def->text)); break;
  case LM_DEF_INT: lm_buf_printf(out, "%lld", (long long)def->i); break;
  case LM_DEF_FLOAT: render_double(out, def->f); break;
  case LM_DEF_BOOL: lm_buf_puts(out, def->i ? "true" : "false"); break;
  case LM_DEF_SQL: lm_buf_puts(out, def->text); break;
  case LM_DEF_FUNC:
    if (strcmp(def->text, "now") == 0) lm_buf_puts(out, "now()");
    else if (is_ansi_function(def->text)) lm_buf_puts(out, def->text);
    else lm_buf_printf(out, "%s()", def->text);
    break;
  default: return lm_err_set(err, "no default to render");
  }
  return LM_OK;
}

/* ---- onupdate triggers -------------------------------------------------- */

/* The line every onupdate trigger function's body starts with: how the
 * catalog tells luamig's functions from the user's own. */
#define ONUPDATE_MARK "-- luamig onupdate trigger"
/* The body around the column (quoted) and the value's SQL. */
#define BODY_HEAD "\n" ONUPDATE_MARK "\nBEGIN\n\tIF NEW."
#define BODY_TAIL ";\n\tEND IF;\n\tRETURN NEW;\nEND\n"

/* CREATE [OR REPLACE] FUNCTION fn() for the column (quoted) and value: a
 * BEFORE UPDATE trigger's function that sets NEW.col unless the UPDATE
 * changed the column itself.  The body is dollar-quoted with a tag it
 * does not contain. */
static char *onupdate_function(const char *create, const char *fn,
                               const char *col, const char *value) {
  lm_buf body = LM_BUF_INIT, b = LM_BUF_INIT;
  lm_buf_printf(&body, BODY_HEAD "%s IS NOT DISTINCT FROM OLD.%s THEN\n"
                "\t\tNEW.%s := %s" BODY_TAIL, col, col, col, value);
  char tag[32] = "$luamig$";
  for (int i = 1; strstr(lm_buf_str(&body), tag); i++)
    snprintf(tag, sizeof tag, "$luamig%d$", i);
  lm_buf_printf(&b, "%s %s RETURNS trigger LANGUAGE plpgsql AS %s%s%s", create,
                fn, tag, lm_buf_str(&body), tag);
  lm_buf_free(&body);
  return lm_buf_detach(&b);
}

/* The function and the trigger, both named after the table and column. */
static int pg_onupdate_trigger(lm_strvec *out, const char *schema,
                               const char *table, const char *column,
                               const lm_default *value, int if_not_exists,
                               lm_err *err) {
  lm_buf v = LM_BUF_INIT;
  if (pg_render_default(&v, value, err) != LM_OK) {
    lm_buf_free(&v);
    return LM_ERROR;
  }
  lm_buf col = LM_BUF_INIT, fn = LM_BUF_INIT, b = LM_BUF_INIT;
  /* A table that may be there already: replace what it has (CREATE OR
   * REPLACE TRIGGER needs PostgreSQL 14). */
  const char *or_replace = if_not_exists ? " OR REPLACE" : "";
  char *name = lm_onupdate_trigger_name(table, column);
  lm_pg_quote_ident(&col, column);
  lm_ddl_qualified(&lm_pg_traits, &fn, schema, name);
  lm_buf_puts(&fn, "()");
  lm_buf_printf(&b, "CREATE%s FUNCTION", or_replace);
  lm_strvec_push(out, onupdate_function(lm_buf_str(&b), lm_buf_str(&fn),
                                        lm_buf_str(&col), lm_buf_str(&v)));
  lm_buf_free(&b);
  lm_buf_printf(&b, "CREATE%s TRIGGER ", or_replace);
  lm_pg_quote_ident(&b, name);
  lm_buf_puts(&b, " BEFORE UPDATE ON ");
  lm_ddl_qualified(&lm_pg_traits, &b, schema, table);
  lm_buf_printf(&b, " FOR EACH ROW EXECUTE FUNCTION %s", lm_buf_str(&fn));
  lm_strvec_push(out, lm_buf_detach(&b));
  free(name);
  lm_buf_free(&v);
  lm_buf_free(&col);
  lm_buf_free(&fn);
  return LM_OK;
}

const lm_ddl_traits lm_pg_traits = {
  .dialect = "postgresql",
  .quote_ident = lm_pg_quote_ident,
  .render_type = pg_render_type,
  .render_default = pg_render_default,
  .identity_clause = "GENERATED BY DEFAULT AS IDENTITY",
  .supports_comments = 1,
  .onupdate_trigger = pg_onupdate_trigger,
  .add_column_keys_apart = 1,
  .computed_stored_only = 1,
};

/* An onupdate trigger a table has: the trigger's name (quoted), its
 * function as DROP FUNCTION names it, the column it sets (quoted) and the
 * value's SQL. */
typedef struct onupdate {
  char *trigger, *function, *column, *value;
} onupdate;

typedef struct onupdates {
  onupdate *items;
  size_t n;
} onupdates;

static void onupdates_free(onupdates *list) {
  for (size_t i = 0; i < list->n; i++) {
    free(list->items[i].trigger);
    free(list->items[i].function);
    free(list->items[i].column);
    free(list->items[i].value);
  }
  free(list->items);
  list->items = NULL;
  list->n = 0;
}

static void onupdates_add(onupdates *list, char *trigger, char *function,
                          char *column, char *value) {
  list->items = lm_xrealloc(list->items, (list->n + 1) * sizeof *list->items);
  list->items[list->n++] = (onupdate){trigger, function, column, value};
}

/* The column and value of a function body onupdate_function wrote, read
 * back; 0 when the body is not one (edited by hand). */
static int parse_body(const char *src, char **column, char **value) {
  size_t head = strlen(BODY_HEAD), tail = strlen(BODY_TAIL), n = strlen(src);
  if (n < head + tail || strncmp(src, BODY_HEAD, head) != 0 ||
      strcmp(src + n - tail, BODY_TAIL) != 0)
    return 0;
  const char *col = src + head;
  const char *end = strstr(col, " IS NOT DISTINCT FROM OLD.");
  if (!end) return 0;
  *column = lm_xstrndup(col, (size_t)(end - col));
  lm_buf assign = LM_BUF_INIT;
  lm_buf_printf(&assign, "THEN\n\t\tNEW.%s := ", *column);
  const char *v = strstr(end, lm_buf_str(&assign));
  if (v) v += assign.len;
  lm_buf_free(&assign);
  if (!v || v > src + n - tail) {
    free(*column);
    return 0;
  }
  *value = lm_xstrndup(v, (size_t)(src + n - tail - v));
  return 1;
}

/* The onupdate triggers of the op's table, online from the catalog (the
 * functions whose body carries the mark), offline from the model the
 * migrations so far give. */
static int table_onupdates(const lm_compile_ctx *ctx, const lm_op *op,
                           onupdates *out, lm_err *err) {
  lm_buf b = LM_BUF_INIT;
  if (ctx->conn && !ctx->offline) {
    static const char sql[] =
        "SELECT t.tgname, p.oid::pg_catalog.regprocedure::text, p.prosrc "
        "FROM pg_catalog.pg_trigger t "
        "JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid "
        "WHERE t.tgrelid = pg_catalog.to_regclass($1) AND NOT t.tgisinternal "
        "AND strpos(p.prosrc, $2) > 0 ORDER BY 1";
    lm_ddl_qualified(&lm_pg_traits, &b, op->schema, op->table);
    const char *vals[2] = {lm_buf_str(&b), ONUPDATE_MARK};
    PGresult *res = PQexecParams(ctx->conn->pg, sql, 2, NULL, vals, NULL,
                                 NULL, 0);
    lm_buf_free(&b);
    if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
      lm_pg_result_error(ctx->conn, res, sql, err);
      PQclear(res);
      return LM_ERROR;
    }
    for (int i = 0; i < PQntuples(res); i++) {
      char *column, *value;
      if (!parse_body(PQgetvalue(res, i, 2), &column, &value)) continue;
      lm_pg_quote_ident(&b, PQgetvalue(res, i, 0));
      onupdates_add(out, lm_buf_detach(&b), lm_xstrdup(PQgetvalue(res, i, 1)),
                    column, value);
    }
    PQclear(res);
    return LM_OK;
  }
  lm_mtable *t = ctx->model ? lm_schema_table(ctx->model, op->schema,
                                              op->table) : NULL;
  for (size_t i = 0; t && i < t->ntriggers; i++) {
    const lm_mtrigger *tr = &t->triggers[i];
    if (!tr->column) continue;
    lm_buf col = LM_BUF_INIT, v = LM_BUF_INIT;
    if (pg_render_default(&v, &tr->onupdate, err) != LM_OK) {
      lm_buf_free(&v);
      return LM_ERROR;
    }
    lm_pg_quote_ident(&col, tr->column);
    lm_pg_quote_ident(&b, tr->name);
    char *trigger = lm_buf_detach(&b);
    lm_ddl_qualified(&lm_pg_traits, &b, op->schema, tr->name);
    lm_buf_puts(&b, "()");
    onupdates_add(out, trigger, lm_buf_detach(&b), lm_buf_detach(&col),
                  lm_buf_detach(&v));
  }
  return LM_OK;
}

/* The table's onupdate trigger for `column`, or NULL. */
static const onupdate *column_onupdate(const onupdates *list,
                                       const char *column) {
  lm_buf col = LM_BUF_INIT;
  lm_pg_quote_ident(&col, column);
  const onupdate *found = NULL;
  for (size_t i = 0; i < list->n && !found; i++)
    if (strcmp(list->items[i].column, lm_buf_str(&col)) == 0)
      found = &list->items[i];
  lm_buf_free(&col);
  return found;
}

/* drop_column drops the column's onupdate trigger and function first (the
 * function names the column, which PostgreSQL does not track); drop_table
 * drops the functions after the table, which takes its triggers along. */
static int drop_with_onupdate(const lm_compile_ctx *ctx, const lm_op *op,
                              lm_strvec *out, lm_err *err) {
  onupdates list = {0};
  lm_strvec enums = {0};
  int rc = table_onupdates(ctx, op, &list, err);
  if (rc == LM_OK && op->kind == LM_OP_DROP_TABLE)
    rc = lm_pg_enum_unused(ctx, op, &enums, err);
  if (rc == LM_OK && op->kind == LM_OP_DROP_COLUMN) {
    const onupdate *u = column_onupdate(&list, op->name);
    if (u) {
      lm_buf b = LM_BUF_INIT;
      lm_buf_printf(&b, "DROP TRIGGER %s ON ", u->trigger);
      lm_ddl_qualified(&lm_pg_traits, &b, op->schema, op->table);
      lm_strvec_push(out, lm_buf_detach(&b));
      lm_strvec_pushf(out, "DROP FUNCTION %s", u->function);
    }
  }
  if (rc == LM_OK) rc = lm_ddl_compile(&lm_pg_traits, op, out, err);
  for (size_t i = 0; rc == LM_OK && op->kind == LM_OP_DROP_TABLE &&
                     i < list.n; i++)
    lm_strvec_pushf(out, "DROP FUNCTION %s", list.items[i].function);
  /* The enum types only this table used go with it, as SQLAlchemy's
   * drop of the table drops its Enum types. */
  for (size_t i = 0; rc == LM_OK && i < enums.n; i++)
    lm_strvec_pushf(out, "DROP TYPE %s", enums.items[i]);
  lm_strvec_free(&enums);
  onupdates_free(&list);
  return rc;
}

/* A renamed column's onupdate function is written again for the new name
 * (PostgreSQL does not rewrite function bodies); the trigger and the
 * function keep their names, as indexes do. */
static int rename_onupdate(const lm_compile_ctx *ctx, const lm_op *op,
                           lm_strvec *out, lm_err *err) {
  onupdates list = {0};
  int rc = table_onupdates(ctx, op, &list, err);
  const onupdate *u = rc == LM_OK ? column_onupdate(&list, op->name) : NULL;
  if (u) {
    lm_buf col = LM_BUF_INIT;
    lm_pg_quote_ident(&col, op->alter.new_name);
    lm_strvec_push(out, onupdate_function("CREATE OR REPLACE FUNCTION",
                                          u->function, lm_buf_str(&col),
                                          u->value));
    lm_buf_free(&col);
  }
  onupdates_free(&list);
  return rc;
}

/* ---- operations PostgreSQL spells its own way ------------------------ */

/* "ALTER TABLE [schema.]table " */
static void alter_table(lm_buf *b, const lm_op *op) {
  lm_buf_puts(b, "ALTER TABLE ");
  lm_ddl_qualified(&lm_pg_traits, b, op->schema, op->table);
  lm_buf_putc(b, ' ');
}

/* "ALTER TABLE t ALTER COLUMN c " */
static void alter_column_head(lm_buf *b, const lm_op *op) {
  alter_table(b, op);
  lm_buf_puts(b, "ALTER COLUMN ");
  lm_pg_quote_ident(b, op->name);
  lm_buf_putc(b, ' ');
}

/* An identity changed (existing_identity given): SET what differs from
 * what the column has, as Alembic writes it. */
static void alter_identity(const lm_op *op, lm_strvec *out) {
  const lm_identity *id = &op->alter.identity;
  const lm_identity *old = &op->alter.existing_identity;
  lm_buf sets = LM_BUF_INIT;
  if (id->always_given && (id->always != old->always || !old->always_given))
    lm_buf_puts(&sets, id->always ? " SET GENERATED ALWAYS"
                                  : " SET GENERATED BY DEFAULT");
  struct { const char *sql; int has, old_has; int64_t v, old_v; } nums[] = {
    {"INCREMENT BY", id->has_increment, old->has_increment, id->increment,
     old->increment},
    {"START WITH", id->has_start, old->has_start, id->start, old->start},
    {"MINVALUE", id->has_minvalue, old->has_minvalue, id->minvalue,
     old->minvalue},
    {"MAXVALUE", id->has_maxvalue, old->has_maxvalue, id->maxvalue,
     old->maxvalue},
    {"CACHE", id->has_cache, old->has_cache, id->cache, old->cache}};
  for (size_t i = 0; i < sizeof nums / sizeof *nums; i++)
    if (nums[i].has && (!nums[i].old_has || nums[i].v != nums[i].old_v))
      lm_buf_printf(&sets, " SET %s %lld", nums[i].sql, (long long)nums[i].v);
  if (id->cycle >= 0 && id->cycle != old->cycle)
    lm_buf_puts(&sets, id->cycle ? " SET CYCLE" : " SET NO CYCLE");
  if (sets.len) {
    lm_buf b = LM_BUF_INIT;
    alter_table(&b, op);
    lm_buf_puts(&b, "ALTER COLUMN ");
    lm_pg_quote_ident(&b, op->name);
    lm_buf_puts(&b, lm_buf_str(&sets));       /* each SET starts with ' ' */
    lm_strvec_push(out, lm_buf_detach(&b));
  }
  lm_buf_free(&sets);
}

/* alter_column as Alembic does it on PostgreSQL: one statement per change,
 * the type first (with USING), then nullability, default, comment, and the
 * rename last so the other statements still name the old column. */
static int alter_column(const lm_compile_ctx *ctx, const lm_op *op,
                        lm_strvec *out, lm_err *err) {
  const lm_alter *a = &op->alter;
  lm_buf b = LM_BUF_INIT;
  if (a->using_expr && a->type.kind == LM_T_NONE)
    return lm_err_set(err, "alter_column %s.%s: using needs a type",
                      op->table, op->name);
  if (a->type.kind == LM_T_ENUM) {
    if (lm_pg_enum_alter(ctx, op, out, err) != LM_OK) return LM_ERROR;
  } else if (a->type.kind != LM_T_NONE) {
    alter_column_head(&b, op);
    lm_buf_puts(&b, "TYPE ");
    if (pg_render_type(&b, &a->type, LM_AUTO_FALSE, err) != LM_OK) {
      lm_buf_free(&b);
      lm_err_prefix(err, "alter_column %s.%s", op->table, op->name);
      return LM_ERROR;
    }
    if (a->using_expr) lm_buf_printf(&b, " USING %s", a->using_expr);
    lm_strvec_push(out, lm_buf_detach(&b));
  }
  if (a->set_nullable == 0 || a->set_nullable == 1) {
    alter_column_head(&b, op);
    lm_buf_puts(&b, a->set_nullable ? "DROP NOT NULL" : "SET NOT NULL");
    lm_strvec_push(out, lm_buf_detach(&b));
  }
  if (a->server_default.kind == LM_DEF_DROP) {
    alter_column_head(&b, op);
    lm_buf_puts(&b, "DROP DEFAULT");
    lm_strvec_push(out, lm_buf_detach(&b));
  } else if (a->server_default.kind != LM_DEF_NONE) {
    alter_column_head(&b, op);
    lm_buf_puts(&b, "SET DEFAULT ");
    if (pg_render_default(&b, &a->server_default, err) != LM_OK) {
      lm_buf_free(&b);
      lm_err_prefix(err, "alter_column %s.%s", op->table, op->name);
      return LM_ERROR;
    }
    lm_strvec_push(out, lm_buf_detach(&b));
  }
  if (a->identity_drop) {
    alter_column_head(&b, op);
    lm_buf_puts(&b, "DROP IDENTITY");
    lm_strvec_push(out, lm_buf_detach(&b));
  } else if (a->identity.given && !a->existing_identity.given) {
    alter_column_head(&b, op);
    lm_buf_puts(&b, a->identity.always ? "ADD GENERATED ALWAYS AS IDENTITY"
                                       : "ADD GENERATED BY DEFAULT AS "
                                         "IDENTITY");
    lm_ddl_identity_options(&b, &a->identity);
    lm_strvec_push(out, lm_buf_detach(&b));
  } else if (a->identity.given) {
    alter_identity(op, out);
  }
  if (a->comment_given) {
    lm_buf_puts(&b, "COMMENT ON COLUMN ");
    lm_ddl_qualified(&lm_pg_traits, &b, op->schema, op->table);
    lm_buf_putc(&b, '.');
    lm_pg_quote_ident(&b, op->name);
    lm_buf_puts(&b, " IS ");
    if (a->comment) quote_string(&b, a->comment, strlen(a->comment));
    else lm_buf_puts(&b, "NULL");
    lm_strvec_push(out, lm_buf_detach(&b));
  }
  if (a->new_name) {
    alter_table(&b, op);
    lm_buf_puts(&b, "RENAME ");
    lm_pg_quote_ident(&b, op->name);
    lm_buf_puts(&b, " TO ");
    lm_pg_quote_ident(&b, a->new_name);
    lm_strvec_push(out, lm_buf_detach(&b));
    return rename_onupdate(ctx, op, out, err);
  }
  return LM_OK;
}

/* CREATE [UNIQUE] INDEX [CONCURRENTLY] [IF NOT EXISTS] name ON t (cols)
 * [WHERE ...]; expression columns go in parenthesised. */
static void create_index(const lm_op *op, lm_strvec *out) {
  const lm_index *ix = &op->index;
  lm_buf b = LM_BUF_INIT;
  lm_buf_puts(&b, ix->unique ? "CREATE UNIQUE INDEX " : "CREATE INDEX ");
  if (ix->concurrently) lm_buf_puts(&b, "CONCURRENTLY ");
  if (op->if_not_exists) lm_buf_puts(&b, "IF NOT EXISTS ");
  lm_pg_quote_ident(&b, op->name);
  lm_buf_puts(&b, " ON ");
  lm_ddl_qualified(&lm_pg_traits, &b, op->schema, op->table);
  if (ix->method) lm_buf_printf(&b, " USING %s", ix->method);
  lm_buf_puts(&b, " (");
  for (size_t i = 0; i < ix->ncolumns; i++) {
    if (i) lm_buf_puts(&b, ", ");
    /* PostgreSQL takes a bare function call but needs any other
     * expression in parentheses; parentheses suit both. */
    if (ix->is_expr && ix->is_expr[i]) lm_buf_printf(&b, "(%s)", ix->columns[i]);
    else lm_pg_quote_ident(&b, ix->columns[i]);
  }
  lm_buf_putc(&b, ')');
  if (ix->ninclude) {
    lm_buf_puts(&b, " INCLUDE (");
    for (size_t i = 0; i < ix->ninclude; i++) {
      if (i) lm_buf_puts(&b, ", ");
      lm_pg_quote_ident(&b, ix->include[i]);
    }
    lm_buf_putc(&b, ')');
  }
  if (ix->where) lm_buf_printf(&b, " WHERE %s", ix->where);
  lm_strvec_push(out, lm_buf_detach(&b));
}

/* An index lives in its table's schema, so a schema qualifies its name. */
static void drop_index(const lm_op *op, lm_strvec *out) {
  lm_buf b = LM_BUF_INIT;
  lm_buf_puts(&b, "DROP INDEX ");
  if (op->index.concurrently) lm_buf_puts(&b, "CONCURRENTLY ");
  if (op->if_exists) lm_buf_puts(&b, "IF EXISTS ");
  lm_ddl_qualified(&lm_pg_traits, &b, op->schema, op->name);
  lm_strvec_push(out, lm_buf_detach(&b));
}

static int add_constraint(const lm_op *op, lm_strvec *out, lm_err *err) {
  if (op->nconstraints != 1)
    return lm_err_set(err, "add_constraint on %s: expected one constraint",
                      op->table);
  lm_buf b = LM_BUF_INIT;
  const lm_constraint *c = &op->constraints[0];
  alter_table(&b, op);
  lm_buf_puts(&b, "ADD ");
  if (c->kind == LM_CON_UNIQUE && c->using_index) {
    /* The lock-safe form: the index was built concurrently beforehand. */
    if (c->name) {
      lm_buf_puts(&b, "CONSTRAINT ");
      lm_pg_quote_ident(&b, c->name);
      lm_buf_putc(&b, ' ');
    }
    lm_buf_puts(&b, "UNIQUE USING INDEX ");
    lm_pg_quote_ident(&b, c->using_index);
  } else {
    lm_ddl_constraint(&lm_pg_traits, &b, c);
  }
  /* NOT VALID: existing rows are checked later, by validate_constraint. */
  if (c->not_valid &&
      (c->kind == LM_CON_FOREIGN_KEY || c->kind == LM_CON_CHECK))
    lm_buf_puts(&b, " NOT VALID");
  lm_strvec_push(out, lm_buf_detach(&b));
  return LM_OK;
}

/* PostgreSQL drops any kind of constraint by name; type_ is not needed. */
static void drop_constraint(const lm_op *op, lm_strvec *out) {
  lm_buf b = LM_BUF_INIT;
  alter_table(&b, op);
  lm_buf_puts(&b, "DROP CONSTRAINT ");
  if (op->if_exists) lm_buf_puts(&b, "IF EXISTS ");
  lm_pg_quote_ident(&b, op->name);
  lm_strvec_push(out, lm_buf_detach(&b));
}

/* Operations PostgreSQL writes its own way are compiled here, the ones
 * every dialect shares by lm_ddl_compile with PostgreSQL's traits. */
int lm_pg_compile(const lm_compile_ctx *ctx, const lm_op *op, lm_strvec *out,
                  lm_err *err) {
  switch (op->kind) {
  case LM_OP_ALTER_COLUMN:
    return alter_column(ctx, op, out, err);
  case LM_OP_CREATE_INDEX:
    create_index(op, out);
    return LM_OK;
  case LM_OP_DROP_INDEX:
    drop_index(op, out);
    return LM_OK;
  case LM_OP_ADD_CONSTRAINT:
    return add_constraint(op, out, err);
  case LM_OP_DROP_CONSTRAINT:
    drop_constraint(op, out);
    return LM_OK;
  case LM_OP_VALIDATE_CONSTRAINT: {
    lm_buf b = LM_BUF_INIT;
    alter_table(&b, op);
    lm_buf_puts(&b, "VALIDATE CONSTRAINT ");
    lm_pg_quote_ident(&b, op->name);
    lm_strvec_push(out, lm_buf_detach(&b));
    return LM_OK;
  }
  case LM_OP_BATCH:
    /* PostgreSQL alters in place: a batch is its ops, one after another. */
    if (op->recreate == 1)
      return lm_err_set(err, "batch_alter_table %s: recreate = \"always\" "
                        "rebuilds a table on SQLite only; PostgreSQL alters "
                        "it in place", op->table);
    for (size_t i = 0; i < op->nops; i++)
      if (op->ops[i].insert_before || op->ops[i].insert_after)
        return lm_err_set(err, "batch_alter_table %s: add_column %s: "
                          "PostgreSQL adds a column at the end; "
                          "insert_before / insert_after place it only in a "
                          "SQLite rebuild", op->table,
                          op->ops[i].columns[0].name);
    for (size_t i = 0; i < op->nops; i++)
      if (lm_pg_compile(ctx, &op->ops[i], out, err) != LM_OK) return LM_ERROR;
    return LM_OK;
  case LM_OP_DROP_COLUMN:
  case LM_OP_DROP_TABLE:
    return drop_with_onupdate(ctx, op, out, err);
  case LM_OP_EXECUTE:
    return lm_err_set(err, "execute is run by the core, not compiled");
  case LM_OP_CREATE_TABLE:
  case LM_OP_ADD_COLUMN:
    if (lm_pg_enum_create(ctx, op, out, err) != LM_OK) return LM_ERROR;
    return lm_ddl_compile(&lm_pg_traits, op, out, err);
  case LM_OP_TABLE_COMMENT: {
    lm_buf b = LM_BUF_INIT;
    lm_buf_puts(&b, "COMMENT ON TABLE ");
    lm_ddl_qualified(&lm_pg_traits, &b, op->schema, op->table);
    lm_buf_puts(&b, " IS ");
    if (op->comment) quote_string(&b, op->comment, strlen(op->comment));
    else lm_buf_puts(&b, "NULL");
    lm_strvec_push(out, lm_buf_detach(&b));
    return LM_OK;
  }
  default:
    return lm_ddl_compile(&lm_pg_traits, op, out, err);
  }
}
