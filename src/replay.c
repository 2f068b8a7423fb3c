/*
 * replay.c - the replayer: applies operation values to a schema model as
 * running them would change the database.  The offline executor keeps its
 * model current this way, and a rebuild computes a table's new shape by
 * applying the same operations to a copy of the old one.
 *
 * Unnamed constraints stay unnamed here: the database names them, and a
 * model only needs names to find what a later operation drops.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "ddl.h"
#include "schema.h"

/* Does `text` mention the identifier `name` as a whole word (bare or in
 * double quotes)?  Good enough to find what a CHECK or an index
 * expression depends on; a false positive only drops a dependent. */
int lm_sql_mentions(const char *text, const char *name) {
  size_t n = strlen(name);
  if (!text || !n) return 0;
  for (const char *p = text; (p = strstr(p, name)) != NULL; p++) {
    int before = p == text ? 0 : (unsigned char)p[-1];
    int after = (unsigned char)p[n];
    int word_before = before && (isalnum(before) || before == '_');
    int word_after = after && (isalnum(after) || after == '_');
    if (!word_before && !word_after) return 1;
  }
  return 0;
}

static int has_name(const char *const *list, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(list[i], name) == 0) return 1;
  return 0;
}

/* A PRIMARY KEY / UNIQUE / FOREIGN KEY over the given columns. */
static lm_mconstraint *add_key(lm_schema *s, lm_mtable *t,
                               lm_constraint_kind kind, const char *column,
                               const char *ref_schema,
                    const char *ref_table,
                    const char *ref_column, const char *ondelete,
                    const char *onupdate) {
  lm_mconstraint *c = lm_mtable_add_constraint(s, t);
  const char **cols = lm_arena_alloc(&s->arena, sizeof *cols);
  cols[0] = lm_schema_str(s, column);
  c->con.kind = kind;
  c->con.columns = cols;
  c->con.ncolumns = 1;
  if (kind == LM_CON_FOREIGN_KEY) {
    const char **rc = lm_arena_alloc(&s->arena, sizeof *rc);
    rc[0] = lm_schema_str(s, ref_column);
    c->con.ref_schema = lm_schema_str(s, ref_schema);
    c->con.ref_table = lm_schema_str(s, ref_table);
    c->con.ref_columns = rc;
    c->con.nref_columns = 1;
    c->con.ondelete = lm_schema_str(s, ondelete);
    c->con.onupdate = lm_schema_str(s, onupdate);
  }
  return c;
}

/* index = true on a column: ix_<table>_<column>, unique if the column is. */
static void add_column_index(lm_schema *s, lm_mtable *t, const lm_column *col) {
  lm_mindex *ix = lm_mtable_add_index(s, t);
  lm_buf name = LM_BUF_INIT;
  if (col->index_name) lm_buf_puts(&name, col->index_name);
  else lm_buf_printf(&name, "ix_%s_%s", t->name, col->name);
  ix->name = lm_schema_str(s, lm_buf_str(&name));
  lm_buf_free(&name);
  const char **cols = lm_arena_alloc(&s->arena, sizeof *cols);
  cols[0] = lm_schema_str(s, col->name);
  ix->ix.columns = cols;
  ix->ix.ncolumns = 1;
  ix->ix.unique = col->unique;
}

/* onupdate = SQL on a column: the trigger that sets it, by its parts (each
 * dialect writes its own SQL for it). */
static void add_onupdate_trigger(lm_schema *s, lm_mtable *t,
                                 const lm_column *col) {
  lm_mtrigger *tr = lm_mtable_add_trigger(s, t);
  char *name = lm_onupdate_trigger_name(t->name, col->name);
  tr->name = lm_schema_str(s, name);
  free(name);
  tr->column = lm_schema_str(s, col->name);
  lm_schema_copy_default(s, &tr->onupdate, &col->onupdate_value);
}

/* One column of create_table or add_column, with its keys. */
static void add_column(lm_schema *s, lm_mtable *t, const char *pk_name,
                       const lm_column *col, int with_keys) {
  lm_mcolumn *c = lm_mtable_add_column(s, t);
  c->name = lm_schema_str(s, col->name);
  lm_schema_copy_type(s, &c->type, &col->type);
  c->nullable = col->nullable && !col->primary_key;
  lm_schema_copy_default(s, &c->server_default, &col->server_default);
  c->comment = lm_schema_str(s, col->comment);
  if (col->computed) {
    /* Kept as SQLite's rebuild writes it back (PostgreSQL never does). */
    lm_buf g = LM_BUF_INIT;
    lm_buf_printf(&g, "GENERATED ALWAYS AS (%s)%s", col->computed,
                  col->persisted == 1 ? " STORED"
                  : col->persisted == 0 ? " VIRTUAL" : "");
    c->extra = lm_schema_str(s, lm_buf_str(&g));
    c->generated = 1;
    lm_buf_free(&g);
  }
  if (col->check) {
    /* A column's CHECK, inline on it, like the ones a database holds. */
    lm_mconstraint *mc = lm_mtable_add_constraint(s, t);
    mc->con.kind = LM_CON_CHECK;
    mc->con.name = lm_schema_str(s, col->check_name);
    mc->con.condition = lm_schema_str(s, col->check);
    mc->column = c->name;
  }
  if (col->onupdate_value.kind != LM_DEF_NONE)
    add_onupdate_trigger(s, t, col);
  if (!with_keys) return;
  if (col->primary_key)
    add_key(s, t, LM_CON_PRIMARY_KEY, col->name, NULL, NULL, NULL, NULL, NULL)
        ->con.name = lm_schema_str(s, pk_name);
  if (col->unique && !col->index)
    add_key(s, t, LM_CON_UNIQUE, col->name, NULL, NULL, NULL, NULL, NULL)
        ->con.name = lm_schema_str(s, col->unique_name);
  if (col->ref_table)
    add_key(s, t, LM_CON_FOREIGN_KEY, col->name, col->ref_schema,
            col->ref_table, col->ref_column, col->ondelete, col->onupdate)
        ->con.name = lm_schema_str(s, col->fk_name);
  if (col->index) add_column_index(s, t, col);
}

static void create_table(lm_schema *s, const lm_op *op) {
  if (op->if_not_exists && lm_schema_table(s, op->schema, op->table)) return;
  lm_mtable *t = lm_schema_add_table(s, op->schema, op->table);
  for (size_t i = 0; i < op->ncolumns; i++) {
    add_column(s, t, NULL, &op->columns[i], 0);
    /* numbered as introspection reads it back: SERIAL, identity, rowid */
    lm_autoinc autoinc = lm_ddl_column_autoinc(op, &op->columns[i]);
    t->columns[t->ncolumns - 1].serial =
        autoinc == LM_AUTO_IDENTITY ? LM_MSERIAL_IDENTITY
        : autoinc == LM_AUTO_TRUE   ? LM_MSERIAL_SERIAL : LM_MSERIAL_NONE;
  }
  /* Keys in the order create_table writes them: the primary key, unique
   * columns, references, then the listed constraints. */
  size_t npk = 0;
  for (size_t i = 0; i < op->ncolumns; i++) npk += op->columns[i].primary_key;
  if (npk) {
    lm_mconstraint *c = lm_mtable_add_constraint(s, t);
    const char **cols = lm_arena_alloc(&s->arena, npk * sizeof *cols);
    size_t k = 0;
    for (size_t i = 0; i < op->ncolumns; i++)
      if (op->columns[i].primary_key)
        cols[k++] = lm_schema_str(s, op->columns[i].name);
    c->con.kind = LM_CON_PRIMARY_KEY;
    c->con.name = lm_schema_str(s, op->pk_name);
    c->con.columns = cols;
    c->con.ncolumns = npk;
  }
  for (size_t i = 0; i < op->ncolumns; i++)
    if (op->columns[i].unique && !op->columns[i].index)
      add_key(s, t, LM_CON_UNIQUE, op->columns[i].name, NULL, NULL, NULL, NULL,
              NULL)->con.name = lm_schema_str(s, op->columns[i].unique_name);
  for (size_t i = 0; i < op->ncolumns; i++) {
    const lm_column *col = &op->columns[i];
    if (col->ref_table)
      add_key(s, t, LM_CON_FOREIGN_KEY, col->name, col->ref_schema,
              col->ref_table, col->ref_column, col->ondelete, col->onupdate)
          ->con.name = lm_schema_str(s, col->fk_name);
  }
  for (size_t i = 0; i < op->nconstraints; i++) {
    lm_mconstraint *c = lm_mtable_add_constraint(s, t);
    lm_schema_copy_constraint(s, &c->con, &op->constraints[i]);
  }
  for (size_t i = 0; i < op->ncolumns; i++)
    if (op->columns[i].index) add_column_index(s, t, &op->columns[i]);
  t->comment = lm_schema_str(s, op->comment);
}

/* Does a constraint depend on the column? */
int lm_mconstraint_uses(const lm_mconstraint *c, const char *col) {
  if (c->column && strcmp(c->column, col) == 0) return 1;
  if (has_name(c->con.columns, c->con.ncolumns, col)) return 1;
  if (c->con.kind == LM_CON_CHECK)
    return lm_sql_mentions(c->sql ? c->sql : c->con.condition, col);
  return 0;
}

int lm_mindex_uses(const lm_mindex *ix, const char *col) {
  if (ix->sql) return lm_sql_mentions(ix->sql, col);
  for (size_t i = 0; i < ix->ix.ncolumns; i++) {
    if (ix->ix.is_expr && ix->ix.is_expr[i]) {
      if (lm_sql_mentions(ix->ix.columns[i], col)) return 1;
    } else if (strcmp(ix->ix.columns[i], col) == 0) {
      return 1;
    }
  }
  return lm_sql_mentions(ix->ix.where, col);
}

/* Dropping a column drops what depends on it, as PostgreSQL does. */
static int drop_column(lm_mtable *t, const char *name, lm_err *err) {
  long pos = lm_mtable_column_pos(t, name);
  if (pos < 0)
    return lm_err_set(err, "table %s has no column %s", t->name, name);
  memmove(&t->columns[pos], &t->columns[pos + 1],
          (t->ncolumns - (size_t)pos - 1) * sizeof *t->columns);
  t->ncolumns--;
  size_t k = 0;
  for (size_t i = 0; i < t->nconstraints; i++)
    if (!lm_mconstraint_uses(&t->constraints[i], name))
      t->constraints[k++] = t->constraints[i];
  t->nconstraints = k;
  k = 0;
  for (size_t i = 0; i < t->nindexes; i++)
    if (!lm_mindex_uses(&t->indexes[i], name)) t->indexes[k++] = t->indexes[i];
  t->nindexes = k;
  /* The column's onupdate trigger goes with it. */
  lm_mtrigger *tr = lm_mtable_onupdate_trigger(t, name);
  if (tr) {
    size_t at = (size_t)(tr - t->triggers);
    memmove(tr, tr + 1, (t->ntriggers - at - 1) * sizeof *tr);
    t->ntriggers--;
  }
  return LM_OK;
}

/* A renamed column keeps its place in keys and plain index columns. */
static void rename_in_list(lm_schema *s, const char *const **list, size_t n,
                           const char *from, const char *to) {
  if (!has_name(*list, n, from)) return;
  const char **fresh = lm_arena_alloc(&s->arena, n * sizeof *fresh);
  for (size_t i = 0; i < n; i++)
    fresh[i] = strcmp((*list)[i], from) == 0 ? lm_schema_str(s, to)
                                             : (*list)[i];
  *list = fresh;
}

static void rename_column(lm_schema *s, lm_mtable *t, lm_mcolumn *c,
                          const char *to) {
  const char *from = c->name;
  c->name = lm_schema_str(s, to);
  for (size_t i = 0; i < t->nconstraints; i++) {
    lm_mconstraint *mc = &t->constraints[i];
    rename_in_list(s, &mc->con.columns, mc->con.ncolumns, from, to);
    if (mc->column && strcmp(mc->column, from) == 0)
      mc->column = c->name;
  }
  for (size_t i = 0; i < t->nindexes; i++) {
    lm_index *ix = &t->indexes[i].ix;
    if (ix->is_expr) continue;    /* expressions are SQL: left as written */
    rename_in_list(s, &ix->columns, ix->ncolumns, from, to);
  }
  /* An onupdate trigger keeps its name, as the database keeps it. */
  for (size_t i = 0; i < t->ntriggers; i++)
    if (t->triggers[i].column && strcmp(t->triggers[i].column, from) == 0)
      t->triggers[i].column = c->name;
}

/* A column that becomes an enum loses the unnamed CHECK (col IN (...))
 * an earlier enum type left on it (where the database has no enum
 * types); the new type brings its own. */
static void drop_enum_check(lm_mtable *t, const char *col) {
  for (size_t i = t->nconstraints; i-- > 0;) {
    const lm_mconstraint *mc = &t->constraints[i];
    const char *text = mc->sql ? mc->sql : mc->con.condition;
    if (mc->con.kind != LM_CON_CHECK || mc->con.name || !mc->column ||
        strcmp(mc->column, col) != 0 || !text || !strstr(text, " IN (") ||
        !lm_sql_mentions(text, col))
      continue;
    memmove(&t->constraints[i], &t->constraints[i + 1],
            (t->nconstraints - i - 1) * sizeof *t->constraints);
    t->nconstraints--;
  }
}

static int alter_column(lm_schema *s, lm_mtable *t, const lm_op *op,
                        lm_err *err) {
  lm_mcolumn *c = lm_mtable_column(t, op->name);
  if (!c)
    return lm_err_set(err, "table %s has no column %s", t->name, op->name);
  const lm_alter *a = &op->alter;
  if (a->type.kind == LM_T_ENUM) {
    drop_enum_check(t, c->name);
    /* One type, one list of values: every column of it has the new one. */
    for (size_t i = 0; i < s->ntables; i++)
      for (size_t j = 0; j < s->tables[i].ncolumns; j++) {
        lm_mcolumn *o = &s->tables[i].columns[j];
        if (o != c && o->type.kind == LM_T_ENUM &&
            strcmp(o->type.enum_name, a->type.enum_name) == 0)
          lm_schema_copy_type(s, &o->type, &a->type);
      }
  }
  if (a->type.kind != LM_T_NONE) lm_schema_copy_type(s, &c->type, &a->type);
  if (a->set_nullable >= 0) c->nullable = a->set_nullable;
  if (a->server_default.kind == LM_DEF_DROP)
    memset(&c->server_default, 0, sizeof c->server_default);
  else if (a->server_default.kind != LM_DEF_NONE)
    lm_schema_copy_default(s, &c->server_default, &a->server_default);
  if (a->comment_given) c->comment = lm_schema_str(s, a->comment);
  if (a->new_name) rename_column(s, t, c, a->new_name);
  return LM_OK;
}

/* Which table holds the index `name` (the op's table when given). */
static lm_mtable *index_owner(lm_schema *s, const lm_op *op, size_t *at) {
  for (size_t i = 0; i < s->ntables; i++) {
    lm_mtable *t = &s->tables[i];
    if (op->table && strcmp(t->name, op->table) != 0) continue;
    for (size_t j = 0; j < t->nindexes; j++)
      if (strcmp(t->indexes[j].name, op->name) == 0) {
        *at = j;
        return t;
      }
  }
  return NULL;
}

static int drop_index_in(lm_mtable *t, const char *name) {
  for (size_t j = 0; j < t->nindexes; j++)
    if (strcmp(t->indexes[j].name, name) == 0) {
      memmove(&t->indexes[j], &t->indexes[j + 1],
              (t->nindexes - j - 1) * sizeof *t->indexes);
      t->nindexes--;
      return 1;
    }
  return 0;
}

static const char *kind_word(lm_constraint_kind k) {
  switch (k) {
  case LM_CON_PRIMARY_KEY: return "primary";
  case LM_CON_UNIQUE: return "unique";
  case LM_CON_CHECK: return "check";
  case LM_CON_FOREIGN_KEY: return "foreignkey";
  case LM_CON_EXCLUDE: return "exclude";
  }
  return "";
}

/* Is `name` the one PostgreSQL gives the unnamed constraint c (<t>_pkey,
 * <t>_<cols>_key, <t>_<cols>_fkey)?  DESIGN 4 names unnamed constraints
 * so, and autogenerate drops one under that name on every dialect. */
static int conventional_name(const lm_mtable *t, const lm_constraint *c,
                             const char *name) {
  const char *suffix = c->kind == LM_CON_PRIMARY_KEY ? "pkey"
                       : c->kind == LM_CON_UNIQUE    ? "key"
                       : c->kind == LM_CON_FOREIGN_KEY ? "fkey"
                                                     : NULL;
  if (c->name || !suffix) return 0;
  lm_buf want = LM_BUF_INIT;
  lm_buf_printf(&want, "%s_", t->name);
  for (size_t i = 0; c->kind != LM_CON_PRIMARY_KEY && i < c->ncolumns; i++)
    lm_buf_printf(&want, "%s_", c->columns[i]);
  lm_buf_puts(&want, suffix);
  int same = strcmp(lm_buf_str(&want), name) == 0;
  lm_buf_free(&want);
  return same;
}

/* The constraint op drops: one of its name and type; failing that, an
 * unnamed one that goes by the name (conventional_name); -1 when none. */
static long constraint_to_drop(const lm_mtable *t, const lm_op *op) {
  for (int conventional = 0; conventional < 2; conventional++)
    for (size_t i = 0; i < t->nconstraints; i++) {
      const lm_constraint *c = &t->constraints[i].con;
      int named = conventional ? conventional_name(t, c, op->name)
                               : c->name && strcmp(c->name, op->name) == 0;
      if (named && (!op->constraint_type ||
                    strcmp(op->constraint_type, kind_word(c->kind)) == 0))
        return (long)i;
    }
  return -1;
}

static int drop_constraint(lm_mtable *t, const lm_op *op, lm_err *err) {
  long at = constraint_to_drop(t, op);
  if (at >= 0) {
    size_t i = (size_t)at;
    memmove(&t->constraints[i], &t->constraints[i + 1],
            (t->nconstraints - i - 1) * sizeof *t->constraints);
    t->nconstraints--;
    return LM_OK;
  }
  /* A unique constraint made as an index (SQLite) is dropped as one. */
  if ((!op->constraint_type || strcmp(op->constraint_type, "unique") == 0) &&
      drop_index_in(t, op->name))
    return LM_OK;
  if (op->if_exists) return LM_OK;
  return lm_err_set(err, "table %s has no %s constraint named %s", t->name,
                    op->constraint_type ? op->constraint_type : "",
                    op->name);
}

int lm_mtable_apply(lm_schema *s, lm_mtable *t, const lm_op *op,
                    lm_err *err) {
  switch (op->kind) {
  case LM_OP_ADD_COLUMN:
    if (lm_mtable_column(t, op->columns[0].name))
      return lm_err_set(err, "table %s already has a column %s", t->name,
                        op->columns[0].name);
    add_column(s, t, op->pk_name, &op->columns[0], 1);
    return LM_OK;
  case LM_OP_DROP_COLUMN:
    return drop_column(t, op->name, err);
  case LM_OP_ALTER_COLUMN:
    return alter_column(s, t, op, err);
  case LM_OP_CREATE_INDEX: {
    for (size_t j = 0; j < t->nindexes; j++)
      if (strcmp(t->indexes[j].name, op->name) == 0) {
        if (op->if_not_exists) return LM_OK;
        return lm_err_set(err, "index %s already exists", op->name);
      }
    lm_mindex *ix = lm_mtable_add_index(s, t);
    ix->name = lm_schema_str(s, op->name);
    lm_schema_copy_index(s, &ix->ix, &op->index);
    return LM_OK;
  }
  case LM_OP_DROP_INDEX:
    if (!drop_index_in(t, op->name) && !op->if_exists)
      return lm_err_set(err, "table %s has no index %s", t->name, op->name);
    return LM_OK;
  case LM_OP_ADD_CONSTRAINT:
    for (size_t i = 0; i < op->nconstraints; i++) {
      const lm_constraint *src = &op->constraints[i];
      for (size_t k = 0; k < src->ncolumns; k++)
        if (src->kind != LM_CON_CHECK && !lm_mtable_column(t, src->columns[k]))
          return lm_err_set(err, "table %s has no column %s", t->name,
                            src->columns[k]);
      lm_mconstraint *c = lm_mtable_add_constraint(s, t);
      lm_schema_copy_constraint(s, &c->con, src);
      /* A primary key's columns are NOT NULL, as PostgreSQL makes them. */
      for (size_t k = 0; src->kind == LM_CON_PRIMARY_KEY && k < src->ncolumns;
           k++)
        lm_mtable_column(t, src->columns[k])->nullable = 0;
    }
    return LM_OK;
  case LM_OP_DROP_CONSTRAINT:
    return drop_constraint(t, op, err);
  case LM_OP_BATCH:
    for (size_t i = 0; i < op->nops; i++)
      if (lm_mtable_apply(s, t, &op->ops[i], err) != LM_OK) return LM_ERROR;
    return LM_OK;
  default:
    return lm_err_set(err, "operation %d does not change one table",
                      (int)op->kind);
  }
}

/* Foreign keys name their referent by name: follow a rename. */
static void rename_references(lm_schema *s, const char *schema,
                              const char *from, const char *to) {
  for (size_t i = 0; i < s->ntables; i++)
    for (size_t j = 0; j < s->tables[i].nconstraints; j++) {
      lm_constraint *c = &s->tables[i].constraints[j].con;
      if (c->kind == LM_CON_FOREIGN_KEY && c->ref_table &&
          strcmp(c->ref_table, from) == 0 &&
          (!c->ref_schema || !schema || strcmp(c->ref_schema, schema) == 0))
        c->ref_table = lm_schema_str(s, to);
    }
}

int lm_schema_apply(lm_schema *s, const lm_op *op, lm_err *err) {
  lm_mtable *t;
  size_t at;
  switch (op->kind) {
  case LM_OP_CREATE_TABLE:
    create_table(s, op);
    return LM_OK;
  case LM_OP_DROP_TABLE:
    lm_schema_drop_table(s, op->schema, op->table);
    return LM_OK;
  case LM_OP_RENAME_TABLE:
    t = lm_schema_table(s, op->schema, op->table);
    if (!t) return LM_OK;
    lm_schema_drop_table(s, op->schema, op->name);
    t = lm_schema_table(s, op->schema, op->table);
    t->name = lm_schema_str(s, op->name);
    rename_references(s, op->schema, op->table, op->name);
    return LM_OK;
  case LM_OP_EXECUTE:
  case LM_OP_VALIDATE_CONSTRAINT:   /* the schema stays as it is */
    return LM_OK;         /* raw SQL: the dialect reads it, if it can */
  case LM_OP_TABLE_COMMENT:
    t = lm_schema_table(s, op->schema, op->table);
    if (t) t->comment = lm_schema_str(s, op->comment);
    return LM_OK;
  case LM_OP_DROP_INDEX:
    t = index_owner(s, op, &at);
    if (t) drop_index_in(t, op->name);
    return LM_OK;
  default:
    t = lm_schema_table(s, op->schema, op->table);
    if (!t) return LM_OK;   /* not known: a rebuild will say so */
    return lm_mtable_apply(s, t, op, err);
  }
}
