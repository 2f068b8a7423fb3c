/*
 * schema.h - one schema model: tables with their columns, constraints,
 * indexes and triggers.  It is filled either by a dialect's introspection
 * (the shape a live database has) or by replaying operations (the shape
 * the migrations give it, for --sql), and it is what a dialect that has to
 * rebuild a table reads.
 *
 * Everything in a model lives in its arena; a table removed or changed
 * leaves its old strings there until the model is freed, which keeps every
 * pointer handed out valid for the model's lifetime.  Parts that came from
 * a database keep the database's own text (a declared type, a CHECK as
 * written), so a rebuild writes them back exactly.
 */
#ifndef LM_SCHEMA_H
#define LM_SCHEMA_H

#include "operation.h"
#include "util.h"

typedef struct lm_mcolumn {
  const char *name;
  lm_type type;                 /* LM_T_RAW: the declared type, verbatim */
  int nullable;
  lm_default server_default;    /* LM_DEF_RAW: the default, verbatim */
  int autoincrement;            /* the database's AUTOINCREMENT keyword */
  int generated;                /* a computed column: never copied */
  const char *extra;            /* other clauses kept verbatim (COLLATE ...) */
  const char *comment;
  const char *origin;           /* rebuilds: the old column copied, or NULL */
} lm_mcolumn;

typedef struct lm_mconstraint {
  lm_constraint con;
  const char *sql;              /* the clause as the database holds it
                                 * (without CONSTRAINT name), or NULL */
  const char *column;           /* written inline on this column, or NULL */
} lm_mconstraint;

typedef struct lm_mindex {
  const char *name;
  lm_index ix;                  /* structure (for replayed indexes) */
  const char *sql;              /* CREATE INDEX as the database holds it */
} lm_mindex;

typedef struct lm_mtrigger {
  const char *name;
  const char *sql;              /* CREATE TRIGGER, verbatim, or NULL for a
                                 * replayed onupdate trigger, which the
                                 * dialect writes from the two below */
  const char *column;           /* onupdate: the column it sets, or NULL */
  lm_default onupdate;          /* onupdate: the value it sets */
} lm_mtrigger;

typedef struct lm_mtable {
  const char *schema;           /* NULL: the default one */
  const char *name;
  lm_mcolumn *columns;
  size_t ncolumns, capcolumns;
  lm_mconstraint *constraints;
  size_t nconstraints, capconstraints;
  lm_mindex *indexes;
  size_t nindexes, capindexes;
  lm_mtrigger *triggers;
  size_t ntriggers, captriggers;
  const char *options;          /* text after the column list (WITHOUT ROWID) */
  const char *comment;
  const char *unknown_since;    /* a revision changed it with raw SQL: its
                                 * shape is unknown from then on */
} lm_mtable;

typedef struct lm_schema {
  lm_arena arena;
  lm_mtable *tables;
  size_t ntables, captables;
  const char *unknown_since;    /* raw SQL changed something unnamed */
} lm_schema;

void lm_schema_init(lm_schema *s);
void lm_schema_free(lm_schema *s);
void lm_schema_reset(lm_schema *s);

/* The table, or NULL.  Names compare exactly; schema NULL is the default. */
lm_mtable *lm_schema_table(lm_schema *s, const char *schema, const char *name);
/* A new empty table (replacing one of the same name). */
lm_mtable *lm_schema_add_table(lm_schema *s, const char *schema,
                               const char *name);
void lm_schema_drop_table(lm_schema *s, const char *schema, const char *name);
/* A deep copy of t into s (for a rebuild's "after" shape). */
lm_mtable *lm_schema_copy_table(lm_schema *s, const lm_mtable *t);

/* Growing a table's parts; the returned element is zeroed. */
lm_mcolumn *lm_mtable_add_column(lm_schema *s, lm_mtable *t);
lm_mconstraint *lm_mtable_add_constraint(lm_schema *s, lm_mtable *t);
lm_mindex *lm_mtable_add_index(lm_schema *s, lm_mtable *t);
lm_mtrigger *lm_mtable_add_trigger(lm_schema *s, lm_mtable *t);

lm_mcolumn *lm_mtable_column(lm_mtable *t, const char *name);
/* The name of the trigger (and, where a dialect needs one, its function)
 * that keeps a column's onupdate value: <table>_<column>_onupdate.  The
 * caller frees it. */
char *lm_onupdate_trigger_name(const char *table, const char *column);
/* The table's onupdate trigger for the column: the one replayed for it, or
 * one the database holds under the name above; NULL when there is none. */
lm_mtrigger *lm_mtable_onupdate_trigger(lm_mtable *t, const char *column);
/* Index of a column, or -1. */
long lm_mtable_column_pos(const lm_mtable *t, const char *name);

/* Deep copies into the model's arena. */
const char *lm_schema_str(lm_schema *s, const char *str);
void lm_schema_copy_type(lm_schema *s, lm_type *dst, const lm_type *src);
void lm_schema_copy_default(lm_schema *s, lm_default *dst,
                            const lm_default *src);
void lm_schema_copy_constraint(lm_schema *s, lm_constraint *dst,
                               const lm_constraint *src);
void lm_schema_copy_index(lm_schema *s, lm_index *dst, const lm_index *src);

/* What depends on a column: a constraint over it (or a CHECK naming it),
 * an index over it (or an expression or WHERE naming it); `mentions` finds
 * an identifier as a whole word in SQL text. */
int lm_sql_mentions(const char *text, const char *name);
int lm_mconstraint_uses(const lm_mconstraint *c, const char *column);
int lm_mindex_uses(const lm_mindex *ix, const char *column);

/* executor.c: offline, run the upgrades from base to `heads` into the
 * model only (nothing written), before a --sql range that starts there. */
struct lm_env;
int lm_exec_replay(struct lm_env *env, const char *const *heads,
                   size_t nheads);

/* replay.c: apply an operation to the model, as running it would.  A
 * failure (a table or column that is not there) leaves the model as it was
 * as far as the operation got and says why. */
int lm_schema_apply(lm_schema *s, const lm_op *op, lm_err *err);
/* The same on one table, for rebuilds; the op's table name is ignored. */
int lm_mtable_apply(lm_schema *s, lm_mtable *t, const lm_op *op, lm_err *err);

#endif
