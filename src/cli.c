/*
 * cli.c - the luamig command: argument parsing, the table of commands,
 * and the commands that move the database (upgrade, downgrade, stamp,
 * ensure_version); those that read are in cli_read.c.  Results go to
 * stdout, progress and errors to stderr.
 */
#define _POSIX_C_SOURCE 200809L
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "autogen.h"
#include "cli_args.h"
#include "executor.h"

typedef int (*command_fn)(lm_env *env, lm_args *a);

typedef struct command {
  const char *name;
  command_fn run;
  unsigned flags;               /* LM_F_* the command accepts */
  int min_pos, max_pos;         /* positional arguments (-1: any number) */
  const char *usage;
  const char *help;
} cli_command;

static const char global_usage[] =
  "usage: luamig [-c FILE] [--url URL] [-x KEY=VALUE] [--json] [-q] COMMAND ...\n"
  "\n"
  "commands:\n"
  "  init [DIR]                       create luamig.lua and a migrations folder\n"
  "  revision -m MSG [--head H] [--splice] [--branch-label L] [--depends-on R] [--rev-id ID]\n"
  "           [--autogenerate [--models FILE]]\n"
  "  merge REV... -m MSG [--branch-label L] [--rev-id ID]\n"
  "  upgrade TARGET [--sql] [--backup[=PATH]]  apply migrations up to TARGET\n"
  "  downgrade TARGET [--sql]         revert migrations down to TARGET\n"
  "  stamp REV... [--purge] [--sql]   set the version table without migrating\n"
  "  stamp --accept-checksums REV...  accept the edited scripts of applied REVs\n"
  "  current [-v] [--check-heads]     the revisions the database is at\n"
  "  heads [-v] [--resolve-dependencies]\n"
  "  branches [-v]                    branch points\n"
  "  history [-r RANGE] [-v] [-i]     revisions, newest first\n"
  "  show REV                         one revision in full (REV may be current)\n"
  "  ensure_version [--sql]           create the version table\n"
  "  status [--strict]                current, pending, drifted scripts, dirty mark, lock\n"
  "  schema [TABLE...] [--models]     the live schema, portable (--json: the model;\n"
  "                                   --models: as a models file)\n"
  "  check [--models FILE]            do the models match the database at head?\n"
  "  lint [RANGE] [--all] [--format text|json|sarif]\n"
  "                                   check revisions before they run: drops, locks,\n"
  "                                   lossy downgrades (exit 1 on an error)\n"
  "  edit REV                         open a revision script in $EDITOR\n"
  "  verify [--scratch-url URL]       every downgrade undoes its upgrade (on a scratch database)\n"
  "  kept [REV] [--purge [--older-than AGE]]  data kept by drops (keep = true)\n"
  "\n"
  "targets: head, heads, base, an id or unique prefix, +N, -N, REV+N, REV-N,\n"
  "         LABEL@head, LABEL@+N; with --sql also FROM:TO\n"
  "global options:\n"
  "  -c FILE        configuration file (default $LUAMIG_CONFIG or ./luamig.lua)\n"
  "  --url URL      database URL (default $LUAMIG_URL or the configuration's)\n"
  "  -x KEY=VALUE   a value scripts read as op.x.KEY (repeatable)\n"
  "  --json         machine-readable output (every command that prints results)\n"
  "  -q             no progress on stderr\n"
  "  -h, --help     help (also after a command)\n"
  "  --version      print the version\n";

int lm_cli_fail(lm_env *env, int rc) {
  fprintf(stderr, "luamig: %s\n", lm_errmsg(env));
  return rc == LM_EUSAGE ? 2 : 1;
}

void lm_json_string(lm_buf *out, const char *s) {
  lm_buf_putc(out, '"');
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') lm_buf_printf(out, "\\%c", *p);
    else if (*p == '\n') lm_buf_puts(out, "\\n");
    else if (*p == '\t') lm_buf_puts(out, "\\t");
    else if (*p < 0x20) lm_buf_printf(out, "\\u%04x", *p);
    else lm_buf_putc(out, (char)*p);
  }
  lm_buf_putc(out, '"');
}

void lm_json_list(lm_buf *out, const char *const *items, size_t n) {
  lm_buf_putc(out, '[');
  for (size_t i = 0; i < n; i++) {
    if (i) lm_buf_puts(out, ", ");
    lm_json_string(out, items[i]);
  }
  lm_buf_putc(out, ']');
}

/* ---- commands that move the database ------------------------------------ */

static int print_sql(lm_env *env, const char *command, const char *target) {
  char *sql;
  int rc = lm_sql(&sql, env, command, target);
  if (rc != LM_OK) return lm_cli_fail(env, rc);
  fputs(sql, stdout);
  free(sql);
  return 0;
}

/* What upgrade and downgrade ran, timed between the runner's start and
 * done events (the CLI's on_event). */
typedef struct run_record {
  lm_strvec revisions;
  double *durations;
  size_t cap;
  double started;
} run_record;

static run_record cli_record;

static void record_event(const lm_event *ev, void *payload) {
  run_record *r = payload;
  if (ev->kind == LM_EVENT_MIGRATION_START) {
    r->started = lm_now();
  } else if (ev->kind == LM_EVENT_MIGRATION_DONE && ev->revision) {
    if (r->revisions.n == r->cap) {
      r->cap = r->cap ? 2 * r->cap : 16;
      r->durations = lm_xrealloc(r->durations, r->cap * sizeof *r->durations);
    }
    r->durations[r->revisions.n] = lm_now() - r->started;
    lm_strvec_push(&r->revisions, lm_xstrdup(ev->revision));
  }
}

static void record_free(run_record *r) {
  lm_strvec_free(&r->revisions);
  free(r->durations);
  memset(r, 0, sizeof *r);
}

/* A NULL-terminated list of ids as a JSON array. */
static void json_ids(lm_buf *out, char **ids) {
  size_t n = 0;
  while (ids && ids[n]) n++;
  lm_json_list(out, (const char *const *)ids, n);
}

/* "a, b", or "base" for none. */
static void join_ids(lm_buf *out, char **ids) {
  if (!ids || !ids[0]) lm_buf_puts(out, "base");
  for (size_t i = 0; ids && ids[i]; i++)
    lm_buf_printf(out, "%s%s", i ? ", " : "", ids[i]);
}

/* Nothing ran: say where the database is relative to the target (at it,
 * or already past it for an upgrade, below it for a downgrade). */
static void say_nothing_to_do(lm_env *env, const char *cmd,
                              const char *target, char **current) {
  size_t ncur = 0;
  while (current && current[ncur]) ncur++;
  lm_revlist l = {0};
  lm_err err;
  lm_err_init(&err);
  int at = 1;
  if (lm_graph_resolve(env->graph, target, (const char *const *)current, ncur,
                       &l, &err) == LM_OK) {
    for (size_t i = 0; i < l.n; i++) {
      int found = 0;
      for (size_t k = 0; k < ncur; k++)
        found |= strcmp(current[k], lm_graph_rev(env->graph, l.idx[i])->id) == 0;
      at &= found;
    }
    if (l.n == 0) at = ncur == 0;
  }
  lm_revlist_free(&l);
  lm_err_free(&err);
  lm_buf where = LM_BUF_INIT;
  join_ids(&where, current);
  if (at)
    fprintf(stderr, "Nothing to %s: the database is already at %s.\n", cmd,
            lm_buf_str(&where));
  else
    fprintf(stderr, "Nothing to %s: the database is already %s %s, at %s.\n",
            cmd, strcmp(cmd, "upgrade") == 0 ? "past" : "below", target,
            lm_buf_str(&where));
  lm_buf_free(&where);
}

/* --json of upgrade, downgrade and stamp: what ran, with durations, and
 * where the database is now. */
static void print_run_json(const char *cmd, const char *target,
                           const run_record *rec, char **current) {
  lm_buf out = LM_BUF_INIT;
  lm_buf_printf(&out, "{\"command\": \"%s\", \"target\": ", cmd);
  lm_json_string(&out, target);
  lm_buf_puts(&out, ", \"applied\": [");
  for (size_t i = 0; i < rec->revisions.n; i++) {
    lm_buf_puts(&out, i ? ", " : "");
    lm_buf_puts(&out, "{\"revision\": ");
    lm_json_string(&out, rec->revisions.items[i]);
    lm_buf_printf(&out, ", \"direction\": \"%s\", \"duration\": %.6f}",
                  cmd, rec->durations[i]);
  }
  lm_buf_puts(&out, "], \"current\": ");
  json_ids(&out, current);
  lm_buf_puts(&out, "}\n");
  fputs(lm_buf_str(&out), stdout);
  lm_buf_free(&out);
}

static int migrate_command(lm_env *env, lm_args *a, int up) {
  const char *cmd = up ? "upgrade" : "downgrade";
  const char *target = a->pos.items[0];
  if (a->sql && (a->given & LM_F_BACKUP))
    return lm_cli_fail(env, lm_err_usage(&env->err, "--backup backs up a "
                       "database before running; --sql runs nothing"));
  if (a->sql) return print_sql(env, cmd, target);
  if (a->given & LM_F_BACKUP) {
    env->backup = 1;
    env->backup_path = a->backup;
  }
  if (strchr(target, ':'))
    return lm_cli_fail(env, lm_err_usage(&env->err, "a FROM:TO range "
                       "works only with --sql"));
  char **applied, **current = NULL;
  int rc = up ? lm_upgrade(&applied, env, target)
              : lm_downgrade(&applied, env, target);
  if (rc != LM_OK) return lm_cli_fail(env, rc);
  int nothing = !applied[0];
  lm_free_list(applied);
  if ((a->json || (nothing && !env->quiet)) &&
      (rc = lm_current(&current, env)) != LM_OK)
    return lm_cli_fail(env, rc);
  if (nothing && !env->quiet) say_nothing_to_do(env, cmd, target, current);
  if (a->json) print_run_json(cmd, target, &cli_record, current);
  lm_free_list(current);
  return 0;
}

static int cmd_upgrade(lm_env *env, lm_args *a) {
  return migrate_command(env, a, 1);
}

static int cmd_downgrade(lm_env *env, lm_args *a) {
  return migrate_command(env, a, 0);
}

static int cmd_stamp(lm_env *env, lm_args *a) {
  if (a->given & LM_F_ACCEPT) {
    int rc = a->sql || a->purge
                 ? lm_err_usage(&env->err, "--accept-checksums takes neither "
                                "--sql nor --purge")
                 : lm_accept_checksums(env, (const char *const *)a->pos.items,
                                       a->pos.n);
    return rc == LM_OK ? 0 : lm_cli_fail(env, rc);
  }
  if (a->sql) {
    if (a->pos.n != 1)
      return lm_cli_fail(env, lm_err_usage(&env->err, "stamp --sql takes "
                         "one revision"));
    return print_sql(env, "stamp", a->pos.items[0]);
  }
  int rc = lm_stamp(env, (const char *const *)a->pos.items, a->pos.n,
                    a->purge);
  if (rc != LM_OK) return lm_cli_fail(env, rc);
  if (a->json) {
    char **current;
    if ((rc = lm_current(&current, env)) != LM_OK) return lm_cli_fail(env, rc);
    lm_buf out = LM_BUF_INIT;
    lm_buf_puts(&out, "{\"command\": \"stamp\", \"targets\": ");
    lm_json_list(&out, (const char *const *)a->pos.items, a->pos.n);
    lm_buf_puts(&out, ", \"current\": ");
    json_ids(&out, current);
    lm_buf_puts(&out, "}\n");
    fputs(lm_buf_str(&out), stdout);
    lm_buf_free(&out);
    lm_free_list(current);
  }
  return 0;
}

static int cmd_ensure_version(lm_env *env, lm_args *a) {
  if (a->sql) {
    lm_buf out = LM_BUF_INIT;
    int rc = lm_pick_dialect(env);
    if (rc == LM_OK) {
      const lm_executor *was = lm_exec_use(env, &lm_executor_offline);
      env->sql_out = &out;
      rc = lm_offline_preamble(env, 1);
      lm_exec_use(env, was);
      env->sql_out = NULL;
    }
    if (rc == LM_OK) fputs(lm_buf_str(&out), stdout);
    lm_buf_free(&out);
    return rc == LM_OK ? 0 : lm_cli_fail(env, rc);
  }
  int rc = lm_begin_run(env);
  lm_disconnect(env);
  return rc == LM_OK ? 0 : lm_cli_fail(env, rc);
}

static int cmd_init(lm_env *env, lm_args *a) {
  (void)env;
  return lm_cmd_init(a);
}

static const cli_command commands[] = {
  {"init", cmd_init, LM_F_JSON, 0, 1, "luamig init [DIR] [--json]",
   "Create luamig.lua pointing at DIR (default migrations), the DIR folder "
   "(with its parents; an existing empty one is fine) and .gitignore "
   "entries for the script cache and the SQLite lock file; refuses to "
   "overwrite luamig.lua or a folder that is not empty."},
  {"revision", lm_cmd_revision,
   LM_F_MESSAGE | LM_F_HEAD | LM_F_SPLICE | LM_F_BRANCH_LABEL |
       LM_F_DEPENDS_ON | LM_F_REV_ID | LM_F_AUTOGENERATE | LM_F_MODELS |
       LM_F_JSON,
   0, 0,
   "luamig revision -m MSG [--head H] [--splice] [--branch-label L] "
   "[--depends-on R] [--rev-id ID] [--autogenerate [--models FILE]] [--json]",
   "Create a new revision script on top of the current head.  "
   "--autogenerate compares the models (the configuration's models, or "
   "--models FILE) with the database, which must be at head, and writes "
   "the migration between them, downgrade included; nothing to migrate "
   "writes no file and says \"no changes detected\"."},
  {"merge", lm_cmd_merge,
   LM_F_MESSAGE | LM_F_BRANCH_LABEL | LM_F_REV_ID | LM_F_JSON, 1, -1,
   "luamig merge REV... -m MSG [--branch-label L] [--rev-id ID] [--json]",
   "Create a revision that merges two or more heads (\"heads\" for all)."},
  {"upgrade", cmd_upgrade, LM_F_SQL | LM_F_STRICT | LM_F_JSON | LM_F_BACKUP,
   1, 1,
   "luamig upgrade TARGET [--sql | --json] [--strict] [--backup[=PATH]]",
   "Apply migrations up to TARGET, one transaction each.  --json prints "
   "the revisions applied with their durations and the current revisions.  "
   "--backup (or backup = true) first backs the database up, under the "
   "lock: SQLite to PATH or <db>.<time>-<rev>.bak, PostgreSQL with pg_dump "
   "of the tables the pending migrations touch; a failed backup migrates "
   "nothing."},
  {"downgrade", cmd_downgrade, LM_F_SQL | LM_F_STRICT | LM_F_JSON, 1, 1,
   "luamig downgrade TARGET [--sql | --json] [--strict]",
   "Revert migrations down to TARGET (with --sql: FROM:TO)."},
  {"stamp", cmd_stamp, LM_F_SQL | LM_F_PURGE | LM_F_JSON | LM_F_ACCEPT, 1, -1,
   "luamig stamp REV... [--purge] [--sql | --json] | stamp --accept-checksums REV...",
   "Set the version table to REV without running migrations.  At a merge "
   "point, naming its parents stamps down to them.  --accept-checksums "
   "records the current checksum of drifted scripts."},
  {"current", lm_cmd_current, LM_F_VERBOSE | LM_F_CHECK_HEADS | LM_F_JSON, 0, 0,
   "luamig current [-v] [--check-heads] [--json]",
   "Show the revisions the database is at.  --check-heads: exit 1 unless "
   "the database is at every head."},
  {"heads", lm_cmd_heads, LM_F_VERBOSE | LM_F_RESOLVE_DEPS | LM_F_JSON, 0, 0,
   "luamig heads [-v] [--resolve-dependencies]",
   "Show the heads of the revision graph."},
  {"branches", lm_cmd_branches, LM_F_VERBOSE | LM_F_JSON, 0, 0,
   "luamig branches [-v] [--json]",
   "Show the branch points."},
  {"history", lm_cmd_history, LM_F_VERBOSE | LM_F_RANGE | LM_F_INDICATE |
   LM_F_JSON, 0, 0,
   "luamig history [-r RANGE] [-v] [-i] [--json]",
   "List revisions, newest first."},
  {"show", lm_cmd_show, LM_F_JSON, 1, 1, "luamig show REV [--json]",
   "Show a revision (REV may be current, head, heads, a label...)."},
  {"status", lm_cmd_status, LM_F_JSON | LM_F_STRICT, 0, 0,
   "luamig status [--strict] [--json]",
   "Current heads, pending revisions, drifted and missing scripts, the "
   "dirty mark and the lock holder.  Exit 1 when the database is dirty (or, "
   "with --strict, when scripts drifted)."},
  {"ensure_version", cmd_ensure_version, LM_F_SQL, 0, 0,
   "luamig ensure_version [--sql]", "Create the version table if missing."},
  {"schema", lm_cmd_schema, LM_F_JSON | LM_F_MODELS, 0, -1,
   "luamig schema [TABLE...] [--json | --models]",
   "Show the live database's tables (all, or those named) in one portable "
   "form: columns with type, null and default; keys, checks, indexes and "
   "foreign keys; views by name.  --json prints the schema model; --models "
   "prints it as a models file (luamig check is clean against it)."},
  {"check", lm_cmd_check, LM_F_MODELS | LM_F_JSON, 0, 0,
   "luamig check [--models FILE] [--json]",
   "Compare the models (the configuration's models, or --models FILE) with "
   "the database at head: exit 0 when they match, 1 listing the "
   "differences one per line (what autogenerate would write).  What is not "
   "compared (views, triggers, unnamed checks) is listed too."},
  {"edit", lm_cmd_edit, 0, 1, 1, "luamig edit REV",
   "Open a revision script in $EDITOR."},
  {"verify", lm_cmd_verify, LM_F_SCRATCH_URL | LM_F_JSON, 0, 0,
   "luamig verify [--scratch-url URL] [--json]",
   "Upgrade, downgrade and upgrade again every revision in turn, from "
   "base, comparing the whole schema after each step, and report the "
   "first revision whose downgrade does not undo its upgrade (and the "
   "rows of a revision's fixture it loses), more than one head, and "
   "revisions without a downgrade; exit 1 on any.  It runs on a scratch "
   "database and never touches the configured one: a temporary file on "
   "SQLite, a new database on the configured PostgreSQL server (CREATE "
   "DATABASE; dropped afterwards, also after an error or a signal), or "
   "--scratch-url URL, an empty database of your own."},
  {"lint", lm_cmd_lint, LM_F_JSON | LM_F_FORMAT | LM_F_ALL, 0, 1,
   "luamig lint [RANGE] [--all] [--json | --format text|json|sarif]",
   "Check the revisions not yet applied (RANGE as history -r takes it; "
   "--all, or a database lint cannot reach: every one) without running "
   "them: drops, key changes, locking DDL, missing or lossy downgrades.  "
   "Findings print as FILE:LINE: SEVERITY[CODE]: message; a script's "
   "allow = {...} acknowledges codes.  Exit 1 on an unacknowledged error."},
  {"kept", lm_cmd_kept, LM_F_PURGE | LM_F_OLDER_THAN | LM_F_JSON, 0, 1,
   "luamig kept [REV] [--purge [--older-than AGE]] [--json]",
   "List what drops with keep = true kept (revision, object, rows, size, "
   "age), of every revision or of REV.  --purge removes it (all, REV's, or "
   "what is older than AGE: 30d, 12h, 90m, 2w), logging each to the log "
   "table."},
  {NULL, NULL, 0, 0, 0, NULL, NULL}};

/* ---- argument parsing --------------------------------------------------- */

typedef struct flag {
  const char *longname, *shortname;
  unsigned bit;                 /* 0: a global option */
  int takes_value;              /* 1: a value; 2: a value except after
                                   `schema`; 3: optional (--flag=VALUE, or
                                   the next argument once the command has
                                   its positional ones) */
} flag;

static const flag flags[] = {
  {"--sql", NULL, LM_F_SQL, 0},
  {"--verbose", "-v", LM_F_VERBOSE, 0},
  {"--message", "-m", LM_F_MESSAGE, 1},
  {"--head", NULL, LM_F_HEAD, 1},
  {"--splice", NULL, LM_F_SPLICE, 0},
  {"--branch-label", NULL, LM_F_BRANCH_LABEL, 1},
  {"--depends-on", NULL, LM_F_DEPENDS_ON, 1},
  {"--rev-id", NULL, LM_F_REV_ID, 1},
  {"--rev-range", "-r", LM_F_RANGE, 1},
  {"--indicate-current", "-i", LM_F_INDICATE, 0},
  {"--purge", NULL, LM_F_PURGE, 0},
  {"--check-heads", NULL, LM_F_CHECK_HEADS, 0},
  {"--resolve-dependencies", NULL, LM_F_RESOLVE_DEPS, 0},
  {"--autogenerate", NULL, LM_F_AUTOGENERATE, 0},
  {"--json", NULL, LM_F_JSON, 0},
  {"--strict", NULL, LM_F_STRICT, 0},
  {"--accept-checksums", NULL, LM_F_ACCEPT, 0},
  {"--scratch-url", NULL, LM_F_SCRATCH_URL, 1},
  {"--format", NULL, LM_F_FORMAT, 1},
  {"--all", NULL, LM_F_ALL, 0},
  {"--models", NULL, LM_F_MODELS, 2},
  {"--older-than", NULL, LM_F_OLDER_THAN, 1},
  {"--backup", NULL, LM_F_BACKUP, 3},
  {NULL, NULL, 0, 0}};

static void set_flag(lm_args *a, unsigned bit, const char *value) {
  a->given |= bit;
  switch (bit) {
  case LM_F_SQL: a->sql = 1; break;
  case LM_F_VERBOSE: a->verbose = 1; break;
  case LM_F_MESSAGE: a->message = value; break;
  case LM_F_HEAD: a->head = value; break;
  case LM_F_SPLICE: a->splice = 1; break;
  case LM_F_BRANCH_LABEL: lm_strvec_push(&a->branch_labels, (char *)value); break;
  case LM_F_DEPENDS_ON: lm_strvec_push(&a->depends_on, (char *)value); break;
  case LM_F_REV_ID: a->rev_id = value; break;
  case LM_F_RANGE: a->range = value; break;
  case LM_F_INDICATE: a->indicate_current = 1; break;
  case LM_F_PURGE: a->purge = 1; break;
  case LM_F_CHECK_HEADS: a->check_heads = 1; break;
  case LM_F_RESOLVE_DEPS: a->resolve_dependencies = 1; break;
  case LM_F_AUTOGENERATE: a->autogenerate = 1; break;
  case LM_F_JSON: a->json = 1; break;
  case LM_F_STRICT: a->strict = 1; break;
  case LM_F_SCRATCH_URL: a->scratch_url = value; break;
  case LM_F_FORMAT: a->format = value; break;
  case LM_F_ALL: a->all = 1; break;
  case LM_F_MODELS:
    if (value) a->models = value;
    else a->models_out = 1;
    break;
  case LM_F_OLDER_THAN: a->older_than = value; break;
  case LM_F_BACKUP: a->backup = value; break;
  }
}

/* Parse argv; returns 0, or 2 after printing a usage error. */
static int parse_args(int argc, char **argv, lm_args *a) {
  for (int i = 1; i < argc; i++) {
    char *arg = argv[i];
    const char *value = NULL;
    char *eq = NULL;
    if (arg[0] == '-' && arg[1] == '-' && (eq = strchr(arg, '='))) {
      *eq = '\0';
      value = eq + 1;
    }
    /* A short option glued to its value, as in Alembic's docs:
     * -r-3:current, -mMSG, -cFILE, -xKEY=VALUE. */
    char shortopt[3] = "";
    if (arg[0] == '-' && arg[1] && arg[1] != '-' && arg[2] &&
        strchr("rmcx", arg[1])) {
      shortopt[0] = '-';
      shortopt[1] = arg[1];
      value = arg + 2;
      arg = shortopt;
    }
    if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
      a->help = 1;
      continue;
    }
    if (strcmp(arg, "--version") == 0) {
      a->version = 1;
      continue;
    }
    if (strcmp(arg, "-q") == 0 || strcmp(arg, "--quiet") == 0) {
      a->opts.quiet = 1;
      continue;
    }
    if (strcmp(arg, "-c") == 0 || strcmp(arg, "--config") == 0 ||
        strcmp(arg, "--url") == 0 || strcmp(arg, "-x") == 0) {
      if (!value) {
        if (i + 1 >= argc) {
          fprintf(stderr, "luamig: %s needs a value\n", arg);
          return 2;
        }
        value = argv[++i];
      }
      if (arg[1] == 'c' || arg[2] == 'c') a->opts.config_path = value;
      else if (arg[1] == 'x') lm_strvec_push(&a->x, (char *)value);
      else a->opts.url = value;
      continue;
    }
    if (arg[0] == '-' && arg[1] && !(arg[1] >= '0' && arg[1] <= '9')) {
      const flag *f = flags;
      while (f->longname && strcmp(f->longname, arg) != 0 &&
             !(f->shortname && strcmp(f->shortname, arg) == 0))
        f++;
      if (!f->longname) {
        fprintf(stderr, "luamig: unknown option %s (see luamig --help)\n", arg);
        return 2;
      }
      if (f->takes_value == 3 && !value && a->pos.n && i + 1 < argc &&
          argv[i + 1][0] != '-')
        value = argv[++i];
      /* 0: none, 1: required, 3: optional */
      int wants = f->takes_value == 2
                      ? !(a->command && strcmp(a->command, "schema") == 0)
                      : f->takes_value;
      if (wants == 1 && !value) {
        if (i + 1 >= argc) {
          fprintf(stderr, "luamig: %s needs a value\n", arg);
          return 2;
        }
        value = argv[++i];
      } else if (!wants && value) {
        fprintf(stderr, "luamig: %s takes no value\n", arg);
        return 2;
      }
      set_flag(a, f->bit, value);
      continue;
    }
    if (!a->command) a->command = arg;
    else lm_strvec_push(&a->pos, arg);
  }
  a->opts.x = (const char *const *)a->x.items;
  a->opts.nx = a->x.n;
  return 0;
}

static void free_args(lm_args *a) {
  /* The vectors borrow argv's strings: free the arrays only. */
  free(a->pos.items);
  free(a->x.items);
  free(a->branch_labels.items);
  free(a->depends_on.items);
}

static const char *flag_name(unsigned bit) {
  for (const flag *f = flags; f->longname; f++)
    if (f->bit == bit) return f->longname;
  return "?";
}

/* The environment a signal handler may cancel a statement on. */
static lm_env *volatile active_env;

/* SIGINT/SIGTERM: remember the signal and ask the database to stop the
 * statement in flight; the runner then rolls the migration back and the
 * command exits 130 or 143.  A second signal ends the process at once. */
static void on_signal(int sig) {
  if (lm_signal_received) {
    signal(sig, SIG_DFL);
    raise(sig);
    return;
  }
  lm_signal_received = sig;
  lm_env *env = active_env;
  if (env && env->dialect && env->conn && env->dialect->cancel)
    env->dialect->cancel(env->conn);
}

static void install_signal_handlers(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

int lm_cli_main(int argc, char **argv) {
  lm_args a;
  memset(&a, 0, sizeof a);
  int rc = parse_args(argc, argv, &a);
  if (rc) {
    free_args(&a);
    return rc;
  }
  if (!a.command) {
    if (a.help) {
      fputs(global_usage, stdout);
      free_args(&a);
      return 0;
    }
    if (a.version) {
      lm_buf v = LM_BUF_INIT;
      lm_dialect_versions(&v);
      printf("luamig %s (%s, %s)\n", LUAMIG_VERSION, lm_buf_str(&v), LUA_RELEASE);
      lm_buf_free(&v);
      free_args(&a);
      return 0;
    }
    fputs(global_usage, stderr);
    free_args(&a);
    return 2;
  }
  const cli_command *cmd = commands;
  while (cmd->name && strcmp(cmd->name, a.command) != 0) cmd++;
  if (!cmd->name) {
    fprintf(stderr, "luamig: unknown command '%s' (see luamig --help)\n",
            a.command);
    free_args(&a);
    return 2;
  }
  if (a.help) {
    printf("usage: %s\n\n%s\n", cmd->usage, cmd->help);
    free_args(&a);
    return 0;
  }
  unsigned extra = a.given & ~cmd->flags;
  if (extra) {
    unsigned bit = extra & (~extra + 1);
    fprintf(stderr, "luamig: %s does not take %s\nusage: %s\n", cmd->name,
            flag_name(bit), cmd->usage);
    free_args(&a);
    return 2;
  }
  if (a.json && a.sql) {
    fprintf(stderr, "luamig: --sql writes SQL; it does not combine with "
            "--json\nusage: %s\n", cmd->usage);
    free_args(&a);
    return 2;
  }
  if ((int)a.pos.n < cmd->min_pos ||
      (cmd->max_pos >= 0 && (int)a.pos.n > cmd->max_pos)) {
    fprintf(stderr, "luamig: wrong number of arguments for %s\nusage: %s\n",
            cmd->name, cmd->usage);
    free_args(&a);
    return 2;
  }
  lm_env *env;
  if (strcmp(cmd->name, "init") == 0) {
    rc = lm_cmd_init(&a);
    free_args(&a);
    return rc;
  }
  install_signal_handlers();
  if (a.json) {
    a.opts.on_event = record_event;
    a.opts.event_payload = &cli_record;
  }
  if (lm_open(&env, &a.opts) != LM_OK) {
    rc = lm_cli_fail(env, env ? env->err.code : LM_ERROR);
  } else {
    if (a.strict) env->strict_checksums = 1;
    active_env = env;
    rc = cmd->run(env, &a);
    active_env = NULL;
  }
  lm_close(env);
  record_free(&cli_record);
  if (rc && lm_signal_received) rc = 128 + lm_signal_received;
  free_args(&a);
  return rc;
}
