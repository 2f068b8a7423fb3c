/*
 * autogen.c - the differences between database and models (autogen.h)
 * as a list of changes in the order a migration makes them, handed to
 * lua/autogen.lua to be written as a revision script:
 *
 *   1. new tables, referenced tables first (an iterative topological
 *      sort: no recursion, whatever the length of a foreign-key chain);
 *      a cycle is broken by creating a table without the foreign keys to
 *      tables not made yet and adding them once both exist;
 *   2. each table both sides have, in name order: what goes (indexes,
 *      constraints) first, then its columns, then what comes;
 *   3. tables that go: the foreign keys of a cycle among them first, then
 *      the tables, referencing ones first.
 *
 * Each change is rendered with its inverse; the downgrade is the inverses
 * in reverse order, so it undoes the upgrade exactly.
 */
#include <stdlib.h>
#include <string.h>

#include <lua.h>

#include "autogen.h"
#include "models.h"

/* ---- foreign-key order ---------------------------------------------- */

/* The position of the table named (schema, name) in tabs, or -1. */
static long find_table(const lm_mtable *const *tabs, size_t n,
                       const char *schema, const char *name) {
  for (size_t i = 0; i < n; i++) {
    const lm_mtable *t = tabs[i];
    if (strcmp(t->name, name) == 0 &&
        (!t->schema == !schema && (!schema || strcmp(t->schema, schema) == 0)))
      return (long)i;
  }
  return -1;
}

/* The table constraint k of table i references, when it is a foreign key
 * to another of tabs; else -1. */
static long fk_target(const lm_mtable *const *tabs, size_t n, size_t i,
                      size_t k) {
  const lm_constraint *c = &tabs[i]->constraints[k].con;
  if (c->kind != LM_CON_FOREIGN_KEY) return -1;
  long j = find_table(tabs, n, c->ref_schema ? c->ref_schema : tabs[i]->schema,
                      c->ref_table);
  return (size_t)j == i ? -1 : j;
}

/* Order tabs so that a table comes after the tables its foreign keys
 * reference (Kahn's algorithm, by position among the ready ones).  When
 * only tables in a cycle are left, the first of them comes next, and its
 * foreign keys to tables not yet placed are marked in `deferred` (one
 * flag per constraint, per table: deferred[i][k]). */
static void fk_order(const lm_mtable *const *tabs, size_t n, size_t *order,
                     unsigned char **deferred) {
  size_t *indeg = lm_xcalloc(n ? n : 1, sizeof *indeg);
  size_t *rstart = lm_xcalloc(n + 1, sizeof *rstart);
  /* edges i -> j (i references j), as a reverse adjacency: rdeps of j */
  size_t nedges = 0;
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < tabs[i]->nconstraints; k++) {
      long j = fk_target(tabs, n, i, k);
      if (j < 0) continue;
      indeg[i]++;
      rstart[j + 1]++;
      nedges++;
    }
  for (size_t j = 0; j < n; j++) rstart[j + 1] += rstart[j];
  size_t *rdeps = lm_xcalloc(nedges ? nedges : 1, sizeof *rdeps);
  size_t *fill = lm_xcalloc(n ? n : 1, sizeof *fill);
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < tabs[i]->nconstraints; k++) {
      long j = fk_target(tabs, n, i, k);
      if (j < 0) continue;
      rdeps[rstart[j] + fill[j]++] = i;
    }
  unsigned char *placed = lm_xcalloc(n ? n : 1, 1);
  size_t next_ready = 0;
  for (size_t done = 0; done < n; done++) {
    size_t pick = n;
    for (size_t i = next_ready; i < n && pick == n; i++)
      if (!placed[i] && indeg[i] == 0) pick = i;
    if (pick == n) {            /* a cycle: the first table left */
      for (size_t i = 0; i < n && pick == n; i++)
        if (!placed[i]) pick = i;
    }
    placed[pick] = 1;
    order[done] = pick;
    for (size_t k = 0; k < tabs[pick]->nconstraints; k++) {
      long j = fk_target(tabs, n, pick, k);
      if (j >= 0 && !placed[j]) deferred[pick][k] = 1;
    }
    next_ready = 0;
    for (size_t e = rstart[pick]; e < rstart[pick + 1]; e++)
      if (indeg[rdeps[e]]) indeg[rdeps[e]]--;
    /* the smallest ready position may now be before the last one seen */
    while (next_ready < n && placed[next_ready]) next_ready++;
  }
  free(placed);
  free(fill);
  free(rdeps);
  free(rstart);
  free(indeg);
}

/* ---- the change list -------------------------------------------------- */

typedef struct builder {
  lua_State *L;
  int list;                     /* the changes table's stack index */
  lua_Integer n;
} builder;

/* Start a change {kind, table, schema}: left on the stack for fields. */
static void begin(builder *b, const char *kind, const lm_mtable *t) {
  lua_State *L = b->L;
  lua_createtable(L, 0, 6);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  lua_pushstring(L, t->name);
  lua_setfield(L, -2, "table");
  if (t->schema) {
    lua_pushstring(L, t->schema);
    lua_setfield(L, -2, "schema");
  }
}

static void end(builder *b) {
  lua_rawseti(b->L, b->list, ++b->n);
}

/* A table with its deferred foreign keys marked (deferred = true). */
static void push_table_marked(lua_State *L, const lm_mtable *t,
                              const unsigned char *deferred) {
  lm_models_push_table(L, t);
  lua_getfield(L, -1, "constraints");
  for (size_t k = 0; k < t->nconstraints; k++) {
    if (!deferred[k]) continue;
    lua_geti(L, -1, (lua_Integer)k + 1);
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "deferred");
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

static void constraint_change(builder *b, const char *kind,
                              const lm_mtable *t, const lm_mconstraint *mc) {
  begin(b, kind, t);
  lm_models_push_constraint(b->L, mc);
  lua_setfield(b->L, -2, "constraint");
  end(b);
}

static void index_change(builder *b, const char *kind, const lm_mtable *t,
                         const lm_mindex *mi) {
  begin(b, kind, t);
  lm_models_push_index(b->L, mi);
  lua_setfield(b->L, -2, "index");
  end(b);
}

/* New (or gone) tables in foreign-key order: create_table (or
 * drop_table) changes, the deferred foreign keys as their own. */
static void tables_in_order(builder *b, const lm_compare *c, int added) {
  size_t n = 0;
  for (size_t i = 0; i < c->n; i++)
    n += c->items[i]->object == LM_DIFF_TABLE &&
         c->items[i]->change == (added ? LM_DIFF_ADDED : LM_DIFF_REMOVED);
  if (!n) return;
  const lm_mtable **tabs = lm_xcalloc(n, sizeof *tabs);
  size_t k = 0;
  for (size_t i = 0; i < c->n; i++) {
    const lm_diff_item *it = c->items[i];
    if (it->object == LM_DIFF_TABLE &&
        it->change == (added ? LM_DIFF_ADDED : LM_DIFF_REMOVED))
      tabs[k++] = added ? it->to_table : it->from_table;
  }
  size_t *order = lm_xcalloc(n, sizeof *order);
  unsigned char **deferred = lm_xcalloc(n, sizeof *deferred);
  for (size_t i = 0; i < n; i++)
    deferred[i] = lm_xcalloc(tabs[i]->nconstraints + 1, 1);
  fk_order(tabs, n, order, deferred);
  if (added) {
    for (size_t i = 0; i < n; i++) {
      const lm_mtable *t = tabs[order[i]];
      begin(b, "create_table", t);
      push_table_marked(b->L, t, deferred[order[i]]);
      lua_setfield(b->L, -2, "definition");
      end(b);
      for (size_t x = 0; x < t->nindexes; x++)
        index_change(b, "create_index", t, &t->indexes[x]);
    }
    for (size_t i = 0; i < n; i++) {
      const lm_mtable *t = tabs[order[i]];
      for (size_t x = 0; x < t->nconstraints; x++)
        if (deferred[order[i]][x])
          constraint_change(b, "add_constraint", t, &t->constraints[x]);
    }
  } else {
    for (size_t i = 0; i < n; i++) {
      const lm_mtable *t = tabs[order[i]];
      for (size_t x = 0; x < t->nconstraints; x++)
        if (deferred[order[i]][x])
          constraint_change(b, "drop_constraint", t, &t->constraints[x]);
    }
    for (size_t i = n; i-- > 0;) {
      const lm_mtable *t = tabs[order[i]];
      begin(b, "drop_table", t);
      push_table_marked(b->L, t, deferred[order[i]]);
      lua_setfield(b->L, -2, "definition");
      end(b);
    }
  }
  for (size_t i = 0; i < n; i++) free(deferred[i]);
  free(deferred);
  free(order);
  free(tabs);
}

static int is_key(lm_diff_object o) {
  return o == LM_DIFF_PRIMARY_KEY || o == LM_DIFF_UNIQUE ||
         o == LM_DIFF_CHECK || o == LM_DIFF_FOREIGN_KEY || o == LM_DIFF_INDEX;
}

/* One part going away (first pass) or coming (third pass). */
static void part_change(builder *b, const lm_diff_item *it, int adding) {
  const lm_mtable *t = adding ? it->to_table : it->from_table;
  const void *part = adding ? it->to_part : it->from_part;
  if (it->object == LM_DIFF_INDEX)
    index_change(b, adding ? "create_index" : "drop_index", t, part);
  else
    constraint_change(b, adding ? "add_constraint" : "drop_constraint", t,
                      part);
}

/* A column's change: added, removed or one attribute altered. */
static void column_change(builder *b, const lm_diff_item *it) {
  lua_State *L = b->L;
  const lm_mtable *t = it->from_table;
  if (it->change == LM_DIFF_ADDED) {
    const lm_mcolumn *col = it->to_part;
    begin(b, "add_column", t);
    lm_models_push_column(L, it->to_table, col);
    lua_setfield(L, -2, "column");
    lua_pushboolean(L, !col->nullable &&
                           col->server_default.kind == LM_DEF_NONE);
    lua_setfield(L, -2, "three_phase");
  } else if (it->change == LM_DIFF_REMOVED) {
    begin(b, "drop_column", t);
    lm_models_push_column(L, t, it->from_part);
    lua_setfield(L, -2, "column");
  } else {
    begin(b, "alter_column", t);
    lua_pushstring(L, it->attribute);
    lua_setfield(L, -2, "attribute");
    lm_models_push_column(L, t, it->from_part);
    lua_setfield(L, -2, "from");
    lm_models_push_column(L, it->to_table, it->to_part);
    lua_setfield(L, -2, "to");
  }
  end(b);
}

static int is_nullable_change(const lm_diff_item *it) {
  return it->object == LM_DIFF_COLUMN && it->change == LM_DIFF_CHANGED &&
         strcmp(it->attribute, "nullable") == 0;
}

/* The changes of each table both sides have, table by table. */
static void tables_changed(builder *b, const lm_compare *c) {
  for (size_t i = 0; i < c->n;) {
    const lm_diff_item *first = c->items[i];
    if (first->object == LM_DIFF_TABLE && first->change != LM_DIFF_CHANGED) {
      i++;
      continue;
    }
    /* the items of one table are consecutive (schema_diff.h) */
    size_t end_at = i;
    while (end_at < c->n && c->items[end_at]->from_table == first->from_table &&
           !(c->items[end_at]->object == LM_DIFF_TABLE &&
             c->items[end_at]->change != LM_DIFF_CHANGED))
      end_at++;
    for (size_t k = i; k < end_at; k++) {     /* what goes */
      const lm_diff_item *it = c->items[k];
      if (is_key(it->object) && it->change != LM_DIFF_ADDED)
        part_change(b, it, 0);
    }
    /* columns, the comment; NOT NULL last, once a default is there */
    for (size_t k = i; k < end_at; k++) {
      const lm_diff_item *it = c->items[k];
      if (is_nullable_change(it)) continue;
      if (it->object == LM_DIFF_COLUMN) {
        column_change(b, it);
      } else if (it->object == LM_DIFF_TABLE) {
        begin(b, "table_comment", it->from_table);
        if (it->from) lua_pushstring(b->L, it->from);
        else lua_pushnil(b->L);
        lua_setfield(b->L, -2, "from");
        if (it->to) lua_pushstring(b->L, it->to);
        else lua_pushnil(b->L);
        lua_setfield(b->L, -2, "to");
        end(b);
      }
    }
    for (size_t k = i; k < end_at; k++)
      if (is_nullable_change(c->items[k])) column_change(b, c->items[k]);
    for (size_t k = i; k < end_at; k++) {     /* what comes */
      const lm_diff_item *it = c->items[k];
      if (is_key(it->object) && it->change != LM_DIFF_REMOVED)
        part_change(b, it, 1);
    }
    i = end_at;
  }
}

void lm_autogen_push(lua_State *L, const lm_compare *c) {
  lua_newtable(L);
  builder b = {L, lua_gettop(L), 0};
  tables_in_order(&b, c, 1);
  tables_changed(&b, c);
  tables_in_order(&b, c, 0);
  lua_createtable(L, (int)c->not_compared.n, 0);
  for (size_t i = 0; i < c->not_compared.n; i++) {
    lua_pushstring(L, c->not_compared.items[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}
