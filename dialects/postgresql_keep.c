/*
 * postgresql_keep.c - kept data and backups on PostgreSQL (dialect.h,
 * lm_keep_methods).  A kept table lives in the schema luamig_kept: a
 * dropped table moves there (a rename, instant whatever its size), after
 * the foreign keys of other tables that point at it are dropped; their
 * definitions, and those of what depended on a dropped column, are kept
 * as the statements pg_get_indexdef and pg_get_constraintdef give.  A
 * backup is pg_dump --format=custom of the tables named.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "postgresql.h"

#define KEPT_SCHEMA "luamig_kept"

/* Run one statement with text parameters; NULL after an error. */
static PGresult *run(lm_conn *c, const char *sql, int n,
                     const char *const *vals, lm_err *err) {
  PGresult *res = PQexecParams(c->pg, sql, n, NULL, vals, NULL, NULL, 0);
  ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
    lm_pg_result_error(c, res, sql, err);
    PQclear(res);
    return NULL;
  }
  return res;
}

static int run_done(lm_conn *c, const char *sql, lm_err *err) {
  PGresult *res = run(c, sql, 0, NULL, err);
  PQclear(res);
  return res ? LM_OK : LM_ERROR;
}

static char *qualified(const char *schema, const char *table) {
  lm_buf b = LM_BUF_INIT;
  if (schema) {
    lm_pg_quote_ident(&b, schema);
    lm_buf_putc(&b, '.');
  }
  lm_pg_quote_ident(&b, table);
  return lm_buf_detach(&b);
}

/* Lines: kind, name, owner (the constrained table), statement. */
#define LINE_COLS "SELECT 'index', ic.relname, '', " \
  "pg_catalog.pg_get_indexdef(ic.oid), 0 "
#define CON_LINE(rel) "SELECT 'constraint', c.conname, " rel "::regclass::text, " \
  "'ALTER TABLE ' || " rel "::regclass::text || ' ADD CONSTRAINT ' || " \
  "pg_catalog.quote_ident(c.conname) || ' ' || " \
  "pg_catalog.pg_get_constraintdef(c.oid), " \
  "CASE c.contype WHEN 'p' THEN 1 WHEN 'u' THEN 2 WHEN 'x' THEN 2 " \
  "WHEN 'c' THEN 3 ELSE 4 END "
#define NOT_BACKING(rel) " AND NOT EXISTS (SELECT 1 FROM " \
  "pg_catalog.pg_constraint x WHERE x.conindid = ic.oid AND x.conrelid = " \
  rel " AND x.contype IN ('p', 'u', 'x'))"

static const char *const column_deps_sql =
  "WITH col AS (SELECT attnum FROM pg_catalog.pg_attribute WHERE attrelid = "
  "$1::regclass AND attname = $2 AND NOT attisdropped) "
  LINE_COLS "FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class ic ON "
  "ic.oid = d.objid, col WHERE d.classid = 'pg_catalog.pg_class'::regclass "
  "AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = "
  "$1::regclass AND d.refobjsubid = col.attnum AND ic.relkind = 'i'"
  NOT_BACKING("$1::regclass")
  " UNION ALL " CON_LINE("c.conrelid") "FROM pg_catalog.pg_constraint c, col "
  "WHERE c.conrelid = $1::regclass AND col.attnum = ANY (c.conkey) AND "
  "c.contype <> 'p' ORDER BY 5, 2";

static const char *const table_deps_sql =
  LINE_COLS "FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON "
  "ic.oid = i.indexrelid WHERE i.indrelid = $1::regclass"
  NOT_BACKING("$1::regclass")
  " UNION ALL " CON_LINE("c.conrelid") "FROM pg_catalog.pg_constraint c "
  "WHERE c.conrelid = $1::regclass AND c.contype IN ('p', 'u', 'x', 'c', 'f')"
  " UNION ALL " CON_LINE("c.conrelid") "FROM pg_catalog.pg_constraint c "
  "WHERE c.confrelid = $1::regclass AND c.conrelid <> c.confrelid AND "
  "c.contype = 'f' ORDER BY 5, 2";

static int pg_keep_dependents(lm_conn *c, const char *schema,
                              const char *table, const char *column,
                              lm_strvec *out, lm_err *err) {
  char *rel = qualified(schema, table);
  const char *vals[2] = {rel, column};
  PGresult *res = run(c, column ? column_deps_sql : table_deps_sql,
                      column ? 2 : 1, vals, err);
  free(rel);
  if (!res) return LM_ERROR;
  for (int i = 0; i < PQntuples(res); i++)
    lm_strvec_pushf(out, "%s\t%s\t%s\t%s", PQgetvalue(res, i, 0),
                    PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
                    PQgetvalue(res, i, 3));
  PQclear(res);
  return LM_OK;
}

/* A name for a part of the kept table that cannot clash: the kept
 * table's name, then the part's, cut to 63 bytes. */
static void part_name(lm_buf *b, const char *kept, const char *part) {
  char name[64];
  snprintf(name, sizeof name, "%s_%s", kept, part);
  lm_pg_quote_ident(b, name);
}

static int pg_keep_move(lm_conn *c, const char *schema, const char *table,
                        const char *kept, lm_err *err) {
  char *rel = qualified(schema, table);
  const char *vals[1] = {rel};
  /* Foreign keys into it would follow it into luamig_kept. */
  PGresult *res = run(c, "SELECT c.conrelid::regclass::text, c.conname FROM "
                      "pg_catalog.pg_constraint c WHERE c.confrelid = "
                      "$1::regclass AND c.conrelid <> c.confrelid AND "
                      "c.contype = 'f'", 1, vals, err);
  lm_buf sql = LM_BUF_INIT;
  int rc = res ? LM_OK : LM_ERROR;
  for (int i = 0; rc == LM_OK && i < PQntuples(res); i++) {
    lm_buf_reset(&sql);
    lm_buf_printf(&sql, "ALTER TABLE %s DROP CONSTRAINT ",
                  PQgetvalue(res, i, 0));
    lm_pg_quote_ident(&sql, PQgetvalue(res, i, 1));
    rc = run_done(c, lm_buf_str(&sql), err);
  }
  PQclear(res);
  /* Its indexes and sequences go with it: names that cannot clash with
   * those of another kept table. */
  res = rc == LM_OK
            ? run(c, "SELECT n.nspname, ic.relname, 'INDEX' FROM "
                  "pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON "
                  "ic.oid = i.indexrelid JOIN pg_catalog.pg_namespace n ON "
                  "n.oid = ic.relnamespace WHERE i.indrelid = $1::regclass "
                  "UNION ALL SELECT n.nspname, s.relname, 'SEQUENCE' FROM "
                  "pg_catalog.pg_depend d JOIN pg_catalog.pg_class s ON "
                  "s.oid = d.objid JOIN pg_catalog.pg_namespace n ON n.oid = "
                  "s.relnamespace WHERE d.classid = "
                  "'pg_catalog.pg_class'::regclass AND d.refobjid = "
                  "$1::regclass AND s.relkind = 'S' AND d.deptype IN ('a', "
                  "'i')", 1, vals, err)
            : NULL;
  if (rc == LM_OK && !res) rc = LM_ERROR;
  for (int i = 0; rc == LM_OK && i < PQntuples(res); i++) {
    lm_buf_reset(&sql);
    lm_buf_printf(&sql, "ALTER %s ", PQgetvalue(res, i, 2));
    lm_pg_quote_ident(&sql, PQgetvalue(res, i, 0));
    lm_buf_putc(&sql, '.');
    lm_pg_quote_ident(&sql, PQgetvalue(res, i, 1));
    lm_buf_puts(&sql, " RENAME TO ");
    part_name(&sql, kept, PQgetvalue(res, i, 1));
    rc = run_done(c, lm_buf_str(&sql), err);
  }
  PQclear(res);
  if (rc == LM_OK) {
    lm_buf_reset(&sql);
    lm_buf_printf(&sql, "ALTER TABLE %s RENAME TO ", rel);
    lm_pg_quote_ident(&sql, kept);
    rc = run_done(c, lm_buf_str(&sql), err);
  }
  if (rc == LM_OK) {
    char *moved = qualified(schema, kept);
    lm_buf_reset(&sql);
    lm_buf_printf(&sql, "ALTER TABLE %s SET SCHEMA " KEPT_SCHEMA, moved);
    free(moved);
    rc = run_done(c, lm_buf_str(&sql), err);
  }
  lm_buf_free(&sql);
  free(rel);
  return rc;
}

/* One line of pg_keep_dependents, made again unless its name is there. */
static int pg_keep_restore(lm_conn *c, const char *schema, const char *table,
                           const char *line, int *made, lm_err *err) {
  (void)table;
  *made = 0;
  char *copy = lm_xstrdup(line), *f[4] = {copy, NULL, NULL, NULL};
  for (int k = 1; k < 4 && f[k - 1]; k++) {
    f[k] = strchr(f[k - 1], '\t');
    if (f[k]) *f[k]++ = '\0';
  }
  if (!f[3]) {
    free(copy);
    return LM_OK;       /* not a line this dialect wrote */
  }
  PGresult *res;
  if (strcmp(f[0], "index") == 0) {
    const char *vals[2] = {f[1], schema};
    res = run(c, "SELECT 1 FROM pg_catalog.pg_class c JOIN "
              "pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE "
              "c.relname = $1 AND n.nspname = coalesce($2, "
              "pg_catalog.current_schema())", 2, vals, err);
  } else {
    /* a constraint on a table that is gone is not made again */
    const char *vals[2] = {f[2], f[1]};
    res = run(c, "SELECT 1 WHERE pg_catalog.to_regclass($1) IS NULL OR "
              "EXISTS (SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid "
              "= pg_catalog.to_regclass($1) AND conname = $2)", 2, vals, err);
  }
  int rc = res ? LM_OK : LM_ERROR;
  if (rc == LM_OK && PQntuples(res) == 0) {
    rc = run_done(c, f[3], err);
    *made = rc == LM_OK;
  }
  PQclear(res);
  free(copy);
  return rc;
}

static int pg_keep_copy_rows(lm_conn *c, const char *schema,
                             const char *table, const char *kept,
                             const char *const *cols, size_t ncols,
                             int64_t *rows, lm_err *err) {
  char *rel = qualified(schema, table), *from = qualified(KEPT_SCHEMA, kept);
  lm_buf list = LM_BUF_INIT, sql = LM_BUF_INIT;
  for (size_t i = 0; i < ncols; i++) {
    if (i) lm_buf_puts(&list, ", ");
    lm_pg_quote_ident(&list, cols[i]);
  }
  /* OVERRIDING SYSTEM VALUE: identity columns take the kept values too */
  lm_buf_printf(&sql, "INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT "
                "%s FROM %s", rel, lm_buf_str(&list), lm_buf_str(&list),
                from);
  PGresult *res = run(c, lm_buf_str(&sql), 0, NULL, err);
  int rc = res ? LM_OK : LM_ERROR;
  *rows = res ? strtoll(PQcmdTuples(res), NULL, 10) : 0;
  PQclear(res);
  /* The table's sequences continue after the rows put back. */
  const char *vals[1] = {rel};
  res = rc == LM_OK
            ? run(c, "SELECT a.attname, pg_catalog.pg_get_serial_sequence($1, "
                  "a.attname) FROM pg_catalog.pg_attribute a WHERE a.attrelid "
                  "= $1::regclass AND a.attnum > 0 AND NOT a.attisdropped AND "
                  "pg_catalog.pg_get_serial_sequence($1, a.attname) IS NOT "
                  "NULL", 1, vals, err)
            : NULL;
  if (rc == LM_OK && !res) rc = LM_ERROR;
  for (int i = 0; rc == LM_OK && i < PQntuples(res); i++) {
    lm_buf_reset(&sql);
    lm_buf_puts(&sql, "SELECT pg_catalog.setval($1, m) FROM (SELECT max(");
    lm_pg_quote_ident(&sql, PQgetvalue(res, i, 0));
    lm_buf_printf(&sql, ") AS m FROM %s) x WHERE m IS NOT NULL", rel);
    const char *seq[1] = {PQgetvalue(res, i, 1)};
    PGresult *r2 = run(c, lm_buf_str(&sql), 1, seq, err);
    rc = r2 ? LM_OK : LM_ERROR;
    PQclear(r2);
  }
  PQclear(res);
  lm_buf_free(&list);
  lm_buf_free(&sql);
  free(rel);
  free(from);
  return rc;
}

/* The planner's count once the table was analyzed (reltuples), else a
 * real count. */
static int pg_keep_rows(lm_conn *c, const char *schema, const char *table,
                        int64_t *rows, lm_err *err) {
  char *rel = qualified(schema, table);
  const char *vals[1] = {rel};
  PGresult *res = run(c, "SELECT CASE WHEN c.reltuples >= 0 THEN "
                      "c.reltuples::bigint END FROM pg_catalog.pg_class c "
                      "WHERE c.oid = $1::regclass", 1, vals, err);
  int rc = res ? LM_OK : LM_ERROR;
  int known = res && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0);
  *rows = known ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
  PQclear(res);
  if (rc == LM_OK && !known) {
    char *sql = lm_xasprintf("SELECT count(*) FROM %s", rel);
    res = run(c, sql, 0, NULL, err);
    free(sql);
    rc = res ? LM_OK : LM_ERROR;
    if (res) *rows = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
  }
  free(rel);
  return rc;
}

static int pg_keep_size(lm_conn *c, const char *kept, int64_t *bytes,
                        lm_err *err) {
  char *rel = qualified(KEPT_SCHEMA, kept);
  const char *vals[1] = {rel};
  PGresult *res = run(c, "SELECT pg_catalog.pg_total_relation_size("
                      "pg_catalog.to_regclass($1))", 1, vals, err);
  free(rel);
  if (!res) return LM_ERROR;
  *bytes = PQntuples(res) && !PQgetisnull(res, 0, 0)
               ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
  PQclear(res);
  return LM_OK;
}

/* ---- backup: pg_dump ---------------------------------------------------- */

/* pg_dump on PATH (malloc'ed), or NULL. */
static char *find_pg_dump(void) {
  const char *path = getenv("PATH");
  if (!path || !*path) path = "/usr/bin:/bin";
  char *dirs = lm_xstrdup(path), *save = NULL, *found = NULL;
  for (char *d = strtok_r(dirs, ":", &save); d && !found;
       d = strtok_r(NULL, ":", &save)) {
    char *p = lm_xasprintf("%s/pg_dump", *d ? d : ".");
    if (access(p, X_OK) == 0) found = p;
    else free(p);
  }
  free(dirs);
  return found;
}

/* A table as a pg_dump pattern: each part double-quoted, exactly. */
static void pattern(lm_buf *b, const char *name) {
  lm_buf_putc(b, '"');
  for (const char *p = name; *p; p++) {
    if (*p == '"') lm_buf_putc(b, '"');
    lm_buf_putc(b, *p);
  }
  lm_buf_putc(b, '"');
}

/* The URL without the password of its user part ("user:pw@host" becomes
 * "user@host"), malloc'ed: what another program may see on its command
 * line.  A password given as a query parameter stays (it is the user's
 * choice to put it there). */
static char *url_without_password(const char *url) {
  const char *auth = strstr(url, "://");
  if (!auth) return lm_xstrdup(url);
  auth += 3;
  size_t len = strcspn(auth, "/?");
  const char *at = NULL;
  for (const char *p = auth; p < auth + len; p++)
    if (*p == '@') at = p;
  const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
  if (!colon) return lm_xstrdup(url);
  return lm_xasprintf("%.*s%s", (int)(colon - url), url, at);
}

/* Run argv, its stderr into out, with PGPASSWORD set to password (when not
 * NULL) in its environment only; the exit status, or -1. */
static int run_program(char *const *argv, const char *password, lm_buf *out) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return -1;
  }
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    close(fds[1]);
    int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      dup2(devnull, 0);
      dup2(devnull, 1);
    }
    /* The child alone: the password never reaches a command line. */
    if (password && setenv("PGPASSWORD", password, 1) != 0) _exit(127);
    execv(argv[0], argv);
    _exit(127);
  }
  close(fds[1]);
  char chunk[4096];
  ssize_t n;
  while ((n = read(fds[0], chunk, sizeof chunk)) > 0 ||
         (n < 0 && errno == EINTR))
    if (n > 0) lm_buf_add(out, chunk, (size_t)n);
  close(fds[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int pg_backup(lm_conn *c, const lm_url *url, const char *path,
                     const char *suffix, const char *const *schemas,
                     const char *const *tables, size_t ntables,
                     char **written, lm_err *err) {
  *written = NULL;
  char *prog = find_pg_dump();
  if (!prog)
    return lm_err_set(err, "cannot back up: pg_dump is not installed (not "
                      "found on PATH); install the PostgreSQL client tools "
                      "or run without --backup");
  char *file = NULL;
  if (path) {
    file = lm_xstrdup(path);
  } else {
    PGresult *res = run(c, "SELECT pg_catalog.current_database()", 0, NULL,
                        err);
    if (!res) {
      free(prog);
      return LM_ERROR;
    }
    file = lm_xasprintf("%s%s", PQgetvalue(res, 0, 0), suffix);
    PQclear(res);
  }
  /* Proves the place writable and the name unused before pg_dump runs. */
  int fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    lm_err_set(err, "cannot write the backup %s: %s", file, strerror(errno));
    free(file);
    free(prog);
    return LM_ERROR;
  }
  close(fd);
  lm_strvec args = LM_STRVEC_INIT;
  lm_strvec_push(&args, lm_xstrdup(prog));
  lm_strvec_push(&args, lm_xstrdup("--format=custom"));
  lm_strvec_push(&args, lm_xstrdup("--no-password"));
  lm_strvec_pushf(&args, "--file=%s", file);
  char *dburl = url_without_password(url->full);
  lm_strvec_pushf(&args, "--dbname=%s", dburl);
  free(dburl);
  for (size_t i = 0; i < ntables; i++) {
    lm_buf b = LM_BUF_INIT;
    lm_buf_puts(&b, "--table=");
    if (schemas[i]) {
      pattern(&b, schemas[i]);
      lm_buf_putc(&b, '.');
    }
    pattern(&b, tables[i]);
    lm_strvec_push(&args, lm_buf_detach(&b));
  }
  lm_strvec_push(&args, NULL);
  lm_buf msg = LM_BUF_INIT;
  /* The password the connection was made with (from the URL, the
   * environment or a password file) goes to pg_dump's environment. */
  const char *password = PQpass(c->pg);
  int status = run_program(args.items, password && *password ? password : NULL,
                           &msg);
  int rc = LM_OK;
  if (status != 0) {
    while (msg.len && (msg.data[msg.len - 1] == '\n')) msg.data[--msg.len] = 0;
    rc = lm_err_set(err, "pg_dump failed (exit %d): %s", status,
                    msg.len ? lm_buf_str(&msg) : "no message");
    unlink(file);
    free(file);
  } else {
    *written = file;
  }
  lm_buf_free(&msg);
  lm_strvec_free(&args);
  free(prog);
  return rc;
}

const lm_keep_methods lm_pg_keep = {
  .schema = KEPT_SCHEMA,
  .prefix = "",
  .prepare_sql = "CREATE SCHEMA IF NOT EXISTS " KEPT_SCHEMA,
  .ctas_counts = 1,             /* its command tag: SELECT n */
  .dependents = pg_keep_dependents,
  .move = pg_keep_move,
  .restore = pg_keep_restore,
  .copy_rows = pg_keep_copy_rows,
  .rows = pg_keep_rows,
  .size = pg_keep_size,
  .backup = pg_backup,
};
