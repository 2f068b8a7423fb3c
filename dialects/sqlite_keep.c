/*
 * sqlite_keep.c - kept data and backups on SQLite (dialect.h,
 * lm_keep_methods).  A kept table is a table named luamig_kept_...: a
 * dropped table is renamed so (the foreign keys of other tables follow
 * it, so that PRAGMA foreign_key_check still passes, and are turned back
 * to the table made again when its rows return), after its indexes and
 * triggers, whose names would clash with those made again, are dropped;
 * their SQL is kept.  What depended on a dropped column (its indexes,
 * unique constraints, foreign keys) is kept as lines that restore makes
 * again, a foreign key by the dialect's own rebuild.  A backup is the
 * online backup API, consistent while others read.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/schema.h"
#include "sqlite.h"
#include "sqlite_ddl.h"

#define PREFIX "luamig_kept_"

/* Prepare sql with text parameters bound; NULL after an error. */
static sqlite3_stmt *prepare(lm_conn *c, const char *sql, int n,
                             const char *const *vals, lm_err *err) {
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK) {
    lm_sqlite_error(c, sql, err);
    sqlite3_finalize(st);
    return NULL;
  }
  for (int i = 0; i < n; i++)
    sqlite3_bind_text(st, i + 1, vals[i], -1, SQLITE_TRANSIENT);
  return st;
}

static int exec(lm_conn *c, const char *sql, lm_err *err) {
  if (sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK)
    return lm_sqlite_error(c, sql, err);
  return LM_OK;
}

static const char *col_text(sqlite3_stmt *st, int i) {
  const char *s = (const char *)sqlite3_column_text(st, i);
  return s ? s : "";
}

/* "schema".sqlite_master, or sqlite_master. */
static char *master(const char *schema) {
  lm_buf b = LM_BUF_INIT;
  if (schema) {
    lm_sqlite_quote_ident(&b, schema);
    lm_buf_putc(&b, '.');
  }
  lm_buf_puts(&b, "sqlite_master");
  return lm_buf_detach(&b);
}

static char *qualified(const char *schema, const char *table) {
  lm_buf b = LM_BUF_INIT;
  if (schema) {
    lm_sqlite_quote_ident(&b, schema);
    lm_buf_putc(&b, '.');
  }
  lm_sqlite_quote_ident(&b, table);
  return lm_buf_detach(&b);
}

/* A PRAGMA over a table, as a statement: pragma_NAME('table'). */
static sqlite3_stmt *table_pragma(lm_conn *c, const char *name,
                                  const char *schema, const char *table,
                                  lm_err *err) {
  char *sql = lm_xasprintf("SELECT * FROM pragma_%s(?1%s)", name,
                           schema ? ", ?2" : "");
  const char *vals[2] = {table, schema};
  sqlite3_stmt *st = prepare(c, sql, schema ? 2 : 1, vals, err);
  free(sql);
  return st;
}

/* The foreign keys of the table as lines "fk\tfrom\ttable\tto\tondelete\t
 * onupdate" (column lists comma-separated), those over `column` only
 * when it is given. */
static int fk_lines(lm_conn *c, const char *schema, const char *table,
                    const char *column, lm_strvec *out, lm_err *err) {
  sqlite3_stmt *st = table_pragma(c, "foreign_key_list", schema, table, err);
  if (!st) return LM_ERROR;
  /* id, seq, table, from, to, on_update, on_delete, match */
  lm_buf from = LM_BUF_INIT, to = LM_BUF_INIT;
  long id = -1;
  int uses = 0, rc;
  char ref[512] = "", upd[32] = "", del[32] = "";
  while ((rc = sqlite3_step(st)) == SQLITE_ROW || id >= 0) {
    long next = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -2;
    if (next != id && id >= 0) {
      if (uses)
        lm_strvec_pushf(out, "fk\t%s\t%s\t%s\t%s\t%s", lm_buf_str(&from), ref,
                        lm_buf_str(&to), del, upd);
      lm_buf_reset(&from);
      lm_buf_reset(&to);
      uses = 0;
    }
    if (rc != SQLITE_ROW) break;
    id = next;
    snprintf(ref, sizeof ref, "%s", col_text(st, 2));
    snprintf(upd, sizeof upd, "%s", col_text(st, 5));
    snprintf(del, sizeof del, "%s", col_text(st, 6));
    lm_buf_printf(&from, "%s%s", from.len ? "," : "", col_text(st, 3));
    lm_buf_printf(&to, "%s%s", to.len ? "," : "", col_text(st, 4));
    uses |= !column || strcmp(col_text(st, 3), column) == 0;
  }
  int ok = rc == SQLITE_DONE;
  if (!ok) lm_sqlite_error(c, "PRAGMA foreign_key_list", err);
  sqlite3_finalize(st);
  lm_buf_free(&from);
  lm_buf_free(&to);
  return ok ? LM_OK : LM_ERROR;
}

/* The column lists of the table's unique indexes ("a,b"), autoindexes
 * only when `automatic` (a UNIQUE in the table's definition). */
static int unique_sets(lm_conn *c, const char *schema, const char *table,
                       int automatic, lm_strvec *out, lm_err *err) {
  sqlite3_stmt *st = table_pragma(c, "index_list", schema, table, err);
  if (!st) return LM_ERROR;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    /* seq, name, unique, origin, partial */
    if (!sqlite3_column_int(st, 2) || sqlite3_column_int(st, 4)) continue;
    if (automatic && strcmp(col_text(st, 3), "u") != 0) continue;
    sqlite3_stmt *ii = table_pragma(c, "index_info", schema, col_text(st, 1),
                                    err);
    if (!ii) break;
    lm_buf cols = LM_BUF_INIT;
    while (sqlite3_step(ii) == SQLITE_ROW)
      lm_buf_printf(&cols, "%s%s", cols.len ? "," : "", col_text(ii, 2));
    sqlite3_finalize(ii);
    lm_strvec_push(out, lm_buf_detach(&cols));
  }
  int ok = rc == SQLITE_DONE;
  if (!ok && rc != SQLITE_ROW) lm_sqlite_error(c, "PRAGMA index_list", err);
  sqlite3_finalize(st);
  return ok ? LM_OK : LM_ERROR;
}

static int has_item(const char *list, const char *name) {
  size_t n = strlen(name);
  for (const char *p = list; p && *p;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == n && strncmp(p, name, n) == 0) return 1;
    p = end ? end + 1 : p + len;
  }
  return 0;
}

/* The CHECKs of the table that name `column` (NULL: all of them):
 * "check\tNAME\tCONDITION"
 * (NAME empty when unnamed; tabs of the condition made spaces, the line
 * being tab-separated). */
static int check_lines(lm_conn *c, const char *schema, const char *table,
                       const char *column, lm_strvec *out, lm_err *err) {
  lm_schema model;
  lm_schema_init(&model);
  int found = 0;
  int rc = lm_sqlite_introspect(c, schema, table, &model, &found, err);
  lm_mtable *t = rc == LM_OK && found ? lm_schema_table(&model, schema, table)
                                      : NULL;
  for (size_t i = 0; t && i < t->nconstraints; i++) {
    const lm_constraint *k = &t->constraints[i].con;
    if (k->kind != LM_CON_CHECK || !k->condition ||
        (column && !lm_sql_mentions(k->condition, column)))
      continue;
    char *cond = lm_xstrdup(k->condition);
    for (char *p = cond; *p; p++)
      if (*p == '\t') *p = ' ';
    lm_strvec_pushf(out, "check\t%s\t%s", k->name ? k->name : "", cond);
    free(cond);
  }
  lm_schema_free(&model);
  return rc;
}

/* A CHECK back on the table, by a rebuild, unless one of its condition is
 * there. */
static int restore_check(lm_conn *c, const char *schema, const char *table,
                         const char *name, const char *condition, int *made,
                         lm_err *err) {
  lm_strvec have = LM_STRVEC_INIT;
  int rc = check_lines(c, schema, table, NULL, &have, err);
  char *want = lm_xasprintf("\t%s", condition);
  int present = 0;
  for (size_t i = 0; i < have.n; i++) {
    const char *tail = strchr(have.items[i] + 6, '\t');
    present |= tail && strcmp(tail, want) == 0;
  }
  free(want);
  lm_strvec_free(&have);
  if (rc != LM_OK || present) return rc;
  lm_constraint con = {.kind = LM_CON_CHECK, .name = *name ? name : NULL,
                       .condition = condition, .deferrable = -1};
  lm_op op = {.kind = LM_OP_ADD_CONSTRAINT, .schema = schema, .table = table,
              .constraints = &con, .nconstraints = 1};
  lm_compile_ctx ctx = {.conn = c};
  lm_strvec stmts = LM_STRVEC_INIT;
  rc = lm_sqlite_compile(&ctx, &op, &stmts, err);
  for (size_t i = 0; rc == LM_OK && i < stmts.n; i++)
    rc = exec(c, stmts.items[i], err);
  *made = rc == LM_OK;
  lm_strvec_free(&stmts);
  return rc;
}

static int sqlite_keep_dependents(lm_conn *c, const char *schema,
                                  const char *table, const char *column,
                                  lm_strvec *out, lm_err *err) {
  char *m = master(schema);
  char *sql = lm_xasprintf("SELECT type, name, sql FROM %s WHERE tbl_name = "
                           "?1 AND type IN ('index', 'trigger') AND sql IS "
                           "NOT NULL ORDER BY type, name", m);
  const char *vals[1] = {table};
  sqlite3_stmt *st = prepare(c, sql, 1, vals, err);
  free(sql);
  free(m);
  if (!st) return LM_ERROR;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *text = col_text(st, 2);
    if (column && (strcmp(col_text(st, 0), "index") != 0 ||
                   !lm_sql_mentions(text, column)))
      continue;
    lm_strvec_pushf(out, "%s\t%s\t%s", col_text(st, 0), col_text(st, 1),
                    text);
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return lm_sqlite_error(c, "sqlite_master", err);
  if (!column) return LM_OK;
  lm_strvec sets = LM_STRVEC_INIT;
  rc = unique_sets(c, schema, table, 1, &sets, err);
  for (size_t i = 0; rc == LM_OK && i < sets.n; i++)
    if (has_item(sets.items[i], column))
      lm_strvec_pushf(out, "unique\t%s", sets.items[i]);
  lm_strvec_free(&sets);
  if (rc == LM_OK) rc = fk_lines(c, schema, table, column, out, err);
  if (rc == LM_OK) rc = check_lines(c, schema, table, column, out, err);
  return rc;
}

/* Run an ALTER TABLE ... RENAME with legacy_alter_table set to `legacy`
 * (on: the foreign keys of other tables keep the name they say; off: they
 * follow the table), then put the setting back. */
static int rename_with(lm_conn *c, const char *sql, int legacy, lm_err *err) {
  int was = 0;
  sqlite3_stmt *st = prepare(c, "PRAGMA legacy_alter_table", 0, NULL, err);
  if (!st) return LM_ERROR;
  if (sqlite3_step(st) == SQLITE_ROW) was = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  int rc = LM_OK;
  if (was != legacy)
    rc = exec(c, legacy ? "PRAGMA legacy_alter_table = ON"
                        : "PRAGMA legacy_alter_table = OFF", err);
  if (rc == LM_OK) rc = exec(c, sql, err);
  if (was != legacy) {
    lm_err ignored;
    lm_err_init(&ignored);
    exec(c, was ? "PRAGMA legacy_alter_table = ON"
                : "PRAGMA legacy_alter_table = OFF", &ignored);
    lm_err_free(&ignored);
  }
  return rc;
}

static int rename_table(lm_conn *c, const char *schema, const char *from,
                        const char *to, int legacy, lm_err *err) {
  char *q = qualified(schema, from);
  lm_buf sql = LM_BUF_INIT;
  lm_buf_printf(&sql, "ALTER TABLE %s RENAME TO ", q);
  lm_sqlite_quote_ident(&sql, to);
  free(q);
  int rc = rename_with(c, lm_buf_str(&sql), legacy, err);
  lm_buf_free(&sql);
  return rc;
}

static int sqlite_keep_move(lm_conn *c, const char *schema, const char *table,
                            const char *kept, lm_err *err) {
  lm_strvec parts = LM_STRVEC_INIT;
  int rc = sqlite_keep_dependents(c, schema, table, NULL, &parts, err);
  lm_buf sql = LM_BUF_INIT;
  for (size_t i = 0; rc == LM_OK && i < parts.n; i++) {
    char *type = parts.items[i], *name = strchr(type, '\t');
    *name++ = '\0';
    *strchr(name, '\t') = '\0';
    lm_buf_reset(&sql);
    lm_buf_printf(&sql, "DROP %s ", strcmp(type, "index") == 0 ? "INDEX"
                                                                : "TRIGGER");
    char *q = qualified(schema, name);
    lm_buf_puts(&sql, q);
    free(q);
    rc = exec(c, lm_buf_str(&sql), err);
  }
  lm_strvec_free(&parts);
  /* legacy_alter_table off: the foreign keys that point at the table
   * follow it, so they still point at its rows */
  if (rc == LM_OK) rc = rename_table(c, schema, table, kept, 0, err);
  lm_buf_free(&sql);
  return rc;
}

/* Split "a,b" into an arena-less array of malloc'ed names in v. */
static void split_names(const char *list, lm_strvec *v) {
  for (const char *p = list; p && *p;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    lm_strvec_push(v, lm_xstrndup(p, len));
    p = end ? end + 1 : p + len;
  }
}

static const char *action_or_null(const char *a) {
  return !*a || strcmp(a, "NO ACTION") == 0 ? NULL : a;
}

/* A foreign key made again: the dialect's add_constraint (a rebuild). */
static int restore_fk(lm_conn *c, const char *schema, const char *table,
                      char **f, int *made, lm_err *err) {
  lm_strvec have = LM_STRVEC_INIT;
  int rc = fk_lines(c, schema, table, NULL, &have, err);
  char *want = lm_xasprintf("fk\t%s\t%s\t", f[1], f[2]);
  int present = 0;
  for (size_t i = 0; i < have.n; i++)
    present |= strncmp(have.items[i], want, strlen(want)) == 0;
  free(want);
  lm_strvec_free(&have);
  if (rc != LM_OK || present) return rc;
  lm_strvec from = LM_STRVEC_INIT, to = LM_STRVEC_INIT, stmts = LM_STRVEC_INIT;
  split_names(f[1], &from);
  split_names(f[3], &to);
  lm_constraint con = {.kind = LM_CON_FOREIGN_KEY,
                       .columns = (const char *const *)from.items,
                       .ncolumns = from.n, .ref_table = f[2],
                       .ref_columns = (const char *const *)to.items,
                       .nref_columns = to.n, .ondelete = action_or_null(f[4]),
                       .onupdate = action_or_null(f[5]), .deferrable = -1};
  lm_op op = {.kind = LM_OP_ADD_CONSTRAINT, .schema = schema, .table = table,
              .constraints = &con, .nconstraints = 1};
  lm_compile_ctx ctx = {.conn = c};
  rc = lm_sqlite_compile(&ctx, &op, &stmts, err);
  for (size_t i = 0; rc == LM_OK && i < stmts.n; i++)
    rc = exec(c, stmts.items[i], err);
  *made = rc == LM_OK;
  lm_strvec_free(&from);
  lm_strvec_free(&to);
  lm_strvec_free(&stmts);
  return rc;
}

static int restore_unique(lm_conn *c, const char *schema, const char *table,
                          const char *cols, int *made, lm_err *err) {
  lm_strvec sets = LM_STRVEC_INIT;
  int rc = unique_sets(c, schema, table, 0, &sets, err);
  int present = 0;
  for (size_t i = 0; i < sets.n; i++) present |= strcmp(sets.items[i], cols) == 0;
  lm_strvec_free(&sets);
  if (rc != LM_OK || present) return rc;
  lm_strvec names = LM_STRVEC_INIT;
  split_names(cols, &names);
  lm_buf name = LM_BUF_INIT, sql = LM_BUF_INIT;
  lm_buf_printf(&name, "uq_%s", table);
  for (size_t i = 0; i < names.n; i++) lm_buf_printf(&name, "_%s", names.items[i]);
  lm_buf_puts(&sql, "CREATE UNIQUE INDEX ");
  char *q = qualified(schema, lm_buf_str(&name));
  lm_buf_puts(&sql, q);
  free(q);
  lm_buf_puts(&sql, " ON ");
  lm_sqlite_quote_ident(&sql, table);
  lm_buf_puts(&sql, " (");
  for (size_t i = 0; i < names.n; i++) {
    if (i) lm_buf_puts(&sql, ", ");
    lm_sqlite_quote_ident(&sql, names.items[i]);
  }
  lm_buf_putc(&sql, ')');
  rc = exec(c, lm_buf_str(&sql), err);
  *made = rc == LM_OK;
  lm_strvec_free(&names);
  lm_buf_free(&name);
  lm_buf_free(&sql);
  return rc;
}

static int sqlite_keep_restore(lm_conn *c, const char *schema,
                               const char *table, const char *line,
                               int *made, lm_err *err) {
  *made = 0;
  char *copy = lm_xstrdup(line), *f[6] = {copy};
  int nf = 1;
  for (char *p = copy; nf < 6 && (p = strchr(p, '\t')); nf++) {
    *p++ = '\0';
    f[nf] = p;
  }
  int rc = LM_OK;
  if (strcmp(f[0], "fk") == 0 && nf == 6) {
    rc = restore_fk(c, schema, table, f, made, err);
  } else if (strcmp(f[0], "check") == 0 && nf == 3) {
    rc = restore_check(c, schema, table, f[1], f[2], made, err);
  } else if (strcmp(f[0], "unique") == 0 && nf >= 2) {
    rc = restore_unique(c, schema, table, f[1], made, err);
  } else if (nf >= 3) {          /* index or trigger: its own SQL */
    char *m = master(schema);
    char *sql = lm_xasprintf("SELECT 1 FROM %s WHERE name = ?1", m);
    const char *vals[1] = {f[1]};
    sqlite3_stmt *st = prepare(c, sql, 1, vals, err);
    free(sql);
    free(m);
    if (!st) rc = LM_ERROR;
    int present = st && sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    if (rc == LM_OK && !present) {
      rc = exec(c, f[2], err);
      *made = rc == LM_OK;
    }
  }
  free(copy);
  return rc;
}

static int sqlite_keep_copy_rows(lm_conn *c, const char *schema,
                                 const char *table, const char *kept,
                                 const char *const *cols, size_t ncols,
                                 int64_t *rows, lm_err *err) {
  lm_buf list = LM_BUF_INIT, sql = LM_BUF_INIT;
  for (size_t i = 0; i < ncols; i++) {
    if (i) lm_buf_puts(&list, ", ");
    lm_sqlite_quote_ident(&list, cols[i]);
  }
  char *to = qualified(schema, table), *from = qualified(schema, kept);
  lm_buf_printf(&sql, "INSERT INTO %s (%s) SELECT %s FROM %s", to,
                lm_buf_str(&list), lm_buf_str(&list), from);
  int rc = exec(c, lm_buf_str(&sql), err);
  *rows = rc == LM_OK ? sqlite3_changes64(c->db) : 0;
  /* The foreign keys that followed the table to the kept one name the
   * table again: the kept table takes its name with them following (the
   * new one set aside meanwhile), then gives it back alone. */
  static const char aside[] = "luamig_restoring";
  if (rc == LM_OK) rc = rename_table(c, schema, table, aside, 1, err);
  if (rc == LM_OK) rc = rename_table(c, schema, kept, table, 0, err);
  if (rc == LM_OK) rc = rename_table(c, schema, table, kept, 1, err);
  if (rc == LM_OK) rc = rename_table(c, schema, aside, table, 1, err);
  free(to);
  free(from);
  lm_buf_free(&list);
  lm_buf_free(&sql);
  return rc;
}

/* SQLite counts a table from its smallest b-tree, quickly. */
static int sqlite_keep_rows(lm_conn *c, const char *schema, const char *table,
                            int64_t *rows, lm_err *err) {
  char *q = qualified(schema, table);
  char *sql = lm_xasprintf("SELECT count(*) FROM %s", q);
  sqlite3_stmt *st = prepare(c, sql, 0, NULL, err);
  int rc = st && sqlite3_step(st) == SQLITE_ROW ? LM_OK : LM_ERROR;
  if (rc == LM_OK) *rows = sqlite3_column_int64(st, 0);
  else if (st) lm_sqlite_error(c, sql, err);
  sqlite3_finalize(st);
  free(sql);
  free(q);
  return rc;
}

/* dbstat, where SQLite was built with it; else unknown. */
static int sqlite_keep_size(lm_conn *c, const char *kept, int64_t *bytes,
                            lm_err *err) {
  (void)err;
  *bytes = -1;
  sqlite3_stmt *st = NULL;
  if (sqlite3_prepare_v2(c->db, "SELECT sum(pgsize) FROM dbstat WHERE name "
                         "= ?1 OR name IN (SELECT name FROM sqlite_master "
                         "WHERE tbl_name = ?1)", -1, &st, NULL) == SQLITE_OK) {
    sqlite3_bind_text(st, 1, kept, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(st) == SQLITE_ROW &&
        sqlite3_column_type(st, 0) != SQLITE_NULL)
      *bytes = sqlite3_column_int64(st, 0);
  }
  sqlite3_finalize(st);
  return LM_OK;
}

/* ---- backup: the online backup API -------------------------------------- */

static int sqlite_backup(lm_conn *c, const lm_url *url, const char *path,
                         const char *suffix, const char *const *schemas,
                         const char *const *tables, size_t ntables,
                         char **written, lm_err *err) {
  (void)url;
  (void)schemas;
  (void)tables;
  (void)ntables;      /* a file is copied whole */
  *written = NULL;
  const char *db = sqlite3_db_filename(c->db, "main");
  if (!path && (!db || !*db))
    return lm_err_set(err, "cannot back up beside an in-memory database: "
                      "give the file (--backup=PATH)");
  char *file = path ? lm_xstrdup(path) : lm_xasprintf("%s%s", db, suffix);
  int fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    lm_err_set(err, "cannot write the backup %s: %s", file, strerror(errno));
    free(file);
    return LM_ERROR;
  }
  close(fd);
  sqlite3 *dst = NULL;
  int rc = sqlite3_open_v2(file, &dst, SQLITE_OPEN_READWRITE, NULL);
  sqlite3_backup *b = rc == SQLITE_OK
                          ? sqlite3_backup_init(dst, "main", c->db, "main")
                          : NULL;
  if (b) {
    /* all at once: the source is read in one transaction */
    rc = sqlite3_backup_step(b, -1);
    sqlite3_backup_finish(b);
    rc = rc == SQLITE_DONE ? sqlite3_errcode(dst) : rc;
  } else if (rc == SQLITE_OK) {
    rc = sqlite3_errcode(dst);
  }
  if (rc != SQLITE_OK) {
    lm_err_set(err, "cannot back up to %s: %s", file,
               dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
    sqlite3_close(dst);
    unlink(file);
    free(file);
    return LM_ERROR;
  }
  if (sqlite3_close(dst) != SQLITE_OK) {
    lm_err_set(err, "cannot close the backup %s", file);
    unlink(file);
    free(file);
    return LM_ERROR;
  }
  *written = file;
  return LM_OK;
}

const lm_keep_methods lm_sqlite_keep = {
  .schema = NULL,
  .prefix = PREFIX,
  .prepare_sql = NULL,
  .dependents = sqlite_keep_dependents,
  .move = sqlite_keep_move,
  .restore = sqlite_keep_restore,
  .copy_rows = sqlite_keep_copy_rows,
  .rows = sqlite_keep_rows,
  .size = sqlite_keep_size,
  .backup = sqlite_backup,
};
