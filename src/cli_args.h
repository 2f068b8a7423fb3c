/*
 * cli_args.h - parsed command-line arguments, shared by the command
 * implementations (cli.c, cli_revision.c).
 */
#ifndef LM_CLI_ARGS_H
#define LM_CLI_ARGS_H

#include "core.h"

typedef struct lm_args {
  const char *command;
  lm_strvec pos;                /* positional arguments (borrowed strings) */
  lm_options opts;
  lm_strvec x;                  /* -x values (borrowed) */
  int json, verbose, sql, purge, splice, autogenerate, indicate_current;
  int check_heads, resolve_dependencies, help, version, strict;
  const char *message;          /* -m */
  const char *head;             /* --head */
  const char *rev_id;           /* --rev-id */
  const char *range;            /* -r */
  const char *scratch_url;      /* --scratch-url */
  const char *format;           /* --format (lint: text, json, sarif) */
  int all;                      /* --all (lint) */
  const char *models;           /* --models FILE (check, revision) */
  int models_out;               /* schema --models: write a models file */
  const char *older_than;       /* kept --purge --older-than */
  const char *backup;           /* upgrade --backup[=PATH]: the path or NULL */
  lm_strvec branch_labels;      /* --branch-label (borrowed) */
  lm_strvec depends_on;         /* --depends-on (borrowed) */
  unsigned given;               /* which command flags were given (LM_F_*) */
  int silent;                   /* from the Lua module: print nothing */
} lm_args;

enum {
  LM_F_SQL = 1u << 0, LM_F_VERBOSE = 1u << 1, LM_F_MESSAGE = 1u << 2,
  LM_F_HEAD = 1u << 3, LM_F_SPLICE = 1u << 4, LM_F_BRANCH_LABEL = 1u << 5,
  LM_F_DEPENDS_ON = 1u << 6, LM_F_REV_ID = 1u << 7, LM_F_RANGE = 1u << 8,
  LM_F_INDICATE = 1u << 9, LM_F_PURGE = 1u << 10, LM_F_CHECK_HEADS = 1u << 11,
  LM_F_RESOLVE_DEPS = 1u << 12, LM_F_AUTOGENERATE = 1u << 13,
  LM_F_JSON = 1u << 14, LM_F_STRICT = 1u << 15,
  LM_F_ACCEPT = 1u << 16,       /* stamp --accept-checksums (read from given) */
  LM_F_SCRATCH_URL = 1u << 17,
  LM_F_FORMAT = 1u << 18, LM_F_ALL = 1u << 19,  /* lint */
  LM_F_MODELS = 1u << 20,       /* --models FILE; schema --models */
  LM_F_OLDER_THAN = 1u << 21, LM_F_BACKUP = 1u << 22
};

/* cli_revision.c: init, revision, merge, edit */
int lm_cmd_init(lm_args *a);
int lm_cmd_revision(lm_env *env, lm_args *a);
int lm_cmd_merge(lm_env *env, lm_args *a);
int lm_cmd_edit(lm_env *env, lm_args *a);

/* cli_schema.c: schema [TABLE...] */
int lm_cmd_schema(lm_env *env, lm_args *a);
/* What `schema` prints, into out: the text form or (json) the model as
 * JSON, of every table or of those named.  LM_OK, or LM_ERROR with
 * env->err set (a name that is no table). */
int lm_schema_report(lm_env *env, const char *const *tables, size_t ntables,
                     int json, lm_buf *out);

/* verify.c */
int lm_cmd_verify(lm_env *env, lm_args *a);
/* verify for an embedding: nothing printed; the report as `verify --json`
 * writes it into json, the problems as text lines into text.  The
 * connection env holds is set aside meanwhile and given back.  0: all
 * verified; 1: problems (the report says which); 2: a usage error (a
 * scratch URL naming the configured database). */
int lm_verify_report(lm_env *env, const char *scratch_url, lm_buf *json,
                     lm_buf *text);

/* cli_lint.c: lint [RANGE] [--all] [--json | --format sarif] */
int lm_cmd_lint(lm_env *env, lm_args *a);
/* cli_kept.c: kept [REV] [--purge [--older-than AGE]] */
int lm_cmd_kept(lm_env *env, lm_args *a);
/* What status shows of it: text ("none", "2 (1,259 rows, 64 kB; ...)")
 * and a JSON object {count, rows, bytes}. */
int lm_kept_summary(lm_env *env, lm_buf *text, lm_buf *json);

/* cli.c */
int lm_cli_fail(lm_env *env, int rc);
void lm_json_string(lm_buf *out, const char *s);
/* A JSON list of strings. */
void lm_json_list(lm_buf *out, const char *const *items, size_t n);

/* cli_read.c: the commands that only read */
int lm_cmd_current(lm_env *env, lm_args *a);
int lm_cmd_heads(lm_env *env, lm_args *a);
int lm_cmd_branches(lm_env *env, lm_args *a);
int lm_cmd_history(lm_env *env, lm_args *a);
int lm_cmd_show(lm_env *env, lm_args *a);
int lm_cmd_status(lm_env *env, lm_args *a);

#endif
