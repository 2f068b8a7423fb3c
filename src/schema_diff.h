/*
 * schema_diff.h - the one schema diff: two models in (src/schema.h), a
 * list of typed differences out, each printable as one readable line
 * ("persons.status: default 'draft' -> none") or as a JSON object.
 * `verify` compares snapshots with it; `check` and autogenerate read the
 * same items (the parts of both models are linked from each item).
 * Types and defaults print as schema_text.h writes them.
 *
 * The diff reads `from` as the old shape and `to` as the new one: a table
 * only `to` has is "added".  Items come in a stable order: tables by
 * position in `from` (then the added ones in `to`'s order), and within a
 * table columns, then constraints, then indexes; views last.
 */
#ifndef LM_SCHEMA_DIFF_H
#define LM_SCHEMA_DIFF_H

#include "schema.h"

typedef enum lm_diff_object {
  LM_DIFF_TABLE,
  LM_DIFF_COLUMN,
  LM_DIFF_PRIMARY_KEY,
  LM_DIFF_UNIQUE,
  LM_DIFF_CHECK,
  LM_DIFF_FOREIGN_KEY,
  LM_DIFF_INDEX,
  LM_DIFF_VIEW,                 /* listed by name: added or removed only */
  LM_DIFF_EXCLUDE               /* PostgreSQL's exclusion constraints */
} lm_diff_object;

typedef enum lm_diff_change {
  LM_DIFF_ADDED,
  LM_DIFF_REMOVED,
  LM_DIFF_CHANGED
} lm_diff_change;

typedef struct lm_diff_item {
  lm_diff_object object;
  lm_diff_change change;
  const char *schema;           /* the table's schema; NULL: the default */
  const char *table;
  const char *name;             /* column, constraint or index; NULL for a
                                 * table or an unnamed constraint */
  /* CHANGED: what differs ("type", "nullable", "default", "comment",
   * "autoincrement", "numbering", "definition"); NULL otherwise. */
  const char *attribute;
  /* CHANGED: the old and new value as text (NULL: none); ADDED/REMOVED of
   * a constraint or index: its definition in `to` / `from`. */
  const char *from, *to;
  /* The parts in each model (NULL on the side that lacks them): an
   * lm_mtable, lm_mcolumn, lm_mconstraint, lm_mindex or lm_mview by
   * `object` (a view has no table). */
  const lm_mtable *from_table, *to_table;
  const void *from_part, *to_part;
} lm_diff_item;

typedef struct lm_diff {
  lm_arena arena;               /* the items' strings */
  lm_diff_item *items;
  size_t n, cap;
} lm_diff;

void lm_diff_init(lm_diff *d);
void lm_diff_free(lm_diff *d);

/* Compare two models into d (initialised, emptied first).  The models
 * must outlive d: items point into them. */
void lm_schema_diff(lm_diff *d, const lm_schema *from, const lm_schema *to);

/* One item as one line, without a newline:
 *   persons: table added
 *   persons.role: column removed
 *   persons.status: default 'draft' -> none
 *   index ix_persons_email on persons: removed
 *   check on persons: added (age >= 0) */
void lm_diff_item_line(const lm_diff_item *it, lm_buf *out);
/* One item as a JSON object (with its line under "line"). */
void lm_diff_item_json(const lm_diff_item *it, lm_buf *out);
/* All items: one line each (each ending in "\n", after `indent`), or one
 * JSON array. */
void lm_diff_lines(const lm_diff *d, const char *indent, lm_buf *out);
void lm_diff_json(const lm_diff *d, lm_buf *out);

#endif
