/*
 * graph_topo.c - the order a walk visits its revisions in (Alembic's
 * _topological_sort): a linear version for the shapes it covers, and the
 * literal, quadratic one for the rest, or for every walk when the test
 * hook asks (lm_graph_test_topo_literal), so the two can be compared.
 */
#define LM_GRAPH_INTERNAL
#include "graph.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---- topological sort --------------------------------------------------- */

static int cmp_long(const void *a, const void *b) {
  long x = *(const long *)a, y = *(const long *)b;
  return (x > y) - (x < y);
}

/* The starting heads: distinct heads in the todo set, in file order. */
static void start_heads(const lm_gwalk *w, lm_gvec *h) {
  for (size_t i = 0; i < w->heads.n; i++) {
    long x = w->heads.v[i];
    if (x >= 0 && w->todo[x] && !lm_gvec_has(h, x)) lm_gvec_push(h, x);
  }
  if (h->n) qsort(h->v, h->n, sizeof *h->v, cmp_long);
}

/* _topological_sort, literally: every head keeps its full ancestor set.
 * Quadratic; used when the todo set lacks the shape the fast version
 * relies on (history ranges across depends_on). */
static int topo_literal(lm_gctx *c, const lm_gwalk *w, lm_gvec *out, lm_err *err) {
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
static int topo_fast_ok(lm_gctx *c, const lm_gwalk *w) {
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
static int topo_fast(lm_gctx *c, const lm_gwalk *w, lm_gvec *out, lm_err *err) {
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

int lm_g_topo_sort(lm_gctx *c, const lm_gwalk *w, lm_gvec *out, lm_err *err) {
  if (!c->g->topo_literal && topo_fast_ok(c, w)) {
    if (topo_fast(c, w, out, err) == LM_OK) return LM_OK;
    out->n = 0;   /* defensive: redo it the slow way */
  }
  return topo_literal(c, w, out, err);
}

void lm_graph_test_topo_literal(lm_graph *g, int on) { g->topo_literal = on; }
