/*
 * cli_read.c - the commands that only read: current, heads, branches,
 * history, show and status (cli.c parses their arguments).  Results go
 * to stdout, in Alembic's words or as JSON.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_args.h"
#include "core.h"

/* A revision as a JSON object. */
static void json_revision(lm_env *env, size_t idx, lm_buf *out) {
  const lm_graph *g = env->graph;
  const lm_revision *r = lm_graph_rev(g, idx);
  lm_buf_puts(out, "{\"revision\": ");
  lm_json_string(out, r->id);
  lm_buf_puts(out, ", \"down_revisions\": ");
  lm_json_list(out, r->down, r->ndown);
  lm_buf_puts(out, ", \"depends_on\": ");
  lm_json_list(out, r->depends, r->ndepends);
  lm_buf_puts(out, ", \"branch_labels\": ");
  lm_json_list(out, r->labels, r->nlabels);
  lm_buf_puts(out, ", \"message\": ");
  lm_json_string(out, r->message ? r->message : "");
  lm_buf_puts(out, ", \"path\": ");
  lm_json_string(out, r->path ? r->path : "");
  lm_buf_puts(out, ", \"next_revisions\": [");
  lm_revlist next = {0};
  lm_graph_nextrev(g, idx, &next);
  for (size_t i = 0; i < next.n; i++) {
    if (i) lm_buf_puts(out, ", ");
    lm_json_string(out, lm_graph_rev(g, next.idx[i])->id);
  }
  lm_revlist_free(&next);
  lm_buf_putc(out, ']');
  lm_buf_printf(out, ", \"is_head\": %s, \"is_base\": %s, "
                "\"is_branch_point\": %s, \"is_merge_point\": %s}",
                lm_graph_is_head(g, idx) ? "true" : "false",
                lm_graph_is_base(g, idx) ? "true" : "false",
                lm_graph_is_branch_point(g, idx) ? "true" : "false",
                lm_graph_is_merge_point(g, idx) ? "true" : "false");
}

/* Print a list of revisions, one formatted line each, or as JSON; those in
 * `current` (may be NULL) are marked "(current)". */
static void print_revisions_marked(lm_env *env, lm_args *a,
                                   const lm_revlist *l, unsigned flags,
                                   char **current) {
  lm_buf out = LM_BUF_INIT;
  if (a->json) {
    lm_buf_puts(&out, "[");
    for (size_t i = 0; i < l->n; i++) {
      lm_buf_puts(&out, i ? ",\n " : "");
      json_revision(env, l->idx[i], &out);
    }
    lm_buf_puts(&out, "]\n");
  } else {
    for (size_t i = 0; i < l->n; i++) {
      lm_script *s = lm_script_at(env, l->idx[i]);
      unsigned mark = 0;
      for (char **c = current; c && *c; c++)
        if (strcmp(*c, lm_graph_rev(env->graph, l->idx[i])->id) == 0)
          mark = LM_FMT_CURRENT;
      lm_graph_format_doc(env->graph, l->idx[i],
                          flags | mark | (a->verbose ? LM_FMT_VERBOSE : 0),
                          s ? s->doc : NULL, &out);
      lm_buf_putc(&out, '\n');
    }
  }
  fputs(lm_buf_str(&out), stdout);
  lm_buf_free(&out);
}

static void print_revisions(lm_env *env, lm_args *a, const lm_revlist *l,
                            unsigned flags) {
  print_revisions_marked(env, a, l, flags, NULL);
}

/* ---- commands that read ------------------------------------------------- */

/* --check-heads: the database must be at every head of the graph and at
 * nothing else (as Alembic's `current --check-heads`). */
static int check_heads(lm_env *env, const lm_revlist *cur) {
  lm_revlist heads = {0};
  if (lm_graph_heads(env->graph, &heads) != LM_OK)
    return lm_err_set(&env->err, "cannot list the heads");
  int same = heads.n == cur->n;
  for (size_t i = 0; same && i < heads.n; i++) {
    int found = 0;
    for (size_t k = 0; k < cur->n; k++) found |= cur->idx[k] == heads.idx[i];
    same = found;
  }
  if (same) {
    lm_revlist_free(&heads);
    return LM_OK;
  }
  lm_buf at = LM_BUF_INIT, want = LM_BUF_INIT;
  for (size_t k = 0; k < cur->n; k++)
    lm_buf_printf(&at, "%s%s", k ? ", " : "",
                  lm_graph_rev(env->graph, cur->idx[k])->id);
  for (size_t i = 0; i < heads.n; i++)
    lm_buf_printf(&want, "%s%s", i ? ", " : "",
                  lm_graph_rev(env->graph, heads.idx[i])->id);
  lm_err_set(&env->err, "the database is not at the head%s of the scripts: "
             "it is at %s, the head%s %s %s", heads.n == 1 ? "" : "s",
             cur->n ? lm_buf_str(&at) : "base", heads.n == 1 ? "" : "s",
             heads.n == 1 ? "is" : "are",
             heads.n ? lm_buf_str(&want) : "none");
  lm_buf_free(&at);
  lm_buf_free(&want);
  lm_revlist_free(&heads);
  return LM_ERROR;
}

int lm_cmd_current(lm_env *env, lm_args *a) {
  char **heads;
  int rc = lm_scripts_load(env);
  if (rc == LM_OK) rc = lm_current(&heads, env);
  if (rc != LM_OK) return lm_cli_fail(env, rc);
  size_t n = 0;
  while (heads[n]) n++;
  lm_revlist cur = {0};
  rc = lm_graph_current(env->graph, (const char *const *)heads, n, &cur,
                        &env->err);
  lm_free_list(heads);
  if (rc == LM_OK && a->check_heads) rc = check_heads(env, &cur);
  if (rc == LM_OK) print_revisions(env, a, &cur, LM_FMT_TREE);
  lm_revlist_free(&cur);
  return rc == LM_OK ? 0 : lm_cli_fail(env, rc);
}

int lm_cmd_heads(lm_env *env, lm_args *a) {
  int rc = lm_scripts_load(env);
  if (rc != LM_OK) return lm_cli_fail(env, rc);
  lm_revlist heads = {0};
  rc = a->resolve_dependencies ? lm_graph_real_heads(env->graph, &heads)
                               : lm_graph_heads(env->graph, &heads);
  if (rc != LM_OK) return lm_cli_fail(env, rc);
  print_revisions(env, a, &heads, LM_FMT_BRANCHES | LM_FMT_EFFECTIVE);
  lm_revlist_free(&heads);
  return 0;
}

int lm_cmd_branches(lm_env *env, lm_args *a) {
  int rc = lm_scripts_load(env);
  if (rc != LM_OK) return lm_cli_fail(env, rc);
  lm_revlist bp = {0};
  if (lm_graph_branch_points(env->graph, &bp) != LM_OK)
    return lm_cli_fail(env, LM_ERROR);
  if (a->json) {
    /* each object's next_revisions are the branches */
    print_revisions(env, a, &bp, 0);
    lm_revlist_free(&bp);
    return 0;
  }
  lm_buf out = LM_BUF_INIT;
  for (size_t i = 0; i < bp.n; i++) {
    lm_script *s = lm_script_at(env, bp.idx[i]);
    lm_graph_format_branch_point(env->graph, bp.idx[i], a->verbose,
                                 s ? s->doc : NULL, &out);
    lm_buf_putc(&out, '\n');
  }
  fputs(lm_buf_str(&out), stdout);
  lm_buf_free(&out);
  lm_revlist_free(&bp);
  return 0;
}

int lm_cmd_history(lm_env *env, lm_args *a) {
  int rc = lm_scripts_load(env);
  if (rc != LM_OK) return lm_cli_fail(env, rc);
  /* The database is read only when the range or -i asks for it. */
  char **heads = NULL;
  size_t n = 0;
  if (a->indicate_current || (a->range && strstr(a->range, "current"))) {
    rc = lm_current(&heads, env);
    if (rc != LM_OK) return lm_cli_fail(env, rc);
    while (heads[n]) n++;
  }
  lm_revlist l = {0};
  rc = lm_graph_history(env->graph, a->range, (const char *const *)heads, n,
                        &l, &env->err);
  if (rc == LM_OK) {
    unsigned flags = LM_FMT_BRANCHES | LM_FMT_TREE | LM_FMT_PARENTS |
                     LM_FMT_DOC;
    print_revisions_marked(env, a, &l, flags,
                           a->indicate_current ? heads : NULL);
  }
  lm_revlist_free(&l);
  lm_free_list(heads);
  return rc == LM_OK ? 0 : lm_cli_fail(env, rc);
}

/* show REV; `show current` shows the revisions the version table holds
 * (nothing at base), as Alembic's does. */
int lm_cmd_show(lm_env *env, lm_args *a) {
  int rc = lm_scripts_load(env);
  if (rc != LM_OK) return lm_cli_fail(env, rc);
  const char *rev = a->pos.items[0];
  lm_revlist l = {0};
  if (strcmp(rev, "current") == 0) {
    char **current;
    if ((rc = lm_current(&current, env)) != LM_OK) return lm_cli_fail(env, rc);
    size_t n = 0;
    while (current[n]) n++;
    l.idx = lm_xmalloc((n + 1) * sizeof *l.idx);
    for (size_t i = 0; rc == LM_OK && i < n; i++)
      rc = lm_graph_lookup(env->graph, current[i], &l.idx[l.n++], &env->err);
    lm_free_list(current);
    if (rc == LM_OK && n == 0 && !env->quiet && !a->json)
      fputs("The database is at base: no current revision.\n", stderr);
  } else {
    rc = lm_graph_resolve(env->graph, rev, NULL, 0, &l, &env->err);
  }
  if (rc == LM_OK) {
    a->verbose = 1;
    print_revisions(env, a, &l, LM_FMT_TREE);
  }
  lm_revlist_free(&l);
  return rc == LM_OK ? 0 : lm_cli_fail(env, rc);
}

/* status: heads, pending revisions, drifted and missing scripts, the dirty
 * mark and the lock holder, in one look. */
int lm_cmd_status(lm_env *env, lm_args *a) {
  lm_status st;
  lm_buf out = LM_BUF_INIT, kept = LM_BUF_INIT, kept_json = LM_BUF_INIT;
  int rc = lm_status_read(env, &st);
  if (rc == LM_OK) rc = lm_kept_summary(env, &kept, &kept_json);
  lm_disconnect(env);
  if (rc != LM_OK) {
    rc = lm_cli_fail(env, rc);
    goto done;
  }
  if (a->json) {
    lm_buf_puts(&out, "{\"current\": [");
    for (size_t i = 0; i < st.heads.n; i++) {
      lm_buf_puts(&out, i ? ", " : "");
      lm_json_string(&out, st.heads.items[i]);
    }
    lm_buf_puts(&out, "], \"pending\": [");
    for (size_t i = 0, k = 0; i < st.pending.nsteps; i++) {
      if (st.pending.steps[i].rev < 0) continue;
      lm_buf_puts(&out, k++ ? ", " : "");
      lm_json_string(&out, lm_graph_rev(env->graph, (size_t)st.pending.steps[i].rev)->id);
    }
    lm_buf_puts(&out, "], \"pending_error\": ");
    if (st.pending_error) lm_json_string(&out, st.pending_error);
    else lm_buf_puts(&out, "null");
    lm_buf_puts(&out, ", \"drifted\": [");
    for (size_t i = 0; i < st.drift.drifted.n; i++) {
      char *f[4], *p = st.drift.drifted.items[i];
      for (int k = 0; k < 4; k++) {
        f[k] = p;
        p = strchr(p, '\t');
        if (p) *p++ = '\0';
      }
      lm_buf_puts(&out, i ? ", " : "");
      lm_buf_puts(&out, "{\"revision\": ");
      lm_json_string(&out, f[0]);
      lm_buf_puts(&out, ", \"path\": ");
      lm_json_string(&out, f[1]);
      lm_buf_puts(&out, ", \"logged_checksum\": ");
      lm_json_string(&out, f[2]);
      lm_buf_puts(&out, ", \"file_checksum\": ");
      lm_json_string(&out, f[3]);
      lm_buf_putc(&out, '}');
    }
    lm_buf_puts(&out, "], \"missing\": [");
    for (size_t i = 0; i < st.drift.missing.n; i++) {
      lm_buf_puts(&out, i ? ", " : "");
      lm_json_string(&out, st.drift.missing.items[i]);
    }
    lm_buf_puts(&out, "], \"dirty\": ");
    if (st.dirty) lm_json_string(&out, lm_buf_str(&st.dirty_mark));
    else lm_buf_puts(&out, "null");
    lm_buf_puts(&out, ", \"lock\": ");
    if (st.locked) lm_json_string(&out, lm_buf_str(&st.lock_holder));
    else lm_buf_puts(&out, "null");
    lm_buf_printf(&out, ", \"kept\": %s}\n", lm_buf_str(&kept_json));
  } else {
    lm_buf_puts(&out, "Current:");
    if (!st.heads.n) lm_buf_puts(&out, " <base>");
    for (size_t i = 0; i < st.heads.n; i++)
      lm_buf_printf(&out, " %s", st.heads.items[i]);
    lm_buf_putc(&out, '\n');
    size_t npending = 0;
    for (size_t i = 0; i < st.pending.nsteps; i++) npending += st.pending.steps[i].rev >= 0;
    if (st.pending_error)
      lm_buf_printf(&out, "Pending: unknown (%s)\n", st.pending_error);
    else
      lm_buf_printf(&out, "Pending: %zu\n", npending);
    for (size_t i = 0; i < st.pending.nsteps; i++) {
      if (st.pending.steps[i].rev < 0) continue;
      lm_buf_puts(&out, "  ");
      lm_graph_format(env->graph, (size_t)st.pending.steps[i].rev,
                      LM_FMT_PARENTS | LM_FMT_DOC, &out);
      lm_buf_putc(&out, '\n');
    }
    lm_buf_printf(&out, "Drifted scripts: %zu\n", st.drift.drifted.n);
    for (size_t i = 0; i < st.drift.drifted.n; i++) {
      char *f = st.drift.drifted.items[i], *path = strchr(f, '\t') + 1;
      *strchr(path, '\t') = '\0';
      *strchr(f, '\t') = '\0';
      lm_buf_printf(&out, "  %s %s changed since it ran\n", f, path);
    }
    lm_buf_printf(&out, "Missing scripts: %zu\n", st.drift.missing.n);
    for (size_t i = 0; i < st.drift.missing.n; i++)
      lm_buf_printf(&out, "  %s was applied but has no script\n",
                    st.drift.missing.items[i]);
    lm_buf_printf(&out, "Dirty: %s\n", st.dirty ? lm_buf_str(&st.dirty_mark) : "no");
    lm_buf_printf(&out, "Lock: %s\n", st.locked ? lm_buf_str(&st.lock_holder) : "free");
    lm_buf_printf(&out, "Kept: %s\n", lm_buf_str(&kept));
  }
  fputs(lm_buf_str(&out), stdout);
  /* Like `check`, a status that needs attention is not a success. */
  rc = (st.dirty || ((st.drift.drifted.n || st.drift.missing.n) &&
                     (env->strict_checksums || a->strict)))
           ? 1 : 0;
done:
  lm_status_free(&st);
  lm_buf_free(&out);
  lm_buf_free(&kept);
  lm_buf_free(&kept_json);
  return rc;
}
