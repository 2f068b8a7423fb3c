/*
 * core.h - the environment every command works in, shared by the command
 * line (cli.c), the Lua module (module.c) and the C API (api.c).
 *
 * An lm_env owns: the configuration, a private Lua state in which the
 * config file and the revision scripts are loaded, the revision graph, and
 * (while a command needs one) a database connection through a dialect.
 */
#ifndef LM_CORE_H
#define LM_CORE_H

#include <stdio.h>

#include <lua.h>

#include "dialect.h"
#include "graph.h"
#include "luamig.h"
#include "operation.h"
#include "util.h"

/* What identifies a script file's version for the metadata cache. */
typedef struct lm_script_key {
  long long size, mtime_sec, mtime_nsec, ino, ctime_sec, ctime_nsec;
} lm_script_key;

/* One revision script, as loaded. */
typedef struct lm_script {
  char *path;
  char *doc;                    /* leading comment block, markers stripped */
  lm_revision rev;              /* strings owned here (see script.c) */
  int transactional;            /* 0: transactional = false */
  char checksum[65];            /* SHA-256 of the file */
  lm_script_key key;
  int ref;                      /* registry reference to the script's table */
} lm_script;

struct lm_env {
  lm_err err;                   /* the last failure, for lm_errmsg */
  lua_State *L;                 /* config and scripts live here */
  struct lm_lua_heap *lua_heap; /* L's memory */

  /* configuration */
  char *config_path;            /* NULL when no file was read */
  char *url;
  char *script_location;
  char *version_table;
  char *version_table_schema;
  char *log_table;
  int transaction_per_migration;
  double lock_timeout;
  int strict_checksums;         /* a drifted or missing script is an error */
  lm_strvec x;                  /* -x key=value, as given */
  int quiet;
  int statements;               /* on_event hears each statement (lm_options) */

  /* scripts and graph, loaded on first need */
  lm_script *scripts;
  size_t nscripts;
  int scripts_loaded;
  lm_arena script_arena;        /* the scripts' strings */
  char *cache_buf;              /* the metadata cache, which cached scripts point into */
  lm_graph *graph;

  /* database */
  const lm_dialect *dialect;
  lm_url parsed_url;
  lm_conn *conn;
  int locked;
  int tx_open;                  /* a transaction is open (or, offline, written) */
  int tx_lost;                  /* the script's SQL ended it (lm_tx_check) */
  lm_stmt *stmts[6];            /* the runner's prepared statements
                                   (exec_online.c) */
  struct lm_nontx *nontx;       /* runner.c: the transactional = false script running */

  /* Where op.* calls go (DESIGN 8: operations are values; the executor
   * decides what happens to them): executor.h. */
  const struct lm_executor *exec;
  lm_buf *sql_out;              /* offline: the script being written */
  const char *running;          /* the script path being run, for errors */
  const char *running_fn;       /* its function running: "upgrade", ... */
  struct lm_hold *hold;         /* what holds conn between op.* calls */

  lm_event_fn on_event;
  void *event_payload;
  const char *command;          /* the command running (api.c): a callback
                                   calling back may only read */
  lm_strvec include_schemas;    /* config: schemas introspection reads
                                   (none: the default one) */
  lm_err raised;                /* op.c: the last failure an op raised as a
                                   Lua error (its text and code), so the
                                   script's error keeps the code */
  int oom_spent;                /* oom.c: memory ran out; only lm_close */
  struct lm_recorder *recorder; /* exec_record.c: op.* calls are recorded
                                   (lint), not run */
  /* models (models.c): the file, and which tables check and
   * autogenerate compare (names or patterns; none: all) */
  char *models;
  lm_strvec include_tables, exclude_tables;
  int keep_dropped;             /* config: drops keep what they remove */
  int backup;                   /* config backup = true, or --backup */
  const char *backup_path;      /* --backup PATH (borrowed), or NULL */
};

/* config.c */
int lm_config_load(lm_env *env, const lm_options *opts);

/* sandbox.c: what Lua code run by luamig may do (README, Safety); the
 * hook that stops it on SIGINT/SIGTERM.  Installed before the config runs. */
void lm_sandbox_install(lua_State *L);
/* A message handler for lua_pcall: a non-string error is described. */
int lm_lua_message_handler(lua_State *L);

/* script.c */
int lm_scripts_load(lm_env *env);
void lm_scripts_free(lm_env *env);
lm_script *lm_script_at(lm_env *env, size_t graph_idx);
/* script_cache.c: the metadata cache beside the scripts. */
/* The cache's entries by script name (none when it is missing or
 * damaged); *buffer holds them and is the caller's to free. */
void lm_cache_read(lm_env *env, lm_map *entries, char **buffer,
                   size_t *len);
int lm_cache_fill(lm_env *env, lm_script *s, const char *entry,
                  const char *end);
void lm_cache_write(lm_env *env);
int lm_script_stat(int dirfd, const char *name, lm_script_key *key);
struct stat;
void lm_script_key_of(lm_script_key *key, const struct stat *st);
/* Read a script's file and compute its SHA-256. */
int lm_script_checksum(const lm_script *s, char out[65], lm_err *err);
/* Call upgrade() or downgrade() of a script with the op table. */
int lm_script_run(lm_env *env, lm_script *s, int upgrade);
/* Call the script's function `fn` (upgrade, downgrade, fixture) with the
 * op table; *found = 0, and nothing runs, when it has none. */
int lm_script_call(lm_env *env, lm_script *s, const char *fn, int *found);
/* Does the script define a function `fn`?  A value of another kind there
 * is an error. */
int lm_script_has(lm_env *env, lm_script *s, const char *fn, int *has);

/* op.c: the op table passed to upgrade(op) / downgrade(op). */
void lm_op_push_table(lm_env *env);
/* For the op.* functions defined outside op.c (op_data.c). */
lm_env *lm_op_env(lua_State *L);
/* A data operation that holds the connection while the script's code
 * runs in its midst (a bulk insert's open stream, a backfill's write in
 * progress).  Before an op.* function or a query's iterator uses the
 * connection, release frees it (and may raise); before a finalizer
 * touches it, quiesce (when not NULL) waits until it is free, raising
 * nothing. */
typedef struct lm_hold {
  void (*release)(lua_State *L, struct lm_hold *self);
  void (*quiesce)(struct lm_hold *self);
} lm_hold;
/* An arena owned by a userdata pushed on the stack (freed on error too). */
lm_arena *lm_op_push_arena(lua_State *L);
/* A Lua value as an lm_value, strings not copied; 0 if it cannot bind. */
int lm_op_value(lua_State *L, int idx, lm_value *v);
/* A Lua value as a bound parameter; raises on a type that cannot bind. */
void lm_op_to_value(lua_State *L, lm_arena *a, int idx, const char *op,
                    int pos, lm_value *v);
void lm_op_push_null(lua_State *L);     /* op.null */
/* Raise err (freed) as a Lua error that starts with the script line. */
int lm_op_raise(lua_State *L, lm_err *err);
/* The error message on top of L is about to be raised with the code of
 * `code` (its SQLSTATE or luamig code): remember both for the script's
 * error (lm_op_raise does this itself). */
void lm_op_note_raised(lua_State *L, const lm_err *code);
/* op_data.c: add query, bulk_insert, backfill to the op table on top. */
void lm_op_data_register(lua_State *L);
/* op_data.c: close the op.query cursors a script left open (before the
 * connection goes away). */
void lm_op_data_release(lm_env *env);
/* op_data.c: is a string UTF-8 text without NUL bytes (else: bytes)? */
int lm_data_is_text(const char *s, size_t len);

/* executor.c: an operation value, or one statement with parameters, to
 * the current executor (run online, written offline, ...). */
int lm_op_apply(lm_env *env, const lm_op *op, lm_err *err);
int lm_op_apply_execute(lm_env *env, const lm_op *op, int64_t *affected,
                        lm_err *err);
int lm_exec_sql(lm_env *env, const char *sql, size_t nparams,
                const lm_value *params, int64_t *affected, lm_err *err);

/* runner.c */
int lm_pick_dialect(lm_env *env);       /* from the URL, without connecting */
int lm_connect(lm_env *env);
void lm_disconnect(lm_env *env);
void lm_release_lock(lm_env *env);      /* the connection stays */
int lm_read_heads(lm_env *env, lm_strvec *heads);
int lm_run_plan(lm_env *env, const lm_plan *plan, const char *command,
                lm_strvec *applied);
/* Offline, before a range that starts at `heads`: the upgrades from base
 * to them, followed on the offline model only (nothing written). */
int lm_run_replay(lm_env *env, const char *const *heads, size_t nheads);
int lm_ensure_version_table(lm_env *env);
int lm_begin_run(lm_env *env);
int lm_tx_begin(lm_env *env);
int lm_tx_commit(lm_env *env);
/* A commit whose work a rerun resumes (a backfill's saved position), so a
 * non-transactional script needs no dirty mark for it. */
int lm_tx_commit_resumable(lm_env *env);
void lm_tx_rollback(lm_env *env);
/* LM_ERROR (message in err) when the transaction luamig opened is no
 * longer open on the connection: the script's SQL ended it. */
int lm_tx_check(lm_env *env, lm_err *err);
/* Append a log row of status ok that records a person's decision (a
 * stamp that confirms the revision, an accepted checksum), inside the
 * caller's transaction. */
int lm_log_note(lm_env *env, const char *revision, const char *direction,
                const char *checksum, const char *message, lm_err *err);
/* After a stamp of a dirty database: log the revisions it is at (when the
 * stamp changed nothing, its steps logged none) and say the mark is gone. */
int lm_stamp_clear_dirty(lm_env *env, int log_heads);
int lm_offline_preamble(lm_env *env, int from_base);
int lm_purge_versions(lm_env *env);
int lm_offline_drop_version_table(lm_env *env);
/* Is the run lock free?  *held set and the holder described when not. */
int lm_lock_probe(lm_env *env, int *held, lm_buf *holder);

/* api.c: run an embedded Lua module's function (lua/NAME.lua returns a
 * table of functions): pushes its one result. */
int lm_lua_call(lm_env *env, const char *module, const char *fn, int nargs);
/* Revision ids of a resolved list. */
void lm_ids(lm_env *env, const lm_revlist *l, lm_strvec *out);

/* status.c: the state a person needs before moving the database. */
typedef struct lm_drift {
  lm_strvec drifted;            /* "rev\tpath\tlogged\tfile" */
  lm_strvec missing;            /* revisions applied whose script is gone */
} lm_drift;
void lm_drift_free(lm_drift *d);
/* Compare the log's checksums of applied scripts with the files. */
int lm_check_drift(lm_env *env, lm_drift *out);
/* The dirty mark, if any: *dirty set, description in out. */
int lm_check_dirty(lm_env *env, int *dirty, lm_buf *out);
/* stamp --accept-checksums: log the current checksum of each named
 * applied revision whose script drifted, with who accepted it. */
int lm_accept_checksums(lm_env *env, const char *const *revs, size_t nrevs);
/* Before upgrade/downgrade: refuse when dirty; warn (or, strict, refuse)
 * when scripts drifted. */
int lm_preflight(lm_env *env);
/* What `status` shows, read in one go (scripts loaded, connected). */
typedef struct lm_status {
  lm_strvec heads;              /* the version table's revisions */
  lm_plan pending;              /* the upgrade to every head */
  char *pending_error;          /* why that upgrade cannot be planned, or NULL */
  lm_drift drift;
  int dirty, locked;
  lm_buf dirty_mark, lock_holder;
} lm_status;
int lm_status_read(lm_env *env, lm_status *out);
void lm_status_free(lm_status *st);

/* Report progress (stderr unless quiet, and the on_event callback). */
void lm_emit(lm_env *env, lm_event_kind kind, const char *revision,
              const char *fmt, ...) LM_PRINTF(4, 5);

#endif
