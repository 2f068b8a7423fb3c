/*
 * sqlite_rebuild.c - the changes SQLite has no ALTER TABLE for, made by
 * rebuilding the table as sqlite.org's "Making Other Kinds Of Table Schema
 * Changes" describes: create the new table under a temporary name, copy
 * the rows with one INSERT ... SELECT, drop the old table, rename the new
 * one, then recreate the indexes and triggers.  Rows, indexes (expression
 * and partial ones too), triggers, CHECKs named or not, foreign keys in
 * both directions and AUTOINCREMENT counters survive.
 *
 * Why this order and these pragmas:
 *   - The old table is dropped before the new one takes its name, so the
 *     foreign keys of other tables (which name it) are never rewritten.
 *   - The rename runs with legacy_alter_table = ON: otherwise SQLite 3.26+
 *     re-parses every view and trigger naming the table and fails on the
 *     ones that point at the dropped table in the meantime.
 *   - Foreign keys must not be enforced: dropping a parent table would
 *     cascade.  luamig's connection has them off; a connection that turned
 *     them on can only turn them off outside a transaction.
 *   - Renames of existing columns come last, through ALTER TABLE RENAME
 *     COLUMN, which rewrites every index, trigger, view and foreign key
 *     that names the column.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sqlite_ddl.h"

/* ---- the new table's CREATE TABLE --------------------------------------- */

static void str_literal(lm_buf *b, const char *s) {
  lm_value v = {.type = LM_V_TEXT, .s = s, .len = strlen(s)};
  lm_sqlite_render_literal(b, &v);
}

/* [CONSTRAINT name] and the clause, as the database wrote it or as luamig
 * writes it. */
static void constraint_sql(lm_buf *b, const lm_mconstraint *c) {
  if (!c->sql) {
    lm_ddl_constraint(&lm_sqlite_traits, b, &c->con);
    return;
  }
  if (c->con.name) {
    lm_buf_puts(b, "CONSTRAINT ");
    lm_sqlite_quote_ident(b, c->con.name);
    lm_buf_putc(b, ' ');
  }
  lm_buf_puts(b, c->sql);
}

static int column_sql(lm_buf *b, const lm_mtable *t, const lm_mcolumn *c,
                      lm_err *err) {
  lm_sqlite_quote_ident(b, c->name);
  if (!(c->type.kind == LM_T_RAW && !*c->type.raw)) {
    lm_buf_putc(b, ' ');
    if (lm_sqlite_traits.render_type(b, &c->type, LM_AUTO_FALSE, err) != LM_OK)
      return LM_ERROR;
  }
  if (c->server_default.kind != LM_DEF_NONE &&
      c->server_default.kind != LM_DEF_DROP) {
    lm_buf_puts(b, " DEFAULT ");
    if (lm_sqlite_traits.render_default(b, &c->server_default, err) != LM_OK)
      return LM_ERROR;
  }
  if (!c->nullable) lm_buf_puts(b, " NOT NULL");
  if (c->type.kind == LM_T_ENUM) {
    lm_buf_putc(b, ' ');
    lm_sqlite_enum_check(b, c->name, &c->type);
  }
  for (size_t i = 0; i < t->nconstraints; i++) {
    const lm_mconstraint *mc = &t->constraints[i];
    if (!mc->column || strcmp(mc->column, c->name) != 0) continue;
    lm_buf_putc(b, ' ');
    constraint_sql(b, mc);
  }
  if (c->extra) {
    lm_buf_putc(b, ' ');
    lm_buf_puts(b, c->extra);
  }
  return LM_OK;
}

static int create_sql(lm_buf *b, const lm_mtable *t, const char *name,
                      lm_err *err) {
  lm_buf_puts(b, "CREATE TABLE ");
  lm_ddl_qualified(&lm_sqlite_traits, b, t->schema, name);
  lm_buf_puts(b, " (");
  const char *sep = "\n\t";
  for (size_t i = 0; i < t->ncolumns; i++) {
    lm_buf_puts(b, sep);
    if (column_sql(b, t, &t->columns[i], err) != LM_OK) {
      lm_err_prefix(err, "column %s", t->columns[i].name);
      return LM_ERROR;
    }
    sep = ", \n\t";
  }
  for (size_t i = 0; i < t->nconstraints; i++) {
    if (t->constraints[i].column) continue;
    lm_buf_puts(b, sep);
    constraint_sql(b, &t->constraints[i]);
  }
  lm_buf_puts(b, "\n)");
  if (t->options) {
    lm_buf_putc(b, ' ');
    lm_buf_puts(b, t->options);
  }
  return LM_OK;
}

/* ---- applying the changes to the new shape ---------------------------- */

/* Renames of existing columns, made after the rebuild. */
typedef struct renames {
  const char **from, **to;
  size_t n;
} renames;

/* A later op names a renamed column by its new name; until the rename
 * runs, the column still has its old one. */
static const char *old_name(const renames *r, const char *name) {
  for (size_t i = r->n; i-- > 0;)
    if (strcmp(r->to[i], name) == 0) return r->from[i];
  return name;
}

static const char *const *old_names(lm_schema *s, const renames *r,
                                    const char *const *names, size_t n,
                                    const int *is_expr) {
  if (!n) return names;
  const char **out = lm_arena_alloc(&s->arena, n * sizeof *out);
  for (size_t i = 0; i < n; i++)
    out[i] = is_expr && is_expr[i] ? names[i] : old_name(r, names[i]);
  return out;
}

/* SQL text (a CHECK, an index expression or WHERE) with the identifier
 * `to` written as `from`: the column's name until the rename runs, which
 * then rewrites the text back (RENAME COLUMN rewrites the table's CHECKs
 * and its indexes).  String literals are left alone; a bare word matches
 * case-insensitively, as SQLite resolves it. */
static const char *sql_old_name(lm_schema *s, const char *text,
                                const char *from, const char *to) {
  if (!text || !lm_sql_mentions(text, to)) return text;
  lm_buf b = LM_BUF_INIT;
  size_t tolen = strlen(to);
  for (const char *p = text; *p;) {
    if (*p == '\'') {                      /* a string literal, verbatim */
      const char *q = p + 1;
      while (*q && !(*q == '\'' && q[1] != '\'')) q += *q == '\'' ? 2 : 1;
      if (*q) q++;
      lm_buf_add(&b, p, (size_t)(q - p));
      p = q;
    } else if (*p == '"' || *p == '`' || *p == '[') {
      char close = *p == '[' ? ']' : *p;
      lm_buf word = LM_BUF_INIT;
      const char *q = p + 1;
      for (; *q; q++) {
        if (*q == close && close != ']' && q[1] == close) {
          lm_buf_putc(&word, close);
          q++;
        } else if (*q == close) {
          break;
        } else {
          lm_buf_putc(&word, *q);
        }
      }
      if (*q) q++;
      if (strcmp(lm_buf_str(&word), to) == 0) lm_sqlite_quote_ident(&b, from);
      else lm_buf_add(&b, p, (size_t)(q - p));
      lm_buf_free(&word);
      p = q;
    } else if (isalpha((unsigned char)*p) || *p == '_') {
      const char *q = p;
      while (isalnum((unsigned char)*q) || *q == '_' || *q == '$') q++;
      if ((size_t)(q - p) == tolen && strncasecmp(p, to, tolen) == 0 &&
          !(p > text && p[-1] == '.'))
        lm_sqlite_quote_ident(&b, from);
      else
        lm_buf_add(&b, p, (size_t)(q - p));
      p = q;
    } else {
      lm_buf_putc(&b, *p++);
    }
  }
  const char *out = lm_schema_str(s, lm_buf_str(&b));
  lm_buf_free(&b);
  return out;
}

/* The SQL text of an op, for the renames made so far, newest first. */
static const char *sql_before_renames(lm_schema *s, const renames *r,
                                      const char *text) {
  for (size_t i = r->n; i-- > 0;)
    text = sql_old_name(s, text, r->from[i], r->to[i]);
  return text;
}

/* Move the column add_column appended (the last) before or after the one
 * the op names. */
static int place_column(lm_mtable *nt, const renames *r, const lm_op *op,
                        lm_err *err) {
  const char *anchor = old_name(r, op->insert_before ? op->insert_before
                                                     : op->insert_after);
  long at = lm_mtable_column_pos(nt, anchor);
  if (at < 0)
    return lm_err_set(err, "add_column %s: %s names no column %s",
                      op->columns[0].name,
                      op->insert_before ? "insert_before" : "insert_after",
                      anchor);
  size_t to = (size_t)at + (op->insert_after ? 1 : 0);
  size_t last = nt->ncolumns - 1;
  lm_mcolumn moved = nt->columns[last];
  memmove(&nt->columns[to + 1], &nt->columns[to],
          (last - to) * sizeof *nt->columns);
  nt->columns[to] = moved;
  return LM_OK;
}

/* Apply one op to the new shape, with names as they are before renames. */
static int apply(lm_schema *s, lm_mtable *nt, renames *r, const lm_op *src,
                 lm_err *err) {
  lm_op op = *src;
  if (op.name && (op.kind == LM_OP_ALTER_COLUMN ||
                  op.kind == LM_OP_DROP_COLUMN))
    op.name = old_name(r, op.name);
  if (op.kind == LM_OP_CREATE_INDEX && r->n) {
    const char **cols = (const char **)old_names(s, r, op.index.columns,
                                                 op.index.ncolumns,
                                                 op.index.is_expr);
    for (size_t i = 0; i < op.index.ncolumns; i++)
      if (op.index.is_expr && op.index.is_expr[i])
        cols[i] = sql_before_renames(s, r, cols[i]);
    op.index.columns = cols;
    op.index.where = sql_before_renames(s, r, op.index.where);
  }
  if (op.kind == LM_OP_ADD_CONSTRAINT && op.nconstraints) {
    lm_constraint *c = lm_arena_alloc(&s->arena, sizeof *c);
    *c = op.constraints[0];
    c->columns = old_names(s, r, c->columns, c->ncolumns, NULL);
    c->condition = sql_before_renames(s, r, c->condition);
    op.constraints = c;
    op.nconstraints = 1;
  }
  if (op.kind == LM_OP_ALTER_COLUMN && op.alter.new_name) {
    lm_mcolumn *c = lm_mtable_column(nt, op.name);
    if (c && c->origin) {
      /* An existing column: renamed in place once the rebuild is done. */
      r->from[r->n] = op.name;
      r->to[r->n++] = op.alter.new_name;
      op.alter.new_name = NULL;
    }
  }
  if (lm_mtable_apply(s, nt, &op, err) != LM_OK) return LM_ERROR;
  if (op.kind == LM_OP_ADD_COLUMN && (op.insert_before || op.insert_after))
    return place_column(nt, r, &op, err);
  return LM_OK;
}

/* ---- the statements ----------------------------------------------------- */

/* An integer PRAGMA of the live connection. */
static int pragma(lm_conn *c, const char *sql, int *out, lm_err *err) {
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
    return lm_sqlite_error(c, sql, err);
  *out = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
  sqlite3_finalize(st);
  return LM_OK;
}

/* The copy: one INSERT ... SELECT of every column the new table keeps
 * from the old one (computed columns compute themselves). */
static void copy_sql(lm_buf *b, const lm_mtable *nt, const char *tmpname,
                     const char *oldname) {
  lm_buf cols = LM_BUF_INIT, exprs = LM_BUF_INIT;
  for (size_t i = 0; i < nt->ncolumns; i++) {
    const lm_mcolumn *c = &nt->columns[i];
    if (!c->origin || c->generated) continue;
    if (cols.len) {
      lm_buf_puts(&cols, ", ");
      lm_buf_puts(&exprs, ", ");
    }
    lm_sqlite_quote_ident(&cols, c->name);
    lm_sqlite_quote_ident(&exprs, c->origin);
  }
  if (cols.len) {
    lm_buf_puts(b, "INSERT INTO ");
    lm_ddl_qualified(&lm_sqlite_traits, b, nt->schema, tmpname);
    lm_buf_printf(b, " (%s) SELECT %s FROM ", lm_buf_str(&cols),
                  lm_buf_str(&exprs));
    lm_ddl_qualified(&lm_sqlite_traits, b, nt->schema, oldname);
  }
  lm_buf_free(&cols);
  lm_buf_free(&exprs);
}

/* AUTOINCREMENT's counter lives in sqlite_sequence under the table's name:
 * carry the old table's counter over to the new one. */
static void sequence_sql(lm_strvec *out, const lm_mtable *nt,
                         const char *tmpname, const char *oldname) {
  int autoinc = 0;
  for (size_t i = 0; i < nt->ncolumns; i++) autoinc |= nt->columns[i].autoincrement;
  if (!autoinc) return;
  lm_buf b = LM_BUF_INIT;
  lm_buf seq = LM_BUF_INIT;
  lm_ddl_qualified(&lm_sqlite_traits, &seq, nt->schema, "sqlite_sequence");
  lm_buf_printf(&b, "DELETE FROM %s WHERE name = ", lm_buf_str(&seq));
  str_literal(&b, tmpname);
  lm_strvec_push(out, lm_buf_detach(&b));
  lm_buf_printf(&b, "INSERT INTO %s (name, seq) SELECT ", lm_buf_str(&seq));
  str_literal(&b, tmpname);
  lm_buf_printf(&b, ", seq FROM %s WHERE name = ", lm_buf_str(&seq));
  str_literal(&b, oldname);
  lm_strvec_push(out, lm_buf_detach(&b));
  lm_buf_free(&seq);
}

int lm_sqlite_rebuild(const lm_compile_ctx *ctx, lm_schema *tmp,
                      lm_mtable *old, const lm_op *ops, size_t nops,
                      lm_strvec *out, lm_err *err) {
  /* Foreign keys: off already (luamig's connection), or switched off
   * around the rebuild where SQLite allows it (outside a transaction). */
  int fk_on = 0, in_tx = 1, legacy = 0;
  if (ctx->conn) {
    if (pragma(ctx->conn, "PRAGMA foreign_keys", &fk_on, err) != LM_OK ||
        pragma(ctx->conn, "PRAGMA legacy_alter_table", &legacy, err) != LM_OK)
      return LM_ERROR;
    in_tx = !sqlite3_get_autocommit(ctx->conn->db);
    if (fk_on && in_tx)
      return lm_err_set(err, "foreign keys are enforced on this connection "
                        "and SQLite cannot turn them off inside a "
                        "transaction; rebuilding %s would cascade to the "
                        "tables that reference it (turn foreign_keys off "
                        "before the migration starts)", old->name);
  }
  lm_mtable before = *old;        /* the arrays stay in tmp's arena */
  const char *name = before.name;
  char *tmpname = lm_xasprintf("_lm_new_%s", name);
  lm_mtable *nt = lm_schema_copy_table(tmp, &before);
  for (size_t i = 0; i < nt->ncolumns; i++) nt->columns[i].origin = nt->columns[i].name;
  size_t maxr = 0;
  for (size_t i = 0; i < nops; i++) maxr += ops[i].kind == LM_OP_BATCH ? ops[i].nops : 1;
  renames r = {lm_arena_alloc(&tmp->arena, (maxr + 1) * sizeof(char *)),
               lm_arena_alloc(&tmp->arena, (maxr + 1) * sizeof(char *)), 0};
  int rc = LM_OK;
  for (size_t i = 0; rc == LM_OK && i < nops; i++)
    rc = apply(tmp, nt, &r, &ops[i], err);
  if (rc == LM_OK && !nt->ncolumns)
    rc = lm_err_set(err, "the table would have no columns left");
  lm_buf b = LM_BUF_INIT;
  if (rc == LM_OK) rc = create_sql(&b, nt, tmpname, err);
  if (rc != LM_OK) {
    lm_buf_free(&b);
    free(tmpname);
    return rc;
  }
  if (fk_on) lm_strvec_pushf(out, "PRAGMA foreign_keys = OFF");
  if (!in_tx) lm_strvec_pushf(out, "BEGIN");
  lm_strvec_push(out, lm_buf_detach(&b));
  copy_sql(&b, nt, tmpname, name);
  if (b.len) lm_strvec_push(out, lm_buf_detach(&b));
  sequence_sql(out, nt, tmpname, name);
  lm_buf_puts(&b, "DROP TABLE ");
  lm_ddl_qualified(&lm_sqlite_traits, &b, nt->schema, name);
  lm_strvec_push(out, lm_buf_detach(&b));
  if (!legacy) lm_strvec_pushf(out, "PRAGMA legacy_alter_table = ON");
  lm_buf_puts(&b, "ALTER TABLE ");
  lm_ddl_qualified(&lm_sqlite_traits, &b, nt->schema, tmpname);
  lm_buf_puts(&b, " RENAME TO ");
  lm_sqlite_quote_ident(&b, name);
  lm_strvec_push(out, lm_buf_detach(&b));
  if (!legacy) lm_strvec_pushf(out, "PRAGMA legacy_alter_table = OFF");
  for (size_t i = 0; i < nt->nindexes; i++) {
    lm_sqlite_index_sql(&b, nt->schema, name, &nt->indexes[i], 0);
    lm_strvec_push(out, lm_buf_detach(&b));
  }
  for (size_t i = 0; rc == LM_OK && i < nt->ntriggers; i++) {
    rc = lm_sqlite_trigger_sql(&b, nt->schema, name, &nt->triggers[i], err);
    if (rc == LM_OK) lm_strvec_push(out, lm_buf_detach(&b));
  }
  if (rc != LM_OK) {
    lm_buf_free(&b);
    free(tmpname);
    return rc;
  }
  for (size_t i = 0; i < r.n; i++) {
    lm_buf_puts(&b, "ALTER TABLE ");
    lm_ddl_qualified(&lm_sqlite_traits, &b, nt->schema, name);
    lm_buf_puts(&b, " RENAME COLUMN ");
    lm_sqlite_quote_ident(&b, r.from[i]);
    lm_buf_puts(&b, " TO ");
    lm_sqlite_quote_ident(&b, r.to[i]);
    lm_strvec_push(out, lm_buf_detach(&b));
  }
  if (!in_tx) lm_strvec_pushf(out, "COMMIT");
  if (fk_on) lm_strvec_pushf(out, "PRAGMA foreign_keys = ON");
  free(tmpname);
  return LM_OK;
}
