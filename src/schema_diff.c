/*
 * schema_diff.c - compare two schema models part by part.  Tables and
 * columns match by name; constraints and indexes by name where both have
 * one, else by what they are (an unnamed CHECK is its condition), so a
 * database's own names for unnamed constraints do not count as changes.
 * Everything compared is first rendered as text, and that text is what
 * the lines print.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli_args.h"
#include "schema_diff.h"
#include "schema_text.h"

void lm_diff_init(lm_diff *d) {
  memset(d, 0, sizeof *d);
  lm_arena_init(&d->arena);
}

void lm_diff_free(lm_diff *d) {
  free(d->items);
  lm_arena_free(&d->arena);
  memset(d, 0, sizeof *d);
}

/* ---- rendering parts as text -------------------------------------------- */

/* Text with runs of white space made one space and the ends trimmed, so
 * the same clause written twice compares equal. */
static void put_squeezed(lm_buf *out, const char *s) {
  int space = 0, any = 0;
  for (; s && *s; s++) {
    if (isspace((unsigned char)*s)) {
      space = any;
      continue;
    }
    if (space) lm_buf_putc(out, ' ');
    space = 0;
    any = 1;
    lm_buf_putc(out, *s);
  }
}

static void put_names(lm_buf *out, const char *const *names, size_t n) {
  lm_buf_putc(out, '(');
  for (size_t i = 0; i < n; i++)
    lm_buf_printf(out, "%s%s", i ? ", " : "", names[i]);
  lm_buf_putc(out, ')');
}

static void put_qualified(lm_buf *out, const char *schema, const char *name) {
  if (schema) lm_buf_printf(out, "%s.", schema);
  lm_buf_puts(out, name ? name : "");
}

/* What a constraint is, without its name. */
static void constraint_text(const lm_mconstraint *mc, lm_buf *out) {
  const lm_constraint *c = &mc->con;
  const char *const *cols = c->columns;
  size_t ncols = c->ncolumns;
  const char *inline_col[1] = {mc->column};
  if (!ncols && mc->column && c->kind != LM_CON_CHECK) {
    cols = inline_col;   /* written on its column */
    ncols = 1;
  }
  switch (c->kind) {
  case LM_CON_CHECK:
    put_squeezed(out, c->condition ? c->condition : mc->sql);
    break;
  case LM_CON_PRIMARY_KEY:
  case LM_CON_UNIQUE:
    put_names(out, cols, ncols);
    break;
  case LM_CON_FOREIGN_KEY:
    put_names(out, cols, ncols);
    lm_buf_puts(out, " -> ");
    put_qualified(out, c->ref_schema, c->ref_table);
    put_names(out, c->ref_columns, c->nref_columns);
    if (c->ondelete) lm_buf_printf(out, " ON DELETE %s", c->ondelete);
    if (c->onupdate) lm_buf_printf(out, " ON UPDATE %s", c->onupdate);
    if (c->deferrable == 1) lm_buf_puts(out, " DEFERRABLE");
    if (c->initially) lm_buf_printf(out, " INITIALLY %s", c->initially);
    break;
  case LM_CON_EXCLUDE:
    if (mc->sql && !ncols) {
      put_squeezed(out, mc->sql);
      break;
    }
    lm_buf_printf(out, "USING %s (", c->method ? c->method : "gist");
    for (size_t i = 0; i < ncols; i++)
      lm_buf_printf(out, "%s%s WITH %s", i ? ", " : "", cols[i],
                    c->operators ? c->operators[i] : "?");
    lm_buf_putc(out, ')');
    if (c->condition) {
      lm_buf_puts(out, " WHERE ");
      put_squeezed(out, c->condition);
    }
    break;
  }
}

/* What an index is, without its name: its structure where the model has
 * it, else the CREATE INDEX it was read from. */
static void index_text(const lm_mindex *mi, lm_buf *out) {
  const lm_index *ix = &mi->ix;
  if (!ix->ncolumns) {
    put_squeezed(out, mi->sql);
    return;
  }
  if (ix->unique) lm_buf_puts(out, "unique ");
  lm_buf_putc(out, '(');
  for (size_t i = 0; i < ix->ncolumns; i++) {
    if (i) lm_buf_puts(out, ", ");
    put_squeezed(out, ix->columns[i]);
  }
  lm_buf_putc(out, ')');
  if (mi->method) lm_buf_printf(out, " using %s", mi->method);
  if (ix->where) {
    lm_buf_puts(out, " where ");
    put_squeezed(out, ix->where);
  }
}

/* ---- collecting items --------------------------------------------------- */

typedef struct differ {
  lm_diff *d;
  const lm_mtable *ft, *tt;     /* the table pair being compared */
} differ;

static const char *keep(lm_diff *d, lm_buf *b) {
  const char *s = lm_arena_strdup(&d->arena, lm_buf_str(b));
  lm_buf_reset(b);
  return s;
}

static lm_diff_item *add_item(differ *df, lm_diff_object object,
                              lm_diff_change change, const char *name) {
  lm_diff *d = df->d;
  if (d->n == d->cap) {
    d->cap = d->cap ? 2 * d->cap : 16;
    d->items = lm_xrealloc(d->items, d->cap * sizeof *d->items);
  }
  lm_diff_item *it = &d->items[d->n++];
  memset(it, 0, sizeof *it);
  const lm_mtable *t = df->ft ? df->ft : df->tt;
  it->object = object;
  it->change = change;
  it->schema = t->schema;
  it->table = t->name;
  it->name = name;
  it->from_table = df->ft;
  it->to_table = df->tt;
  return it;
}

static void changed(differ *df, lm_diff_object object, const char *name,
                    const char *attribute, const char *from, const char *to,
                    const void *fpart, const void *tpart) {
  lm_diff_item *it = add_item(df, object, LM_DIFF_CHANGED, name);
  it->attribute = attribute;
  it->from = from;
  it->to = to;
  it->from_part = fpart;
  it->to_part = tpart;
}

static int same_text(const char *a, const char *b) {
  if (!a || !b) return a == b;
  return strcmp(a, b) == 0;
}

/* Compare one attribute rendered as text on both sides. */
static void compare_text(differ *df, lm_diff_object object, const char *name,
                         const char *attribute, const char *from,
                         const char *to, const void *fpart,
                         const void *tpart) {
  if (!same_text(from, to))
    changed(df, object, name, attribute, from, to, fpart, tpart);
}

static void compare_columns(differ *df, const lm_mcolumn *fc,
                            const lm_mcolumn *tc) {
  lm_diff *d = df->d;
  lm_buf a = LM_BUF_INIT, b = LM_BUF_INIT;
  lm_type_text(&a, &fc->type);
  lm_type_text(&b, &tc->type);
  /* A declared type reads the same whatever its case. */
  if (strcasecmp(lm_buf_str(&a), lm_buf_str(&b)) != 0)
    changed(df, LM_DIFF_COLUMN, fc->name, "type", keep(d, &a), keep(d, &b),
            fc, tc);
  lm_buf_reset(&a);
  lm_buf_reset(&b);
  if (!fc->nullable != !tc->nullable)
    changed(df, LM_DIFF_COLUMN, fc->name, "nullable",
            fc->nullable ? "null" : "not null",
            tc->nullable ? "null" : "not null", fc, tc);
  lm_default_text(&a, &fc->server_default);
  lm_default_text(&b, &tc->server_default);
  const char *fdef = keep(d, &a), *tdef = keep(d, &b);
  if (strcmp(fdef, tdef) != 0)   /* "" is none */
    changed(df, LM_DIFF_COLUMN, fc->name, "default", *fdef ? fdef : NULL,
            *tdef ? tdef : NULL, fc, tc);
  if (!fc->autoincrement != !tc->autoincrement)
    changed(df, LM_DIFF_COLUMN, fc->name, "autoincrement",
            fc->autoincrement ? "autoincrement" : NULL,
            tc->autoincrement ? "autoincrement" : NULL, fc, tc);
  static const char *const numbering[] = {
    [LM_MSERIAL_NONE] = NULL, [LM_MSERIAL_SERIAL] = "serial",
    [LM_MSERIAL_IDENTITY] = "identity", [LM_MSERIAL_ALWAYS] = "identity always"};
  compare_text(df, LM_DIFF_COLUMN, fc->name, "numbering",
               numbering[fc->serial], numbering[tc->serial], fc, tc);
  compare_text(df, LM_DIFF_COLUMN, fc->name, "comment", fc->comment,
               tc->comment, fc, tc);
  lm_buf_free(&a);
  lm_buf_free(&b);
}

static lm_diff_object constraint_object(lm_constraint_kind k) {
  switch (k) {
  case LM_CON_PRIMARY_KEY: return LM_DIFF_PRIMARY_KEY;
  case LM_CON_UNIQUE: return LM_DIFF_UNIQUE;
  case LM_CON_CHECK: return LM_DIFF_CHECK;
  case LM_CON_EXCLUDE: return LM_DIFF_EXCLUDE;
  case LM_CON_FOREIGN_KEY: break;
  }
  return LM_DIFF_FOREIGN_KEY;
}

/* Constraints and indexes alike: parts with an optional name and a
 * definition text.  A part matches one of the other side with the same
 * name (both named) or, failing that, the same kind and definition. */
typedef struct part {
  const void *ptr;
  const char *name;
  int kind;                     /* lm_diff_object */
  const char *def;
  int matched;
} part;

static part *collect_constraints(lm_diff *d, const lm_mtable *t, size_t *n) {
  *n = t ? t->nconstraints : 0;
  part *ps = lm_xcalloc(*n ? *n : 1, sizeof *ps);
  lm_buf b = LM_BUF_INIT;
  for (size_t i = 0; i < *n; i++) {
    const lm_mconstraint *mc = &t->constraints[i];
    constraint_text(mc, &b);
    ps[i] = (part){mc, mc->con.name, constraint_object(mc->con.kind),
                   keep(d, &b), 0};
  }
  lm_buf_free(&b);
  return ps;
}

static part *collect_indexes(lm_diff *d, const lm_mtable *t, size_t *n) {
  *n = t ? t->nindexes : 0;
  part *ps = lm_xcalloc(*n ? *n : 1, sizeof *ps);
  lm_buf b = LM_BUF_INIT;
  for (size_t i = 0; i < *n; i++) {
    const lm_mindex *mi = &t->indexes[i];
    index_text(mi, &b);
    ps[i] = (part){mi, mi->name, LM_DIFF_INDEX, keep(d, &b), 0};
  }
  lm_buf_free(&b);
  return ps;
}

static void compare_parts(differ *df, part *fs, size_t nf, part *ts,
                          size_t nt) {
  /* by name first, then unnamed ones by definition */
  for (int pass = 0; pass < 2; pass++)
    for (size_t i = 0; i < nf; i++) {
      part *f = &fs[i];
      if (f->matched) continue;
      for (size_t k = 0; k < nt; k++) {
        part *t = &ts[k];
        if (t->matched || t->kind != f->kind) continue;
        int by_name = f->name && t->name && strcmp(f->name, t->name) == 0;
        int by_def = (!f->name || !t->name) && strcmp(f->def, t->def) == 0;
        if (pass == 0 ? !by_name : !by_def) continue;
        f->matched = t->matched = 1;
        if (strcmp(f->def, t->def) != 0)
          changed(df, (lm_diff_object)f->kind, f->name, "definition", f->def,
                  t->def, f->ptr, t->ptr);
        break;
      }
    }
  for (size_t i = 0; i < nf; i++)
    if (!fs[i].matched) {
      lm_diff_item *it = add_item(df, (lm_diff_object)fs[i].kind,
                                  LM_DIFF_REMOVED, fs[i].name);
      it->from = fs[i].def;
      it->from_part = fs[i].ptr;
    }
  for (size_t k = 0; k < nt; k++)
    if (!ts[k].matched) {
      lm_diff_item *it = add_item(df, (lm_diff_object)ts[k].kind,
                                  LM_DIFF_ADDED, ts[k].name);
      it->to = ts[k].def;
      it->to_part = ts[k].ptr;
    }
}

static void compare_tables(differ *df, const lm_mtable *ft,
                           const lm_mtable *tt) {
  df->ft = ft;
  df->tt = tt;
  compare_text(df, LM_DIFF_TABLE, NULL, "comment", ft->comment, tt->comment,
               ft, tt);
  for (size_t i = 0; i < ft->ncolumns; i++) {
    const lm_mcolumn *fc = &ft->columns[i];
    long k = lm_mtable_column_pos(tt, fc->name);
    if (k < 0) {
      add_item(df, LM_DIFF_COLUMN, LM_DIFF_REMOVED, fc->name)->from_part = fc;
      continue;
    }
    compare_columns(df, fc, &tt->columns[k]);
  }
  for (size_t k = 0; k < tt->ncolumns; k++) {
    const lm_mcolumn *tc = &tt->columns[k];
    if (lm_mtable_column_pos(ft, tc->name) < 0)
      add_item(df, LM_DIFF_COLUMN, LM_DIFF_ADDED, tc->name)->to_part = tc;
  }
  size_t nf, nt;
  part *fs = collect_constraints(df->d, ft, &nf);
  part *ts = collect_constraints(df->d, tt, &nt);
  compare_parts(df, fs, nf, ts, nt);
  free(fs);
  free(ts);
  fs = collect_indexes(df->d, ft, &nf);
  ts = collect_indexes(df->d, tt, &nt);
  compare_parts(df, fs, nf, ts, nt);
  free(fs);
  free(ts);
}

static int has_view(const lm_schema *s, const lm_mview *v) {
  for (size_t i = 0; i < s->nviews; i++)
    if (same_text(s->views[i].schema, v->schema) &&
        strcmp(s->views[i].name, v->name) == 0)
      return 1;
  return 0;
}

/* Views are listed by name only: added or removed. */
static void compare_views(lm_diff *d, const lm_schema *from,
                          const lm_schema *to) {
  for (int side = 0; side < 2; side++) {
    const lm_schema *a = side ? to : from, *b = side ? from : to;
    for (size_t i = 0; i < a->nviews; i++) {
      if (has_view(b, &a->views[i])) continue;
      lm_mtable shape = {.schema = a->views[i].schema,
                         .name = a->views[i].name};
      differ df = {d, &shape, NULL};
      lm_diff_item *it = add_item(&df, LM_DIFF_VIEW,
                                  side ? LM_DIFF_ADDED : LM_DIFF_REMOVED,
                                  NULL);
      it->from_table = it->to_table = NULL;
      if (side) it->to_part = &a->views[i];
      else it->from_part = &a->views[i];
    }
  }
}

void lm_schema_diff(lm_diff *d, const lm_schema *from, const lm_schema *to) {
  lm_diff_free(d);
  lm_diff_init(d);
  differ df = {d, NULL, NULL};
  /* lm_schema_table only reads: the casts drop a const it does not need */
  for (size_t i = 0; i < from->ntables; i++) {
    const lm_mtable *ft = &from->tables[i];
    const lm_mtable *tt = lm_schema_table((lm_schema *)to, ft->schema,
                                          ft->name);
    if (tt) {
      compare_tables(&df, ft, tt);
    } else {
      df.ft = ft;
      df.tt = NULL;
      add_item(&df, LM_DIFF_TABLE, LM_DIFF_REMOVED, NULL);
    }
  }
  for (size_t k = 0; k < to->ntables; k++) {
    const lm_mtable *tt = &to->tables[k];
    if (lm_schema_table((lm_schema *)from, tt->schema, tt->name)) continue;
    df.ft = NULL;
    df.tt = tt;
    add_item(&df, LM_DIFF_TABLE, LM_DIFF_ADDED, NULL);
  }
  compare_views(d, from, to);
}

/* ---- printing ----------------------------------------------------------- */

static const char *const object_names[] = {
  [LM_DIFF_TABLE] = "table", [LM_DIFF_COLUMN] = "column",
  [LM_DIFF_PRIMARY_KEY] = "primary key", [LM_DIFF_UNIQUE] = "unique",
  [LM_DIFF_CHECK] = "check", [LM_DIFF_FOREIGN_KEY] = "foreign key",
  [LM_DIFF_INDEX] = "index", [LM_DIFF_VIEW] = "view",
  [LM_DIFF_EXCLUDE] = "exclusion constraint"};

static const char *const change_names[] = {
  [LM_DIFF_ADDED] = "added", [LM_DIFF_REMOVED] = "removed",
  [LM_DIFF_CHANGED] = "changed"};

void lm_diff_item_line(const lm_diff_item *it, lm_buf *out) {
  const char *obj = object_names[it->object];
  if (it->object == LM_DIFF_TABLE || it->object == LM_DIFF_COLUMN ||
      it->object == LM_DIFF_VIEW) {
    put_qualified(out, it->schema, it->table);
    if (it->object == LM_DIFF_COLUMN) lm_buf_printf(out, ".%s", it->name);
    lm_buf_puts(out, ": ");
    if (it->change != LM_DIFF_CHANGED) {
      lm_buf_printf(out, "%s %s", obj, change_names[it->change]);
      return;
    }
    if (strcmp(it->attribute, "nullable") != 0)
      lm_buf_printf(out, "%s ", it->attribute);
    lm_buf_printf(out, "%s -> %s", it->from ? it->from : "none",
                  it->to ? it->to : "none");
    return;
  }
  /* constraints and indexes: "<kind> [<name>] on <table>: ..." */
  lm_buf_puts(out, obj);
  if (it->name) lm_buf_printf(out, " %s", it->name);
  lm_buf_puts(out, " on ");
  put_qualified(out, it->schema, it->table);
  lm_buf_puts(out, ": ");
  if (it->change == LM_DIFF_CHANGED)
    lm_buf_printf(out, "%s -> %s", it->from, it->to);
  else if (it->name)
    lm_buf_puts(out, change_names[it->change]);
  else   /* an unnamed one is known by what it is */
    lm_buf_printf(out, "%s %s", change_names[it->change],
                  it->change == LM_DIFF_ADDED ? it->to : it->from);
}

static void json_field(lm_buf *out, const char *key, const char *value) {
  lm_buf_printf(out, ", \"%s\": ", key);
  if (value) lm_json_string(out, value);
  else lm_buf_puts(out, "null");
}

void lm_diff_item_json(const lm_diff_item *it, lm_buf *out) {
  lm_buf_printf(out, "{\"object\": \"%s\", \"change\": \"%s\"",
                object_names[it->object], change_names[it->change]);
  json_field(out, "schema", it->schema);
  json_field(out, "table", it->table);
  json_field(out, "name", it->name);
  json_field(out, "attribute", it->attribute);
  json_field(out, "from", it->from);
  json_field(out, "to", it->to);
  lm_buf line = LM_BUF_INIT;
  lm_diff_item_line(it, &line);
  json_field(out, "line", lm_buf_str(&line));
  lm_buf_free(&line);
  lm_buf_putc(out, '}');
}

void lm_diff_lines(const lm_diff *d, const char *indent, lm_buf *out) {
  for (size_t i = 0; i < d->n; i++) {
    lm_buf_puts(out, indent ? indent : "");
    lm_diff_item_line(&d->items[i], out);
    lm_buf_putc(out, '\n');
  }
}

void lm_diff_json(const lm_diff *d, lm_buf *out) {
  lm_buf_putc(out, '[');
  for (size_t i = 0; i < d->n; i++) {
    if (i) lm_buf_puts(out, ", ");
    lm_diff_item_json(&d->items[i], out);
  }
  lm_buf_putc(out, ']');
}
