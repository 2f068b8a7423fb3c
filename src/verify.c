/*
 * verify.c - `luamig verify`: every revision's downgrade must undo its
 * upgrade.  On a scratch database (never the configured one), each
 * revision in upgrade order is upgraded, downgraded and upgraded again,
 * the whole schema read after each step and compared with the one diff
 * (schema_diff.h); a revision's fixture puts rows in first, and the
 * tables that outlive the round trip must hold the same rows after it.
 * The first revision that fails stops the walk: what follows is built on
 * it.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_args.h"
#include "introspect.h"
#include "schema_diff.h"

/* One thing wrong, for the text and JSON reports. */
typedef struct problem {
  const char *kind;             /* "load", "heads", "no_downgrade", ... */
  char *revision, *path;        /* may be NULL */
  char *message;
  lm_diff diff;                 /* schema differences, if any */
  char *data_table;             /* "data": the table whose rows differ */
} problem;

typedef struct verify_run {
  lm_env *env;
  lm_args *a;
  problem *problems;
  size_t nproblems, cap;
  size_t verified;
  /* the scratch database */
  char *configured_url;         /* env->url's own value, put back after */
  lm_url server;                /* the configured URL, to drop the scratch */
  const lm_dialect *server_dialect;
  char *scratch_url;
  int created;                  /* verify made it: drop it afterwards */
  int data;                     /* a fixture ran: compare rows from now on */
  /* the snapshots a failed revision's diff points into, kept until the
   * report is printed */
  lm_schema kept[2];
} verify_run;

static problem *add_problem(verify_run *v, const char *kind, size_t rev_idx,
                            const char *fmt, ...) LM_PRINTF(4, 5);

#define NO_REV ((size_t)-1)

static problem *add_problem(verify_run *v, const char *kind, size_t rev_idx,
                            const char *fmt, ...) {
  if (v->nproblems == v->cap) {
    v->cap = v->cap ? 2 * v->cap : 8;
    v->problems = lm_xrealloc(v->problems, v->cap * sizeof *v->problems);
  }
  problem *p = &v->problems[v->nproblems++];
  memset(p, 0, sizeof *p);
  lm_diff_init(&p->diff);
  p->kind = kind;
  if (rev_idx != NO_REV) {
    lm_script *s = lm_script_at(v->env, rev_idx);
    p->revision = lm_xstrdup(lm_graph_rev(v->env->graph, rev_idx)->id);
    p->path = s && s->path ? lm_xstrdup(s->path) : NULL;
  }
  lm_buf b = LM_BUF_INIT;
  va_list ap;
  va_start(ap, fmt);
  lm_buf_vprintf(&b, fmt, ap);
  va_end(ap);
  p->message = lm_buf_detach(&b);
  return p;
}

static void free_problems(verify_run *v) {
  for (size_t i = 0; i < v->nproblems; i++) {
    problem *p = &v->problems[i];
    free(p->revision);
    free(p->path);
    free(p->message);
    free(p->data_table);
    lm_diff_free(&p->diff);
  }
  free(v->problems);
}

/* ---- checks before any database ----------------------------------------- */

/* One head, and a downgrade (and, if any, a fixture function) in every
 * script.  Scripts that fail to load stop everything earlier. */
static void check_graph(verify_run *v) {
  lm_env *env = v->env;
  lm_revlist heads = {0};
  lm_graph_heads(env->graph, &heads);
  if (heads.n > 1) {
    lm_buf ids = LM_BUF_INIT;
    lm_graph_ids_joined(env->graph, &heads, &ids);
    add_problem(v, "heads", NO_REV, "the history has %zu heads: %s (join "
                "them with `luamig merge heads -m MSG`)", heads.n,
                lm_buf_str(&ids));
    lm_buf_free(&ids);
  }
  lm_revlist_free(&heads);
  for (size_t i = 0; i < lm_graph_size(env->graph); i++) {
    lm_script *s = lm_script_at(env, i);
    int has_down = 0, has_fixture = 0;
    if (lm_script_has(env, s, "downgrade", &has_down) != LM_OK ||
        lm_script_has(env, s, "fixture", &has_fixture) != LM_OK) {
      add_problem(v, "load", i, "%s", lm_errmsg(env));
      continue;
    }
    if (!has_down)
      add_problem(v, "no_downgrade", i, "no downgrade function");
  }
}

/* ---- the scratch database ----------------------------------------------- */

/* Point the environment at url instead of the configured database. */
static int use_url(verify_run *v, const char *url) {
  lm_env *env = v->env;
  v->configured_url = env->url;
  env->url = lm_xstrdup(url);
  lm_url_free(&env->parsed_url);
  env->dialect = NULL;
  return lm_pick_dialect(env);
}

/* A database the user named must hold nothing: verify drops and creates
 * tables at will. */
static int check_empty(verify_run *v) {
  lm_env *env = v->env;
  lm_schema s;
  lm_schema_init(&s);
  int exists = 0;
  int rc = lm_introspect_database(env, &s);
  if (rc == LM_OK)
    rc = env->dialect->has_table(env->conn, env->version_table_schema,
                                 env->version_table, &exists, &env->err);
  if (rc == LM_OK && (s.ntables || s.nviews || exists)) {
    lm_buf names = LM_BUF_INIT;
    for (size_t i = 0; i < s.ntables && i < 5; i++)
      lm_buf_printf(&names, "%s%s", i ? ", " : "", s.tables[i].name);
    if (exists)
      lm_buf_printf(&names, "%s%s", names.len ? ", " : "",
                    env->version_table);
    if (!names.len && s.nviews) lm_buf_puts(&names, s.views[0].name);
    rc = lm_err_set(&env->err, "the scratch database %s is not empty (%s%s); "
                    "verify needs an empty database it may change at will",
                    env->parsed_url.display, lm_buf_str(&names),
                    s.ntables > 5 ? ", ..." : "");
    lm_buf_free(&names);
  }
  lm_schema_free(&s);
  return rc;
}

static int open_scratch(verify_run *v) {
  lm_env *env = v->env;
  const char *given = v->a->scratch_url;
  if (given) {
    if (env->url && strcmp(given, env->url) == 0)
      return lm_err_usage(&env->err, "--scratch-url names the configured "
                          "database; verify never touches it: give an "
                          "empty database of its own");
    if (use_url(v, given) != LM_OK || lm_connect(env) != LM_OK) return LM_ERROR;
    return check_empty(v);
  }
  if (lm_pick_dialect(env) != LM_OK) return LM_ERROR;
  const lm_dialect *d = env->dialect;
  if (d->version < 6 || !d->scratch_create)
    return lm_err_set(&env->err, "the %s dialect cannot make a scratch "
                      "database; give verify an empty one with "
                      "--scratch-url URL", d->name);
  if (lm_url_parse(&v->server, env->url, &env->err) != LM_OK) return LM_ERROR;
  v->server_dialect = d;
  if (d->scratch_create(&v->server, &v->scratch_url, &env->err) != LM_OK)
    return LM_ERROR;
  v->created = 1;
  return use_url(v, v->scratch_url);
}

/* Disconnect from the scratch, drop it if verify made it, and give the
 * environment back its configured URL.  Runs after errors and signals
 * too. */
static void close_scratch(verify_run *v) {
  lm_env *env = v->env;
  lm_tx_rollback(env);
  lm_disconnect(env);
  if (v->created) {
    lm_err err;
    lm_err_init(&err);
    if (v->server_dialect->scratch_drop(&v->server, v->scratch_url, &err) !=
        LM_OK)
      fprintf(stderr, "luamig: %s\n", lm_err_msg(&err));
    lm_err_free(&err);
  }
  if (v->configured_url) {
    free(env->url);
    env->url = v->configured_url;
    v->configured_url = NULL;
    lm_url_free(&env->parsed_url);
    env->dialect = NULL;
  }
  lm_url_free(&v->server);
  free(v->scratch_url);
  v->scratch_url = NULL;
}

/* ---- rows --------------------------------------------------------------- */

typedef struct table_rows {
  int64_t count;
  uint64_t sum;                 /* of row hashes: the order does not count */
} table_rows;

static int compare_names(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Count a table's rows and hash their contents, columns in name order
 * (a column moved by a rebuild still holds the same data). */
static int hash_rows(lm_env *env, const lm_mtable *t, table_rows *out) {
  const lm_dialect *d = env->dialect;
  memset(out, 0, sizeof *out);
  const char **cols = lm_xcalloc(t->ncolumns ? t->ncolumns : 1, sizeof *cols);
  for (size_t i = 0; i < t->ncolumns; i++) cols[i] = t->columns[i].name;
  qsort(cols, t->ncolumns, sizeof *cols, compare_names);
  lm_buf sql = LM_BUF_INIT, row = LM_BUF_INIT;
  lm_sql_spec spec = {.kind = LM_SQL_READ_ROWS, .schema = t->schema,
                      .table = t->name, .columns = cols,
                      .ncolumns = t->ncolumns};
  lm_core_sql(d, &sql, &spec);
  free(cols);
  lm_cursor *cur;
  int rc = d->query(env->conn, lm_buf_str(&sql), 0, NULL, &cur, &env->err);
  lm_buf_free(&sql);
  if (rc != LM_OK) return LM_ERROR;
  while ((rc = d->cursor_next(cur, &env->err)) == 1) {
    lm_buf_reset(&row);
    for (size_t c = 0; c < d->cursor_ncols(cur); c++) {
      const lm_value *val = d->cursor_value(cur, c);
      lm_buf_printf(&row, "%d:", (int)val->type);
      if (val->type == LM_V_INT || val->type == LM_V_BOOL)
        lm_buf_printf(&row, "%lld", (long long)val->i);
      else if (val->type == LM_V_FLOAT)
        lm_buf_printf(&row, "%.17g", val->f);
      else if (val->type == LM_V_TEXT || val->type == LM_V_BLOB) {
        lm_buf_printf(&row, "%zu:", val->len);
        lm_buf_add(&row, val->s, val->len);
      }
      lm_buf_putc(&row, '|');
    }
    out->count++;
    out->sum += lm_hash_bytes(row.data ? row.data : "", row.len);
  }
  d->cursor_close(cur);
  lm_buf_free(&row);
  return rc < 0 ? LM_ERROR : LM_OK;
}

/* Rows of every table of s, in s's table order. */
static int hash_all(lm_env *env, const lm_schema *s, table_rows **out) {
  *out = lm_xcalloc(s->ntables ? s->ntables : 1, sizeof **out);
  for (size_t i = 0; i < s->ntables; i++)
    if (hash_rows(env, &s->tables[i], &(*out)[i]) != LM_OK) return LM_ERROR;
  return LM_OK;
}

/* ---- the walk ----------------------------------------------------------- */

static int snapshot(lm_env *env, lm_schema *s) {
  lm_schema_reset(s);
  return lm_introspect_database(env, s);
}

static int run_one(lm_env *env, const lm_step *st, const char *command) {
  lm_plan one = {(lm_step *)st, 1};
  return lm_run_plan(env, &one, command, NULL);
}

/* The step that undoes an upgrade step: its version-table changes
 * reversed, in reverse order. */
static lm_step inverse_step(const lm_step *up) {
  lm_step down = {up->rev, 0, NULL, up->nactions};
  down.actions = lm_xcalloc(up->nactions ? up->nactions : 1,
                            sizeof *down.actions);
  for (size_t k = 0; k < up->nactions; k++) {
    const lm_vt_action *a = &up->actions[up->nactions - 1 - k];
    lm_vt_action *b = &down.actions[k];
    b->kind = a->kind == LM_VT_INSERT ? LM_VT_DELETE
              : a->kind == LM_VT_DELETE ? LM_VT_INSERT : LM_VT_UPDATE;
    b->from = a->to;
    b->to = a->from;
  }
  return down;
}

static int run_fixture(verify_run *v, size_t idx) {
  lm_env *env = v->env;
  lm_script *s = lm_script_at(env, idx);
  int has = 0, found = 0;
  if (lm_script_has(env, s, "fixture", &has) != LM_OK || !has) return LM_OK;
  int rc = lm_tx_begin(env);
  if (rc == LM_OK) rc = lm_script_call(env, s, "fixture", &found);
  if (rc == LM_OK) rc = lm_tx_commit(env);
  if (rc != LM_OK) {
    lm_tx_rollback(env);
    add_problem(v, "fixture", idx, "its fixture failed: %s", lm_errmsg(env));
    return LM_ERROR;
  }
  v->data = 1;
  return LM_OK;
}

/* Tables of `before` still there in `after` must hold the same rows. */
static int compare_rows(verify_run *v, size_t idx, const lm_schema *before,
                        const table_rows *rows) {
  lm_env *env = v->env;
  for (size_t i = 0; i < before->ntables; i++) {
    const lm_mtable *t = &before->tables[i];
    table_rows now;
    /* the schema already matched: the table is there, the same shape */
    if (hash_rows(env, t, &now) != LM_OK) return LM_ERROR;
    if (now.count == rows[i].count && now.sum == rows[i].sum) continue;
    lm_buf name = LM_BUF_INIT;
    if (t->schema) lm_buf_printf(&name, "%s.", t->schema);
    lm_buf_puts(&name, t->name);
    problem *p = add_problem(
        v, "data", idx, "rows %s in %s: %lld before the upgrade, %lld "
        "after the downgrade (the rows a downgrade finds must survive it)", now.count == rows[i].count ? "changed" : "lost",
        lm_buf_str(&name), (long long)rows[i].count, (long long)now.count);
    p->data_table = lm_buf_detach(&name);
    return LM_ERROR;
  }
  return LM_OK;
}

/* A problem about one step of one revision, with the database's or the
 * script's words. */
static int step_failed(verify_run *v, const char *kind, size_t idx,
                       const char *what) {
  add_problem(v, kind, idx, "%s: %s", what, lm_errmsg(v->env));
  return LM_ERROR;
}

/* Compare two snapshots; a difference is a problem of the revision. */
static int differs(verify_run *v, size_t idx, const lm_schema *from,
                   const lm_schema *to, const char *kind, const char *what) {
  lm_diff d;
  lm_diff_init(&d);
  lm_schema_diff(&d, from, to);
  if (!d.n) {
    lm_diff_free(&d);
    return 0;
  }
  problem *p = add_problem(v, kind, idx, "%s", what);
  lm_diff_free(&p->diff);
  p->diff = d;
  return 1;
}

static void progress(verify_run *v, size_t i, size_t n, size_t idx) {
  if (v->a->opts.quiet || !isatty(STDERR_FILENO)) return;
  const lm_revision *r = lm_graph_rev(v->env->graph, idx);
  fprintf(stderr, "verify [%zu/%zu] %s%s%s\n", i + 1, n, r->id,
          r->message ? " " : "", r->message ? r->message : "");
}

/* One revision: up, down, compare, up, compare.  *before holds the schema
 * before it and, on return, the one after it. */
static int verify_revision(verify_run *v, const lm_step *up, size_t i,
                           size_t n, lm_schema *before) {
  lm_env *env = v->env;
  size_t idx = (size_t)up->rev;
  progress(v, i, n, idx);
  lm_schema after_up, after_down;
  lm_schema_init(&after_up);
  lm_schema_init(&after_down);
  lm_step down = inverse_step(up);
  table_rows *rows = NULL;
  int rc = run_fixture(v, idx);
  if (rc == LM_OK && v->data && hash_all(env, before, &rows) != LM_OK)
    rc = step_failed(v, "data", idx, "reading rows before the upgrade");
  if (rc == LM_OK && run_one(env, up, "upgrade") != LM_OK)
    rc = step_failed(v, "upgrade", idx, i ? "the upgrade from base fails "
                     "here" : "the upgrade from base fails at the first "
                     "revision");
  if (rc == LM_OK && snapshot(env, &after_up) != LM_OK)
    rc = step_failed(v, "schema", idx, "reading the schema");
  if (rc == LM_OK && run_one(env, &down, "downgrade") != LM_OK)
    rc = step_failed(v, "downgrade", idx, "the downgrade fails");
  if (rc == LM_OK && snapshot(env, &after_down) != LM_OK)
    rc = step_failed(v, "schema", idx, "reading the schema");
  if (rc == LM_OK &&
      differs(v, idx, before, &after_down, "downgrade_mismatch",
              "the downgrade does not give back the schema before the "
              "upgrade (before -> after the downgrade):"))
    rc = LM_ERROR;
  if (rc == LM_OK && rows && compare_rows(v, idx, before, rows) != LM_OK)
    rc = LM_ERROR;
  if (rc == LM_OK && run_one(env, up, "upgrade") != LM_OK)
    rc = step_failed(v, "upgrade", idx, "the upgrade fails after the "
                     "downgrade");
  if (rc == LM_OK && snapshot(env, before) != LM_OK)
    rc = step_failed(v, "schema", idx, "reading the schema");
  if (rc == LM_OK &&
      differs(v, idx, &after_up, before, "upgrade_mismatch",
              "upgrading again after the downgrade gives another schema "
              "(first upgrade -> second):"))
    rc = LM_ERROR;
  free(rows);
  free(down.actions);
  if (rc == LM_OK) {
    lm_schema_free(&after_up);
    lm_schema_free(&after_down);
  } else {
    /* a problem's diff points into them */
    v->kept[0] = after_up;
    v->kept[1] = after_down;
  }
  return rc;
}

/* Every revision, from base, in upgrade order. */
static int walk(verify_run *v, lm_schema *before) {
  lm_env *env = v->env;
  lm_plan plan = {0};
  int rc = lm_graph_plan_upgrade(env->graph, "heads", NULL, 0, &plan,
                                 &env->err);
  if (rc != LM_OK) {
    add_problem(v, "plan", NO_REV, "%s", lm_errmsg(env));
    return LM_ERROR;
  }
  if (snapshot(env, before) != LM_OK) {
    lm_plan_free(&plan);
    add_problem(v, "schema", NO_REV, "reading the schema: %s",
                lm_errmsg(env));
    return LM_ERROR;
  }
  for (size_t i = 0; rc == LM_OK && i < plan.nsteps; i++) {
    if (plan.steps[i].rev < 0) continue;
    rc = verify_revision(v, &plan.steps[i], i, plan.nsteps, before);
    if (rc == LM_OK) v->verified++;
  }
  lm_plan_free(&plan);
  return rc;
}

/* ---- the report --------------------------------------------------------- */

static void json_or_null(lm_buf *out, const char *s) {
  if (s) lm_json_string(out, s);
  else lm_buf_puts(out, "null");
}

/* The report as JSON (what `verify --json` prints, without the newline). */
static void report_json(const verify_run *v, const char *dialect,
                        double seconds, int interrupted, lm_buf *out) {
  lm_buf_printf(out, "{\"ok\": %s, \"dialect\": ",
                v->nproblems || interrupted ? "false" : "true");
  json_or_null(out, dialect);
  lm_buf_printf(out, ", \"revisions_verified\": %zu, \"seconds\": %.3f, "
                "\"problems\": [", v->verified, seconds);
  for (size_t i = 0; i < v->nproblems; i++) {
    const problem *p = &v->problems[i];
    lm_buf_puts(out, i ? ",\n  " : "\n  ");
    lm_buf_printf(out, "{\"kind\": \"%s\", \"revision\": ", p->kind);
    json_or_null(out, p->revision);
    lm_buf_puts(out, ", \"path\": ");
    json_or_null(out, p->path);
    lm_buf_puts(out, ", \"message\": ");
    lm_json_string(out, p->message);
    lm_buf_puts(out, ", \"table\": ");
    json_or_null(out, p->data_table);
    lm_buf_puts(out, ", \"differences\": ");
    lm_diff_json(&p->diff, out);
    lm_buf_putc(out, '}');
  }
  lm_buf_puts(out, "]}");
}

/* The problems as text, each line after `prefix`, with their diffs. */
static void report_problems(const verify_run *v, const char *prefix,
                            lm_buf *out) {
  for (size_t i = 0; i < v->nproblems; i++) {
    const problem *p = &v->problems[i];
    lm_buf_puts(out, prefix);
    if (p->revision)
      lm_buf_printf(out, "%s (%s): ", p->revision, p->path ? p->path : "?");
    lm_buf_printf(out, "%s\n", p->message);
    lm_diff_lines(&p->diff, "  ", out);
  }
}

/* Where the report goes: printed (json and text NULL; v->a->json picks
 * the form), or into the buffers. */
typedef struct report_to {
  lm_buf *json, *text;
} report_to;

static void report(verify_run *v, const char *dialect, double seconds,
                   int interrupted, const report_to *to) {
  if (to->json) {
    report_json(v, dialect, seconds, interrupted, to->json);
    report_problems(v, "verify: ", to->text);
    return;
  }
  lm_buf out = LM_BUF_INIT;
  if (v->a->json) {
    report_json(v, dialect, seconds, interrupted, &out);
    lm_buf_putc(&out, '\n');
    fputs(lm_buf_str(&out), stdout);
  } else {
    report_problems(v, "luamig: verify: ", &out);
    fputs(lm_buf_str(&out), stderr);
    if (!v->nproblems && !interrupted)
      printf("verified %zu revision%s on %s in %.1f s\n", v->verified,
             v->verified == 1 ? "" : "s", dialect, seconds);
  }
  lm_buf_free(&out);
}

/* The connection an environment holds (an embedding's), set aside while
 * verify works on the scratch database and given back after: verify must
 * never run on it, and an in-memory database must outlive it. */
typedef struct held_conn {
  const lm_dialect *dialect;
  lm_url parsed_url;
  lm_conn *conn;
  lm_stmt *stmts[sizeof ((lm_env *)0)->stmts / sizeof (lm_stmt *)];
} held_conn;

static void hold_conn(lm_env *env, held_conn *h) {
  lm_tx_rollback(env);
  h->dialect = env->dialect;
  h->parsed_url = env->parsed_url;
  h->conn = env->conn;
  memcpy(h->stmts, env->stmts, sizeof h->stmts);
  env->dialect = NULL;
  memset(&env->parsed_url, 0, sizeof env->parsed_url);
  env->conn = NULL;
  memset(env->stmts, 0, sizeof env->stmts);
}

static void give_back_conn(lm_env *env, held_conn *h) {
  lm_disconnect(env);
  lm_url_free(&env->parsed_url);
  env->dialect = h->dialect;
  env->parsed_url = h->parsed_url;
  env->conn = h->conn;
  memcpy(env->stmts, h->stmts, sizeof h->stmts);
}

static int run_verify(lm_env *env, lm_args *a, const report_to *to) {
  verify_run v;
  memset(&v, 0, sizeof v);
  v.env = env;
  v.a = a;
  lm_schema_init(&v.kept[0]);
  lm_schema_init(&v.kept[1]);
  double t0 = lm_now();
  const char *dialect = NULL;
  int usage = 0, rc = LM_OK;
  if (lm_scripts_load(env) != LM_OK) {
    add_problem(&v, "load", NO_REV, "%s", lm_errmsg(env));
  } else {
    check_graph(&v);
  }
  if (!v.nproblems) {
    rc = open_scratch(&v);
    if (rc == LM_OK) rc = lm_connect(env);
    if (rc == LM_OK && env->dialect->version >= 6 &&
        env->dialect->scratch_tune)
      rc = env->dialect->scratch_tune(env->conn, &env->err);
    if (rc == LM_OK) rc = lm_begin_run(env);
    if (rc != LM_OK) {
      usage = rc == LM_EUSAGE;
      add_problem(&v, "scratch", NO_REV, "%s", lm_errmsg(env));
    } else {
      dialect = env->dialect->name;
      lm_schema before;
      lm_schema_init(&before);
      /* The runner's own lines would be three per revision: verify
       * prints its own. */
      int quiet = env->quiet;
      env->quiet = 1;
      walk(&v, &before);
      env->quiet = quiet;
      close_scratch(&v);
      report(&v, dialect, lm_now() - t0, lm_signal_received != 0, to);
      lm_schema_free(&before);
      goto done;
    }
    close_scratch(&v);
  }
  report(&v, dialect, lm_now() - t0, lm_signal_received != 0, to);
done:
  rc = usage ? 2 : v.nproblems || lm_signal_received ? 1 : 0;
  lm_schema_free(&v.kept[0]);
  lm_schema_free(&v.kept[1]);
  free_problems(&v);
  return rc;
}

int lm_cmd_verify(lm_env *env, lm_args *a) {
  static const report_to print = {NULL, NULL};
  return run_verify(env, a, &print);
}

int lm_verify_report(lm_env *env, const char *scratch_url, lm_buf *json,
                     lm_buf *text) {
  lm_args a;
  memset(&a, 0, sizeof a);
  a.silent = 1;
  a.opts.quiet = 1;
  a.json = 1;
  a.scratch_url = scratch_url;
  report_to to = {json, text};
  held_conn held;
  hold_conn(env, &held);
  int code = run_verify(env, &a, &to);
  give_back_conn(env, &held);
  return code;
}
