/*
 * dialect.h - the one seam between the core and a database.
 *
 * A dialect is a struct of function pointers, like SQLite's
 * sqlite3_io_methods: the core only ever calls through it and never names a
 * database.  The struct grows only by appending members, and `version` says
 * how many a dialect fills in.  Every function that can fail returns LM_OK or
 * a negative status and leaves a message in `err`; for a failed statement the
 * message holds the database's own words and the SQL, and err->sqlstate the
 * SQLSTATE where the database has one.
 */
#ifndef LM_DIALECT_H
#define LM_DIALECT_H

#include "../src/operation.h"
#include "../src/util.h"

typedef struct lm_conn lm_conn;         /* a dialect's connection */
typedef struct lm_cursor lm_cursor;     /* a streaming result */
typedef struct lm_stmt lm_stmt;         /* a prepared statement */
typedef struct lm_schema lm_schema;     /* a schema model (src/schema.h) */
typedef struct lm_writer lm_writer;     /* a backfill's batch writer */
typedef struct lm_loader lm_loader;     /* a bulk load's stream */
struct lm_sql_spec;                     /* a statement of the core's (below) */

/* A parsed database URL (see src/url.c). */
typedef struct lm_url {
  char *full;           /* the URL as given */
  char *scheme;         /* "sqlite", "postgresql", ... before "://" */
  char *rest;           /* everything after "://" */
  char *display;        /* the URL with any password replaced by "***" */
} lm_url;

/* Parse "scheme://rest" (src/url.c); the message never shows a password. */
int lm_url_parse(lm_url *out, const char *url, lm_err *err);
void lm_url_free(lm_url *url);

/* What a compile call may consult. */
typedef struct lm_compile_ctx {
  lm_conn *conn;        /* NULL when offline (--sql) */
  int offline;
  /* Offline: the schema the migrations so far give, kept current by the
   * executor (a dialect that rebuilds tables reads shapes from it). */
  lm_schema *model;
  const char *revision; /* the revision being run, for messages; or NULL */
} lm_compile_ctx;

/* An option an operation takes under a dialect's name (dialect.h,
 * lm_dialect.options): create_index's "where" as "postgresql_where". */
typedef struct lm_dialect_option {
  const char *op;               /* "create_index" */
  const char *option;           /* "where": the operation's own option */
} lm_dialect_option;

/* ---- version 10 (see lm_dialect.keep): kept data and backups ---------- */

/* What a dialect does for src/keep.c and src/backup.c.  A kept table is
 * named by the core: `prefix` then the kept name, in `schema`. */
typedef struct lm_keep_methods {
  const char *schema;           /* where kept tables live; NULL: the default */
  const char *prefix;           /* what their names start with */
  const char *prepare_sql;      /* run before a keep (creates the schema), or NULL */
  int ctas_counts;              /* CREATE TABLE ... AS gives its rows as
                                   the affected count */
  /* Append to out one line each (the dialect's own form, read back only
   * by restore) for what depends on `column` of the table: its indexes
   * and constraints; with column NULL, what the table has and the foreign
   * keys of other tables that point at it. */
  int (*dependents)(lm_conn *conn, const char *schema, const char *table,
                    const char *column, lm_strvec *out, lm_err *err);
  /* Move the table into the kept area under the name `kept` (prefix
   * included), after removing what would clash with a table made again
   * under the old name or follow it there (the foreign keys pointing at
   * it, which dependents listed). */
  int (*move)(lm_conn *conn, const char *schema, const char *table,
              const char *kept, lm_err *err);
  /* Make one line of dependents again on the table, unless something of
   * its name is there; *made = 1 when it ran. */
  int (*restore)(lm_conn *conn, const char *schema, const char *table,
                 const char *line, int *made, lm_err *err);
  /* INSERT the rows of the kept table into the table (columns cols), so
   * that the table's own numbering continues after them; *rows copied. */
  int (*copy_rows)(lm_conn *conn, const char *schema, const char *table,
                   const char *kept, const char *const *cols, size_t ncols,
                   int64_t *rows, lm_err *err);
  /* The rows of a table about to be kept, as fast as a move: exact, or
   * the database's own estimate where counting would take longer. */
  int (*rows)(lm_conn *conn, const char *schema, const char *table,
              int64_t *rows, lm_err *err);
  /* The bytes a kept table takes; -1 when the database cannot tell. */
  int (*size)(lm_conn *conn, const char *kept, int64_t *bytes, lm_err *err);
  /* Back the database up into the file `path` (NULL: beside the database,
   * or in the current directory, its name followed by `suffix`); only the
   * tables named (schemas[i] NULL: the default one), or all with
   * ntables == 0, where the database can choose.  *written: the file
   * (malloc'ed).  An existing file is never overwritten. */
  int (*backup)(lm_conn *conn, const lm_url *url, const char *path,
                const char *suffix, const char *const *schemas,
                const char *const *tables, size_t ntables, char **written,
                lm_err *err);
} lm_keep_methods;

typedef struct lm_dialect {
  int version;                  /* LM_DIALECT_VERSION of the header it was built for */
  const char *name;             /* "postgresql", "sqlite": what op.dialect shows */
  const char *const *schemes;   /* URL schemes it serves, NULL-terminated */
  int transactional_ddl;        /* DDL can roll back */

  /* Connections.  connect sets the application name to `app_name` where
   * the database has one (so a waiting runner can say who holds a lock). */
  int (*connect)(lm_conn **out, const lm_url *url, const char *app_name,
                 lm_err *err);
  void (*close)(lm_conn *conn);

  /* Run one statement with $1, $2, ... parameters.  With nparams == 0 the
   * text may hold several statements separated by ';'.  *affected (if not
   * NULL) receives the rows changed by the last statement. */
  int (*exec)(lm_conn *conn, const char *sql, size_t nparams,
              const lm_value *params, int64_t *affected, lm_err *err);

  /* Streaming query: rows are fetched as cursor_next asks for them, never
   * the whole result at once.  Other statements may run on the same
   * connection while a cursor is open. */
  int (*query)(lm_conn *conn, const char *sql, size_t nparams,
               const lm_value *params, lm_cursor **out, lm_err *err);
  /* 1: a row is ready, 0: no more rows, <0: error.  The row's values stay
   * valid until the next call to cursor_next or cursor_close. */
  int (*cursor_next)(lm_cursor *cur, lm_err *err);
  size_t (*cursor_ncols)(lm_cursor *cur);
  const char *(*cursor_colname)(lm_cursor *cur, size_t col);
  const lm_value *(*cursor_value)(lm_cursor *cur, size_t col);
  void (*cursor_close)(lm_cursor *cur);

  /* Transactions.  begin takes the write lock at once where the database
   * would otherwise defer it (SQLite: BEGIN IMMEDIATE). */
  int (*begin)(lm_conn *conn, lm_err *err);
  int (*commit)(lm_conn *conn, lm_err *err);
  int (*rollback)(lm_conn *conn, lm_err *err);

  /* A lock held across transactions for a whole run, keyed by `key` (the
   * version table's qualified name, quoted where it needs it), which the
   * dialect resolves to what the database is, so that every name of one
   * database takes one lock.  Waits up to timeout seconds; while it waits
   * it calls `waiting` (if not NULL) once with a description of the
   * holder, before giving up.  LM_ERROR with a clear message when the
   * time runs out. */
  int (*lock)(lm_conn *conn, const char *key, double timeout,
              void (*waiting)(const char *holder, void *payload),
              void *payload, lm_err *err);
  int (*unlock)(lm_conn *conn, const char *key, lm_err *err);

  /* Does a table exist?  schema NULL: the default one. */
  int (*has_table)(lm_conn *conn, const char *schema, const char *table,
                   int *exists, lm_err *err);

  /* Compile one operation into statements appended to `out` (without
   * trailing ';').  LM_OP_EXECUTE is not compiled: the core runs its SQL. */
  int (*compile)(const lm_compile_ctx *ctx, const lm_op *op, lm_strvec *out,
                 lm_err *err);

  /* Append an identifier, quoted only when it needs it, always escaped. */
  void (*quote_ident)(lm_buf *out, const char *ident);
  /* Append a value as an SQL literal (for --sql output). */
  void (*render_literal)(lm_buf *out, const lm_value *value);

  /* Offline script framing: the statements that open and close a
   * transaction in --sql output. */
  const char *begin_sql;
  const char *commit_sql;

  /* ---- version 2: data migrations ---------------------------------- */

  /* A statement prepared once and run many times with $n parameters
   * (backfill batches, SQLite bulk inserts). */
  int (*prepare)(lm_conn *conn, const char *sql, lm_stmt **out, lm_err *err);
  int (*stmt_exec)(lm_stmt *stmt, size_t nparams, const lm_value *params,
                   int64_t *affected, lm_err *err);
  void (*stmt_close)(lm_stmt *stmt);
  /* A loader puts rows into one table as one stream, as fast as the
   * database loads data (PostgreSQL: one COPY FROM STDIN; SQLite: one
   * prepared INSERT stepped per row).  loader_put takes nrows * ncols
   * values, row by row, and keeps none of them; it may return before the
   * database has stored them, so that the database works while the caller
   * prepares the next rows, and an error in them is then reported by a
   * later put or by loader_close, which waits for the database and frees
   * the loader.  abandon != 0 ends a failed load (err already says why).
   * Nothing else may use the connection between open and close.  Errors
   * count rows from 1 over the whole stream. */
  int (*loader_open)(lm_conn *conn, const char *schema, const char *table,
                     size_t ncols, const char *const *columns,
                     lm_loader **out, lm_err *err);
  int (*loader_put)(lm_loader *l, size_t nrows, const lm_value *values,
                    lm_err *err);
  int (*loader_close)(lm_loader *l, int abandon, lm_err *err);
  /* The database's estimate of a table's row count, for a progress ETA;
   * *out = -1 when it has none. */
  int (*estimate_rows)(lm_conn *conn, const char *schema, const char *table,
                       int64_t *out, lm_err *err);
  /* Ask the server to stop the statement running on conn.  Called from a
   * signal handler: async-signal-safe, no allocation, best effort. */
  void (*cancel)(lm_conn *conn);

  /* ---- version 3: backfill writes ---------------------------------- */

  /* A writer applies a backfill's changes to one table, one batch at a
   * time, in as few statements as the database allows (PostgreSQL: one
   * UPDATE ... FROM unnest(...) per batch; SQLite: one UPDATE over the
   * batch's range of keys, asking the writer for each row's values).
   * Rows are found by their key columns and arrive in key order: order
   * > 0 ascending, < 0 descending, 0 unknown.  writer_run's values hold nrows rows of nkeys key values
   * followed by ncols new values for cols; set (NULL: every one) holds
   * nrows * ncols flags telling which columns a row changes, the others
   * keeping their value.  *affected receives the rows updated. */
  int (*writer_open)(lm_conn *conn, const char *schema, const char *table,
                     size_t nkeys, const char *const *keys, int order,
                     lm_writer **out, lm_err *err);
  int (*writer_run)(lm_writer *w, size_t ncols, const char *const *cols,
                    size_t nrows, const lm_value *values,
                    const unsigned char *set, int64_t *affected, lm_err *err);
  void (*writer_close)(lm_writer *w);

  /* ---- schema model (may be NULL) ------------------------------------ */

  /* Add one table's shape as the database has it to `model` (replacing a
   * table of that name there); *found = 0 when it does not exist. */
  int (*introspect)(lm_conn *conn, const char *schema, const char *table,
                    lm_schema *model, int *found, lm_err *err);
  /* Follow raw SQL (op.execute) on a replayed model: apply what the dialect
   * can read, and mark what it changed in ways it cannot follow as unknown
   * since `revision`. */
  void (*replay_sql)(lm_schema *model, const char *sql, const char *revision);

  /* ---- version 4 ------------------------------------------------------ */

  /* A query whose whole result may be held at once (a backfill's batch,
   * bounded by its LIMIT), fetched in one exchange rather than streamed;
   * read through the cursor functions like query's.  NULL: query. */
  int (*query_bounded)(lm_conn *conn, const char *sql, size_t nparams,
                       const lm_value *params, lm_cursor **out, lm_err *err);

  /* ---- version 5 ------------------------------------------------------ */

  /* The statement an offline (--sql) script starts with, before any
   * transaction, making the script mean what it says on any server
   * (PostgreSQL: standard_conforming_strings on, so a backslash in a
   * literal is just a backslash).  NULL: none. */
  const char *offline_header_sql;

  /* Is a transaction open on conn?  The core asks after each statement it
   * runs inside its own transaction, so that a COMMIT or ROLLBACK in a
   * script's SQL is caught before anything else runs in autocommit. */
  int (*in_transaction)(lm_conn *conn);

  /* ---- version 6 ------------------------------------------------------ */

  /* Add every table of the given schemas (nschemas == 0: the default one)
   * to `out`, except those named in skip (the luamig tables), with views
   * listed by name.  The model is normalized so that the same schema reads
   * the same on every dialect and however it was made: portable types where
   * one matches (LM_T_RAW otherwise, in the database's words), defaults as
   * the typed values an operation gives (LM_DEF_STRING, _INT, _BOOL,
   * _FUNC "now"; LM_DEF_SQL without casts or outer parentheses, decimals
   * included: compare defaults by their lm_default_text),
   * sequence and rowid numbering as lm_mcolumn.serial rather than a
   * default, constraints and indexes with their parts filled in (columns,
   * referent, actions in upper case, NULL for NO ACTION; deferrable 0/1,
   * initially "DEFERRED" or NULL; index columns, expressions, WHERE,
   * method).  Tables in a non-default schema carry its name; the rest NULL.
   * PostgreSQL reads the catalog in a fixed number of queries. */
  int (*introspect_schema)(lm_conn *conn, const char *const *schemas,
                           size_t nschemas, const char *const *skip,
                           size_t nskip, lm_schema *out, lm_err *err);

  /* ---- scratch databases (verify) ------------------------------------ */

  /* Make a new empty database beside the one `url` names (PostgreSQL: a
   * CREATE DATABASE of a fresh name on the same server, as the same user;
   * SQLite: a new temporary file) and give its URL in *scratch_url
   * (malloc'ed).  The database `url` names is not changed.  A user who may
   * not create one gets a message naming the privilege. */
  int (*scratch_create)(const lm_url *url, char **scratch_url, lm_err *err);
  /* Remove what scratch_create made (no connection to it may be open). */
  int (*scratch_drop)(const lm_url *url, const char *scratch_url,
                      lm_err *err);
  /* Trade durability for speed on a connection to a scratch database,
   * whose contents nobody keeps (SQLite: synchronous = OFF; PostgreSQL:
   * synchronous_commit = off).  NULL: nothing to do. */
  int (*scratch_tune)(lm_conn *conn, lm_err *err);

  /* ---- offline placeholders ------------------------------------------ */

  /* Append sql to out with each $N placeholder replaced by the literal of
   * params[N-1] (for --sql output), found as the database's own tokenizer
   * finds them: inside a string, a quoted identifier, a dollar-quoted body
   * or a comment, "$1" stays as written.  A placeholder with no value is an
   * error naming it. */
  int (*render_params)(lm_buf *out, const char *sql, size_t nparams,
                       const lm_value *params, lm_err *err);

  /* ---- version 7: dialect-named options ------------------------------ */

  /* The options operations take under this dialect's name, as Alembic's
   * dialect keyword arguments: "<name>_<option>" for each entry, up to
   * {NULL, NULL}.  The core accepts those keys, applies one on this
   * dialect only (and only where the plain option is not given), ignores
   * it on another, and refuses any other key with this dialect's prefix,
   * naming it.  NULL: none. */
  const lm_dialect_option *options;

  /* ---- version 8: lock-safe runs (statement_lock_timeout) ----------- */

  /* The statement that makes every later statement of the session give up
   * waiting for a lock after `seconds` (PostgreSQL: SET lock_timeout);
   * seconds <= 0 puts the server's setting back.  NULL: the database has
   * no such setting, and luamig sets none. */
  void (*lock_timeout_sql)(lm_buf *out, double seconds);
  /* Did the statement fail because it waited too long for a lock? */
  int (*is_lock_timeout)(const lm_err *err);
  /* After such a failure (its transaction rolled back): the sessions that
   * hold locks on the relations `text` names (the failed statement and
   * its message), described one per line as "pid N (state): query" into
   * out; nothing when none is left. */
  int (*lock_blockers)(lm_conn *conn, const char *text, lm_buf *out,
                       lm_err *err);

  /* ---- version 9: models (autogenerate, check) ---------------------- */

  /* The type a column declared with `t` reads back as through
   * introspect_schema, in place (strings in the model's arena): a model
   * and the database it made then compare equal (PostgreSQL: "int4" is
   * integer; SQLite: timestamptz is DATETIME).  NULL: types read back as
   * declared. */
  void (*read_type)(lm_schema *model, lm_type *t);

  /* ---- version 10: kept data and backups (src/keep.c, src/backup.c) --- */

  /* NULL: drops keep nothing and upgrade --backup is refused. */
  const lm_keep_methods *keep;

  /* ---- version 11: the core's own statements ------------------------ */

  /* Write one of the statements the core runs for itself (lm_sql_spec).
   * NULL: lm_core_sql writes them in standard SQL, quoting names with
   * quote_ident, which both dialects here accept; a dialect whose SQL
   * differs (no LIMIT, another way to say "now") fills this in. */
  void (*core_sql)(lm_buf *out, const struct lm_sql_spec *spec);

  /* ---- version 12: lint ---------------------------------------------- */

  /* Schema changes take locks that block readers or writers for as long
   * as they run (PostgreSQL): lint's lock rules apply (an index without
   * concurrently, a constraint without not_valid, ...). */
  int ddl_locks_block;
} lm_dialect;

#define LM_DIALECT_VERSION 12

/* The statements the core runs for itself, described rather than
 * written in the core: the version table, the log, a backfill's keyset
 * read and saved position, the INSERT of one row (an offline bulk
 * insert), and a read of a table's rows (verify).  Parameters are $1,
 * $2, ... in the order each kind lists. */
typedef enum lm_sql_kind {
  LM_SQL_VERSION_READ,          /* every version_num */
  LM_SQL_VERSION_INSERT,        /* $1 the version */
  LM_SQL_VERSION_DELETE,        /* $1 the version */
  LM_SQL_VERSION_UPDATE,        /* $1 the new version, $2 the old one */
  LM_SQL_VERSION_PURGE,         /* every row goes */
  /* A log row: $1 revision, $2 direction, $3 checksum, then (unless
   * `now`: started_at is the time the statement runs) $4 started_at,
   * then duration, run_by, status, message. */
  LM_SQL_LOG_INSERT,
  /* End a "running" row: $1 status, $2 duration, $3 message, $4
   * revision, $5 direction, $6 started_at. */
  LM_SQL_LOG_END,
  /* direction, status, revision, started_at, message of the rows that
   * matter to the dirty mark (not ok, or a stamp), oldest first. */
  LM_SQL_LOG_DIRTY,
  /* revision, direction, checksum of the ok rows, oldest first. */
  LM_SQL_LOG_CHECKSUMS,
  /* A backfill's saved position: $1 revision, $2 name (READ: last_key,
   * rows_read, rows_updated, rows_skipped; UPDATE and INSERT: $1
   * last_key, $2..$4 the counts, $5 revision, $6 name). */
  LM_SQL_STATE_READ,
  LM_SQL_STATE_UPDATE,
  LM_SQL_STATE_INSERT,
  LM_SQL_STATE_DELETE,
  /* A backfill's batch: keys then columns (NULL: every one) where
   * `where` holds, in key order, after the last key ($1..$nkeys, when
   * `after`), LIMIT the last parameter. */
  LM_SQL_KEYSET_READ,
  /* One row into columns: $1..$ncolumns. */
  LM_SQL_INSERT_ROW,
  /* Every row of columns (none: a constant per row), in no order. */
  LM_SQL_READ_ROWS
} lm_sql_kind;

typedef struct lm_sql_spec {
  lm_sql_kind kind;
  const char *schema;           /* NULL: the default one */
  const char *table;
  const char *const *columns;
  size_t ncolumns;
  const char *const *keys;      /* KEYSET_READ */
  size_t nkeys;
  const char *where;            /* KEYSET_READ: SQL, or NULL */
  int order;                    /* KEYSET_READ: > 0 ascending, < 0 descending */
  int after;                    /* KEYSET_READ: a last key is given */
  int now;                      /* LOG_INSERT: started_at is the time it runs */
} lm_sql_spec;

/* Append the statement spec describes, as dialect d writes it
 * (dialects/core_sql.c). */
void lm_core_sql(const lm_dialect *d, lm_buf *out, const lm_sql_spec *spec);
/* Append schema.name (schema NULL: name alone), each quoted as d quotes
 * identifiers. */
void lm_sql_qualified(const lm_dialect *d, lm_buf *out, const char *schema,
                      const char *name);

/* The dialect serving a URL scheme, or NULL (dialects/registry.c). */
const lm_dialect *lm_dialect_for_scheme(const char *scheme);
/* The dialect lint checks for when no database is configured: the first
 * one whose schema changes take blocking locks, so that every rule
 * applies (dialects/registry.c). */
const lm_dialect *lm_dialect_for_lint(void);
/* The registered dialects, NULL-terminated. */
extern const lm_dialect *const lm_dialects[];
/* "SQLite 3.x, libpq 15.y": the libraries the dialects run with
 * (dialects/versions.c). */
void lm_dialect_versions(lm_buf *out);

#endif
