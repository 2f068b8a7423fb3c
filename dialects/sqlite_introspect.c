/*
 * sqlite_introspect.c - every table of a SQLite database (or of the
 * attached databases named), read table by table with the parser the
 * rebuilds use (sqlite_parse.c), then normalized to the model a replay
 * gives (dialect.h, introspect_schema): the declared types SQLAlchemy
 * writes as portable types, defaults without their parentheses, an
 * INTEGER PRIMARY KEY as the rowid's numbering, index statements read into
 * their parts.  The rebuild's own introspection keeps the database's words
 * untouched; only this whole-schema reading normalizes.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "introspect_norm.h"
#include "sqlite_ddl.h"

/* A declared type, upper case with single blanks and none around
 * parentheses and commas: "numeric( 10 , 2 )" -> "NUMERIC(10,2)". */
static void squeeze(lm_buf *b, const char *text) {
  int blank = 0;
  for (const char *p = text; *p; p++) {
    if (isspace((unsigned char)*p)) { blank = 1; continue; }
    char c = (char)toupper((unsigned char)*p);
    int tight = c == '(' || c == ')' || c == ',' ||
                (b->len && strchr("(,", b->data[b->len - 1]));
    if (blank && b->len && !tight) lm_buf_putc(b, ' ');
    blank = 0;
    lm_buf_putc(b, c);
  }
}

/* The declared types of DESIGN section 4 as portable types. */
static void norm_type(lm_schema *s, lm_type *t) {
  static const struct { const char *name; lm_type_kind kind; } plain[] = {
    {"INTEGER", LM_T_INTEGER}, {"INT", LM_T_INTEGER},
    {"BIGINT", LM_T_BIGINT}, {"SMALLINT", LM_T_SMALLINT},
    {"VARCHAR", LM_T_STRING}, {"TEXT", LM_T_TEXT},
    {"BOOLEAN", LM_T_BOOLEAN}, {"FLOAT", LM_T_FLOAT},
    {"NUMERIC", LM_T_NUMERIC}, {"DATE", LM_T_DATE},
    {"DATETIME", LM_T_DATETIME}, {"TIMESTAMP", LM_T_DATETIME},
    {"TIME", LM_T_TIME}, {"JSON", LM_T_JSON}, {"CHAR(32)", LM_T_UUID},
    {"BLOB", LM_T_BINARY}, {NULL, LM_T_NONE}};
  if (t->kind != LM_T_RAW || !t->raw) return;
  lm_buf b = LM_BUF_INIT;
  squeeze(&b, t->raw);
  const char *u = lm_buf_str(&b);
  int a, c;
  char end;
  for (size_t i = 0; plain[i].name; i++)
    if (strcmp(u, plain[i].name) == 0) {
      t->kind = plain[i].kind;
      t->raw = NULL;
    }
  if (t->kind == LM_T_RAW && sscanf(u, "VARCHAR(%d)%c", &a, &end) == 1) {
    t->kind = LM_T_STRING;
    t->length = a;
  } else if (t->kind == LM_T_RAW &&
             sscanf(u, "NUMERIC(%d,%d)%c", &a, &c, &end) == 2) {
    t->kind = LM_T_NUMERIC;
    t->precision = a;
    t->scale = c;
  } else if (t->kind == LM_T_RAW && sscanf(u, "NUMERIC(%d)%c", &a, &end) == 1) {
    t->kind = LM_T_NUMERIC;
    t->precision = a;
    t->scale = 0;               /* as PostgreSQL reads numeric(p) back */
  }
  if (t->kind != LM_T_RAW) t->raw = NULL;
  else t->raw = lm_schema_str(s, t->raw);
  lm_buf_free(&b);
}

static int is_pk_column(const lm_mtable *t, const char *name, size_t *npk) {
  int in = 0;
  *npk = 0;
  for (size_t i = 0; i < t->nconstraints; i++) {
    const lm_constraint *c = &t->constraints[i].con;
    if (c->kind != LM_CON_PRIMARY_KEY) continue;
    *npk = c->ncolumns;
    for (size_t k = 0; k < c->ncolumns; k++)
      if (strcasecmp(c->columns[k], name) == 0) in = 1;
  }
  return in;
}

/* "[GENERATED ALWAYS] AS (expr) [STORED]" (with any COLLATE beside it):
 * the expression, as PostgreSQL's introspection gives it. */
static const char *generated_expr(lm_schema *s, const char *extra) {
  const char *open = NULL;
  for (const char *p = extra; *p && !open; p++)
    if (strncasecmp(p, "AS", 2) == 0 && (p == extra || p[-1] == ' ')) {
      const char *q = p + 2;
      while (*q == ' ') q++;
      if (*q == '(') open = q;
    }
  if (!open) return extra;
  int depth = 0;
  for (const char *p = open; *p; p++) {
    if (*p == '(') depth++;
    else if (*p == ')' && --depth == 0) {
      char *e = lm_xstrndup(open, (size_t)(p + 1 - open));
      const char *r = lm_norm_expr(s, e);
      free(e);
      return r;
    }
  }
  return extra;
}

static int without_rowid(const lm_mtable *t) {
  if (!t->options) return 0;
  for (const char *p = t->options; *p; p++)
    if (strncasecmp(p, "WITHOUT", 7) == 0) return 1;
  return 0;
}

static int normalize_table(lm_schema *s, lm_mtable *t, lm_err *err) {
  for (size_t i = 0; i < t->ncolumns; i++) {
    lm_mcolumn *c = &t->columns[i];
    int rowid_type = c->type.kind == LM_T_RAW && c->type.raw &&
                     strcasecmp(c->type.raw, "INTEGER") == 0;
    norm_type(s, &c->type);
    const char *def = c->server_default.kind == LM_DEF_RAW
                          ? c->server_default.text : NULL;
    lm_norm_default(s, &c->server_default, def);
    if (c->type.kind == LM_T_BOOLEAN && c->server_default.kind == LM_DEF_INT &&
        (c->server_default.i == 0 || c->server_default.i == 1))
      c->server_default.kind = LM_DEF_BOOL;
    if (c->generated && c->extra) c->extra = generated_expr(s, c->extra);
    size_t npk;
    if (is_pk_column(t, c->name, &npk)) {
      c->nullable = 0;
      /* The one INTEGER PRIMARY KEY is the rowid: numbered by SQLite. */
      if (npk == 1 && rowid_type && !without_rowid(t))
        c->serial = LM_MSERIAL_SERIAL;
    }
  }
  for (size_t i = 0; i < t->nconstraints; i++) {
    lm_constraint *c = &t->constraints[i].con;
    c->condition = lm_norm_expr(s, c->condition);
    if (c->kind != LM_CON_FOREIGN_KEY) continue;
    c->ondelete = lm_norm_action(s, c->ondelete);
    c->onupdate = lm_norm_action(s, c->onupdate);
    if (c->deferrable < 0) c->deferrable = 0;
    c->initially = lm_norm_action(s, c->initially);
    if (c->initially && strcmp(c->initially, "IMMEDIATE") == 0)
      c->initially = NULL;
    if (!c->deferrable) c->initially = NULL;
  }
  for (size_t i = 0; i < t->nindexes; i++) {
    lm_mindex *ix = &t->indexes[i];
    if (lm_sqlite_parse_index(s, ix->sql, &ix->ix, err) != LM_OK) {
      lm_err_prefix(err, "reading index %s", ix->name);
      return LM_ERROR;
    }
    for (size_t k = 0; k < ix->ix.ncolumns; k++)
      if (ix->ix.is_expr[k])
        ((const char **)ix->ix.columns)[k] =
            lm_norm_expr(s, ix->ix.columns[k]);
    ix->ix.where = lm_norm_expr(s, ix->ix.where);
  }
  return LM_OK;
}

/* REFERENCES t without columns means t's primary key: name them. */
static void resolve_referents(lm_schema *s) {
  for (size_t i = 0; i < s->ntables; i++) {
    lm_mtable *t = &s->tables[i];
    for (size_t k = 0; k < t->nconstraints; k++) {
      lm_constraint *c = &t->constraints[k].con;
      if (c->kind != LM_CON_FOREIGN_KEY || c->nref_columns || !c->ref_table)
        continue;
      for (size_t j = 0; j < s->ntables; j++) {
        lm_mtable *r = &s->tables[j];
        if (strcasecmp(r->name, c->ref_table) != 0) continue;
        for (size_t q = 0; q < r->nconstraints; q++)
          if (r->constraints[q].con.kind == LM_CON_PRIMARY_KEY) {
            c->ref_columns = r->constraints[q].con.columns;
            c->nref_columns = r->constraints[q].con.ncolumns;
          }
      }
    }
  }
}

/* The tables and views of one database (schema NULL: main). */
static int read_database(lm_conn *conn, const char *schema,
                         const char *const *skip, size_t nskip,
                         lm_schema *out, lm_err *err) {
  lm_buf q = LM_BUF_INIT;
  lm_buf_puts(&q, "SELECT type, name FROM ");
  if (schema) {
    lm_sqlite_quote_ident(&q, schema);
    lm_buf_putc(&q, '.');
  }
  /* Virtual tables are a module's, not a shape: left out. */
  lm_buf_puts(&q, "sqlite_schema WHERE type IN ('table', 'view') AND name "
              "NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND sql NOT LIKE "
              "'CREATE VIRTUAL %' ORDER BY name");
  sqlite3_stmt *st = NULL;
  int rc = LM_OK;
  if (sqlite3_prepare_v2(conn->db, lm_buf_str(&q), -1, &st, NULL) !=
      SQLITE_OK) {
    rc = lm_sqlite_error(conn, lm_buf_str(&q), err);
    lm_buf_free(&q);
    return rc;
  }
  lm_strvec tables = LM_STRVEC_INIT;
  int step;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    const char *type = (const char *)sqlite3_column_text(st, 0);
    const char *name = (const char *)sqlite3_column_text(st, 1);
    if (!type || !name) continue;
    if (strcmp(type, "view") == 0) {
      lm_schema_add_view(out, schema, name);
      continue;
    }
    int skipped = 0;
    for (size_t i = 0; i < nskip; i++)
      if (strcasecmp(skip[i], name) == 0) skipped = 1;
    if (!skipped) lm_strvec_push(&tables, lm_xstrdup(name));
  }
  if (step != SQLITE_DONE) rc = lm_sqlite_error(conn, lm_buf_str(&q), err);
  sqlite3_finalize(st);
  lm_buf_free(&q);
  for (size_t i = 0; rc == LM_OK && i < tables.n; i++) {
    int found = 0;
    rc = lm_sqlite_introspect(conn, schema, tables.items[i], out, &found,
                              err);
    lm_mtable *t = found ? lm_schema_table(out, schema, tables.items[i])
                         : NULL;
    if (rc == LM_OK && t) rc = normalize_table(out, t, err);
    if (rc != LM_OK) lm_err_prefix(err, "table %s", tables.items[i]);
  }
  lm_strvec_free(&tables);
  return rc;
}

int lm_sqlite_introspect_schema(lm_conn *conn, const char *const *schemas,
                                size_t nschemas, const char *const *skip,
                                size_t nskip, lm_schema *out, lm_err *err) {
  out->nocase_names = 1;
  int rc = nschemas ? LM_OK : read_database(conn, NULL, skip, nskip, out, err);
  for (size_t i = 0; rc == LM_OK && i < nschemas; i++) {
    const char *schema = strcasecmp(schemas[i], "main") == 0 ? NULL
                                                             : schemas[i];
    rc = read_database(conn, schema, skip, nskip, out, err);
  }
  if (rc == LM_OK) resolve_referents(out);
  return rc;
}

/* dialect.h, read_type: the declared type create_table writes for t
 * (sqlite_ddl.c), read back as normalize_table reads it. */
void lm_sqlite_read_type(lm_schema *s, lm_type *t) {
  switch (t->kind) {
  case LM_T_TIMESTAMPTZ:          /* no time zones: DATETIME */
    t->kind = LM_T_DATETIME;
    return;
  case LM_T_ENUM: {               /* VARCHAR(n) and a CHECK */
    int width = (int)lm_type_enum_width(t);
    memset(t, 0, sizeof *t);
    t->kind = LM_T_STRING;
    t->length = width;
    t->precision = t->scale = -1;
    return;
  }
  case LM_T_PER_DIALECT: {
    const char *raw = lm_type_choice(t, "sqlite");
    if (!raw) return;
    memset(t, 0, sizeof *t);
    t->kind = LM_T_RAW;
    t->raw = raw;
    t->length = t->precision = t->scale = -1;
    break;
  }
  default:
    break;
  }
  norm_type(s, t);
}
