/*
 * schema_text.c - the portable text and JSON forms of a schema model.
 * Lines are written from the model's structure, never from a dialect's
 * SQL, so the same schema prints the same on every dialect.
 */
#include <stdlib.h>
#include <string.h>

#include "cli_args.h"
#include "schema_text.h"

void lm_type_text(lm_buf *out, const lm_type *t) {
  static const char *const names[] = {
    [LM_T_NONE] = "", [LM_T_INTEGER] = "integer", [LM_T_BIGINT] = "bigint",
    [LM_T_SMALLINT] = "smallint", [LM_T_STRING] = "string",
    [LM_T_TEXT] = "text", [LM_T_BOOLEAN] = "boolean", [LM_T_FLOAT] = "float",
    [LM_T_NUMERIC] = "numeric", [LM_T_DATE] = "date",
    [LM_T_DATETIME] = "datetime", [LM_T_TIMESTAMPTZ] = "timestamptz",
    [LM_T_TIME] = "time", [LM_T_JSON] = "json", [LM_T_UUID] = "uuid",
    [LM_T_BINARY] = "binary"};
  if (t->kind == LM_T_RAW) {
    lm_buf_puts(out, t->raw ? t->raw : "");
    return;
  }
  if (t->kind == LM_T_PER_DIALECT) {
    lm_buf_putc(out, '{');
    for (size_t i = 0; i < t->nchoices; i++)
      lm_buf_printf(out, "%s%s = %s", i ? ", " : "", t->choice_dialect[i],
                    t->choice_type[i]);
    lm_buf_putc(out, '}');
    return;
  }
  lm_buf_puts(out, names[t->kind]);
  if (t->kind == LM_T_STRING && t->length >= 0)
    lm_buf_printf(out, "(%d)", t->length);
  if (t->kind == LM_T_NUMERIC && t->precision >= 0) {
    lm_buf_printf(out, "(%d", t->precision);
    if (t->scale >= 0) lm_buf_printf(out, ",%d", t->scale);
    lm_buf_putc(out, ')');
  }
}

void lm_default_text(lm_buf *out, const lm_default *d) {
  switch (d->kind) {
  case LM_DEF_NONE:
  case LM_DEF_DROP:
    return;
  case LM_DEF_STRING:
    lm_buf_putc(out, '\'');
    for (const char *p = d->text; *p; p++) {
      if (*p == '\'') lm_buf_putc(out, '\'');
      lm_buf_putc(out, *p);
    }
    lm_buf_putc(out, '\'');
    return;
  case LM_DEF_INT: lm_buf_printf(out, "%lld", (long long)d->i); return;
  case LM_DEF_FLOAT: lm_buf_printf(out, "%.15g", d->f); return;
  case LM_DEF_BOOL: lm_buf_puts(out, d->i ? "true" : "false"); return;
  case LM_DEF_FUNC: lm_buf_printf(out, "%s()", d->text); return;
  case LM_DEF_SQL:
  case LM_DEF_RAW:
    lm_buf_puts(out, d->text ? d->text : "");
    return;
  }
}

static void name_list(lm_buf *out, const char *const *names, size_t n) {
  lm_buf_putc(out, '(');
  for (size_t i = 0; i < n; i++)
    lm_buf_printf(out, "%s%s", i ? ", " : "", names[i]);
  lm_buf_putc(out, ')');
}

static void column_line(lm_buf *out, const lm_mcolumn *c) {
  lm_buf_printf(out, "  column %s", c->name);
  size_t at = out->len;
  lm_buf_putc(out, ' ');
  lm_type_text(out, &c->type);
  if (out->len == at + 1) out->data[--out->len] = '\0';   /* untyped */
  lm_buf_puts(out, c->nullable ? " null" : " not null");
  if (c->server_default.kind != LM_DEF_NONE &&
      c->server_default.kind != LM_DEF_DROP) {
    lm_buf_puts(out, " default ");
    lm_default_text(out, &c->server_default);
  }
  static const char *const serial[] = {"", " serial", " identity",
                                       " identity always"};
  lm_buf_puts(out, serial[c->serial]);
  if (c->generated && c->extra) lm_buf_printf(out, " generated (%s)", c->extra);
  if (c->comment) lm_buf_printf(out, " comment '%s'", c->comment);
}

static void constraint_line(lm_buf *out, const lm_constraint *c) {
  static const char *const kinds[] = {"primary key", "unique", "check",
                                      "foreign key"};
  lm_buf_printf(out, "  %s", kinds[c->kind]);
  if (c->name) lm_buf_printf(out, " %s", c->name);
  lm_buf_putc(out, ' ');
  if (c->kind == LM_CON_CHECK) {
    lm_buf_printf(out, "(%s)", c->condition ? c->condition : "");
    return;
  }
  name_list(out, c->columns, c->ncolumns);
  if (c->kind != LM_CON_FOREIGN_KEY) return;
  lm_buf_puts(out, " references ");
  if (c->ref_schema) lm_buf_printf(out, "%s.", c->ref_schema);
  lm_buf_printf(out, "%s ", c->ref_table ? c->ref_table : "");
  name_list(out, c->ref_columns, c->nref_columns);
  if (c->ondelete) lm_buf_printf(out, " on delete %s", c->ondelete);
  if (c->onupdate) lm_buf_printf(out, " on update %s", c->onupdate);
  if (c->deferrable == 1) lm_buf_puts(out, " deferrable");
  if (c->initially) lm_buf_printf(out, " initially %s", c->initially);
}

static void index_line(lm_buf *out, const lm_mindex *ix) {
  lm_buf_printf(out, "  %sindex %s ", ix->ix.unique ? "unique " : "",
                ix->name);
  name_list(out, ix->ix.columns, ix->ix.ncolumns);
  if (ix->method) lm_buf_printf(out, " using %s", ix->method);
  if (ix->ix.where) lm_buf_printf(out, " where %s", ix->ix.where);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Lines of one group, sorted, appended. */
static void flush(lm_buf *out, lm_strvec *lines) {
  if (lines->n) qsort(lines->items, lines->n, sizeof *lines->items, cmp_str);
  for (size_t i = 0; i < lines->n; i++)
    lm_buf_printf(out, "%s\n", lines->items[i]);
  lm_strvec_free(lines);
}

void lm_mtable_text(lm_buf *out, const lm_mtable *t) {
  lm_buf_puts(out, "table ");
  if (t->schema) lm_buf_printf(out, "%s.", t->schema);
  lm_buf_printf(out, "%s\n", t->name);
  if (t->comment) lm_buf_printf(out, "  comment '%s'\n", t->comment);
  lm_buf line = LM_BUF_INIT;
  for (size_t i = 0; i < t->ncolumns; i++) {
    column_line(&line, &t->columns[i]);
    lm_buf_printf(out, "%s\n", lm_buf_str(&line));
    lm_buf_reset(&line);
  }
  /* primary key, unique, check, foreign key: in that order */
  for (int kind = LM_CON_PRIMARY_KEY; kind <= LM_CON_FOREIGN_KEY; kind++) {
    lm_strvec lines = LM_STRVEC_INIT;
    if (kind == LM_CON_FOREIGN_KEY) {
      for (size_t i = 0; i < t->nindexes; i++) {
        index_line(&line, &t->indexes[i]);
        lm_strvec_push(&lines, lm_buf_detach(&line));
      }
      flush(out, &lines);
    }
    for (size_t i = 0; i < t->nconstraints; i++) {
      if ((int)t->constraints[i].con.kind != kind) continue;
      constraint_line(&line, &t->constraints[i].con);
      lm_strvec_push(&lines, lm_buf_detach(&line));
    }
    flush(out, &lines);
  }
  lm_buf_free(&line);
}

void lm_schema_text(lm_buf *out, const lm_schema *s) {
  for (size_t i = 0; i < s->ntables; i++) {
    if (i) lm_buf_putc(out, '\n');
    lm_mtable_text(out, &s->tables[i]);
  }
  for (size_t i = 0; i < s->nviews; i++) {
    if (i == 0 && s->ntables) lm_buf_putc(out, '\n');
    lm_buf_puts(out, "view ");
    if (s->views[i].schema) lm_buf_printf(out, "%s.", s->views[i].schema);
    lm_buf_printf(out, "%s\n", s->views[i].name);
  }
}

/* ---- JSON --------------------------------------------------------------- */

static void json_str(lm_buf *out, const char *s) {
  if (s) lm_json_string(out, s);
  else lm_buf_puts(out, "null");
}

static void json_names(lm_buf *out, const char *const *names, size_t n) {
  lm_buf_putc(out, '[');
  for (size_t i = 0; i < n; i++) {
    if (i) lm_buf_putc(out, ',');
    json_str(out, names[i]);
  }
  lm_buf_putc(out, ']');
}

/* A text form (type, default) as a JSON string, null when empty. */
static void json_text(lm_buf *out, const lm_buf *text) {
  json_str(out, text->len ? lm_buf_str(text) : NULL);
}

static void json_column(lm_buf *out, const lm_mcolumn *c) {
  static const char *const serial[] = {NULL, "serial", "identity",
                                       "identity always"};
  lm_buf text = LM_BUF_INIT;
  lm_buf_puts(out, "{\"name\":");
  json_str(out, c->name);
  lm_buf_puts(out, ",\"type\":");
  lm_type_text(&text, &c->type);
  json_text(out, &text);
  lm_buf_printf(out, ",\"nullable\":%s,\"default\":",
                c->nullable ? "true" : "false");
  lm_buf_reset(&text);
  lm_default_text(&text, &c->server_default);
  json_text(out, &text);
  lm_buf_puts(out, ",\"serial\":");
  json_str(out, serial[c->serial]);
  lm_buf_puts(out, ",\"generated\":");
  json_str(out, c->generated ? c->extra : NULL);
  lm_buf_puts(out, ",\"comment\":");
  json_str(out, c->comment);
  lm_buf_putc(out, '}');
  lm_buf_free(&text);
}

static void json_constraint(lm_buf *out, const lm_constraint *c) {
  static const char *const kinds[] = {"primary_key", "unique", "check",
                                      "foreign_key"};
  lm_buf_printf(out, "{\"type\":\"%s\",\"name\":", kinds[c->kind]);
  json_str(out, c->name);
  if (c->kind == LM_CON_CHECK) {
    lm_buf_puts(out, ",\"condition\":");
    json_str(out, c->condition);
  } else {
    lm_buf_puts(out, ",\"columns\":");
    json_names(out, c->columns, c->ncolumns);
  }
  if (c->kind == LM_CON_FOREIGN_KEY) {
    lm_buf_puts(out, ",\"ref_schema\":");
    json_str(out, c->ref_schema);
    lm_buf_puts(out, ",\"ref_table\":");
    json_str(out, c->ref_table);
    lm_buf_puts(out, ",\"ref_columns\":");
    json_names(out, c->ref_columns, c->nref_columns);
    lm_buf_puts(out, ",\"ondelete\":");
    json_str(out, c->ondelete);
    lm_buf_puts(out, ",\"onupdate\":");
    json_str(out, c->onupdate);
    lm_buf_printf(out, ",\"deferrable\":%s,\"initially\":",
                  c->deferrable == 1 ? "true" : "false");
    json_str(out, c->initially);
  }
  lm_buf_putc(out, '}');
}

static void json_index(lm_buf *out, const lm_mindex *ix) {
  lm_buf_puts(out, "{\"name\":");
  json_str(out, ix->name);
  lm_buf_puts(out, ",\"columns\":[");
  for (size_t i = 0; i < ix->ix.ncolumns; i++) {
    if (i) lm_buf_putc(out, ',');
    int expr = ix->ix.is_expr && ix->ix.is_expr[i];
    lm_buf_puts(out, expr ? "{\"expression\":" : "{\"column\":");
    json_str(out, ix->ix.columns[i]);
    lm_buf_putc(out, '}');
  }
  lm_buf_printf(out, "],\"unique\":%s,\"where\":",
                ix->ix.unique ? "true" : "false");
  json_str(out, ix->ix.where);
  lm_buf_puts(out, ",\"method\":");
  json_str(out, ix->method);
  lm_buf_putc(out, '}');
}

static void json_table(lm_buf *out, const lm_mtable *t) {
  lm_buf_puts(out, "{\"schema\":");
  json_str(out, t->schema);
  lm_buf_puts(out, ",\"name\":");
  json_str(out, t->name);
  lm_buf_puts(out, ",\"comment\":");
  json_str(out, t->comment);
  lm_buf_puts(out, ",\"columns\":[");
  for (size_t i = 0; i < t->ncolumns; i++) {
    if (i) lm_buf_putc(out, ',');
    json_column(out, &t->columns[i]);
  }
  lm_buf_puts(out, "],\"constraints\":[");
  for (size_t i = 0; i < t->nconstraints; i++) {
    if (i) lm_buf_putc(out, ',');
    json_constraint(out, &t->constraints[i].con);
  }
  lm_buf_puts(out, "],\"indexes\":[");
  for (size_t i = 0; i < t->nindexes; i++) {
    if (i) lm_buf_putc(out, ',');
    json_index(out, &t->indexes[i]);
  }
  lm_buf_puts(out, "]}");
}

void lm_schema_model_json(lm_buf *out, const lm_schema *s,
                          const char *only) {
  lm_buf_puts(out, "{\"tables\":[");
  int first = 1;
  for (size_t i = 0; i < s->ntables; i++) {
    if (only && !only[i]) continue;
    if (!first) lm_buf_putc(out, ',');
    first = 0;
    json_table(out, &s->tables[i]);
  }
  lm_buf_puts(out, "],\"views\":[");
  for (size_t i = 0; !only && i < s->nviews; i++) {
    if (i) lm_buf_putc(out, ',');
    lm_buf_puts(out, "{\"schema\":");
    json_str(out, s->views[i].schema);
    lm_buf_puts(out, ",\"name\":");
    json_str(out, s->views[i].name);
    lm_buf_putc(out, '}');
  }
  lm_buf_puts(out, "]}");
}
