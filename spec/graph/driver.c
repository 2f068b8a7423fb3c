/*
 * driver.c - runs revision-graph queries from a text description, for the
 * cross-check against Alembic (compare.py).
 *
 * Input (stdin), one item per line, fields separated by single spaces, "-"
 * for an empty list, lists comma-separated:
 *   rev ID DOWN DEPS LABELS MESSAGE...     (in script-file order)
 *   load                                   (build the graph; prints "loaded" or "graph-error")
 *   heads | realheads | bases | branchpoints
 *   current CUR | history RANGE CUR | resolve TARGET CUR
 *   upgrade TARGET CUR | downgrade TARGET CUR
 *   stamp TARGETS CUR PURGE
 *   format ID FLAGS | fmtbranch ID VERBOSE
 * Every command prints "== " and the command, then its result lines.
 * With -t, each command's time goes to stderr.  With LM_GRAPH_TOPO_LITERAL
 * set in the environment, every walk uses the literal topological sort
 * (the graph's test hook), which compare.py checks against the fast one.
 */
#define _POSIX_C_SOURCE 200809L
#include "graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct strs { const char **v; size_t n; } strs;

/* Split a comma list in place ("-" is empty). */
static strs split_list(char *s) {
  strs r = {NULL, 0};
  if (!s || strcmp(s, "-") == 0) return r;
  size_t cap = 1;
  for (char *p = s; *p; p++) cap += *p == ',';
  r.v = lm_xmalloc(cap * sizeof *r.v);
  char *save = NULL;
  for (char *t = strtok_r(s, ",", &save); t; t = strtok_r(NULL, ",", &save)) r.v[r.n++] = t;
  return r;
}

static void print_list(const lm_graph *g, const lm_revlist *l) {
  printf("ids:");
  for (size_t i = 0; i < l->n; i++) printf(" %s", lm_graph_rev(g, l->idx[i])->id);
  printf("\n");
}

static void print_plan(const lm_graph *g, const lm_plan *p) {
  for (size_t i = 0; i < p->nsteps; i++) {
    const lm_step *s = &p->steps[i];
    printf("step %s %s:", s->rev >= 0 ? lm_graph_rev(g, (size_t)s->rev)->id : "-", s->upgrade ? "up" : "down");
    for (size_t k = 0; k < s->nactions; k++) {
      const lm_vt_action *a = &s->actions[k];
      if (a->kind == LM_VT_INSERT) printf(" INSERT %s;", a->to);
      else if (a->kind == LM_VT_DELETE) printf(" DELETE %s;", a->from);
      else printf(" UPDATE %s>%s;", a->from, a->to);
    }
    printf("\n");
  }
  printf("end\n");
}

static void print_err(lm_err *err) {
  printf("error\n");
  printf("message: %s\n", lm_err_msg(err));
  lm_err_free(err);
}

/* A plain copy of the text, owned by the revision table. */
typedef struct store { char **v; size_t n, cap; } store;
static char *keep(store *s, char *p) {
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 64;
    s->v = lm_xrealloc(s->v, s->cap * sizeof *s->v);
  }
  s->v[s->n++] = p;
  return p;
}

int main(int argc, char **argv) {
  int timing = argc > 1 && strcmp(argv[1], "-t") == 0;
  int topo_literal = getenv("LM_GRAPH_TOPO_LITERAL") != NULL;
  lm_revision *revs = NULL;
  size_t nrevs = 0, cap = 0;
  store st = {0};
  lm_graph *g = NULL;
  lm_err err;
  lm_err_init(&err);
  char *line = NULL;
  size_t lcap = 0;
  ssize_t len;
  while ((len = getline(&line, &lcap, stdin)) > 0) {
    if (line[len - 1] == '\n') line[--len] = '\0';
    if (!*line) continue;
    char *buf = keep(&st, lm_xstrdup(line));
    char *save = NULL;
    char *cmd = strtok_r(buf, " ", &save);
    if (!cmd) continue;
    if (strcmp(cmd, "rev") == 0) {
      if (nrevs == cap) {
        cap = cap ? cap * 2 : 64;
        revs = lm_xrealloc(revs, cap * sizeof *revs);
      }
      lm_revision *r = &revs[nrevs++];
      memset(r, 0, sizeof *r);
      r->id = strtok_r(NULL, " ", &save);
      strs d = split_list(strtok_r(NULL, " ", &save));
      strs p = split_list(strtok_r(NULL, " ", &save));
      strs l = split_list(strtok_r(NULL, " ", &save));
      keep(&st, (char *)d.v);
      keep(&st, (char *)p.v);
      keep(&st, (char *)l.v);
      r->down = d.v; r->ndown = d.n;
      r->depends = p.v; r->ndepends = p.n;
      r->labels = l.v; r->nlabels = l.n;
      r->message = save && *save ? save : NULL;
      r->path = keep(&st, lm_xasprintf("versions/%s.py", r->id ? r->id : ""));
      continue;
    }
    printf("== %s\n", line);
    double t0 = lm_now();
    if (strcmp(cmd, "load") == 0) {
      if (lm_graph_new(&g, revs, nrevs, &err) == LM_OK) {
        lm_graph_test_topo_literal(g, topo_literal);
        printf("loaded\n");
      }
      else { printf("graph-error\n"); printf("message: %s\n", lm_err_msg(&err)); lm_err_free(&err); }
    } else if (!g) {
      printf("no graph\n");
    } else if (!strcmp(cmd, "heads") || !strcmp(cmd, "realheads") || !strcmp(cmd, "bases") ||
               !strcmp(cmd, "branchpoints")) {
      lm_revlist l = {0};
      if (!strcmp(cmd, "heads")) lm_graph_heads(g, &l);
      else if (!strcmp(cmd, "realheads")) lm_graph_real_heads(g, &l);
      else if (!strcmp(cmd, "bases")) lm_graph_bases(g, &l);
      else lm_graph_branch_points(g, &l);
      print_list(g, &l);
      lm_revlist_free(&l);
    } else if (!strcmp(cmd, "current") || !strcmp(cmd, "history") || !strcmp(cmd, "resolve")) {
      char *arg = strcmp(cmd, "current") ? strtok_r(NULL, " ", &save) : NULL;
      strs cur = split_list(strtok_r(NULL, " ", &save));
      lm_revlist l = {0};
      int rc;
      if (!strcmp(cmd, "current")) rc = lm_graph_current(g, cur.v, cur.n, &l, &err);
      else if (!strcmp(cmd, "history")) rc = lm_graph_history(g, strcmp(arg, "-") ? arg : NULL, cur.v, cur.n, &l, &err);
      else rc = lm_graph_resolve(g, arg, cur.v, cur.n, &l, &err);
      if (rc == LM_OK) print_list(g, &l);
      else print_err(&err);
      lm_revlist_free(&l);
      free(cur.v);
    } else if (!strcmp(cmd, "upgrade") || !strcmp(cmd, "downgrade") || !strcmp(cmd, "stamp")) {
      char *arg = strtok_r(NULL, " ", &save);
      strs cur = split_list(strtok_r(NULL, " ", &save));
      lm_plan p = {0};
      int rc;
      if (!strcmp(cmd, "upgrade")) rc = lm_graph_plan_upgrade(g, arg, cur.v, cur.n, &p, &err);
      else if (!strcmp(cmd, "downgrade")) rc = lm_graph_plan_downgrade(g, arg, cur.v, cur.n, &p, &err);
      else {
        char *purge = strtok_r(NULL, " ", &save);
        strs t = split_list(arg);
        rc = lm_graph_plan_stamp(g, t.v, t.n, cur.v, cur.n, purge && atoi(purge), &p, &err);
        free(t.v);
      }
      if (rc == LM_OK) print_plan(g, &p);
      else print_err(&err);
      lm_plan_free(&p);
      free(cur.v);
    } else if (!strcmp(cmd, "format") || !strcmp(cmd, "fmtbranch")) {
      char *id = strtok_r(NULL, " ", &save);
      char *fl = strtok_r(NULL, " ", &save);
      size_t idx;
      if (!id || lm_graph_lookup(g, id, &idx, &err) != LM_OK) { print_err(&err); continue; }
      lm_buf b = LM_BUF_INIT;
      if (!strcmp(cmd, "format")) lm_graph_format(g, idx, fl ? (unsigned)atoi(fl) : 0, &b);
      else lm_graph_format_branch_point(g, idx, fl && atoi(fl), NULL, &b);
      printf("text: ");
      for (const char *p = lm_buf_str(&b); *p; p++) {
        if (*p == '\n') printf("\\n");
        else if (*p == '\\') printf("\\\\");
        else putchar(*p);
      }
      printf("\n");
      lm_buf_free(&b);
    } else {
      printf("unknown command\n");
    }
    if (timing) fprintf(stderr, "%.3f ms  %s\n", (lm_now() - t0) * 1000.0, line);
    fflush(stdout);
  }
  free(line);
  lm_graph_free(g);
  free(revs);
  for (size_t i = 0; i < st.n; i++) free(st.v[i]);
  free(st.v);
  return 0;
}
