/*
 * lint_rules.c - lint's rules (DESIGN 10), each on one recorded call and
 * the schema model as the script's earlier calls left it.  A table the
 * same script created is never flagged: it holds no rows and nobody
 * else's locks.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lint.h"
#include "schema_text.h"

/* Codes are stable: specs, configurations and allow lists name them. */
const lm_lint_rule lm_lint_rules[] = {
  {"drop_table", LM_SEV_ERROR, "dropping a table loses its rows",
   "copy the rows elsewhere first"},
  {"drop_column", LM_SEV_ERROR, "dropping a column loses its data",
   "copy it first"},
  {"primary_key_change", LM_SEV_ERROR,
   "creating or dropping a primary key, or changing a key column's type",
   "add a new key column beside the old one and switch over in steps"},
  {"protected_table", LM_SEV_ERROR,
   "a change to a table matching the configuration's protected_tables",
   "have the change reviewed by the table's owner"},
  {"large_data_change", LM_SEV_WARNING,
   "execute, backfill or a type change on a table with more rows than "
   "large_table_rows",
   "backfill in batches (op.backfill with commit_every, transactional = "
   "false) outside the busy hours"},
  {"add_required_column", LM_SEV_ERROR,
   "a NOT NULL column without a server default on an existing table",
   "add it nullable (or with server_default), backfill, then set "
   "nullable = false"},
  {"set_not_null_without_backfill", LM_SEV_WARNING,
   "nullable = false on a column no earlier step of the script filled",
   "backfill the column earlier in the same script (op.backfill or an "
   "UPDATE)"},
  {"column_type_change", LM_SEV_WARNING,
   "a type change rewrites the table under an exclusive lock",
   "add a new column, backfill it, then switch over"},
  {"rename_column", LM_SEV_WARNING, "renaming a column breaks running code",
   "add the new column, write both, then drop the old one"},
  {"rename_table", LM_SEV_WARNING, "renaming a table breaks running code",
   "create the new table (or a view with the old name) and switch over"},
  {"index_not_concurrent", LM_SEV_WARNING,
   "an index on an existing table built without concurrently blocks writes",
   "create_index(..., {concurrently = true}) in a script with transactional "
   "= false"},
  {"concurrent_in_transaction", LM_SEV_ERROR,
   "concurrently in a script that runs in a transaction fails on "
   "PostgreSQL",
   "set transactional = false in the script"},
  {"foreign_key_not_valid", LM_SEV_WARNING,
   "a foreign key on an existing table is checked under a lock",
   "create_foreign_key(..., {not_valid = true}), then "
   "op.validate_constraint(name, table) in a later step"},
  {"check_not_valid", LM_SEV_WARNING,
   "a check constraint on an existing table is checked under a lock",
   "create_check_constraint(..., {not_valid = true}), then "
   "op.validate_constraint(name, table)"},
  {"unique_constraint_locks", LM_SEV_WARNING,
   "a unique constraint on an existing table builds its index under a lock",
   "create a unique index concurrently, then create_unique_constraint(..., "
   "{using_index = \"ix\"})"},
  {"foreign_key_without_index", LM_SEV_WARNING,
   "a foreign key whose columns no index leads with",
   "create an index on the referencing columns"},
  {"missing_downgrade", LM_SEV_ERROR, "the script has no downgrade",
   "write a downgrade that undoes the upgrade"},
  {"downgrade_fails", LM_SEV_ERROR, "the downgrade raises an error",
   "fix the downgrade"},
  {"downgrade_not_inverse", LM_SEV_WARNING,
   "upgrade then downgrade does not give back the schema before",
   "make the downgrade undo every change of the upgrade"},
  {"raw_sql", LM_SEV_INFO, "op.execute runs SQL lint cannot see into",
   "use the op for the change where one exists"},
  {"multiple_heads", LM_SEV_ERROR, "the history has more than one head",
   "luamig merge heads -m \"merge\""},
};
const size_t lm_lint_nrules = sizeof lm_lint_rules / sizeof lm_lint_rules[0];

int lm_lint_rule_index(const char *code) {
  for (size_t i = 0; i < lm_lint_nrules; i++)
    if (strcmp(lm_lint_rules[i].code, code) == 0) return (int)i;
  return -1;
}

static const char *const severity_names[] = {"info", "warning", "error"};

const char *lm_severity_name(lm_severity s) { return severity_names[s]; }

int lm_severity_parse(const char *name) {
  for (int i = 0; i < 3; i++)
    if (strcmp(name, severity_names[i]) == 0) return i;
  return -1;
}

/* ---- findings ------------------------------------------------------------- */

static int listed(const lm_strvec *v, const char *s) {
  for (size_t i = 0; i < v->n; i++)
    if (strcmp(v->items[i], s) == 0) return 1;
  return 0;
}

void lm_lint_add(lm_lint_ctx *c, const char *code, int line,
                 const char *fmt, ...) {
  int rule = lm_lint_rule_index(code);
  if (!c->reporting || rule < 0 || c->cfg->disabled[rule]) return;
  lm_lint_report *r = c->report;
  if (r->n == r->cap) {
    r->cap = r->cap ? 2 * r->cap : 16;
    r->items = lm_xrealloc(r->items, r->cap * sizeof *r->items);
  }
  lm_finding *f = &r->items[r->n++];
  memset(f, 0, sizeof *f);
  f->rule = rule;
  f->severity = c->cfg->severity[rule] >= 0
                    ? (lm_severity)c->cfg->severity[rule]
                    : lm_lint_rules[rule].severity;
  f->revision = lm_xstrdup(c->revision ? c->revision : "");
  f->file = lm_xstrdup(c->file ? c->file : "");
  f->line = line > 0 ? line : 1;
  f->acknowledged = listed(&c->allow, code);
  va_list ap;
  va_start(ap, fmt);
  lm_buf m = LM_BUF_INIT;
  lm_buf_vprintf(&m, fmt, ap);
  va_end(ap);
  f->message = lm_xstrdup(lm_buf_str(&m));
  lm_buf_free(&m);
}

void lm_lint_report_free(lm_lint_report *r) {
  for (size_t i = 0; i < r->n; i++) {
    free(r->items[i].revision);
    free(r->items[i].file);
    free(r->items[i].message);
  }
  free(r->items);
  memset(r, 0, sizeof *r);
}

size_t lm_lint_errors(const lm_lint_report *r) {
  size_t n = 0;
  for (size_t i = 0; i < r->n; i++)
    n += r->items[i].severity == LM_SEV_ERROR && !r->items[i].acknowledged;
  return n;
}

/* What one script knows goes with it; the columns filled stay: an
 * earlier revision's backfill fills them for a later NOT NULL too. */
void lm_lint_ctx_start(lm_lint_ctx *c) {
  lm_strvec_free(&c->allow);
  lm_strvec_free(&c->created);
  lm_strvec_free(&c->fks);
}

void lm_lint_ctx_clear(lm_lint_ctx *c) {
  lm_lint_ctx_start(c);
  lm_strvec_free(&c->filled);
  lm_strvec_free(&c->rows);
}

/* ---- what the rules ask ------------------------------------------------- */

/* "schema.table", or "table" in the default schema (malloc'ed). */
static char *qualified(const char *schema, const char *table) {
  return schema ? lm_xasprintf("%s.%s", schema, table) : lm_xstrdup(table);
}

static int created(const lm_lint_ctx *c, const char *schema,
                   const char *table) {
  char *q = qualified(schema, table);
  int yes = listed(&c->created, q);
  free(q);
  return yes;
}

/* The table's row estimate from the database, -1 when lint has none
 * (no connection, no such table yet). */
static int64_t row_estimate(lm_lint_ctx *c, const char *schema,
                            const char *table) {
  lm_env *env = c->env;
  if (!env->conn || !env->dialect->estimate_rows) return -1;
  char *q = qualified(schema, table);
  size_t qlen = strlen(q);
  for (size_t i = 0; i < c->rows.n; i++)
    if (strncmp(c->rows.items[i], q, qlen) == 0 &&
        c->rows.items[i][qlen] == '\t') {
      free(q);
      return strtoll(c->rows.items[i] + qlen + 1, NULL, 10);
    }
  int64_t n = -1;
  lm_err err;
  lm_err_init(&err);
  if (env->dialect->estimate_rows(env->conn, schema, table, &n, &err) != LM_OK)
    n = -1;
  lm_err_free(&err);
  lm_strvec_pushf(&c->rows, "%s\t%lld", q, (long long)n);
  free(q);
  return n;
}

static void large_data(lm_lint_ctx *c, const char *schema, const char *table,
                       const char *what, int line) {
  if (created(c, schema, table)) return;
  int64_t n = row_estimate(c, schema, table);
  if (n > c->cfg->large_table_rows)
    lm_lint_add(c, "large_data_change", line, "%s on %s, which has about "
                "%lld rows (large_table_rows = %lld)", what, table,
                (long long)n, (long long)c->cfg->large_table_rows);
}

static void protected_check(lm_lint_ctx *c, const char *schema,
                            const char *table, const char *what, int line) {
  if (!table || c->in_batch || created(c, schema, table)) return;
  char *q = qualified(schema, table);
  for (size_t i = 0; i < c->cfg->protected_tables.n; i++) {
    const char *pat = c->cfg->protected_tables.items[i];
    if (fnmatch(pat, table, 0) == 0 || fnmatch(pat, q, 0) == 0) {
      lm_lint_add(c, "protected_table", line, "%s changes %s, a protected "
                  "table (protected_tables pattern \"%s\")", what, q, pat);
      break;
    }
  }
  free(q);
}

static lm_mtable *model_table(lm_schema *m, const char *schema,
                              const char *table) {
  return table ? lm_schema_table(m, schema, table) : NULL;
}

static int in_primary_key(const lm_mtable *t, const char *col) {
  for (size_t i = 0; t && i < t->nconstraints; i++) {
    const lm_constraint *k = &t->constraints[i].con;
    if (k->kind != LM_CON_PRIMARY_KEY) continue;
    for (size_t j = 0; j < k->ncolumns; j++)
      if (strcmp(k->columns[j], col) == 0) return 1;
  }
  return 0;
}

static int is_filled(const lm_lint_ctx *c, const char *table,
                     const char *col) {
  char *all = lm_xasprintf("%s\t*", table);
  char *one = lm_xasprintf("%s\t%s", table, col);
  int yes = listed(&c->filled, all) || listed(&c->filled, one);
  free(all);
  free(one);
  return yes;
}

/* PostgreSQL changes these types in place, without a rewrite: a longer
 * (or unbounded) varchar, varchar to text. */
static int type_change_in_place(const lm_type *from, const lm_type *to) {
  if (from->kind == LM_T_STRING && to->kind == LM_T_TEXT) return 1;
  if (from->kind == LM_T_STRING && to->kind == LM_T_STRING)
    return to->length < 0 || (from->length >= 0 && to->length >= from->length);
  return 0;
}

/* ---- raw SQL: the UPDATE or DELETE it is, if it is one -------------------- */

/* The next word or quoted name of sql from *p (lower-cased when bare),
 * into out; 0 at the end.  Punctuation comes back one character long. */
static int next_token(const char **p, char *out, size_t cap) {
  const char *s = *p;
  for (;;) {
    while (*s && isspace((unsigned char)*s)) s++;
    if (s[0] == '-' && s[1] == '-') {
      while (*s && *s != '\n') s++;
      continue;
    }
    break;
  }
  if (!*s) return 0;
  size_t n = 0;
  if (*s == '"') {
    for (s++; *s && *s != '"'; s++)
      if (n + 1 < cap) out[n++] = *s;
    if (*s) s++;
  } else if (*s == '\'') {
    for (s++; *s && *s != '\''; s++) {}
    if (*s) s++;
    out[n++] = '\'';
  } else if (isalnum((unsigned char)*s) || *s == '_') {
    while (isalnum((unsigned char)*s) || *s == '_' || *s == '$') {
      if (n + 1 < cap) out[n++] = (char)tolower((unsigned char)*s);
      s++;
    }
  } else {
    out[n++] = *s++;
  }
  out[n] = '\0';
  *p = s;
  return 1;
}

/* An UPDATE (cols: the columns it sets) or DELETE: its table, else 0. */
static int data_statement(const char *sql, char *table, size_t cap,
                          lm_strvec *cols, int *is_update) {
  char tok[128], prev[128] = "";
  const char *p = sql;
  if (!next_token(&p, tok, sizeof tok)) return 0;
  *is_update = strcmp(tok, "update") == 0;
  if (!*is_update && strcmp(tok, "delete") != 0) return 0;
  if (!*is_update && (!next_token(&p, tok, sizeof tok) ||
                      strcmp(tok, "from") != 0))
    return 0;
  if (!next_token(&p, tok, sizeof tok)) return 0;
  if (strcmp(tok, "only") == 0 && !next_token(&p, tok, sizeof tok)) return 0;
  snprintf(table, cap, "%s", tok);
  const char *save = p;
  char dot[8];
  if (next_token(&p, dot, sizeof dot) && strcmp(dot, ".") == 0 &&
      next_token(&p, tok, sizeof tok))
    snprintf(table, cap, "%s", tok);   /* schema.table: the table */
  else
    p = save;
  if (!*is_update) return 1;
  int depth = 0, in_set = 0;
  while (next_token(&p, tok, sizeof tok)) {
    if (strcmp(tok, "(") == 0) depth++;
    else if (strcmp(tok, ")") == 0) depth--;
    else if (depth == 0 && strcmp(tok, "set") == 0) in_set = 1;
    else if (depth == 0 && (strcmp(tok, "where") == 0 ||
                            strcmp(tok, "from") == 0 ||
                            strcmp(tok, "returning") == 0))
      break;
    else if (in_set && depth == 0 && strcmp(tok, "=") == 0 && *prev)
      lm_strvec_push(cols, lm_xstrdup(prev));
    snprintf(prev, sizeof prev, "%s", tok);
  }
  return 1;
}

/* ---- the rules on one operation ----------------------------------------- */

static void check_op(lm_lint_ctx *c, const lm_op *op, lm_schema *model,
                     int line);

static void fill(lm_lint_ctx *c, const char *table, const char *col) {
  lm_strvec_pushf(&c->filled, "%s\t%s", table, col);
}

static void note_fk(lm_lint_ctx *c, const char *table,
                    const char *const *cols, size_t n, int line) {
  lm_buf b = LM_BUF_INIT;
  lm_buf_printf(&b, "%s\t", table);
  for (size_t i = 0; i < n; i++) lm_buf_printf(&b, "%s%s", i ? "," : "", cols[i]);
  lm_buf_printf(&b, "\t%d", line);
  lm_strvec_push(&c->fks, lm_xstrdup(lm_buf_str(&b)));
  lm_buf_free(&b);
}

static void check_execute(lm_lint_ctx *c, const lm_op *op, int line) {
  char table[128];
  lm_strvec cols = LM_STRVEC_INIT;
  int update = 0;
  const char *p = op->sql;
  char first[16];
  /* Rows inserted, updated or deleted lint follows; anything else (DDL
   * above all) it cannot see into. */
  int dml = next_token(&p, first, sizeof first) &&
            (strcmp(first, "insert") == 0 || strcmp(first, "update") == 0 ||
             strcmp(first, "delete") == 0);
  if (!dml)
    lm_lint_add(c, "raw_sql", line, "op.execute runs SQL lint cannot check: "
                "%.60s%s", op->sql, strlen(op->sql) > 60 ? "..." : "");
  if (data_statement(op->sql, table, sizeof table, &cols, &update)) {
    for (size_t i = 0; i < cols.n; i++) fill(c, table, cols.items[i]);
    large_data(c, NULL, table, update ? "an UPDATE" : "a DELETE", line);
    protected_check(c, NULL, table, update ? "an UPDATE" : "a DELETE", line);
  }
  lm_strvec_free(&cols);
}

static void check_add_column(lm_lint_ctx *c, const lm_op *op, int line) {
  const lm_column *col = &op->columns[0];
  const char *t = op->table;
  if (created(c, op->schema, t)) return;
  int required = (!col->nullable || col->primary_key) && !col->computed &&
                 col->server_default.kind == LM_DEF_NONE &&
                 !col->identity.given && col->autoincrement != LM_AUTO_TRUE &&
                 col->autoincrement != LM_AUTO_IDENTITY;
  if (required)
    lm_lint_add(c, "add_required_column", line, "adding %s.%s NOT NULL "
                "without a server default fails on a table with rows", t,
                col->name);
  if (col->primary_key)
    lm_lint_add(c, "primary_key_change", line, "adding %s.%s as the primary "
                "key changes the table's key", t, col->name);
  if (col->index && c->lock_rules)
    lm_lint_add(c, "index_not_concurrent", line, "index = true on %s.%s "
                "builds the index without concurrently, blocking writes to "
                "%s", t, col->name, t);
  if (col->ref_table && !col->index) {
    const char *cols[1] = {col->name};
    note_fk(c, t, cols, 1, line);
  }
}

static void check_alter(lm_lint_ctx *c, const lm_op *op, lm_schema *model,
                        int line) {
  const char *t = op->table;
  const lm_alter *a = &op->alter;
  if (created(c, op->schema, t)) return;
  lm_mtable *mt = model_table(model, op->schema, t);
  lm_mcolumn *mc = mt ? lm_mtable_column(mt, op->name) : NULL;
  if (a->type.kind != LM_T_NONE) {
    const lm_type *from = mc ? &mc->type : &a->existing_type;
    lm_buf ft = LM_BUF_INIT, tt = LM_BUF_INIT;
    if (from->kind != LM_T_NONE) lm_type_text(&ft, from);
    lm_type_text(&tt, &a->type);
    int same = from->kind != LM_T_NONE &&
               strcmp(lm_buf_str(&ft), lm_buf_str(&tt)) == 0;
    if (same || (from->kind != LM_T_NONE && type_change_in_place(from, &a->type))) {
      /* nothing is rewritten */
    } else if (in_primary_key(mt, op->name)) {
      lm_lint_add(c, "primary_key_change", line, "changing the type of key "
                  "column %s.%s (%s to %s) rewrites the table and every "
                  "foreign key to it", t, op->name,
                  from->kind ? lm_buf_str(&ft) : "?", lm_buf_str(&tt));
    } else {
      lm_lint_add(c, "column_type_change", line, "changing %s.%s from %s to "
                  "%s rewrites the table under an ACCESS EXCLUSIVE lock", t,
                  op->name, from->kind ? lm_buf_str(&ft) : "its type",
                  lm_buf_str(&tt));
    }
    if (!same) large_data(c, op->schema, t, "a type change", line);
    lm_buf_free(&ft);
    lm_buf_free(&tt);
  }
  if (a->set_nullable == 0 && !is_filled(c, t, op->name))
    lm_lint_add(c, "set_not_null_without_backfill", line, "nullable = false "
                "on %s.%s with no backfill or UPDATE of it earlier in the "
                "script: existing NULLs make it fail", t, op->name);
  if (a->new_name)
    lm_lint_add(c, "rename_column", line, "renaming %s.%s to %s breaks code "
                "still using the old name", t, op->name, a->new_name);
}

static void check_constraint(lm_lint_ctx *c, const lm_op *op, int line) {
  const char *t = op->table;
  if (!op->nconstraints || created(c, op->schema, t)) return;
  const lm_constraint *k = &op->constraints[0];
  const char *name = k->name ? k->name : "(unnamed)";
  switch (k->kind) {
  case LM_CON_PRIMARY_KEY:
    lm_lint_add(c, "primary_key_change", line, "creating primary key %s on "
                "%s changes the table's key", name, t);
    break;
  case LM_CON_FOREIGN_KEY:
    if (c->lock_rules && !k->not_valid)
      lm_lint_add(c, "foreign_key_not_valid", line, "foreign key %s on %s "
                  "checks every row while holding a lock on %s and %s", name,
                  t, t, k->ref_table);
    note_fk(c, t, k->columns, k->ncolumns, line);
    break;
  case LM_CON_CHECK:
    if (c->lock_rules && !k->not_valid)
      lm_lint_add(c, "check_not_valid", line, "check constraint %s on %s "
                  "scans every row under an ACCESS EXCLUSIVE lock", name, t);
    break;
  case LM_CON_UNIQUE:
    if (c->lock_rules && !k->using_index)
      lm_lint_add(c, "unique_constraint_locks", line, "unique constraint %s "
                  "on %s builds its index under an ACCESS EXCLUSIVE lock",
                  name, t);
    break;
  case LM_CON_EXCLUDE:
    break;
  }
}

static void check_drop_constraint(lm_lint_ctx *c, const lm_op *op,
                                  lm_schema *model, int line) {
  if (created(c, op->schema, op->table)) return;
  int pk = op->constraint_type && strcmp(op->constraint_type, "primary") == 0;
  lm_mtable *mt = model_table(model, op->schema, op->table);
  for (size_t i = 0; !pk && mt && i < mt->nconstraints; i++)
    pk = mt->constraints[i].con.kind == LM_CON_PRIMARY_KEY &&
         mt->constraints[i].con.name &&
         strcmp(mt->constraints[i].con.name, op->name) == 0;
  if (pk)
    lm_lint_add(c, "primary_key_change", line, "dropping primary key %s of "
                "%s leaves the table without its key", op->name, op->table);
}

static const char *op_word(lm_op_kind k) {
  switch (k) {
  case LM_OP_CREATE_TABLE: return "create_table";
  case LM_OP_DROP_TABLE: return "drop_table";
  case LM_OP_RENAME_TABLE: return "rename_table";
  case LM_OP_ADD_COLUMN: return "add_column";
  case LM_OP_DROP_COLUMN: return "drop_column";
  case LM_OP_ALTER_COLUMN: return "alter_column";
  case LM_OP_CREATE_INDEX: return "create_index";
  case LM_OP_DROP_INDEX: return "drop_index";
  case LM_OP_ADD_CONSTRAINT: return "a new constraint";
  case LM_OP_DROP_CONSTRAINT: return "drop_constraint";
  case LM_OP_EXECUTE: return "execute";
  case LM_OP_BATCH: return "batch_alter_table";
  case LM_OP_TABLE_COMMENT: return "a table comment";
  case LM_OP_VALIDATE_CONSTRAINT: return "validate_constraint";
  }
  return "an operation";
}

/* A drop that keeps what it removes (keep = true, or keep_dropped in the
 * configuration) loses nothing a downgrade cannot put back: the finding
 * just added is a warning, unless the configuration set its severity. */
static void soften_if_kept(lm_lint_ctx *c, const lm_op *op) {
  int kept = op->keep > 0 || (op->keep == 0 && c->env->keep_dropped);
  lm_lint_report *r = c->report;
  if (!kept || !c->reporting || !r->n) return;
  lm_finding *f = &r->items[r->n - 1];
  if (strcmp(lm_lint_rules[f->rule].code, op->kind == LM_OP_DROP_TABLE
                                              ? "drop_table"
                                              : "drop_column") != 0)
    return;
  if (c->cfg->severity[f->rule] < 0) f->severity = LM_SEV_WARNING;
  char *msg = lm_xasprintf("%s; it is kept (keep = true), and the "
                           "downgrade puts it back", f->message);
  free(f->message);
  f->message = msg;
}

static void check_op(lm_lint_ctx *c, const lm_op *op, lm_schema *model,
                     int line) {
  const char *t = op->table;
  if (op->kind != LM_OP_CREATE_TABLE && op->kind != LM_OP_EXECUTE &&
      op->kind != LM_OP_BATCH)
    protected_check(c, op->schema, t, op_word(op->kind), line);
  switch (op->kind) {
  case LM_OP_CREATE_TABLE:
    lm_strvec_push(&c->created, qualified(op->schema, t));
    break;
  case LM_OP_DROP_TABLE:
    if (!created(c, op->schema, t)) {
      lm_lint_add(c, "drop_table", line, "dropping %s loses its rows", t);
      soften_if_kept(c, op);
    }
    break;
  case LM_OP_RENAME_TABLE:
    if (created(c, op->schema, t))
      lm_strvec_push(&c->created, qualified(op->schema, op->name));
    else
      lm_lint_add(c, "rename_table", line, "renaming %s to %s breaks code "
                  "still using the old name", t, op->name);
    break;
  case LM_OP_ADD_COLUMN:
    check_add_column(c, op, line);
    break;
  case LM_OP_DROP_COLUMN:
    if (created(c, op->schema, t)) break;
    lm_lint_add(c, "drop_column", line, "dropping %s.%s loses its data", t,
                op->name);
    soften_if_kept(c, op);
    if (in_primary_key(model_table(model, op->schema, t), op->name))
      lm_lint_add(c, "primary_key_change", line, "dropping %s.%s drops the "
                  "table's primary key", t, op->name);
    break;
  case LM_OP_ALTER_COLUMN:
    check_alter(c, op, model, line);
    break;
  case LM_OP_CREATE_INDEX:
    if (c->lock_rules && op->index.concurrently && c->transactional)
      lm_lint_add(c, "concurrent_in_transaction", line, "index %s is created "
                  "concurrently, which PostgreSQL refuses inside the "
                  "migration's transaction", op->name);
    if (c->lock_rules && !op->index.concurrently && !created(c, op->schema, t))
      lm_lint_add(c, "index_not_concurrent", line, "index %s on %s is built "
                  "without concurrently, blocking writes to %s", op->name, t,
                  t);
    break;
  case LM_OP_ADD_CONSTRAINT:
    check_constraint(c, op, line);
    break;
  case LM_OP_DROP_CONSTRAINT:
    check_drop_constraint(c, op, model, line);
    break;
  case LM_OP_EXECUTE:
    check_execute(c, op, line);
    break;
  case LM_OP_BATCH:
    protected_check(c, op->schema, t, op_word(op->kind), line);
    for (size_t i = 0; i < op->nops; i++) {
      lm_op sub = op->ops[i];
      if (!sub.table) sub.table = t;
      if (!sub.schema) sub.schema = op->schema;
      /* The batch as a whole was checked for protection. */
      c->in_batch = 1;
      check_op(c, &sub, model, line);
      c->in_batch = 0;
    }
    break;
  default:
    break;
  }
}

void lm_lint_observe(void *ctx, const lm_record *rec, lm_schema *model) {
  lm_lint_ctx *c = ctx;
  switch (rec->kind) {
  case LM_REC_OP:
    check_op(c, rec->op, model, rec->line);
    break;
  case LM_REC_BACKFILL:
    fill(c, rec->table, "*");
    large_data(c, rec->schema, rec->table, "a backfill", rec->line);
    protected_check(c, rec->schema, rec->table, "a backfill", rec->line);
    break;
  case LM_REC_QUERY:
    break;
  }
}

/* Does an index, primary key or unique constraint lead with cols? */
static int leads_with(const char *const *have, size_t nhave,
                      const int *is_expr, char *const *cols, size_t n) {
  if (nhave < n) return 0;
  for (size_t i = 0; i < n; i++)
    if ((is_expr && is_expr[i]) || strcmp(have[i], cols[i]) != 0) return 0;
  return 1;
}

static int indexed(const lm_mtable *t, char *const *cols, size_t n) {
  for (size_t i = 0; i < t->nindexes; i++)
    if (leads_with(t->indexes[i].ix.columns, t->indexes[i].ix.ncolumns,
                   t->indexes[i].ix.is_expr, cols, n))
      return 1;
  for (size_t i = 0; i < t->nconstraints; i++) {
    const lm_constraint *k = &t->constraints[i].con;
    if ((k->kind == LM_CON_PRIMARY_KEY || k->kind == LM_CON_UNIQUE) &&
        leads_with(k->columns, k->ncolumns, NULL, cols, n))
      return 1;
  }
  return 0;
}

void lm_lint_script_end(lm_lint_ctx *c, lm_schema *model) {
  for (size_t i = 0; i < c->fks.n; i++) {
    char *entry = lm_xstrdup(c->fks.items[i]);
    char *tab = strchr(entry, '\t');
    *tab = '\0';
    char *colstr = tab + 1;
    char *tab2 = strchr(colstr, '\t');
    *tab2 = '\0';
    int line = atoi(tab2 + 1);
    char *shown = lm_xstrdup(colstr);
    lm_strvec cols = LM_STRVEC_INIT;
    for (char *p = colstr, *comma; p; p = comma ? comma + 1 : NULL) {
      comma = strchr(p, ',');
      if (comma) *comma = '\0';
      lm_strvec_push(&cols, lm_xstrdup(p));
    }
    lm_mtable *t = lm_schema_table(model, NULL, entry);
    if (t && !t->unknown_since && !indexed(t, cols.items, cols.n))
      lm_lint_add(c, "foreign_key_without_index", line, "no index on %s "
                  "leads with the foreign key's columns (%s): deletes and "
                  "updates of the referenced rows scan %s", entry, shown,
                  entry);
    free(shown);
    lm_strvec_free(&cols);
    free(entry);
  }
}
