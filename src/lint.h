/*
 * lint.h - `luamig lint`: the scripts' operations, recorded without
 * running them (exec_record.c) and replayed on a schema model, checked
 * against rules (lint_rules.c) before anything runs; the findings printed
 * as text, JSON or SARIF (lint_output.c).  The driver (lint.c) picks the
 * revisions and runs each script's upgrade and downgrade.
 */
#ifndef LM_LINT_H
#define LM_LINT_H

#include "core.h"
#include "exec_record.h"

typedef enum lm_severity {
  LM_SEV_INFO,
  LM_SEV_WARNING,
  LM_SEV_ERROR
} lm_severity;

/* A rule: its stable code, default severity, what it finds and the safe
 * alternative (the advice every finding of it carries). */
typedef struct lm_lint_rule {
  const char *code;
  lm_severity severity;
  const char *summary;
  const char *advice;
} lm_lint_rule;

extern const lm_lint_rule lm_lint_rules[];
extern const size_t lm_lint_nrules;
/* The index of a rule code in lm_lint_rules, or -1. */
int lm_lint_rule_index(const char *code);
const char *lm_severity_name(lm_severity s);
/* "error", "warning", "info" → 0..2; -1 for anything else. */
int lm_severity_parse(const char *name);

/* The configuration's settings for lint and lock-safe runs (config.c reads
 * them with lm_safety_config_read; defaults when the file has none). */
typedef struct lm_safety_config {
  lm_strvec protected_tables;   /* patterns (fnmatch) */
  int64_t large_table_rows;     /* 100000 */
  unsigned char *disabled;      /* by rule index */
  signed char *severity;        /* by rule index; -1: the rule's own */
  double statement_lock_timeout;  /* seconds; 0: off */
  int lock_retries;
} lm_safety_config;

/* Check the five keys in the config table at the top of L's stack and keep
 * them for env; LM_ERROR with a message naming the key otherwise. */
int lm_safety_config_read(lua_State *L, lm_env *env);
/* env's settings (the defaults when none were read). */
const lm_safety_config *lm_safety_config_of(lm_env *env);

typedef struct lm_finding {
  int rule;                     /* index in lm_lint_rules */
  lm_severity severity;         /* after the configuration's override */
  char *revision, *file, *message;
  int line;
  int acknowledged;             /* the script's allow lists the code */
} lm_finding;

typedef struct lm_lint_report {
  lm_finding *items;
  size_t n, cap;
  size_t nrevisions;            /* revisions linted */
} lm_lint_report;

void lm_lint_report_free(lm_lint_report *r);
/* Unacknowledged errors in the report. */
size_t lm_lint_errors(const lm_lint_report *r);

/* What the rules know while one script's upgrade is recorded. */
typedef struct lm_lint_ctx {
  lm_env *env;
  const lm_safety_config *cfg;
  lm_lint_report *report;
  int lock_rules;               /* the dialect's DDL locks block: lock rules apply */
  const char *revision, *file;
  int transactional;
  int reporting;                /* 0: replaying only (outside the range) */
  int in_batch;                 /* checking the ops of a batch */
  lm_strvec allow;              /* codes the script acknowledges */
  lm_strvec created;            /* tables this script created */
  lm_strvec filled;             /* "table\tcolumn" (or "table\t*") an
                                   earlier backfill or UPDATE filled */
  lm_strvec fks;                /* "table\tcol,col\tline": foreign keys
                                   added to existing tables */
  lm_strvec rows;               /* "table\tN": row estimates read */
} lm_lint_ctx;

void lm_lint_ctx_start(lm_lint_ctx *c);      /* before a script */
void lm_lint_ctx_clear(lm_lint_ctx *c);      /* after it, and to free */
/* The recorder's observer: the rules on one recorded call. */
void lm_lint_observe(void *ctx, const lm_record *rec, lm_schema *model);
/* After a script's upgrade: the rules that need all of it. */
void lm_lint_script_end(lm_lint_ctx *c, lm_schema *model);
/* Add a finding of rule `code` to the report (nothing when the rule is
 * disabled); acknowledged when the script's allow lists it. */
void lm_lint_add(lm_lint_ctx *c, const char *code, int line,
                 const char *fmt, ...) LM_PRINTF(4, 5);

/* lint.c: lint the revisions of `range` (NULL: those not yet applied to
 * the configured database, or all when it cannot be reached or all is
 * set) into report. */
int lm_lint_run(lm_env *env, const char *range, int all,
                lm_lint_report *report);

/* lint_output.c */
void lm_lint_text(const lm_lint_report *r, lm_buf *out);
void lm_lint_json(const lm_lint_report *r, lm_buf *out);
void lm_lint_sarif(const lm_lint_report *r, lm_buf *out);

#endif
