/*
 * graph_plan.c - walks over the revision graph (targets are parsed in
 * graph_target.c): the revisions `upgrade`,
 * `downgrade` and `history` visit and in which order (Alembic's
 * iterate_revisions with _collect_upgrade_revisions /
 * _collect_downgrade_revisions), then sorted (graph_topo.c) and turned
 * into version-table changes (graph_versions.c, which also plans `stamp`).
 *
 * Deliberate refusals, where Alembic 1.8 warns and guesses, crashes on an
 * assertion, or silently does nothing (each names the revisions involved):
 *   - `downgrade -N` with several distinct current heads (Alembic warns and
 *     walks from whichever row the database returned first);
 *   - `LABEL@-N` when the label matches no or several current heads
 *     (Alembic: assertion error);
 *   - a relative walk that ends at base or past the graph where Alembic
 *     then crashes (`upgrade REV-N` to base, `stamp` to a walked-off base);
 *   - a version-table change Alembic's HeadMaintainer would crash on
 *     (deleting or updating a row that is not there, inserting one that
 *     is, an ambiguous UPDATE);
 *   - `stamp` to a revision with current heads both above and below it.
 * Alembic's own errors (several heads for "head", "Ambiguous walk" at a
 * branch or merge point, walking past a head, a downgrade target that is
 * not below the current heads, ...) are errors here too, with the
 * revisions named.
 */
#define LM_GRAPH_INTERNAL
#include "graph.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---- collecting the revisions to visit ------------------------------------ */

/* _iterate_related_revisions(check=True): refuse targets where one is a
 * strict ancestor (or descendant) of another, as Alembic does. */
static int check_overlap(lm_gctx *c, const lm_gvec *t, int up, int deps, lm_err *err) {
  const lm_graph *g = c->g;
  for (size_t i = 0; i < t->n; i++) {
    if (t->v[i] < 0) continue;
    unsigned gen = lm_gctx_next(c);
    lm_g_reach(c, &t->v[i], 1, up, deps, gen);
    for (size_t k = 0; k < t->n; k++)
      if (t->v[k] >= 0 && t->v[k] != t->v[i] && c->mark[t->v[k]] == gen)
        return lm_err_set(err, "requested revision %s overlaps with other requested revision %s (one is %s of "
                          "the other)", g->revs[t->v[i]].id, g->revs[t->v[k]].id, up ? "a descendant" : "an ancestor");
    if (t->n <= 1) break;
  }
  return LM_OK;
}
void lm_gwalk_free(lm_gwalk *w) {
  free(w->todo);
  lm_gvec_free(&w->heads);
}

/* _collect_upgrade_revisions. */
static int collect_upgrade(lm_gctx *c, lm_gspec upper, lm_gspec lower, int inclusive, int implicit_base, int assert_len,
                           lm_gwalk *w, lm_err *err) {
  const lm_graph *g = c->g;
  lm_gvec targets = {0}, currev = {0};
  int rc = lm_g_parse_upgrade_target(c, lower, upper, assert_len, &targets, err);
  if (rc != LM_OK) goto done;
  for (size_t i = 0; i < targets.n; i++)
    if (targets.v[i] < 0) {
      rc = lm_g_not_a_revision(g, upper.str ? upper.str : "the target", targets.v[i], err);
      goto done;
    }
  if (lower.str && strchr(lower.str, '@')) {
    /* branch@... lower bound: keep targets on that branch */
    char *branch = lm_xstrndup(lower.str, (size_t)(strchr(lower.str, '@') - lower.str));
    long br;
    rc = lm_g_get_revision(c, branch, &br, err);
    if (rc == LM_OK && br >= 0 && strcmp(g->revs[br].id, branch) == 0) {
      if (g->labels[br].n != 1) {
        rc = lm_err_set(err, "revision %s used as a branch name must carry exactly one branch label", branch);
      } else {
        free(branch);
        branch = lm_xstrdup(g->labelnames[g->labels[br].v[0]]);
      }
    }
    if (rc == LM_OK) {
      size_t m = 0;
      for (size_t i = 0; i < targets.n; i++)
        if (lm_g_has_label(g, (size_t)targets.v[i], branch)) targets.v[m++] = targets.v[i];
      targets.n = m;
    }
    free(branch);
    if (rc != LM_OK) goto done;
  }
  if ((rc = check_overlap(c, &targets, 0, 1, err)) != LM_OK) goto done;
  unsigned char *req = lm_xcalloc(g->n + 1, 1);
  unsigned gen = lm_gctx_next(c);
  lm_g_reach(c, targets.v, targets.n, 0, 1, gen);
  for (size_t i = 0; i < g->n; i++) req[i] = c->mark[i] == gen;

  rc = lm_g_spec_revisions(c, lower, &currev, err);
  if (rc == LM_OK && !implicit_base) {
    for (size_t i = 0; i < currev.n; i++)
      if (currev.v[i] != LM_G_NONE && (currev.v[i] < 0 || !req[currev.v[i]])) {
        rc = lm_err_set(err, "requested range %s:%s does not refer to ancestor/descendant revisions along the same "
                        "branch", lower.str ? lower.str : "current", upper.str ? upper.str : "current");
        break;
      }
  }
  const char *lower_str = lower.str;
  int lower_none = 0;
  if (rc == LM_OK && currev.n && currev.v[0] == LM_G_NONE) {
    char *lab = NULL;
    long r;
    rc = lm_g_parse_downgrade_target(c, upper, lower.str, assert_len, &lab, &r, err);
    free(lab);
    if (rc == LM_OK) {
      if (r == LM_G_NONE) rc = lm_err_set(err, "cannot resolve the lower bound %s", lower.str ? lower.str : "");
      else if (r == LM_G_BASE) { currev.n = 0; lower_none = 1; }
      else { currev.n = 0; lm_gvec_push(&currev, r); lower_str = g->revs[r].id; }
    }
  }
  for (size_t i = 0; rc == LM_OK && i < currev.n; i++)
    if (currev.v[i] < 0) rc = lm_g_not_a_revision(g, "the lower bound", currev.v[i], err);
  if (rc == LM_OK) rc = check_overlap(c, &currev, 0, 1, err);
  if (rc != LM_OK) { free(req); goto done; }
  gen = lm_gctx_next(c);
  lm_g_reach(c, currev.v, currev.n, 0, 1, gen);
  w->todo = lm_xcalloc(g->n + 1, 1);
  for (size_t i = 0; i < g->n; i++) w->todo[i] = req[i] && c->mark[i] != gen;
  free(req);
  if (inclusive && !lower_none) {
    lm_gvec low = {0};
    if (lower_str != lower.str) rc = lm_g_get_revisions(c, lower_str, &low, err);
    else rc = lm_g_spec_revisions(c, lower, &low, err);
    for (size_t i = 0; rc == LM_OK && i < low.n; i++) {
      if (low.v[i] < 0) rc = lm_g_not_a_revision(g, "the lower bound", low.v[i], err);
      else w->todo[low.v[i]] = 1;
    }
    lm_gvec_free(&low);
    if (rc != LM_OK) goto done;
  }
  if (currev.n && !implicit_base) {
    if ((rc = check_overlap(c, &currev, 1, 0, err)) != LM_OK) goto done;
    gen = lm_gctx_next(c);
    lm_g_reach(c, currev.v, currev.n, 1, 0, gen);
    for (size_t i = 0; i < g->n; i++)
      if (c->mark[i] != gen) w->todo[i] = 0;
  }
  for (size_t i = 0; i < g->n; i++) w->ntodo += w->todo[i];
  for (size_t i = 0; i < targets.n; i++) lm_gvec_push(&w->heads, targets.v[i]);
done:
  lm_gvec_free(&targets);
  lm_gvec_free(&currev);
  return rc;
}

/* _collect_downgrade_revisions (inclusive=False, implicit_base=False as
 * `downgrade` uses it). */
static int collect_downgrade(lm_gctx *c, lm_gspec upper, const char *target, int assert_len, lm_gwalk *w, lm_err *err) {
  const lm_graph *g = c->g;
  char *branch = NULL;
  long trev;
  lm_gvec roots = {0}, heads = {0};
  int rc = lm_g_parse_downgrade_target(c, upper, target, assert_len, &branch, &trev, err);
  if (rc != LM_OK) return rc;
  if (trev == LM_G_BASE) trev = LM_G_NONE;
  if (trev == LM_G_NONE) {
    for (size_t i = 0; i < g->n; i++)
      if (g->down[i].n == 0) lm_gvec_push(&roots, (long)i);
  } else {
    for (size_t k = 0; k < g->next[trev].n; k++) lm_gvec_push(&roots, (long)g->next[trev].v[k]);
  }
  if (branch && *branch && roots.n > 1) {
    long br;
    /* _resolve_branch */
    void *p = lm_map_get(&g->keys, branch);
    if (p) { br = (long)((size_t)p - 1); }
    else if ((rc = lm_g_revision_for_ident(c, branch, NULL, &br, err)) != LM_OK) {
      rc = lm_err_set(err, "no such branch: '%s'", branch);
      goto done;
    }
    unsigned gen = lm_gctx_next(c);
    lm_g_reach(c, &br, 1, 0, 0, gen);
    size_t m = 0;
    for (size_t i = 0; i < roots.n; i++)
      if (c->mark[roots.v[i]] == gen) roots.v[m++] = roots.v[i];
    roots.n = m;
    if (m == 0) {
      rc = lm_err_set(err, "%s is not a valid downgrade target from the current heads", target);
      goto done;
    }
  }
  if ((rc = lm_g_spec_revisions(c, upper, &heads, err)) != LM_OK) goto done;
  for (size_t i = 0; i < heads.n; i++)
    if (heads.v[i] < 0) { rc = lm_g_not_a_revision(g, "a current revision", heads.v[i], err); goto done; }
  {
    unsigned char *desc = lm_xcalloc(g->n + 1, 1);
    unsigned gen = lm_gctx_next(c);
    lm_g_reach(c, roots.v, roots.n, 1, 1, gen);
    for (size_t i = 0; i < g->n; i++) desc[i] = c->mark[i] == gen;
    gen = lm_gctx_next(c);
    lm_g_reach(c, heads.v, heads.n, 0, 1, gen);
    w->todo = lm_xcalloc(g->n + 1, 1);
    for (size_t i = 0; i < g->n; i++) {
      w->todo[i] = desc[i] && c->mark[i] == gen;
      w->ntodo += w->todo[i];
    }
    free(desc);
  }
  if (trev != LM_G_NONE && w->ntodo == 0 && !lm_gvec_has(&heads, trev)) {
    lm_buf b = LM_BUF_INIT;
    lm_g_join(g, heads.v, heads.n, &b);
    rc = lm_err_set(err, "destination %s is not a valid downgrade target from current head(s) %s: it is not below them",
                    g->revs[trev].id, heads.n ? lm_buf_str(&b) : "(none)");
    lm_buf_free(&b);
    goto done;
  }
  for (size_t i = 0; i < heads.n; i++) lm_gvec_push(&w->heads, heads.v[i]);
done:
  free(branch);
  lm_gvec_free(&roots);
  lm_gvec_free(&heads);
  return rc;
}

int lm_graph_plan_upgrade(const lm_graph *g, const char *target, const char *const *current, size_t ncurrent,
                          lm_plan *out, lm_err *err) {
  out->steps = NULL;
  out->nsteps = 0;
  if (!target || !*target) return lm_err_set(err, "upgrade needs a target revision");
  int rc = lm_g_check_current(g, current, ncurrent, err);
  if (rc != LM_OK) return rc;
  lm_gctx c;
  lm_gctx_init(&c, g);
  lm_gwalk w = {0};
  lm_gvec order = {0};
  rc = collect_upgrade(&c, lm_gspec_str(target), lm_gspec_list(current, ncurrent), 0, 1, 1, &w, err);
  if (rc == LM_OK) rc = lm_g_topo_sort(&c, &w, &order, err);
  if (rc == LM_OK) {
    /* upgrades run the sorted list backwards: bases first */
    for (size_t i = 0, j = order.n; i < j / 2; i++) {
      long t = order.v[i];
      order.v[i] = order.v[j - 1 - i];
      order.v[j - 1 - i] = t;
    }
    rc = lm_g_plan_steps(&c, &order, 1, current, ncurrent, out, err);
  }
  lm_gvec_free(&order);
  lm_gwalk_free(&w);
  lm_gctx_free(&c);
  return rc;
}

int lm_graph_plan_downgrade(const lm_graph *g, const char *target, const char *const *current, size_t ncurrent,
                            lm_plan *out, lm_err *err) {
  out->steps = NULL;
  out->nsteps = 0;
  if (!target || !*target) return lm_err_set(err, "downgrade needs a target revision");
  int rc = lm_g_check_current(g, current, ncurrent, err);
  if (rc != LM_OK) return rc;
  lm_gctx c;
  lm_gctx_init(&c, g);
  lm_gwalk w = {0};
  lm_gvec order = {0};
  rc = collect_downgrade(&c, lm_gspec_list(current, ncurrent), target, 1, &w, err);
  if (rc == LM_OK) rc = lm_g_topo_sort(&c, &w, &order, err);
  if (rc == LM_OK) rc = lm_g_plan_steps(&c, &order, 0, current, ncurrent, out, err);
  lm_gvec_free(&order);
  lm_gwalk_free(&w);
  lm_gctx_free(&c);
  return rc;
}

/* ---- history, current, branches ----------------------------------------- */

/* walk_revisions(base, head): iterate_revisions(head, base, inclusive=True,
 * assert_relative_length=False), the order `alembic history` prints. */
static int walk_revisions(lm_gctx *c, lm_gspec base, lm_gspec head, lm_revlist *out, lm_err *err) {
  lm_gwalk w = {0};
  lm_gvec order = {0};
  int rc = collect_upgrade(c, head, base, 1, 0, 0, &w, err);
  if (rc == LM_OK) rc = lm_g_topo_sort(c, &w, &order, err);
  if (rc == LM_OK) {
    out->idx = lm_xmalloc((order.n + 1) * sizeof *out->idx);
    out->n = order.n;
    for (size_t i = 0; i < order.n; i++) out->idx[i] = (size_t)order.v[i];
  }
  lm_gvec_free(&order);
  lm_gwalk_free(&w);
  return rc;
}

int lm_graph_history(const lm_graph *g, const char *range, const char *const *current, size_t ncurrent,
                     lm_revlist *out, lm_err *err) {
  out->idx = NULL;
  out->n = 0;
  char *base = NULL, *head = NULL;
  if (range) {
    const char *colon = strchr(range, ':');
    if (!colon) return lm_err_usage(err, "history range requires [start]:[end], [start]:, or :[end]");
    if (strchr(colon + 1, ':')) return lm_err_usage(err, "history range '%s' has more than one ':'", range);
    /* Python's strip() then split(":") */
    const char *s = range, *e = range + strlen(range);
    while (s < colon && isspace((unsigned char)*s)) s++;
    while (e > colon + 1 && isspace((unsigned char)e[-1])) e--;
    if (colon > s) base = lm_xstrndup(s, (size_t)(colon - s));
    if (e > colon + 1) head = lm_xstrndup(colon + 1, (size_t)(e - colon - 1));
  }
  int rc = LM_OK;
  if (rc == LM_OK && (rc = lm_g_check_current(g, current, ncurrent, err)) != LM_OK) goto done;
  lm_gctx c;
  lm_gctx_init(&c, g);
  lm_gspec b = lm_gspec_str(base ? base : "base"), h = lm_gspec_str(head ? head : "heads");
  if (head && strcmp(head, "current") == 0) {
    h = ncurrent ? lm_gspec_list(current, ncurrent) : lm_gspec_str("heads");
  } else if (base && strcmp(base, "current") == 0) {
    b = ncurrent ? lm_gspec_list(current, ncurrent) : lm_gspec_str("base");
  }
  rc = walk_revisions(&c, b, h, out, err);
  lm_gctx_free(&c);
done:
  free(base);
  free(head);
  return rc;
}

int lm_graph_branch_points(const lm_graph *g, lm_revlist *out) {
  lm_err err;
  lm_err_init(&err);
  lm_gctx c;
  lm_gctx_init(&c, g);
  lm_revlist all = {0};
  int rc = walk_revisions(&c, lm_gspec_str("base"), lm_gspec_str("heads"), &all, &err);
  lm_gctx_free(&c);
  lm_err_free(&err);
  out->idx = lm_xmalloc((all.n + 1) * sizeof *out->idx);
  out->n = 0;
  for (size_t i = 0; i < all.n; i++)
    if (g->next[all.idx[i]].n > 1) out->idx[out->n++] = all.idx[i];
  lm_revlist_free(&all);
  return rc;
}
