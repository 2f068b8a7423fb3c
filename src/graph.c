/*
 * graph.c - the revision graph: loading and validating revisions, the
 * per-revision properties Alembic's Revision class derives (heads, branch
 * points, normalized dependencies, propagated branch labels).  The
 * resolution primitives built on them are in graph_resolve.c.
 *
 * Where Alembic leaves an order to a Python set (hash order, different in
 * every process) luamig fixes one: file order for revisions, declared
 * order for dependencies, name order for branch labels.
 */
#define LM_GRAPH_INTERNAL
#include "graph.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---- small containers -------------------------------------------------- */

void lm_revlist_free(lm_revlist *l) {
  if (!l) return;
  free(l->idx);
  l->idx = NULL;
  l->n = 0;
}

void lm_gvec_push(lm_gvec *v, long x) {
  if (v->n == v->cap) {
    v->cap = v->cap ? v->cap * 2 : 8;
    v->v = lm_xrealloc(v->v, v->cap * sizeof *v->v);
  }
  v->v[v->n++] = x;
}

void lm_gvec_free(lm_gvec *v) {
  free(v->v);
  v->v = NULL;
  v->n = v->cap = 0;
}

int lm_gvec_has(const lm_gvec *v, long x) {
  for (size_t i = 0; i < v->n; i++)
    if (v->v[i] == x) return 1;
  return 0;
}

/* Scratch marks sized to the graph; generations avoid clearing them. */
void lm_gctx_init(lm_gctx *c, const lm_graph *g) {
  c->g = g;
  c->mark = lm_xcalloc(g->n + 1, sizeof *c->mark);
  c->stack = lm_xmalloc((g->n + 1) * sizeof *c->stack);
  c->gen = 0;
}

void lm_gctx_free(lm_gctx *c) {
  free(c->mark);
  free(c->stack);
  c->mark = NULL;
  c->stack = NULL;
}

unsigned lm_gctx_next(lm_gctx *c) {
  if (++c->gen == 0) {        /* wrapped: old marks could alias */
    memset(c->mark, 0, (c->g->n + 1) * sizeof *c->mark);
    c->gen = 1;
  }
  return c->gen;
}

/* Reachability with marks.  Following normdown or all edges gives the same
 * node sets (a dependency dropped by normalization is still reached through
 * the ancestor that declares it), so deps=1 walks the normalized edges. */
void lm_g_reach(lm_gctx *c, const long *starts, size_t n, int up, int deps, unsigned gen) {
  const lm_graph *g = c->g;
  size_t sp = 0;
  for (size_t i = 0; i < n; i++) {
    if (starts[i] < 0) continue;
    size_t s = (size_t)starts[i];
    if (c->mark[s] == gen) continue;
    c->mark[s] = gen;
    c->stack[sp++] = s;
  }
  while (sp) {
    size_t x = c->stack[--sp];
    const lm_gadj *a = up ? (deps ? &g->normnext[x] : &g->next[x]) : (deps ? &g->normdown[x] : &g->down[x]);
    for (size_t k = 0; k < a->n; k++) {
      size_t y = a->v[k];
      if (c->mark[y] != gen) {
        c->mark[y] = gen;
        c->stack[sp++] = y;
      }
    }
  }
}

/* "a, b, c" for messages; base and None print as Alembic names them. */
void lm_g_join(const lm_graph *g, const long *v, size_t n, lm_buf *b) {
  for (size_t i = 0; i < n; i++) {
    if (i) lm_buf_puts(b, ", ");
    if (v[i] >= 0) lm_buf_puts(b, g->revs[v[i]].id);
    else lm_buf_puts(b, v[i] == LM_G_BASE ? "base" : "None");
  }
}

/* ---- loading ------------------------------------------------------------ */

static const char *rev_where(const lm_revision *r) {
  return r->path ? r->path : "?";
}

static size_t *adj_alloc(lm_graph *g, size_t n) {
  return n ? lm_arena_alloc(&g->arena, n * sizeof(size_t)) : NULL;
}


/* Alembic refuses these characters in ids because targets use them. */
static int check_id(const lm_revision *r, lm_err *err) {
  if (!r->id || !*r->id)
    return lm_err_set(err, "%s: revision id is empty", rev_where(r));
  if (strpbrk(r->id, "@-+"))
    return lm_err_set(err, "%s: character(s) '@', '-' or '+' not allowed in revision identifier '%s'",
                      rev_where(r), r->id);
  return LM_OK;
}

/* Kahn's algorithm over down_revision (deps=0) or down_revision plus
 * depends_on (deps=1).  Alembic's own check misses cycles that also reach
 * a base and a head, after which it loops or crashes; refuse them all. */
static int check_cycles(lm_graph *g, int deps, lm_err *err) {
  size_t n = g->n, done = 0, sp = 0, tot = 0;
  size_t *indeg = lm_xcalloc(n + 1, sizeof *indeg);
  size_t *stack = lm_xmalloc((n + 1) * sizeof *stack);
  size_t *roff = lm_xcalloc(n + 2, sizeof *roff);
  /* reverse edges (children), counted then filled */
  for (size_t i = 0; i < n; i++) {
    indeg[i] = g->down[i].n + (deps ? g->deps[i].n : 0);
    for (size_t k = 0; k < g->down[i].n; k++) roff[g->down[i].v[k] + 1]++;
    if (deps)
      for (size_t k = 0; k < g->deps[i].n; k++) roff[g->deps[i].v[k] + 1]++;
  }
  for (size_t i = 0; i < n; i++) roff[i + 1] += roff[i];
  tot = roff[n];
  size_t *rv = lm_xmalloc((tot + 1) * sizeof *rv);
  size_t *fill = lm_xcalloc(n + 1, sizeof *fill);
  for (size_t i = 0; i < n; i++) {
    for (size_t k = 0; k < g->down[i].n; k++) { size_t d = g->down[i].v[k]; rv[roff[d] + fill[d]++] = i; }
    if (deps)
      for (size_t k = 0; k < g->deps[i].n; k++) { size_t d = g->deps[i].v[k]; rv[roff[d] + fill[d]++] = i; }
  }
  for (size_t i = 0; i < n; i++)
    if (indeg[i] == 0) stack[sp++] = i;
  while (sp) {
    size_t x = stack[--sp];
    done++;
    for (size_t k = roff[x]; k < roff[x + 1]; k++)
      if (--indeg[rv[k]] == 0) stack[sp++] = rv[k];
  }
  int rc = LM_OK;
  if (done != n) {
    lm_buf b = LM_BUF_INIT;
    size_t shown = 0;
    for (size_t i = 0; i < n && shown < 10; i++)
      if (indeg[i]) {
        if (shown++) lm_buf_puts(&b, ", ");
        lm_buf_printf(&b, "%s (%s)", g->revs[i].id, rev_where(&g->revs[i]));
      }
    rc = lm_err_set(err, "%s detected in revisions: %s", deps ? "dependency cycle" : "cycle", lm_buf_str(&b));
    lm_buf_free(&b);
  }
  free(indeg);
  free(stack);
  free(roff);
  free(rv);
  free(fill);
  return rc;
}

/* _normalize_depends_on: drop a dependency that a down_revision ancestor
 * already declares.  Only a dependency declared by several revisions can
 * be dropped, so the ancestor walk runs only for those. */
static void normalize_deps(lm_graph *g, lm_gctx *c, size_t **normdeps, size_t *nnormdeps) {
  size_t n = g->n;
  size_t *declarers = lm_xcalloc(n + 1, sizeof *declarers);
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < g->deps[i].n; k++) declarers[g->deps[i].v[k]]++;
  unsigned char *drop = lm_xcalloc(n + 1, 1);
  for (size_t i = 0; i < n; i++) {
    const lm_gadj *d = &g->deps[i];
    normdeps[i] = d->v;
    nnormdeps[i] = d->n;
    int shared = 0;
    for (size_t k = 0; k < d->n; k++)
      if (declarers[d->v[k]] > 1) shared = 1;
    if (!shared) continue;
    /* walk strict down_revision ancestors, collecting what they declare */
    unsigned gen = lm_gctx_next(c);
    long self = (long)i;
    lm_g_reach(c, &self, 1, 0, 0, gen);
    size_t left = d->n;
    for (size_t k = 0; k < d->n; k++) drop[d->v[k]] = 1;   /* 1: candidate */
    for (size_t a = 0; a < n && left; a++) {
      if (a == i || c->mark[a] != gen) continue;
      for (size_t k = 0; k < g->deps[a].n; k++) {
        size_t x = g->deps[a].v[k];
        if (drop[x] == 1) { drop[x] = 2; left--; }
      }
    }
    size_t m = 0;
    size_t *nv = adj_alloc(g, d->n);
    for (size_t k = 0; k < d->n; k++) {
      if (drop[d->v[k]] != 2) nv[m++] = d->v[k];
    }
    for (size_t k = 0; k < d->n; k++) drop[d->v[k]] = 0;
    normdeps[i] = nv;
    nnormdeps[i] = m;
  }
  free(declarers);
  free(drop);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Add the labels of `from` to node x's label set (sorted by name, unique).
 * Label sets are small; insertion keeps them sorted. */
static void label_union(lm_graph *g, size_t x, const lm_gadj *from) {
  if (&g->labels[x] == from) return;
  for (size_t k = 0; k < from->n; k++) {
    size_t l = from->v[k];
    lm_gadj *s = &g->labels[x];
    size_t pos = 0;
    int found = 0;
    while (pos < s->n) {
      int c = strcmp(g->labelnames[s->v[pos]], g->labelnames[l]);
      if (c == 0) { found = 1; break; }
      if (c > 0) break;
      pos++;
    }
    if (found) continue;
    size_t *nv = adj_alloc(g, s->n + 1);
    if (pos) memcpy(nv, s->v, pos * sizeof *nv);
    nv[pos] = l;
    if (s->n > pos) memcpy(nv + pos + 1, s->v + pos, (s->n - pos) * sizeof *nv);
    s->v = nv;
    s->n++;
  }
}

/* RevisionMap._add_branches: a label spreads to every descendant of the
 * labelled revision, then from the last descendant Alembic's depth-first
 * walk yields back down the down_revision chain until a branch point or a
 * merge point.  Mirrors that walk step by step, children in file order. */
static void propagate_labels(lm_graph *g, lm_gctx *c) {
  for (size_t r = 0; r < g->n; r++) {
    if (!g->revs[r].nlabels) continue;
    lm_gadj *mine = &g->labels[r];
    unsigned gen = lm_gctx_next(c);
    size_t sp = 0, last = r;
    c->stack[sp++] = r;
    while (sp) {
      size_t x = c->stack[--sp];
      if (c->mark[x] == gen) continue;
      c->mark[x] = gen;
      for (size_t k = 0; k < g->next[x].n; k++) {
        size_t y = g->next[x].v[k];
        /* Alembic pushes already-seen nodes too; only unseen ones matter
           for the last yielded node, and the stack holds n entries at most
           per distinct node when we skip seen ones here. */
        if (c->mark[y] != gen) c->stack[sp++] = y;
      }
      label_union(g, x, mine);
      last = x;
    }
    size_t p = last;
    for (;;) {
      if (g->nallnext[p] > 1 || g->down[p].n > 1) break;
      label_union(g, p, mine);
      if (g->down[p].n == 1) p = g->down[p].v[0];
      else break;
    }
  }
}

/* The graph's arrays, one slot per revision (and one spare), all empty. */
static lm_graph *graph_alloc(const lm_revision *revs, size_t n) {
  lm_graph *g = lm_xcalloc(1, sizeof *g);
  lm_arena_init(&g->arena);
  lm_map_init(&g->ids);
  lm_map_init(&g->keys);
  g->n = n;
  g->revs = lm_xcalloc(n + 1, sizeof *g->revs);
  if (n) memcpy(g->revs, revs, n * sizeof *revs);
  g->down = lm_xcalloc(n + 1, sizeof *g->down);
  g->deps = lm_xcalloc(n + 1, sizeof *g->deps);
  g->normdown = lm_xcalloc(n + 1, sizeof *g->normdown);
  g->next = lm_xcalloc(n + 1, sizeof *g->next);
  g->normnext = lm_xcalloc(n + 1, sizeof *g->normnext);
  g->nallnext = lm_xcalloc(n + 1, sizeof *g->nallnext);
  g->labels = lm_xcalloc(n + 1, sizeof *g->labels);
  return g;
}

/* Map every id to its revision, refusing a bad or duplicate one; counts
 * the branch labels for load_labels. */
static int load_ids(lm_graph *g, size_t *nlabels, lm_err *err) {
  size_t n = g->n;
  for (size_t i = 0; i < n; i++) {
    const lm_revision *r = &g->revs[i];
    int rc = check_id(r, err);
    if (rc != LM_OK) return rc;
    long prev = lm_g_map_idx(&g->ids, r->id);
    if (prev >= 0)
      return lm_err_set(err, "revision %s is defined twice: in %s and in %s", r->id,
                        rev_where(&g->revs[prev]), rev_where(r));
    lm_map_put(&g->ids, r->id, (void *)(i + 1));
    lm_map_put(&g->keys, r->id, (void *)(i + 1));
    *nlabels += r->nlabels;
  }
  return LM_OK;
}

/* Branch labels share Alembic's map with ids; each revision's own labels
 * become indexes into the sorted name table. */
static int load_labels(lm_graph *g, size_t nlabels, lm_err *err) {
  size_t n = g->n;
  g->keyorder = lm_arena_alloc(&g->arena, (n + nlabels + 1) * sizeof *g->keyorder);
  g->labelnames = lm_arena_alloc(&g->arena, (nlabels + 1) * sizeof *g->labelnames);
  for (size_t i = 0; i < n; i++) g->keyorder[g->nkeys++] = g->revs[i].id;
  for (size_t i = 0; i < n; i++) {
    const lm_revision *r = &g->revs[i];
    for (size_t k = 0; k < r->nlabels; k++) {
      const char *l = r->labels[k];
      if (!l || !*l)
        return lm_err_set(err, "%s: revision %s has an empty branch label", rev_where(r), r->id);
      if (strchr(l, '@'))
        return lm_err_set(err, "%s: branch label '%s' of revision %s contains '@', which targets use as a separator",
                          rev_where(r), l, r->id);
      long prev = lm_g_map_idx(&g->keys, l);
      if (prev >= 0)
        return lm_err_set(err, "branch name '%s' in revision %s (%s) already used by revision %s (%s)", l, r->id,
                          rev_where(r), g->revs[prev].id, rev_where(&g->revs[prev]));
      lm_map_put(&g->keys, l, (void *)(i + 1));
      g->keyorder[g->nkeys++] = l;
      g->labelnames[g->nlabelnames++] = l;
    }
  }
  qsort(g->labelnames, g->nlabelnames, sizeof *g->labelnames, cmp_str);
  /* own labels as indexes into the sorted name table */
  for (size_t i = 0; i < n; i++) {
    const lm_revision *r = &g->revs[i];
    if (!r->nlabels) continue;
    size_t *v = adj_alloc(g, r->nlabels);
    for (size_t k = 0; k < r->nlabels; k++) {
      const char **hit = bsearch(&r->labels[k], g->labelnames, g->nlabelnames, sizeof *g->labelnames, cmp_str);
      v[k] = (size_t)(hit - g->labelnames);
    }
    /* sort the own set by name (indexes are already name order) */
    for (size_t a = 1; a < r->nlabels; a++)
      for (size_t b = a; b > 0 && v[b - 1] > v[b]; b--) { size_t t = v[b]; v[b] = v[b - 1]; v[b - 1] = t; }
    g->labels[i].v = v;
    g->labels[i].n = r->nlabels;
  }
  return LM_OK;
}

/* down_revision and depends_on as indexes, refusing what names nothing. */
static int load_edges(lm_graph *g, lm_err *err) {
  size_t n = g->n;
  for (size_t i = 0; i < n; i++) {
    const lm_revision *r = &g->revs[i];
    g->down[i].v = adj_alloc(g, r->ndown);
    for (size_t k = 0; k < r->ndown; k++) {
      const char *d = r->down[k];
      if (!d || !*d)
        return lm_err_set(err, "%s: revision %s has an empty down_revision entry", rev_where(r), r->id);
      if (strcmp(d, r->id) == 0)
        return lm_err_set(err, "%s: self-loop: revision %s names itself as down_revision", rev_where(r), r->id);
      long j = lm_g_map_idx(&g->ids, d);
      if (j < 0)
        return lm_err_set(err, "%s: down_revision %s of revision %s is not present%s", rev_where(r), d, r->id,
                          lm_g_map_idx(&g->keys, d) >= 0 ? " (it is a branch label; down_revision must name a revision id)" : "");
      for (size_t q = 0; q < g->down[i].n; q++)
        if (g->down[i].v[q] == (size_t)j)
          return lm_err_set(err, "%s: revision %s lists %s twice in down_revision", rev_where(r), r->id, d);
      g->down[i].v[g->down[i].n++] = (size_t)j;
    }
    g->deps[i].v = adj_alloc(g, r->ndepends);
    for (size_t k = 0; k < r->ndepends; k++) {
      const char *d = r->depends[k];
      if (!d || !*d)
        return lm_err_set(err, "%s: revision %s has an empty depends_on entry", rev_where(r), r->id);
      if (strcmp(d, r->id) == 0)
        return lm_err_set(err, "%s: dependency self-loop: revision %s depends on itself", rev_where(r), r->id);
      long j = lm_g_map_idx(&g->keys, d);
      if (j < 0)
        return lm_err_set(err, "%s: depends_on %s of revision %s names no revision id or branch label", rev_where(r),
                          d, r->id);
      if ((size_t)j == i)
        return lm_err_set(err, "%s: dependency self-loop: revision %s depends on its own branch label %s",
                          rev_where(r), r->id, d);
      int dup = 0;
      for (size_t q = 0; q < g->deps[i].n; q++)
        if (g->deps[i].v[q] == (size_t)j) dup = 1;
      if (!dup) g->deps[i].v[g->deps[i].n++] = (size_t)j;   /* Alembic keeps a set */
    }
  }
  return LM_OK;
}

/* Children by down_revision, file order. */
static void link_children(lm_graph *g) {
  size_t n = g->n;
  size_t *cnt = lm_xcalloc(n + 1, sizeof *cnt);
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < g->down[i].n; k++) cnt[g->down[i].v[k]]++;
  for (size_t i = 0; i < n; i++) { g->next[i].v = adj_alloc(g, cnt[i]); }
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < g->down[i].n; k++) {
      size_t d = g->down[i].v[k];
      g->next[d].v[g->next[d].n++] = i;
    }
  free(cnt);
}

/* normdown = dedupe(down + normalized deps), its reverse normnext, and the
 * _all_nextrev counts from dedupe(down + deps). */
static void link_normalized(lm_graph *g, lm_gctx *c) {
  size_t n = g->n;
  size_t **nd = lm_xcalloc(n + 1, sizeof *nd);
  size_t *nn = lm_xcalloc(n + 1, sizeof *nn);
  normalize_deps(g, c, nd, nn);
  size_t *cnt = lm_xcalloc(n + 1, sizeof *cnt);
  unsigned char *seen = lm_xcalloc(n + 1, 1);
  for (size_t i = 0; i < n; i++) {
    size_t *v = adj_alloc(g, g->down[i].n + nn[i]);
    size_t m = 0;
    for (size_t k = 0; k < g->down[i].n; k++) { v[m++] = g->down[i].v[k]; seen[g->down[i].v[k]] = 1; }
    for (size_t k = 0; k < nn[i]; k++)
      if (!seen[nd[i][k]]) { seen[nd[i][k]] = 1; v[m++] = nd[i][k]; }
    for (size_t k = 0; k < m; k++) cnt[v[k]]++;
    g->normdown[i].v = v;
    g->normdown[i].n = m;
    for (size_t k = 0; k < m; k++) seen[v[k]] = 0;
    for (size_t k = 0; k < g->down[i].n; k++) {
      size_t d = g->down[i].v[k];
      if (!seen[d]) { seen[d] = 1; g->nallnext[d]++; }
    }
    for (size_t k = 0; k < g->deps[i].n; k++) {
      size_t d = g->deps[i].v[k];
      if (!seen[d]) { seen[d] = 1; g->nallnext[d]++; }
    }
    for (size_t k = 0; k < g->down[i].n; k++) seen[g->down[i].v[k]] = 0;
    for (size_t k = 0; k < g->deps[i].n; k++) seen[g->deps[i].v[k]] = 0;
  }
  for (size_t i = 0; i < n; i++) g->normnext[i].v = adj_alloc(g, cnt[i]);
  for (size_t i = 0; i < n; i++)
    for (size_t k = 0; k < g->normdown[i].n; k++) {
      size_t d = g->normdown[i].v[k];
      g->normnext[d].v[g->normnext[d].n++] = i;
    }
  free(cnt);
  free(seen);
  free(nd);
  free(nn);
}

int lm_graph_new(lm_graph **out, const lm_revision *revs, size_t n, lm_err *err) {
  *out = NULL;
  if (n > (size_t)LONG_MAX / 4) return lm_err_set(err, "too many revisions");
  lm_graph *g = graph_alloc(revs, n);
  size_t nlabels = 0;
  int rc = load_ids(g, &nlabels, err);
  if (rc == LM_OK) rc = load_labels(g, nlabels, err);
  if (rc == LM_OK) rc = load_edges(g, err);
  if (rc == LM_OK) {
    link_children(g);
    rc = check_cycles(g, 0, err);
  }
  if (rc == LM_OK) rc = check_cycles(g, 1, err);
  if (rc != LM_OK) {
    lm_graph_free(g);
    return rc;
  }
  lm_gctx c;
  lm_gctx_init(&c, g);
  link_normalized(g, &c);
  propagate_labels(g, &c);
  lm_gctx_free(&c);
  *out = g;
  return LM_OK;
}

void lm_graph_free(lm_graph *g) {
  if (!g) return;
  lm_arena_free(&g->arena);
  lm_map_free(&g->ids);
  lm_map_free(&g->keys);
  free(g->revs);
  free(g->down);
  free(g->deps);
  free(g->normdown);
  free(g->next);
  free(g->normnext);
  free(g->nallnext);
  free(g->labels);
  free(g);
}

size_t lm_graph_size(const lm_graph *g) { return g->n; }

const lm_revision *lm_graph_rev(const lm_graph *g, size_t idx) {
  return idx < g->n ? &g->revs[idx] : NULL;
}

/* ---- properties ------------------------------------------------------------ */

int lm_graph_is_head(const lm_graph *g, size_t idx) { return idx < g->n && g->next[idx].n == 0; }
int lm_graph_is_branch_point(const lm_graph *g, size_t idx) { return idx < g->n && g->next[idx].n > 1; }
int lm_graph_is_merge_point(const lm_graph *g, size_t idx) { return idx < g->n && g->down[idx].n > 1; }
int lm_graph_is_base(const lm_graph *g, size_t idx) { return idx < g->n && g->down[idx].n == 0; }

int lm_g_has_label(const lm_graph *g, size_t idx, const char *label) {
  for (size_t k = 0; k < g->labels[idx].n; k++)
    if (strcmp(g->labelnames[g->labels[idx].v[k]], label) == 0) return 1;
  return 0;
}

/* Collect the revisions satisfying a property, in file order (the order
 * of Alembic's OrderedSet of heads and tuple of bases). */
static int collect(const lm_graph *g, int (*pred)(const lm_graph *, size_t), lm_revlist *out) {
  out->idx = lm_xmalloc((g->n + 1) * sizeof *out->idx);
  out->n = 0;
  for (size_t i = 0; i < g->n; i++)
    if (pred(g, i)) out->idx[out->n++] = i;
  return LM_OK;
}

static int is_real_head(const lm_graph *g, size_t i) { return g->nallnext[i] == 0; }

int lm_graph_heads(const lm_graph *g, lm_revlist *out) { return collect(g, lm_graph_is_head, out); }
int lm_graph_bases(const lm_graph *g, lm_revlist *out) { return collect(g, lm_graph_is_base, out); }
int lm_graph_real_heads(const lm_graph *g, lm_revlist *out) { return collect(g, is_real_head, out); }

int lm_graph_nextrev(const lm_graph *g, size_t idx, lm_revlist *out) {
  out->n = 0;
  out->idx = lm_xmalloc((idx < g->n ? g->next[idx].n : 0) * sizeof *out->idx + 1);
  if (idx >= g->n) return LM_OK;
  for (size_t k = 0; k < g->next[idx].n; k++) out->idx[out->n++] = g->next[idx].v[k];
  return LM_OK;
}
