/*
 * graph_plan.c - walks over the revision graph (targets are parsed in
 * graph_target.c): the revisions `upgrade`,
 * `downgrade` and `history` visit and in which order (Alembic's
 * iterate_revisions with _collect_upgrade_revisions /
 * _collect_downgrade_revisions and _topological_sort), the version-table
 * changes each step makes (Alembic's HeadMaintainer with RevisionStep and
 * StampStep), and `stamp`.
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

/* A walk's todo set as flags, and the heads the topological sort starts
 * from. */
typedef struct gwalk {
  unsigned char *todo;
  lm_gvec heads;
  size_t ntodo;
} gwalk;

static void gwalk_free(gwalk *w) {
  free(w->todo);
  lm_gvec_free(&w->heads);
}

/* _collect_upgrade_revisions. */
static int collect_upgrade(lm_gctx *c, lm_gspec upper, lm_gspec lower, int inclusive, int implicit_base, int assert_len,
                           gwalk *w, lm_err *err) {
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
static int collect_downgrade(lm_gctx *c, lm_gspec upper, const char *target, int assert_len, gwalk *w, lm_err *err) {
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

/* ---- topological sort --------------------------------------------------- */

static int cmp_long(const void *a, const void *b) {
  long x = *(const long *)a, y = *(const long *)b;
  return (x > y) - (x < y);
}

/* The starting heads: distinct heads in the todo set, in file order. */
static void start_heads(const gwalk *w, lm_gvec *h) {
  for (size_t i = 0; i < w->heads.n; i++) {
    long x = w->heads.v[i];
    if (x >= 0 && w->todo[x] && !lm_gvec_has(h, x)) lm_gvec_push(h, x);
  }
  if (h->n) qsort(h->v, h->n, sizeof *h->v, cmp_long);
}

/* _topological_sort, literally: every head keeps its full ancestor set.
 * Quadratic; used when the todo set lacks the shape the fast version
 * relies on (history ranges across depends_on). */
static int topo_literal(lm_gctx *c, const gwalk *w, lm_gvec *out, lm_err *err) {
  const lm_graph *g = c->g;
  size_t n = g->n;
  unsigned char *todo = lm_xmalloc(n + 1);
  memcpy(todo, w->todo, n + 1);
  size_t left = w->ntodo;
  lm_gvec h = {0};
  start_heads(w, &h);
  size_t cap = h.n + 4, nh = h.n;
  unsigned char **anc = lm_xcalloc(cap, sizeof *anc);
  for (size_t i = 0; i < nh; i++) {
    anc[i] = lm_xcalloc(n + 1, 1);
    unsigned gen = lm_gctx_next(c);
    lm_g_reach(c, &h.v[i], 1, 0, 1, gen);
    for (size_t k = 0; k < n; k++) anc[i][k] = c->mark[k] == gen;
  }
  size_t cci = 0;
  while (nh) {
    long cand = h.v[cci];
    size_t j;
    for (j = 0; j < nh; j++)
      if (j != cci && anc[j][cand]) break;
    if (j < nh) { cci = j; continue; }
    if (todo[cand]) { lm_gvec_push(out, cand); todo[cand] = 0; left--; }
    const lm_gadj *d = &g->normdown[cand];
    lm_gvec add = {0};
    for (size_t k = 0; k < d->n; k++) {
      long r = (long)d->v[k];
      int inh = 0;
      for (size_t q = 0; q < nh && !inh; q++) inh = h.v[q] == r;
      if (todo[r] && !inh) lm_gvec_push(&add, r);
    }
    if (add.n == 0) {
      free(anc[cci]);
      memmove(&anc[cci], &anc[cci + 1], (nh - cci - 1) * sizeof *anc);
      memmove(&h.v[cci], &h.v[cci + 1], (nh - cci - 1) * sizeof *h.v);
      nh--;
      h.n = nh;
      cci = cci ? cci - 1 : 0;
    } else {
      if (g->deps[cand].n == 0 && g->down[cand].n == 1 && g->normdown[cand].n == 1) {
        h.v[cci] = add.v[0];
        anc[cci][cand] = 0;
      } else {
        h.v[cci] = add.v[0];
        unsigned gen = lm_gctx_next(c);
        lm_g_reach(c, &add.v[0], 1, 0, 1, gen);
        for (size_t k = 0; k < n; k++) anc[cci][k] = c->mark[k] == gen;
        for (size_t q = 1; q < add.n; q++) {
          if (nh == cap) {
            cap *= 2;
            anc = lm_xrealloc(anc, cap * sizeof *anc);
          }
          lm_gvec_push(&h, add.v[q]);
          anc[nh] = lm_xcalloc(n + 1, 1);
          gen = lm_gctx_next(c);
          lm_g_reach(c, &add.v[q], 1, 0, 1, gen);
          for (size_t k = 0; k < n; k++) anc[nh][k] = c->mark[k] == gen;
          nh++;
        }
      }
    }
    lm_gvec_free(&add);
  }
  for (size_t i = 0; i < nh; i++) free(anc[i]);
  free(anc);
  lm_gvec_free(&h);
  free(todo);
  if (left)
    return lm_err_set(err, "revisions in the requested range are not reachable from its upper end through the range "
                      "itself (a depends_on crosses the range); Alembic fails here as well");
  return LM_OK;
}

/* The fast path needs (1) the todo set convex: no revision outside it lies
 * between two inside it, and (2) every todo revision reachable from a
 * starting head through todo revisions.  Then "the candidate is an
 * ancestor of another head" is the same as "a todo revision not yet
 * emitted names the candidate in its normalized down revisions", which a
 * counter answers. */
static int topo_fast_ok(lm_gctx *c, const gwalk *w) {
  const lm_graph *g = c->g;
  size_t n = g->n;
  lm_gvec t = {0};
  for (size_t i = 0; i < n; i++)
    if (w->todo[i]) lm_gvec_push(&t, (long)i);
  unsigned char *up = lm_xcalloc(n + 1, 1);
  unsigned gen = lm_gctx_next(c);
  lm_g_reach(c, t.v, t.n, 1, 1, gen);
  for (size_t i = 0; i < n; i++) up[i] = c->mark[i] == gen;
  gen = lm_gctx_next(c);
  lm_g_reach(c, t.v, t.n, 0, 1, gen);
  int ok = 1;
  for (size_t i = 0; i < n && ok; i++)
    if (!w->todo[i] && up[i] && c->mark[i] == gen) ok = 0;
  lm_gvec_free(&t);
  if (ok) {
    lm_gvec h = {0};
    start_heads(w, &h);
    gen = lm_gctx_next(c);
    size_t sp = 0, seen = 0;
    for (size_t i = 0; i < h.n; i++) { c->mark[h.v[i]] = gen; c->stack[sp++] = (size_t)h.v[i]; }
    while (sp) {
      size_t x = c->stack[--sp];
      seen++;
      for (size_t k = 0; k < g->normdown[x].n; k++) {
        size_t y = g->normdown[x].v[k];
        if (w->todo[y] && c->mark[y] != gen) { c->mark[y] = gen; c->stack[sp++] = y; }
      }
    }
    ok = seen == w->ntodo;
    lm_gvec_free(&h);
  }
  free(up);
  return ok;
}

/* _topological_sort in near-linear time: the heads list is a linked list
 * of slots (a slot keeps its position when its revision is replaced by the
 * revision below, so slot numbers give list order), a counter per revision
 * says whether it is still below an unemitted one, and only then an upward
 * search finds the first head above it, as Alembic's scan does. */
static int topo_fast(lm_gctx *c, const gwalk *w, lm_gvec *out, lm_err *err) {
  const lm_graph *g = c->g;
  size_t n = g->n;
  (void)err;
  size_t *pending = lm_xcalloc(n + 1, sizeof *pending);
  unsigned char *done = lm_xcalloc(n + 1, 1);
  long *slot_of = lm_xmalloc((n + 1) * sizeof *slot_of);
  for (size_t i = 0; i < n; i++) slot_of[i] = -1;
  for (size_t y = 0; y < n; y++)
    if (w->todo[y])
      for (size_t k = 0; k < g->normdown[y].n; k++)
        if (w->todo[g->normdown[y].v[k]]) pending[g->normdown[y].v[k]]++;
  lm_gvec h = {0};
  start_heads(w, &h);
  /* slots: node, prev, next; alive slots form the list */
  size_t scap = h.n + 16, ns = 0;
  long *snode = lm_xmalloc(scap * sizeof *snode), *sprev = lm_xmalloc(scap * sizeof *sprev),
       *snext = lm_xmalloc(scap * sizeof *snext);
  long first = -1, last = -1;
#define ADD_SLOT(x)                                                         \
  do {                                                                      \
    if (ns == scap) {                                                       \
      scap *= 2;                                                            \
      snode = lm_xrealloc(snode, scap * sizeof *snode);                     \
      sprev = lm_xrealloc(sprev, scap * sizeof *sprev);                     \
      snext = lm_xrealloc(snext, scap * sizeof *snext);                     \
    }                                                                       \
    snode[ns] = (x); sprev[ns] = last; snext[ns] = -1;                      \
    if (last >= 0) snext[last] = (long)ns; else first = (long)ns;           \
    last = (long)ns; slot_of[(x)] = (long)ns; ns++;                         \
  } while (0)
  for (size_t i = 0; i < h.n; i++) ADD_SLOT(h.v[i]);
  long cci = first;
  size_t *bfs = lm_xmalloc((n + 1) * sizeof *bfs);
  int stuck = 0;
  while (first >= 0) {
    long cand = snode[cci];
    if (pending[cand]) {
      /* first head (in list order) that has cand as an ancestor */
      unsigned gen = lm_gctx_next(c);
      size_t sp = 0;
      long best = -1;
      c->mark[cand] = gen;
      bfs[sp++] = (size_t)cand;
      while (sp) {
        size_t x = bfs[--sp];
        if ((long)x != cand && slot_of[x] >= 0 && (best < 0 || slot_of[x] < best)) best = slot_of[x];
        for (size_t k = 0; k < g->normnext[x].n; k++) {
          size_t y = g->normnext[x].v[k];
          if (w->todo[y] && !done[y] && c->mark[y] != gen) { c->mark[y] = gen; bfs[sp++] = y; }
        }
      }
      if (best < 0) { stuck = 1; break; }   /* cannot happen when topo_fast_ok holds */
      cci = best;
      continue;
    }
    lm_gvec_push(out, cand);
    done[cand] = 1;
    const lm_gadj *d = &g->normdown[cand];
    long firstadd = -1;
    for (size_t k = 0; k < d->n; k++) {
      size_t r = d->v[k];
      if (!w->todo[r]) continue;
      pending[r]--;
    }
    slot_of[cand] = -1;
    for (size_t k = 0; k < d->n; k++) {
      size_t r = d->v[k];
      if (!w->todo[r] || done[r] || slot_of[r] >= 0) continue;
      if (firstadd < 0) {
        firstadd = (long)r;
        snode[cci] = (long)r;
        slot_of[r] = cci;
      } else {
        ADD_SLOT(r);
      }
    }
    if (firstadd < 0) {
      long p = sprev[cci], nx = snext[cci];
      if (p >= 0) snext[p] = nx; else first = nx;
      if (nx >= 0) sprev[nx] = p; else last = p;
      cci = p >= 0 ? p : first;
    }
  }
#undef ADD_SLOT
  free(bfs);
  free(pending);
  free(done);
  free(slot_of);
  free(snode);
  free(sprev);
  free(snext);
  lm_gvec_free(&h);
  return stuck ? LM_ERROR : LM_OK;
}

static int topo_sort(lm_gctx *c, const gwalk *w, lm_gvec *out, lm_err *err) {
  if (getenv("LM_GRAPH_TOPO_LITERAL") == NULL && topo_fast_ok(c, w)) {
    if (topo_fast(c, w, out, err) == LM_OK) return LM_OK;
    out->n = 0;   /* defensive: redo it the slow way */
  }
  return topo_literal(c, w, out, err);
}

/* ---- version-table maintenance (HeadMaintainer) -------------------------- */

typedef struct ghm {
  lm_gctx *c;
  unsigned char *in;     /* revision is a row of the version table */
  size_t *cnt;           /* how many rows have the revision as ancestor (or are it) */
  lm_gvec rows;          /* the rows */
  lm_step *step;
} ghm;

static void hm_add_action(ghm *h, lm_vt_kind kind, const char *from, const char *to) {
  lm_step *s = h->step;
  s->actions = lm_xrealloc(s->actions, (s->nactions + 1) * sizeof *s->actions);
  s->actions[s->nactions].kind = kind;
  s->actions[s->nactions].from = from;
  s->actions[s->nactions].to = to;
  s->nactions++;
}

static void rows_remove(lm_gvec *rows, long x) {
  for (size_t i = 0; i < rows->n; i++)
    if (rows->v[i] == x) {
      memmove(&rows->v[i], &rows->v[i + 1], (rows->n - i - 1) * sizeof *rows->v);
      rows->n--;
      return;
    }
}

/* Add delta to the ancestor counts of x's ancestors (x included).  The
 * counts answer Alembic's "is this an ancestor of another row" without a
 * graph walk per step, which made a long downgrade quadratic. */
static void hm_count(ghm *h, long x, int delta) {
  lm_gctx *c = h->c;
  size_t sp = 0;
  unsigned gen2 = lm_gctx_next(c);
  c->mark[x] = gen2;
  c->stack[sp++] = (size_t)x;
  while (sp) {
    size_t y = c->stack[--sp];
    if (delta > 0) h->cnt[y]++;
    else h->cnt[y]--;
    const lm_gadj *a = &c->g->normdown[y];
    for (size_t k = 0; k < a->n; k++)
      if (c->mark[a->v[k]] != gen2) { c->mark[a->v[k]] = gen2; c->stack[sp++] = a->v[k]; }
  }
}

static int hm_insert(ghm *h, long x, lm_err *err) {
  const lm_graph *g = h->c->g;
  if (h->in[x])
    return lm_err_set(err, "version table change would insert %s, which is already a current revision",
                      g->revs[x].id);
  h->in[x] = 1;
  lm_gvec_push(&h->rows, x);
  hm_count(h, x, 1);
  hm_add_action(h, LM_VT_INSERT, NULL, g->revs[x].id);
  return LM_OK;
}

static int hm_delete(ghm *h, long x, lm_err *err) {
  const lm_graph *g = h->c->g;
  if (!h->in[x])
    return lm_err_set(err, "version table change would delete %s, which is not a current revision", g->revs[x].id);
  h->in[x] = 0;
  rows_remove(&h->rows, x);
  hm_count(h, x, -1);
  hm_add_action(h, LM_VT_DELETE, g->revs[x].id, NULL);
  return LM_OK;
}

static int hm_update(ghm *h, long from, long to, lm_err *err) {
  const lm_graph *g = h->c->g;
  if (h->in[to])
    return lm_err_set(err, "version table change would update %s to %s, which is already a current revision",
                      g->revs[from].id, g->revs[to].id);
  if (!h->in[from])
    return lm_err_set(err, "version table change would update %s to %s, but %s is not a current revision",
                      g->revs[from].id, g->revs[to].id, g->revs[from].id);
  h->in[from] = 0;
  rows_remove(&h->rows, from);
  h->in[to] = 1;
  lm_gvec_push(&h->rows, to);
  /* one step along a plain line changes a single count */
  if (g->normdown[from].n == 1 && g->normdown[from].v[0] == (size_t)to) {
    h->cnt[from]--;
  } else if (g->normdown[to].n == 1 && g->normdown[to].v[0] == (size_t)from) {
    h->cnt[to]++;
  } else {
    hm_count(h, from, -1);
    hm_count(h, to, 1);
  }
  hm_add_action(h, LM_VT_UPDATE, g->revs[from].id, g->revs[to].id);
  return LM_OK;
}

/* Is d an ancestor of (or equal to) y? */
static int hm_below(ghm *h, size_t d, size_t y) {
  if (d == y) return 1;
  unsigned gen = lm_gctx_next(h->c);
  long yy = (long)y;
  lm_g_reach(h->c, &yy, 1, 0, 1, gen);
  return h->c->mark[d] == gen;
}

/* HeadMaintainer.update_to_step for a RevisionStep. */
static int hm_revision_step(ghm *h, size_t r, int upgrade, lm_err *err) {
  const lm_graph *g = h->c->g;
  const lm_gadj *d = &g->normdown[r];
  size_t inter = 0;
  for (size_t k = 0; k < d->n; k++) inter += h->in[d->v[k]];
  if (!upgrade && h->in[r]) {
    /* should_delete_branch: a base, or nothing left to unmerge to */
    /* _unmerge_to_revisions: down revisions no other row is above; r is a
       row above each of them, so another row makes the count exceed 1 */
    lm_gvec to = {0};
    for (size_t k = 0; k < d->n; k++)
      if (h->cnt[d->v[k]] <= 1) lm_gvec_push(&to, (long)d->v[k]);
    int rc;
    if (d->n == 0 || to.n == 0) {
      rc = hm_delete(h, (long)r, err);
    } else if (d->n > 1) {
      /* unmerge: insert all but the last, update to the last */
      rc = LM_OK;
      for (size_t k = 0; k + 1 < to.n && rc == LM_OK; k++) rc = hm_insert(h, to.v[k], err);
      if (rc == LM_OK) rc = hm_update(h, (long)r, to.v[to.n - 1], err);
    } else {
      rc = hm_update(h, (long)r, (long)d->v[0], err);
    }
    lm_gvec_free(&to);
    return rc;
  }
  if (upgrade) {
    if (d->n == 0 || inter == 0) return hm_insert(h, (long)r, err);
    if (d->n > 1 && inter > 1) {
      /* merge: the down revisions not below another row; delete all but
         the last, update the last */
      lm_gvec from = {0};
      for (size_t k = 0; k < d->n; k++) {
        /* rows above d[k], not counting the rows that are down revisions */
        size_t above = h->cnt[d->v[k]];
        for (size_t q = 0; q < d->n; q++)
          if (h->in[d->v[q]] && hm_below(h, d->v[k], d->v[q])) above--;
        if (above == 0) lm_gvec_push(&from, (long)d->v[k]);
      }
      int rc = LM_OK;
      if (from.n == 0) {
        rc = lm_err_set(err, "cannot merge into %s: every down revision is below another current revision",
                        g->revs[r].id);
      }
      for (size_t k = 0; k + 1 < from.n && rc == LM_OK; k++) rc = hm_delete(h, from.v[k], err);
      if (rc == LM_OK) rc = hm_update(h, from.v[from.n - 1], (long)r, err);
      lm_gvec_free(&from);
      return rc;
    }
  }
  /* update_version_num */
  long down;
  if (d->n != 1) {
    if (inter != 1) {
      lm_buf b = LM_BUF_INIT;
      for (size_t i = 0; i < h->rows.n; i++) lm_buf_printf(&b, "%s%s", i ? ", " : "", g->revs[h->rows.v[i]].id);
      int rc = lm_err_set(err, "cannot %s %s from the current revisions (%s): the version table change is ambiguous",
                          upgrade ? "upgrade to" : "downgrade", g->revs[r].id, h->rows.n ? lm_buf_str(&b) : "none");
      lm_buf_free(&b);
      return rc;
    }
    down = -1;
    for (size_t k = 0; k < d->n; k++)
      if (h->in[d->v[k]]) down = (long)d->v[k];
  } else {
    down = (long)d->v[0];
  }
  return upgrade ? hm_update(h, down, (long)r, err) : hm_update(h, (long)r, down, err);
}

void lm_plan_free(lm_plan *p) {
  if (!p) return;
  for (size_t i = 0; i < p->nsteps; i++) free(p->steps[i].actions);
  free(p->steps);
  p->steps = NULL;
  p->nsteps = 0;
}

static lm_step *plan_add(lm_plan *p, long rev, int upgrade) {
  p->steps = lm_xrealloc(p->steps, (p->nsteps + 1) * sizeof *p->steps);
  lm_step *s = &p->steps[p->nsteps++];
  s->rev = rev;
  s->upgrade = upgrade;
  s->actions = NULL;
  s->nactions = 0;
  return s;
}

static void hm_init(ghm *h, lm_gctx *c, const char *const *current, size_t n) {
  const lm_graph *g = c->g;
  h->c = c;
  h->in = lm_xcalloc(g->n + 1, 1);
  h->cnt = lm_xcalloc(g->n + 1, sizeof *h->cnt);
  memset(&h->rows, 0, sizeof h->rows);
  for (size_t i = 0; i < n; i++) {
    long x = (long)((size_t)lm_map_get(&g->ids, current[i]) - 1);
    if (!h->in[x]) { h->in[x] = 1; lm_gvec_push(&h->rows, x); hm_count(h, x, 1); }
  }
  h->step = NULL;
}

static void hm_free(ghm *h) {
  free(h->in);
  free(h->cnt);
  lm_gvec_free(&h->rows);
}

/* Run the steps in order through the head maintainer. */
static int plan_steps(lm_gctx *c, const lm_gvec *order, int upgrade, const char *const *current, size_t ncurrent,
                      lm_plan *out, lm_err *err) {
  ghm h;
  hm_init(&h, c, current, ncurrent);
  int rc = LM_OK;
  for (size_t i = 0; i < order->n && rc == LM_OK; i++) {
    h.step = plan_add(out, order->v[i], upgrade);
    rc = hm_revision_step(&h, (size_t)order->v[i], upgrade, err);
  }
  hm_free(&h);
  if (rc != LM_OK) lm_plan_free(out);
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
  gwalk w = {0};
  lm_gvec order = {0};
  rc = collect_upgrade(&c, lm_gspec_str(target), lm_gspec_list(current, ncurrent), 0, 1, 1, &w, err);
  if (rc == LM_OK) rc = topo_sort(&c, &w, &order, err);
  if (rc == LM_OK) {
    /* upgrades run the sorted list backwards: bases first */
    for (size_t i = 0, j = order.n; i < j / 2; i++) {
      long t = order.v[i];
      order.v[i] = order.v[j - 1 - i];
      order.v[j - 1 - i] = t;
    }
    rc = plan_steps(&c, &order, 1, current, ncurrent, out, err);
  }
  lm_gvec_free(&order);
  gwalk_free(&w);
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
  gwalk w = {0};
  lm_gvec order = {0};
  rc = collect_downgrade(&c, lm_gspec_list(current, ncurrent), target, 1, &w, err);
  if (rc == LM_OK) rc = topo_sort(&c, &w, &order, err);
  if (rc == LM_OK) rc = plan_steps(&c, &order, 0, current, ncurrent, out, err);
  lm_gvec_free(&order);
  gwalk_free(&w);
  lm_gctx_free(&c);
  return rc;
}

/* ---- stamp --------------------------------------------------------------- */

/* One StampStep through the head maintainer. */
static int hm_stamp_step(ghm *h, const lm_gvec *from, long to, int is_upgrade, int branch_move, lm_err *err) {
  if (!is_upgrade && branch_move) return hm_delete(h, from->v[0], err);
  if (is_upgrade && to >= 0 && !h->in[to]) {
    int missing = 0;
    for (size_t i = 0; i < from->n; i++)
      if (!h->in[from->v[i]]) missing = 1;
    if (branch_move || missing) return hm_insert(h, to, err);
  }
  if (from->n > 1) {
    int rc = LM_OK;
    for (size_t i = 0; i + 1 < from->n && rc == LM_OK; i++) rc = hm_delete(h, from->v[i], err);
    if (rc == LM_OK) rc = hm_update(h, from->v[from->n - 1], to, err);
    return rc;
  }
  if (from->n != 1 || to < 0)
    return lm_err_set(err, "cannot stamp %s: it is already a current revision", to >= 0 ? h->c->g->revs[to].id : "base");
  return hm_update(h, from->v[0], to, err);
}

int lm_graph_plan_stamp(const lm_graph *g, const char *const *targets, size_t ntargets, const char *const *current,
                        size_t ncurrent, int purge, lm_plan *out, lm_err *err) {
  out->steps = NULL;
  out->nsteps = 0;
  if (purge) ncurrent = 0;
  int rc = lm_g_check_current(g, current, ncurrent, err);
  if (rc != LM_OK) return rc;
  for (size_t i = 0; i < ntargets; i++)
    if (!targets[i]) return lm_err_set(err, "empty stamp target");
  lm_gctx c;
  lm_gctx_init(&c, g);
  ghm h;
  hm_init(&h, &c, current, ncurrent);
  lm_gvec heads = {0}, filtered = {0}, dests = {0};
  static const char *const base_only[] = {"base"};
  if (ntargets == 0) { targets = base_only; ntargets = 1; }
  rc = lm_g_spec_revisions(&c, lm_gspec_list(current, ncurrent), &heads, err);
  for (size_t i = 0; i < ntargets && rc == LM_OK; i++) {
    if (!*targets[i]) continue;
    lm_gvec f = {0};
    rc = lm_g_filter_for_lineage(&c, heads.v, heads.n, targets[i], 1, &f, err);
    for (size_t k = 0; k < f.n; k++)
      if (!lm_gvec_has(&filtered, f.v[k])) lm_gvec_push(&filtered, f.v[k]);
    lm_gvec_free(&f);
  }
  if (rc == LM_OK) rc = lm_g_spec_revisions(&c, lm_gspec_list(targets, ntargets), &dests, err);
  if (rc == LM_OK && dests.n == 0) lm_gvec_push(&dests, LM_G_NONE);
  for (size_t i = 0; i < dests.n && rc == LM_OK; i++) {
    long dest = dests.v[i];
    if (dest == LM_G_NONE) {
      for (size_t k = 0; k < filtered.n && rc == LM_OK; k++) {
        lm_gvec one = {0};
        lm_gvec_push(&one, filtered.v[k]);
        h.step = plan_add(out, -1, 0);
        rc = hm_stamp_step(&h, &one, LM_G_NONE, 0, 1, err);
        lm_gvec_free(&one);
      }
      continue;
    }
    if (dest < 0) { rc = lm_g_not_a_revision(g, "a stamp target", dest, err); break; }
    if (lm_gvec_has(&filtered, dest)) continue;
    unsigned gd = lm_gctx_next(&c);
    lm_g_reach(&c, &dest, 1, 1, 1, gd);
    int above = 0, below = 0;
    for (size_t k = 0; k < filtered.n; k++)
      if (c.mark[filtered.v[k]] == gd) above = 1;
    unsigned ga = lm_gctx_next(&c);
    lm_g_reach(&c, &dest, 1, 0, 1, ga);
    for (size_t k = 0; k < filtered.n; k++)
      if (c.mark[filtered.v[k]] == ga) below = 1;
    if (above && below) {
      lm_buf b = LM_BUF_INIT;
      lm_g_join(g, filtered.v, filtered.n, &b);
      rc = lm_err_set(err, "cannot stamp %s: the current revisions %s lie both above and below it; stamp with "
                      "--purge or name one revision per branch", g->revs[dest].id, lm_buf_str(&b));
      lm_buf_free(&b);
      break;
    }
    /* The rows this step moves: the filtered heads still in the table.  A
       stamp from a merge point to its parents moves the merge row to the
       first parent; the others become rows of their own (Alembic fails
       there, updating a row that is gone). */
    lm_gvec from = {0};
    for (size_t k = 0; k < filtered.n; k++)
      if (h.in[filtered.v[k]]) lm_gvec_push(&from, filtered.v[k]);
    if ((above || below) && from.n) {
      h.step = plan_add(out, -1, below);
      rc = hm_stamp_step(&h, &from, dest, below, 0, err);
    } else if ((above || below) && !h.in[dest]) {
      /* ga still marks dest's ancestors; cnt counts the rows above dest */
      int related = h.cnt[dest] > 0;
      for (size_t k = 0; k < h.rows.n; k++)
        if (c.mark[h.rows.v[k]] == ga) related = 1;
      if (related) {
        rc = lm_err_set(err, "cannot stamp %s: it is on the same branch as a revision this stamp already set; "
                        "name one revision per branch", g->revs[dest].id);
      } else {
        h.step = plan_add(out, -1, 1);
        rc = hm_stamp_step(&h, &from, dest, 1, 1, err);
      }
    } else if (above || below) {
      /* dest is already a row */
    } else {
      lm_gvec none = {0};
      h.step = plan_add(out, -1, 1);
      rc = hm_stamp_step(&h, &none, dest, 1, 1, err);
    }
    lm_gvec_free(&from);
    if (rc != LM_OK) break;
  }
  lm_gvec_free(&heads);
  lm_gvec_free(&filtered);
  lm_gvec_free(&dests);
  hm_free(&h);
  lm_gctx_free(&c);
  if (rc != LM_OK) lm_plan_free(out);
  return rc;
}

/* ---- history, current, branches ----------------------------------------- */

/* walk_revisions(base, head): iterate_revisions(head, base, inclusive=True,
 * assert_relative_length=False), the order `alembic history` prints. */
static int walk_revisions(lm_gctx *c, lm_gspec base, lm_gspec head, lm_revlist *out, lm_err *err) {
  gwalk w = {0};
  lm_gvec order = {0};
  int rc = collect_upgrade(c, head, base, 1, 0, 0, &w, err);
  if (rc == LM_OK) rc = topo_sort(c, &w, &order, err);
  if (rc == LM_OK) {
    out->idx = lm_xmalloc((order.n + 1) * sizeof *out->idx);
    out->n = order.n;
    for (size_t i = 0; i < order.n; i++) out->idx[i] = (size_t)order.v[i];
  }
  lm_gvec_free(&order);
  gwalk_free(&w);
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
