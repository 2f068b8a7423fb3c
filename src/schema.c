/*
 * schema.c - the schema model's storage: tables and their parts in one
 * arena, grown by doubling (the old arrays stay in the arena until the
 * model is freed; models are small and short-lived).
 */
#include <stdlib.h>
#include <string.h>

#include "schema.h"

void lm_schema_init(lm_schema *s) {
  memset(s, 0, sizeof *s);
  lm_arena_init(&s->arena);
}

void lm_schema_free(lm_schema *s) {
  lm_arena_free(&s->arena);
  memset(s, 0, sizeof *s);
}

void lm_schema_reset(lm_schema *s) {
  lm_schema_free(s);
  lm_schema_init(s);
}

const char *lm_schema_str(lm_schema *s, const char *str) {
  return str ? lm_arena_strdup(&s->arena, str) : NULL;
}

/* Room for one more element in an arena array of `size`-byte elements. */
static void *grow(lm_schema *s, void *arr, size_t n, size_t *cap,
                  size_t size) {
  if (n < *cap) return arr;
  size_t ncap = *cap ? *cap * 2 : 8;
  void *fresh = lm_arena_alloc(&s->arena, ncap * size);
  if (n) memcpy(fresh, arr, n * size);
  *cap = ncap;
  return fresh;
}

static int same(const char *a, const char *b) {
  if (!a || !b) return a == b;
  return strcmp(a, b) == 0;
}

lm_mtable *lm_schema_table(lm_schema *s, const char *schema,
                           const char *name) {
  for (size_t i = 0; i < s->ntables; i++)
    if (same(s->tables[i].schema, schema) &&
        strcmp(s->tables[i].name, name) == 0)
      return &s->tables[i];
  return NULL;
}

void lm_schema_drop_table(lm_schema *s, const char *schema, const char *name) {
  lm_mtable *t = lm_schema_table(s, schema, name);
  if (!t) return;
  size_t i = (size_t)(t - s->tables);
  memmove(t, t + 1, (s->ntables - i - 1) * sizeof *t);
  s->ntables--;
}

lm_mtable *lm_schema_add_table(lm_schema *s, const char *schema,
                               const char *name) {
  lm_schema_drop_table(s, schema, name);
  s->tables = grow(s, s->tables, s->ntables, &s->captables, sizeof *s->tables);
  lm_mtable *t = &s->tables[s->ntables++];
  memset(t, 0, sizeof *t);
  t->schema = lm_schema_str(s, schema);
  t->name = lm_schema_str(s, name);
  return t;
}

lm_mcolumn *lm_mtable_add_column(lm_schema *s, lm_mtable *t) {
  t->columns = grow(s, t->columns, t->ncolumns, &t->capcolumns,
                    sizeof *t->columns);
  lm_mcolumn *c = &t->columns[t->ncolumns++];
  memset(c, 0, sizeof *c);
  c->nullable = 1;
  return c;
}

lm_mconstraint *lm_mtable_add_constraint(lm_schema *s, lm_mtable *t) {
  t->constraints = grow(s, t->constraints, t->nconstraints,
                        &t->capconstraints, sizeof *t->constraints);
  lm_mconstraint *c = &t->constraints[t->nconstraints++];
  memset(c, 0, sizeof *c);
  c->con.deferrable = -1;
  return c;
}

lm_mindex *lm_mtable_add_index(lm_schema *s, lm_mtable *t) {
  t->indexes = grow(s, t->indexes, t->nindexes, &t->capindexes,
                    sizeof *t->indexes);
  lm_mindex *ix = &t->indexes[t->nindexes++];
  memset(ix, 0, sizeof *ix);
  return ix;
}

lm_mtrigger *lm_mtable_add_trigger(lm_schema *s, lm_mtable *t) {
  t->triggers = grow(s, t->triggers, t->ntriggers, &t->captriggers,
                     sizeof *t->triggers);
  lm_mtrigger *tr = &t->triggers[t->ntriggers++];
  memset(tr, 0, sizeof *tr);
  return tr;
}

long lm_mtable_column_pos(const lm_mtable *t, const char *name) {
  for (size_t i = 0; i < t->ncolumns; i++)
    if (strcmp(t->columns[i].name, name) == 0) return (long)i;
  return -1;
}

lm_mcolumn *lm_mtable_column(lm_mtable *t, const char *name) {
  long i = lm_mtable_column_pos(t, name);
  return i < 0 ? NULL : &t->columns[i];
}

char *lm_onupdate_trigger_name(const char *table, const char *column) {
  return lm_xasprintf("%s_%s_onupdate", table, column);
}

lm_mtrigger *lm_mtable_onupdate_trigger(lm_mtable *t, const char *column) {
  char *name = lm_onupdate_trigger_name(t->name, column);
  lm_mtrigger *found = NULL;
  for (size_t i = 0; i < t->ntriggers && !found; i++) {
    lm_mtrigger *tr = &t->triggers[i];
    if (tr->column ? strcmp(tr->column, column) == 0
                   : strcmp(tr->name, name) == 0)
      found = tr;
  }
  free(name);
  return found;
}

/* A list of strings copied into the arena. */
static const char *const *copy_list(lm_schema *s, const char *const *src,
                                    size_t n) {
  if (!n) return NULL;
  const char **out = lm_arena_alloc(&s->arena, n * sizeof *out);
  for (size_t i = 0; i < n; i++) out[i] = lm_schema_str(s, src[i]);
  return out;
}

void lm_schema_copy_type(lm_schema *s, lm_type *dst, const lm_type *src) {
  *dst = *src;
  dst->raw = lm_schema_str(s, src->raw);
  dst->choice_dialect = (const char **)copy_list(s, src->choice_dialect,
                                                 src->nchoices);
  dst->choice_type = (const char **)copy_list(s, src->choice_type,
                                              src->nchoices);
  dst->enum_name = lm_schema_str(s, src->enum_name);
  dst->enum_values = copy_list(s, src->enum_values, src->nenum_values);
}

void lm_schema_copy_default(lm_schema *s, lm_default *dst,
                            const lm_default *src) {
  *dst = *src;
  dst->text = lm_schema_str(s, src->text);
}

void lm_schema_copy_constraint(lm_schema *s, lm_constraint *dst,
                               const lm_constraint *src) {
  *dst = *src;
  dst->name = lm_schema_str(s, src->name);
  dst->columns = copy_list(s, src->columns, src->ncolumns);
  dst->condition = lm_schema_str(s, src->condition);
  dst->ref_schema = lm_schema_str(s, src->ref_schema);
  dst->ref_table = lm_schema_str(s, src->ref_table);
  dst->ref_columns = copy_list(s, src->ref_columns, src->nref_columns);
  dst->ondelete = lm_schema_str(s, src->ondelete);
  dst->onupdate = lm_schema_str(s, src->onupdate);
  dst->initially = lm_schema_str(s, src->initially);
  dst->match = lm_schema_str(s, src->match);
  dst->method = lm_schema_str(s, src->method);
  if (src->operators)
    dst->operators = copy_list(s, src->operators, src->ncolumns);
  if (src->is_expr && src->ncolumns) {
    int *e = lm_arena_alloc(&s->arena, src->ncolumns * sizeof *e);
    memcpy(e, src->is_expr, src->ncolumns * sizeof *e);
    dst->is_expr = e;
  }
}

void lm_schema_copy_index(lm_schema *s, lm_index *dst, const lm_index *src) {
  *dst = *src;
  dst->columns = copy_list(s, src->columns, src->ncolumns);
  if (src->is_expr && src->ncolumns) {
    int *e = lm_arena_alloc(&s->arena, src->ncolumns * sizeof *e);
    memcpy(e, src->is_expr, src->ncolumns * sizeof *e);
    dst->is_expr = e;
  }
  dst->where = lm_schema_str(s, src->where);
  dst->include = copy_list(s, src->include, src->ninclude);
  dst->method = lm_schema_str(s, src->method);
}

lm_mtable *lm_schema_copy_table(lm_schema *s, const lm_mtable *t) {
  /* Take what we need before adding: the add may move t's array. */
  lm_mtable src = *t;
  lm_mtable *d = lm_schema_add_table(s, src.schema, src.name);
  for (size_t i = 0; i < src.ncolumns; i++) {
    lm_mcolumn *c = lm_mtable_add_column(s, d);
    const lm_mcolumn *o = &src.columns[i];
    *c = *o;
    c->name = lm_schema_str(s, o->name);
    lm_schema_copy_type(s, &c->type, &o->type);
    lm_schema_copy_default(s, &c->server_default, &o->server_default);
    c->extra = lm_schema_str(s, o->extra);
    c->comment = lm_schema_str(s, o->comment);
    c->origin = lm_schema_str(s, o->origin);
  }
  for (size_t i = 0; i < src.nconstraints; i++) {
    lm_mconstraint *c = lm_mtable_add_constraint(s, d);
    lm_schema_copy_constraint(s, &c->con, &src.constraints[i].con);
    c->sql = lm_schema_str(s, src.constraints[i].sql);
    c->column = lm_schema_str(s, src.constraints[i].column);
  }
  for (size_t i = 0; i < src.nindexes; i++) {
    lm_mindex *ix = lm_mtable_add_index(s, d);
    ix->name = lm_schema_str(s, src.indexes[i].name);
    lm_schema_copy_index(s, &ix->ix, &src.indexes[i].ix);
    ix->sql = lm_schema_str(s, src.indexes[i].sql);
  }
  for (size_t i = 0; i < src.ntriggers; i++) {
    lm_mtrigger *tr = lm_mtable_add_trigger(s, d);
    tr->name = lm_schema_str(s, src.triggers[i].name);
    tr->sql = lm_schema_str(s, src.triggers[i].sql);
    tr->column = lm_schema_str(s, src.triggers[i].column);
    lm_schema_copy_default(s, &tr->onupdate, &src.triggers[i].onupdate);
  }
  d->options = lm_schema_str(s, src.options);
  d->comment = lm_schema_str(s, src.comment);
  d->unknown_since = lm_schema_str(s, src.unknown_since);
  return d;
}
