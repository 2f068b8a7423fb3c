/*
 * luamig.h - the public C interface of luamig, a database schema migration
 * runner.  Build with `pkg-config --cflags --libs luamig` (libluamig.so, or
 * libluamig.a with `--static`).
 *
 *   lm_env *env;
 *   lm_options opts = {.config_path = "luamig.lua"};
 *   if (lm_open(&env, &opts) != 0) { puts(lm_errmsg(env)); ... }
 *   lm_upgrade(NULL, env, "head");
 *   lm_close(env);
 *
 * Every function returns 0 on success or a negative status; lm_errmsg() tells
 * what went wrong.  An env is used by one thread at a time.  Running out of
 * memory fails the call (lm_errcode "out_of_memory") instead of ending the
 * process; the env can then only be lm_close'd (README, "Error codes").
 *
 * An env keeps one database connection from its first command to lm_close
 * (so sqlite://:memory: lives as long as the env); the run lock is taken by
 * each command that writes and released when it returns.  An on_event
 * callback may call lm_current on the env that is running (it reads on the
 * same connection); lm_upgrade, lm_downgrade, lm_stamp and lm_sql refuse to
 * start from there, and lm_close must not be called from there.
 */
#ifndef LUAMIG_H
#define LUAMIG_H

#include <stddef.h>

#define LUAMIG_VERSION "0.1.0"
/* The version as one number: major * 10000 + minor * 100 + patch. */
#define LUAMIG_VERSION_NUM 100

/* What the shared library exports: everything else is hidden (the
 * library is built with -fvisibility=hidden). */
#if defined(__GNUC__)
#define LUAMIG_API __attribute__((visibility("default")))
#else
#define LUAMIG_API
#endif

typedef struct lm_env lm_env;

typedef enum lm_event_kind {
  LM_EVENT_INFO,                /* a log line */
  LM_EVENT_MIGRATION_START,     /* a migration begins (revision set) */
  LM_EVENT_MIGRATION_DONE,      /* a migration committed */
  LM_EVENT_LOCK_WAIT,           /* waiting for another runner */
  LM_EVENT_PROGRESS,            /* rows done in a long operation */
  LM_EVENT_STATEMENT            /* SQL about to run (lm_options.statements) */
} lm_event_kind;

typedef struct lm_event {
  lm_event_kind kind;
  const char *revision;         /* may be NULL */
  const char *message;
} lm_event;

typedef void (*lm_event_fn)(const lm_event *event, void *payload);

typedef struct lm_options {
  const char *config_path;      /* NULL: $LUAMIG_CONFIG, else ./luamig.lua */
  const char *url;              /* overrides $LUAMIG_URL and the config */
  const char *script_location;  /* overrides the config */
  const char *version_table;    /* overrides the config */
  const char *const *x;         /* "key=value" strings, for op.x */
  size_t nx;
  int quiet;                    /* no progress on stderr */
  lm_event_fn on_event;
  void *event_payload;
  int statements;               /* also LM_EVENT_STATEMENT for each statement */
} lm_options;

/* Open an environment.  *out is set even on failure (so lm_errmsg works),
 * NULL only when memory ran out before there was one; always lm_close
 * it. */
LUAMIG_API int lm_open(lm_env **out, const lm_options *opts);
LUAMIG_API void lm_close(lm_env *env);
LUAMIG_API const char *lm_errmsg(const lm_env *env);
/* The code of the last failure, for programs: the SQLSTATE when the
 * database gave one, else a luamig code (README, "Error codes"), else "". */
LUAMIG_API const char *lm_errcode(const lm_env *env);
/* Where the last failure happened, when a revision script failed: its
 * revision id, the script's path and the line in it (NULL, NULL, 0 where
 * unknown, e.g. a failure outside any script); and the SQLSTATE when the
 * database gave one ("" otherwise).  Any out-parameter may be NULL; the
 * strings belong to env until its next call. */
LUAMIG_API void lm_errinfo(const char **revision, const char **file,
                           int *line, const char **sqlstate,
                           const lm_env *env);

/* Upgrade or downgrade to a target ("head", "base", "+1", "-1", an id...).
 * applied (may be NULL) receives a NULL-terminated, malloc'ed array of the
 * revisions run, in order; free it with lm_free_list. */
LUAMIG_API int lm_upgrade(char ***applied, lm_env *env, const char *target);
LUAMIG_API int lm_downgrade(char ***applied, lm_env *env,
                            const char *target);
/* The offline (--sql) script for "upgrade"/"downgrade"/"stamp" and a
 * target or FROM:TO range; *sql is malloc'ed. */
LUAMIG_API int lm_sql(char **sql, lm_env *env, const char *command,
                      const char *target);
/* Mark the database as being at revs without running anything. */
LUAMIG_API int lm_stamp(lm_env *env, const char *const *revs, size_t nrevs, int purge);
/* The revisions the version table holds (NULL-terminated, malloc'ed). */
LUAMIG_API int lm_current(char ***heads, lm_env *env);
LUAMIG_API void lm_free_list(char **list);
/* The heads of the scripts (NULL-terminated, malloc'ed), without a
 * database. */
LUAMIG_API int lm_heads(char ***heads, lm_env *env);
/* The live database's schema model as `luamig schema --json` prints it
 * (without the newline): every table, or the ntables named ("name" or
 * "schema.name"); *json is malloc'ed.  Only reads. */
LUAMIG_API int lm_schema_json(char **json, lm_env *env,
                              const char *const *tables, size_t ntables);
/* `luamig verify`: every downgrade undoes its upgrade, checked on a
 * scratch database (scratch_url, which must be empty; NULL: one made on
 * the configured server and dropped after).  *json (malloc'ed) receives
 * the report `verify --json` prints, when verify ran, also on failure;
 * a failure's lm_errmsg lists the problems.  The configured database is
 * never touched. */
LUAMIG_API int lm_verify(char **json, lm_env *env, const char *scratch_url);
/* The version of the library that runs (LUAMIG_VERSION when built). */
LUAMIG_API const char *lm_version(void);

#endif
