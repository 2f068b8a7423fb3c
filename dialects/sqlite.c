/*
 * sqlite.c - the SQLite dialect, through the sqlite3 library.
 *
 * Migrations run with foreign-key enforcement off (dropping or rebuilding a
 * parent table must not cascade) and `PRAGMA foreign_key_check` must pass
 * before every commit.  One runner at a time is guaranteed by an flock on a
 * file beside the database, held for the whole run, together with BEGIN
 * IMMEDIATE for each transaction.
 */
#define _DEFAULT_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sql_lex.h"
#include "sqlite_ddl.h"

/* ---- errors ---------------------------------------------------------- */

/* The SQLSTATE PostgreSQL gives the same constraint violation, so a
 * program reads one code on both dialects; NULL for the others. */
static const char *constraint_sqlstate(int extended) {
  switch (extended) {
  case SQLITE_CONSTRAINT_UNIQUE:
  case SQLITE_CONSTRAINT_PRIMARYKEY: return "23505";
  case SQLITE_CONSTRAINT_NOTNULL: return "23502";
  case SQLITE_CONSTRAINT_FOREIGNKEY: return "23503";
  case SQLITE_CONSTRAINT_CHECK: return "23514";
  default: return NULL;
  }
}

int lm_sqlite_error(lm_conn *c, const char *sql, lm_err *err) {
  if (sql) lm_err_set(err, "%s\n  in: %s", sqlite3_errmsg(c->db), sql);
  else lm_err_set(err, "%s", sqlite3_errmsg(c->db));
  const char *state = constraint_sqlstate(sqlite3_extended_errcode(c->db));
  if (state) memcpy(err->sqlstate, state, 6);
  return LM_ERROR;
}

/* ---- connection ------------------------------------------------------ */

/* sqlite:///relative.db, sqlite:////absolute.db, sqlite://:memory: */
static int url_path(const lm_url *url, char **out, lm_err *err) {
  const char *rest = url->rest;
  if (strcmp(rest, ":memory:") == 0 || strcmp(rest, "/:memory:") == 0 ||
      strcmp(rest, "") == 0) {
    *out = lm_xstrdup(":memory:");
    return LM_OK;
  }
  if (rest[0] != '/' || rest[1] == '\0')
    return lm_err_set(err,
                      "malformed SQLite URL %s: expected sqlite:///relative.db, "
                      "sqlite:////absolute.db or sqlite://:memory:",
                      url->display);
  const char *path = rest + 1;
  const char *q = strchr(path, '?');
  *out = q ? lm_xstrndup(path, (size_t)(q - path)) : lm_xstrdup(path);
  return LM_OK;
}

static int sqlite_connect(lm_conn **out, const lm_url *url,
                          const char *app_name, lm_err *err) {
  (void)app_name;
  char *path = NULL;
  if (url_path(url, &path, err) != LM_OK) return LM_ERROR;
  struct stat st;
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
    lm_err_set(err, "cannot open SQLite database %s: it is a directory", path);
    free(path);
    return LM_ERROR;
  }
  lm_conn *c = lm_xcalloc(1, sizeof *c);
  c->path = path;
  c->lock_fd = -1;
  /* One connection serves one thread (a Lua state is never shared), so
   * SQLite's per-call connection mutex is pure cost: a backfill makes a
   * dozen API calls per row. */
  if (sqlite3_open_v2(path, &c->db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                          SQLITE_OPEN_NOMUTEX,
                      NULL) != SQLITE_OK) {
    lm_err_set(err, "cannot open SQLite database %s: %s", path,
               c->db ? sqlite3_errmsg(c->db) : "out of memory");
    sqlite3_close(c->db);
    free(c->path);
    free(c);
    return LM_ERROR;
  }
  sqlite3_extended_result_codes(c->db, 1);
  sqlite3_busy_timeout(c->db, 5000);
  if (sqlite3_exec(c->db, "PRAGMA foreign_keys = OFF", NULL, NULL, NULL) !=
      SQLITE_OK) {
    lm_err_set(err, "cannot open SQLite database %s: %s", path,
               sqlite3_errmsg(c->db));
    sqlite3_close(c->db);
    free(c->path);
    free(c);
    return LM_ERROR;
  }
  *out = c;
  return LM_OK;
}

static int sqlite_unlock(lm_conn *c, const char *key, lm_err *err);

static void sqlite_close(lm_conn *c) {
  if (!c) return;
  sqlite_unlock(c, NULL, NULL);
  sqlite3_close_v2(c->db);
  free(c->lock_path);
  free(c->path);
  free(c);
}

/* ---- statements ------------------------------------------------------ */

/* Bind $1, $2, ... (SQLite treats "$1" as a named parameter, so the same
 * number used twice is the same value, as on PostgreSQL).  A bare "?"
 * takes the value at its position. */
int lm_sqlite_bind(lm_conn *c, sqlite3_stmt *stmt, const char *sql,
                       size_t nparams, const lm_value *params, lm_err *err) {
  int count = sqlite3_bind_parameter_count(stmt);
  for (int i = 1; i <= count; i++) {
    const char *name = sqlite3_bind_parameter_name(stmt, i);
    long k = i;
    if (name) {
      char *end;
      if (name[0] != '$' || !isdigit((unsigned char)name[1]))
        return lm_err_set(err, "unsupported placeholder %s (use $1, $2, ...)\n  in: %s",
                          name, sql);
      k = strtol(name + 1, &end, 10);
      if (*end) return lm_err_set(err, "bad placeholder %s\n  in: %s", name, sql);
    }
    if (k < 1 || (size_t)k > nparams)
      return lm_err_set(err, "placeholder $%ld has no value (%zu given)\n  in: %s",
                        k, nparams, sql);
    const lm_value *v = &params[k - 1];
    int rc = SQLITE_OK;
    switch (v->type) {
    case LM_V_NULL: rc = sqlite3_bind_null(stmt, i); break;
    case LM_V_INT:
    case LM_V_BOOL: rc = sqlite3_bind_int64(stmt, i, v->i); break;
    case LM_V_FLOAT: rc = sqlite3_bind_double(stmt, i, v->f); break;
    case LM_V_TEXT:
      rc = sqlite3_bind_text64(stmt, i, v->s, v->len, SQLITE_TRANSIENT,
                               SQLITE_UTF8);
      break;
    case LM_V_BLOB:
      rc = sqlite3_bind_blob64(stmt, i, v->s, v->len, SQLITE_TRANSIENT);
      break;
    }
    if (rc != SQLITE_OK) return lm_sqlite_error(c, sql, err);
  }
  return LM_OK;
}

static int sqlite_exec(lm_conn *c, const char *sql, size_t nparams,
                       const lm_value *params, int64_t *affected, lm_err *err) {
  const char *tail = sql;
  int64_t changes = 0;
  while (*tail) {
    sqlite3_stmt *stmt = NULL;
    const char *start = tail;
    if (sqlite3_prepare_v2(c->db, start, -1, &stmt, &tail) != SQLITE_OK)
      return lm_sqlite_error(c, start, err);
    if (!stmt) continue;   /* whitespace or a comment */
    if (nparams && lm_sqlite_bind(c, stmt, sqlite3_sql(stmt), nparams, params,
                               err) != LM_OK) {
      sqlite3_finalize(stmt);
      return LM_ERROR;
    }
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {}
    if (rc != SQLITE_DONE) {
      lm_sqlite_error(c, sqlite3_sql(stmt), err);
      sqlite3_finalize(stmt);
      return LM_ERROR;
    }
    changes = sqlite3_changes64(c->db);
    sqlite3_finalize(stmt);
    if (nparams) break;   /* parameters go with a single statement */
  }
  if (affected) *affected = changes;
  return LM_OK;
}

static int sqlite_query(lm_conn *c, const char *sql, size_t nparams,
                        const lm_value *params, lm_cursor **out, lm_err *err) {
  sqlite3_stmt *stmt = NULL;
  if (sqlite3_prepare_v2(c->db, sql, -1, &stmt, NULL) != SQLITE_OK)
    return lm_sqlite_error(c, sql, err);
  if (!stmt) return lm_err_set(err, "empty query");
  if (lm_sqlite_bind(c, stmt, sql, nparams, params, err) != LM_OK) {
    sqlite3_finalize(stmt);
    return LM_ERROR;
  }
  lm_cursor *cur = lm_xcalloc(1, sizeof *cur);
  cur->conn = c;
  cur->stmt = stmt;
  cur->sql = sqlite3_sql(stmt);
  cur->ncols = (size_t)sqlite3_column_count(stmt);
  cur->row = lm_xcalloc(cur->ncols ? cur->ncols : 1, sizeof *cur->row);
  *out = cur;
  return LM_OK;
}

static int sqlite_cursor_next(lm_cursor *cur, lm_err *err) {
  int rc = sqlite3_step(cur->stmt);
  if (rc == SQLITE_DONE) return 0;
  if (rc != SQLITE_ROW) return lm_sqlite_error(cur->conn, cur->sql, err);
  for (size_t i = 0; i < cur->ncols; i++) {
    lm_value *v = &cur->row[i];
    int col = (int)i;
    switch (sqlite3_column_type(cur->stmt, col)) {
    case SQLITE_INTEGER:
      v->type = LM_V_INT;
      v->i = sqlite3_column_int64(cur->stmt, col);
      break;
    case SQLITE_FLOAT:
      v->type = LM_V_FLOAT;
      v->f = sqlite3_column_double(cur->stmt, col);
      break;
    case SQLITE_TEXT:
      v->type = LM_V_TEXT;
      v->s = (const char *)sqlite3_column_text(cur->stmt, col);
      v->len = (size_t)sqlite3_column_bytes(cur->stmt, col);
      break;
    case SQLITE_BLOB:
      v->type = LM_V_BLOB;
      v->s = sqlite3_column_blob(cur->stmt, col);
      v->len = (size_t)sqlite3_column_bytes(cur->stmt, col);
      if (!v->s) v->s = "";
      break;
    default:
      v->type = LM_V_NULL;
      break;
    }
  }
  return 1;
}

static size_t sqlite_cursor_ncols(lm_cursor *cur) { return cur->ncols; }

static const char *sqlite_cursor_colname(lm_cursor *cur, size_t col) {
  return sqlite3_column_name(cur->stmt, (int)col);
}

static const lm_value *sqlite_cursor_value(lm_cursor *cur, size_t col) {
  return &cur->row[col];
}

static void sqlite_cursor_close(lm_cursor *cur) {
  if (!cur) return;
  sqlite3_finalize(cur->stmt);
  free(cur->row);
  free(cur);
}

/* ---- transactions ---------------------------------------------------- */

static int sqlite_in_transaction(lm_conn *c) {
  return !sqlite3_get_autocommit(c->db);
}

static int sqlite_begin(lm_conn *c, lm_err *err) {
  if (sqlite3_db_readonly(c->db, "main") == 1)
    return lm_err_set(err, "SQLite database %s is not writable", c->path);
  /* IMMEDIATE takes the write lock now, so no other writer slips in
   * between reading the version table and changing it. */
  if (sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
    return lm_sqlite_error(c, "BEGIN IMMEDIATE", err);
  return LM_OK;
}

/* Foreign keys are not enforced while migrating; check them all before
 * the commit, so a migration cannot leave dangling references. */
static int foreign_key_check(lm_conn *c, lm_err *err) {
  sqlite3_stmt *stmt;
  const char *sql = "PRAGMA foreign_key_check";
  if (sqlite3_prepare_v2(c->db, sql, -1, &stmt, NULL) != SQLITE_OK)
    return lm_sqlite_error(c, sql, err);
  lm_buf report = LM_BUF_INIT;
  int rc, violations = 0;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    if (violations++ < 10)
      lm_buf_printf(&report, "\n  %s row %lld references %s (foreign key %d)",
                    (const char *)sqlite3_column_text(stmt, 0),
                    (long long)sqlite3_column_int64(stmt, 1),
                    (const char *)sqlite3_column_text(stmt, 2),
                    sqlite3_column_int(stmt, 3));
  }
  if (rc != SQLITE_DONE) {
    lm_sqlite_error(c, sql, err);
    sqlite3_finalize(stmt);
    lm_buf_free(&report);
    return LM_ERROR;
  }
  sqlite3_finalize(stmt);
  if (violations) {
    lm_err_set(err, "PRAGMA foreign_key_check found %d row%s whose foreign key "
               "points at nothing:%s%s", violations, violations == 1 ? "" : "s",
               lm_buf_str(&report), violations > 10 ? "\n  ..." : "");
    lm_buf_free(&report);
    return LM_ERROR;
  }
  lm_buf_free(&report);
  return LM_OK;
}

static int sqlite_commit(lm_conn *c, lm_err *err) {
  if (foreign_key_check(c, err) != LM_OK) return LM_ERROR;
  if (sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
    return lm_sqlite_error(c, "COMMIT", err);
  return LM_OK;
}

static int sqlite_rollback(lm_conn *c, lm_err *err) {
  if (sqlite3_get_autocommit(c->db)) return LM_OK;   /* nothing open */
  if (sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
    return lm_sqlite_error(c, "ROLLBACK", err);
  return LM_OK;
}

/* ---- the runner lock ------------------------------------------------- */

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Who holds the lock: a run writes its pid into the lock file once it
 * holds the lock and empties the file before letting go.  A pid whose
 * process is gone was killed holding the lock, which went with it: the
 * holder now is someone who has not written a pid (yet). */
static void lock_holder(int fd, char *out, size_t size) {
  char buf[32] = {0};
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  char *end = NULL;
  long pid = n > 0 ? strtol(buf, &end, 10) : 0;
  if (pid > 0 && end && *end == '\n' &&
      (kill((pid_t)pid, 0) == 0 || errno == EPERM))
    snprintf(out, size, "pid %ld", pid);
  else
    snprintf(out, size, "another process");
}

/* The lock file sits beside the database file itself, symlinks resolved,
 * so every name of one database (a symlink, a relative path from another
 * directory) locks the same file. */
static char *lock_file_name(lm_conn *c) {
  char *real = realpath(c->path, NULL);
  char *name = lm_xasprintf("%s.luamig-lock", real ? real : c->path);
  free(real);
  return name;
}

static int sqlite_lock(lm_conn *c, const char *key, double timeout,
                       void (*waiting)(const char *holder, void *payload),
                       void *payload, lm_err *err) {
  (void)key;   /* one database file, one lock */
  if (strcmp(c->path, ":memory:") == 0) return LM_OK;
  if (c->lock_fd >= 0) return LM_OK;
  char *lock_path = lock_file_name(c);
  int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    lm_err_set(err, "cannot open lock file %s: %s", lock_path, strerror(errno));
    free(lock_path);
    return LM_ERROR;
  }
  double start = lm_now();
  int told = 0;
  char holder[96];
  while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      lm_err_set(err, "cannot lock %s: %s", lock_path, strerror(errno));
      goto fail;
    }
    if (lm_signal_received) {
      lm_err_set(err, "interrupted while waiting for the lock on %s", c->path);
      goto fail;
    }
    if (!told && waiting) {
      lock_holder(fd, holder, sizeof holder);
      waiting(holder, payload);
      told = 1;
    }
    if (lm_now() - start >= timeout) {
      lock_holder(fd, holder, sizeof holder);
      lm_err_set(err, "another luamig run (%s) holds the lock on %s; gave up "
                 "after %g s (lock_timeout)", holder, c->path, timeout);
      lm_err_kind(err, "lock_timeout");
      goto fail;
    }
    sleep_ms(50);
  }
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
    /* The pid is only informative; the flock is what excludes. */
  }
  c->lock_fd = fd;
  c->lock_path = lock_path;
  return LM_OK;
fail:
  close(fd);
  free(lock_path);
  return LM_ERROR;
}

static int sqlite_unlock(lm_conn *c, const char *key, lm_err *err) {
  (void)key;
  (void)err;
  if (c->lock_fd < 0) return LM_OK;
  /* Empty the file first, so no later waiter names this process; then
   * closing the descriptor releases the flock.  The file stays, since
   * removing it would race with a runner that just opened it. */
  if (ftruncate(c->lock_fd, 0) != 0) {
    /* Only informative, as when it was written. */
  }
  close(c->lock_fd);
  c->lock_fd = -1;
  free(c->lock_path);
  c->lock_path = NULL;
  return LM_OK;
}

static int sqlite_has_table(lm_conn *c, const char *schema, const char *table,
                            int *exists, lm_err *err) {
  lm_buf sql = LM_BUF_INIT;
  lm_buf_puts(&sql, "SELECT 1 FROM ");
  if (schema) {
    lm_buf_putc(&sql, '"');
    for (const char *p = schema; *p; p++) {
      if (*p == '"') lm_buf_putc(&sql, '"');
      lm_buf_putc(&sql, *p);
    }
    lm_buf_puts(&sql, "\".");
  }
  lm_buf_puts(&sql, "sqlite_master WHERE type = 'table' AND name = $1");
  lm_value name = {.type = LM_V_TEXT, .s = table, .len = strlen(table)};
  lm_cursor *cur;
  int rc = sqlite_query(c, lm_buf_str(&sql), 1, &name, &cur, err);
  lm_buf_free(&sql);
  if (rc != LM_OK) return rc;
  rc = sqlite_cursor_next(cur, err);
  sqlite_cursor_close(cur);
  if (rc < 0) return LM_ERROR;
  *exists = rc;
  return LM_OK;
}

/* sqlite3_interrupt only sets a flag the running statement checks: safe
 * from a signal handler. */
static void sqlite_cancel(lm_conn *c) {
  if (c && c->db) sqlite3_interrupt(c->db);
}

static const char *const sqlite_schemes[] = {"sqlite", NULL};

/* SQLite's tokenizer: no dollar quotes, [name] and `name` identifiers. */
static int sqlite_render_params(lm_buf *out, const char *sql, size_t nparams,
                                const lm_value *params, lm_err *err) {
  static const lm_sql_lexer lexer = {.bracket_idents = 1,
                                     .render_literal = lm_sqlite_render_literal};
  return lm_sql_render_params(&lexer, out, sql, nparams, params, err);
}

/* What SQLite takes as sqlite_<option> (Alembic's names). */
static const lm_dialect_option sqlite_options[] = {
  {"create_index", "where"},
  {NULL, NULL}
};

const lm_dialect lm_sqlite_dialect = {
  .version = LM_DIALECT_VERSION,
  .name = "sqlite",
  .schemes = sqlite_schemes,
  .transactional_ddl = 1,
  .connect = sqlite_connect,
  .close = sqlite_close,
  .exec = sqlite_exec,
  .query = sqlite_query,
  .cursor_next = sqlite_cursor_next,
  .cursor_ncols = sqlite_cursor_ncols,
  .cursor_colname = sqlite_cursor_colname,
  .cursor_value = sqlite_cursor_value,
  .cursor_close = sqlite_cursor_close,
  .begin = sqlite_begin,
  .commit = sqlite_commit,
  .rollback = sqlite_rollback,
  .lock = sqlite_lock,
  .unlock = sqlite_unlock,
  .has_table = sqlite_has_table,
  .compile = lm_sqlite_compile,
  .quote_ident = lm_sqlite_quote_ident,
  .render_literal = lm_sqlite_render_literal,
  .begin_sql = "BEGIN",
  .commit_sql = "COMMIT",
  .prepare = lm_sqlite_prepare,
  .stmt_exec = lm_sqlite_stmt_exec,
  .stmt_close = lm_sqlite_stmt_close,
  .loader_open = lm_sqlite_loader_open,
  .loader_put = lm_sqlite_loader_put,
  .loader_close = lm_sqlite_loader_close,
  .estimate_rows = lm_sqlite_estimate_rows,
  .cancel = sqlite_cancel,
  .writer_open = lm_sqlite_writer_open,
  .writer_run = lm_sqlite_writer_run,
  .writer_close = lm_sqlite_writer_close,
  .introspect = lm_sqlite_introspect,
  .replay_sql = lm_sqlite_replay_sql,
  .in_transaction = sqlite_in_transaction,
  .introspect_schema = lm_sqlite_introspect_schema,
  .scratch_create = lm_sqlite_scratch_create,
  .scratch_drop = lm_sqlite_scratch_drop,
  .scratch_tune = lm_sqlite_scratch_tune,
  .render_params = sqlite_render_params,
  .options = sqlite_options,
  .read_type = lm_sqlite_read_type,
  .keep = &lm_sqlite_keep,
};
