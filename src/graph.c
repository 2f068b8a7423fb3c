/*
 * graph.c - the revision graph: loading and validating revisions, the
 * per-revision properties Alembic's Revision class derives (heads, branch
 * points, normalized dependencies, propagated branch labels) and the
 * resolution primitives of Alembic's RevisionMap (get_revisions,
 * get_revision, _revision_for_ident, _walk, filter_for_lineage), mirrored
 * one to one so that every command built on them resolves targets exactly
 * as Alembic 1.8 does.
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

static long map_idx(const lm_map *m, const char *key) {
  void *p = lm_map_get(m, key);
  return p ? (long)((size_t)p - 1) : -1;
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

int lm_graph_new(lm_graph **out, const lm_revision *revs, size_t n, lm_err *err) {
  *out = NULL;
  if (n > (size_t)LONG_MAX / 4) return lm_err_set(err, "too many revisions");
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
  lm_gctx c;
  int rc = LM_OK;
  size_t nlabels = 0;

  /* ids */
  for (size_t i = 0; i < n; i++) {
    const lm_revision *r = &g->revs[i];
    if ((rc = check_id(r, err)) != LM_OK) goto fail;
    long prev = map_idx(&g->ids, r->id);
    if (prev >= 0) {
      rc = lm_err_set(err, "revision %s is defined twice: in %s and in %s", r->id,
                      rev_where(&g->revs[prev]), rev_where(r));
      goto fail;
    }
    lm_map_put(&g->ids, r->id, (void *)(i + 1));
    lm_map_put(&g->keys, r->id, (void *)(i + 1));
    nlabels += r->nlabels;
  }
  /* branch labels share Alembic's map with ids */
  g->keyorder = lm_arena_alloc(&g->arena, (n + nlabels + 1) * sizeof *g->keyorder);
  g->labelnames = lm_arena_alloc(&g->arena, (nlabels + 1) * sizeof *g->labelnames);
  for (size_t i = 0; i < n; i++) g->keyorder[g->nkeys++] = g->revs[i].id;
  for (size_t i = 0; i < n; i++) {
    const lm_revision *r = &g->revs[i];
    for (size_t k = 0; k < r->nlabels; k++) {
      const char *l = r->labels[k];
      if (!l || !*l) {
        rc = lm_err_set(err, "%s: revision %s has an empty branch label", rev_where(r), r->id);
        goto fail;
      }
      if (strchr(l, '@')) {
        rc = lm_err_set(err, "%s: branch label '%s' of revision %s contains '@', which targets use as a separator",
                        rev_where(r), l, r->id);
        goto fail;
      }
      long prev = map_idx(&g->keys, l);
      if (prev >= 0) {
        rc = lm_err_set(err, "branch name '%s' in revision %s (%s) already used by revision %s (%s)", l, r->id,
                        rev_where(r), g->revs[prev].id, rev_where(&g->revs[prev]));
        goto fail;
      }
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

  /* down_revision and depends_on */
  for (size_t i = 0; i < n; i++) {
    const lm_revision *r = &g->revs[i];
    g->down[i].v = adj_alloc(g, r->ndown);
    for (size_t k = 0; k < r->ndown; k++) {
      const char *d = r->down[k];
      if (!d || !*d) {
        rc = lm_err_set(err, "%s: revision %s has an empty down_revision entry", rev_where(r), r->id);
        goto fail;
      }
      if (strcmp(d, r->id) == 0) {
        rc = lm_err_set(err, "%s: self-loop: revision %s names itself as down_revision", rev_where(r), r->id);
        goto fail;
      }
      long j = map_idx(&g->ids, d);
      if (j < 0) {
        rc = lm_err_set(err, "%s: down_revision %s of revision %s is not present%s", rev_where(r), d, r->id,
                        map_idx(&g->keys, d) >= 0 ? " (it is a branch label; down_revision must name a revision id)" : "");
        goto fail;
      }
      for (size_t q = 0; q < g->down[i].n; q++)
        if (g->down[i].v[q] == (size_t)j) {
          rc = lm_err_set(err, "%s: revision %s lists %s twice in down_revision", rev_where(r), r->id, d);
          goto fail;
        }
      g->down[i].v[g->down[i].n++] = (size_t)j;
    }
    g->deps[i].v = adj_alloc(g, r->ndepends);
    for (size_t k = 0; k < r->ndepends; k++) {
      const char *d = r->depends[k];
      if (!d || !*d) {
        rc = lm_err_set(err, "%s: revision %s has an empty depends_on entry", rev_where(r), r->id);
        goto fail;
      }
      if (strcmp(d, r->id) == 0) {
        rc = lm_err_set(err, "%s: dependency self-loop: revision %s depends on itself", rev_where(r), r->id);
        goto fail;
      }
      long j = map_idx(&g->keys, d);
      if (j < 0) {
        rc = lm_err_set(err, "%s: depends_on %s of revision %s names no revision id or branch label", rev_where(r),
                        d, r->id);
        goto fail;
      }
      if ((size_t)j == i) {
        rc = lm_err_set(err, "%s: dependency self-loop: revision %s depends on its own branch label %s",
                        rev_where(r), r->id, d);
        goto fail;
      }
      int dup = 0;
      for (size_t q = 0; q < g->deps[i].n; q++)
        if (g->deps[i].v[q] == (size_t)j) dup = 1;
      if (!dup) g->deps[i].v[g->deps[i].n++] = (size_t)j;   /* Alembic keeps a set */
    }
  }
  /* children by down_revision, file order */
  {
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
  if ((rc = check_cycles(g, 0, err)) != LM_OK) goto fail;
  if ((rc = check_cycles(g, 1, err)) != LM_OK) goto fail;

  lm_gctx_init(&c, g);
  {
    size_t **nd = lm_xcalloc(n + 1, sizeof *nd);
    size_t *nn = lm_xcalloc(n + 1, sizeof *nn);
    normalize_deps(g, &c, nd, nn);
    /* normdown = dedupe(down + normalized deps); _all_nextrev counts come
       from dedupe(down + deps) */
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
  propagate_labels(g, &c);
  lm_gctx_free(&c);
  *out = g;
  return LM_OK;

fail:
  lm_graph_free(g);
  return rc;
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
int lm_graph_is_effective_head(const lm_graph *g, size_t idx) {
  return idx < g->n && g->next[idx].n == 0 && g->nallnext[idx] != 0;
}
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

/* ---- identifier resolution (RevisionMap mirrors) ----------------------- */

/* Exact id, else a unique prefix.  Unlike Alembic's partial match this
 * looks at revision ids only (labels go through lm_graph_resolve). */
int lm_graph_lookup(const lm_graph *g, const char *id, size_t *idx, lm_err *err) {
  if (!id || !*id) return lm_err_set(err, "empty revision identifier");
  long i = map_idx(&g->ids, id);
  if (i >= 0) { *idx = (size_t)i; return LM_OK; }
  size_t len = strlen(id), found = 0, first = 0;
  lm_buf b = LM_BUF_INIT;
  for (size_t k = 0; k < g->n; k++)
    if (strncmp(g->revs[k].id, id, len) == 0) {
      if (found == 0) first = k;
      if (found < 10) lm_buf_printf(&b, "%s%s", found ? ", " : "", g->revs[k].id);
      found++;
    }
  int rc = LM_OK;
  if (found == 1) *idx = first;
  else if (found == 0) rc = lm_err_set(err, "no such revision '%s'", id);
  else rc = lm_err_set(err, "revision prefix '%s' is ambiguous; it matches %s%s", id, lm_buf_str(&b), found > 10 ? ", ..." : "");
  lm_buf_free(&b);
  return rc;
}

/* _resolve_revision_number: split "label@" off, expand heads/head/base.
 * Result: either the raw identifier (raw != NULL) or a list of revisions. */
typedef struct gnum {
  char *label;      /* NULL: there was no '@' */
  const char *raw;  /* points into the caller's string */
  lm_gvec ids;
} gnum;

static void gnum_free(gnum *x) {
  free(x->label);
  lm_gvec_free(&x->ids);
}

static int resolve_number(lm_gctx *c, const char *id, gnum *out, lm_err *err) {
  const lm_graph *g = c->g;
  memset(out, 0, sizeof *out);
  const char *at = strchr(id, '@');
  if (at) {
    out->label = lm_xstrndup(id, (size_t)(at - id));
    id = at + 1;
  }
  int has = out->label && *out->label;
  if (strcmp(id, "heads") == 0) {
    if (has) {
      lm_gvec heads = {0};
      for (size_t i = 0; i < g->n; i++)
        if (g->next[i].n == 0) lm_gvec_push(&heads, (long)i);
      int rc = lm_g_filter_for_lineage(c, heads.v, heads.n, out->label, 0, &out->ids, err);
      lm_gvec_free(&heads);
      if (rc != LM_OK) { gnum_free(out); return rc; }
    } else {
      for (size_t i = 0; i < g->n; i++)
        if (g->nallnext[i] == 0) lm_gvec_push(&out->ids, (long)i);
    }
    return LM_OK;
  }
  if (strcmp(id, "head") == 0) {
    lm_gvec heads = {0};
    for (size_t i = 0; i < g->n; i++)
      if (g->next[i].n == 0) lm_gvec_push(&heads, (long)i);
    if (has) {
      int rc = lm_g_filter_for_lineage(c, heads.v, heads.n, out->label, 0, &out->ids, err);
      lm_gvec_free(&heads);
      if (rc != LM_OK) { gnum_free(out); return rc; }
    } else {
      out->ids = heads;
    }
    if (out->ids.n > 1) {
      lm_buf b = LM_BUF_INIT;
      lm_g_join(g, out->ids.v, out->ids.n, &b);
      if (has)
        lm_err_set(err, "multiple heads are present for '%s@head': %s; name one of them, or use '%s@heads' for all",
                   out->label, lm_buf_str(&b), out->label);
      else
        lm_err_set(err, "multiple heads are present: %s; name a specific revision, '<branchname>@head' to narrow "
                   "to one branch, or 'heads' for all heads", lm_buf_str(&b));
      lm_buf_free(&b);
      gnum_free(out);
      return LM_ERROR;
    }
    return LM_OK;
  }
  if (strcmp(id, "base") == 0) return LM_OK;
  out->raw = id;
  return LM_OK;
}

/* _resolve_branch: a key of the map (id or label), else any identifier. */
static int resolve_branch(lm_gctx *c, const char *label, long *out, lm_err *err) {
  long i = map_idx(&c->g->keys, label);
  if (i >= 0) { *out = i; return LM_OK; }
  lm_err tmp;
  lm_err_init(&tmp);
  int rc = lm_g_revision_for_ident(c, label, NULL, out, &tmp);
  lm_err_free(&tmp);
  if (rc != LM_OK) return lm_err_set(err, "no such branch: '%s'", label);
  return LM_OK;
}

int lm_g_revision_for_ident(lm_gctx *c, const char *id, const char *branch, long *out, lm_err *err) {
  const lm_graph *g = c->g;
  long branch_rev = LM_G_NONE;
  int check = branch && *branch;
  if (check) {
    int rc = resolve_branch(c, branch, &branch_rev, err);
    if (rc != LM_OK) return rc;
  }
  long rev;
  if (!id) {
    *out = LM_G_NONE;     /* Alembic's map[()] is None */
    return LM_OK;
  }
  rev = map_idx(&g->keys, id);
  if (rev < 0) {
    if (!*id) return lm_err_set(err, "empty revision identifier");
    size_t len = strlen(id);
    lm_gvec cand = {0};   /* indexes into keyorder */
    for (size_t k = 0; k < g->nkeys; k++) {
      const char *key = g->keyorder[k];
      if (strlen(key) > 3 && strncmp(key, id, len) == 0) lm_gvec_push(&cand, (long)k);
    }
    if (check && cand.n) {
      lm_gvec revs = {0}, kept = {0};
      for (size_t k = 0; k < cand.n; k++) lm_gvec_push(&revs, map_idx(&g->keys, g->keyorder[cand.v[k]]));
      int rc = lm_g_filter_for_lineage(c, revs.v, revs.n, branch, 0, &kept, err);
      if (rc != LM_OK) { lm_gvec_free(&revs); lm_gvec_free(&kept); lm_gvec_free(&cand); return rc; }
      /* keep the keys whose revision survived, in order */
      size_t m = 0;
      for (size_t k = 0; k < cand.n; k++)
        if (lm_gvec_has(&kept, revs.v[k])) cand.v[m++] = cand.v[k];
      cand.n = m;
      lm_gvec_free(&revs);
      lm_gvec_free(&kept);
    }
    if (cand.n == 0) {
      lm_gvec_free(&cand);
      /* Any unique prefix of an id works, however short (Alembic's hint
         to type four characters contradicts that): no hint. */
      return lm_err_set(err, "no such revision or branch '%s'", id);
    }
    if (cand.n > 1) {
      lm_buf b = LM_BUF_INIT;
      for (size_t k = 0; k < cand.n && k < 10; k++) lm_buf_printf(&b, "%s'%s'", k ? ", " : "", g->keyorder[cand.v[k]]);
      lm_err_set(err, "multiple revisions start with '%s': %s%s", id, lm_buf_str(&b), cand.n > 10 ? ", ..." : "");
      lm_buf_free(&b);
      lm_gvec_free(&cand);
      return LM_ERROR;
    }
    rev = map_idx(&g->keys, g->keyorder[cand.v[0]]);
    lm_gvec_free(&cand);
  }
  if (check && !lm_g_shares_lineage(c, rev, &branch_rev, 1, 0))
    return lm_err_set(err, "revision %s is not a member of branch '%s'", g->revs[rev].id, branch);
  *out = rev;
  return LM_OK;
}

/* _shares_lineage: target is an ancestor or a descendant of (or equal to)
 * one of `against`. */
int lm_g_shares_lineage(lm_gctx *c, long target, const long *against, size_t n, int deps) {
  if (n == 0) return 1;
  if (target < 0) return 0;
  unsigned gen = lm_gctx_next(c);
  lm_g_reach(c, &target, 1, 0, deps, gen);
  for (size_t i = 0; i < n; i++)
    if (against[i] >= 0 && c->mark[against[i]] == gen) return 1;
  gen = lm_gctx_next(c);
  lm_g_reach(c, &target, 1, 1, deps, gen);
  for (size_t i = 0; i < n; i++)
    if (against[i] >= 0 && c->mark[against[i]] == gen) return 1;
  return 0;
}

/* filter_for_lineage: keep the targets that share lineage with what
 * check_against names.  One marking from the `against` side serves every
 * target (lineage is symmetric). */
int lm_g_filter_for_lineage(lm_gctx *c, const long *targets, size_t n, const char *check_against, int deps,
                            lm_gvec *out, lm_err *err) {
  gnum num;
  int rc = resolve_number(c, check_against, &num, err);
  if (rc != LM_OK) return rc;
  lm_gvec shares = {0};
  if (num.label && *num.label) {
    long r;
    if (n && (rc = lm_g_revision_for_ident(c, num.label, NULL, &r, err)) != LM_OK) goto done;
    if (n) lm_gvec_push(&shares, r);
  }
  if (num.raw) {
    long r;
    if (n && (rc = lm_g_revision_for_ident(c, num.raw, NULL, &r, err)) != LM_OK) goto done;
    if (n) lm_gvec_push(&shares, r);
  } else {
    for (size_t i = 0; i < num.ids.n; i++) lm_gvec_push(&shares, num.ids.v[i]);
  }
  int empty = !(num.label && *num.label) && !num.raw && num.ids.n == 0;
  if (empty) {
    for (size_t i = 0; i < n; i++) lm_gvec_push(out, targets[i]);
    goto done;
  }
  if (n) {
    unsigned up = lm_gctx_next(c);
    lm_g_reach(c, shares.v, shares.n, 1, deps, up);
    unsigned char *hit = lm_xcalloc(c->g->n + 1, 1);
    for (size_t i = 0; i < c->g->n; i++)
      if (c->mark[i] == up) hit[i] = 1;
    unsigned down = lm_gctx_next(c);
    lm_g_reach(c, shares.v, shares.n, 0, deps, down);
    for (size_t i = 0; i < n; i++) {
      long t = targets[i];
      if (t >= 0 && (hit[t] || c->mark[t] == down)) lm_gvec_push(out, t);
    }
    free(hit);
  }
done:
  lm_gvec_free(&shares);
  gnum_free(&num);
  return rc;
}

/* Python's int() on a resolved identifier: optional blanks and sign,
 * digits with single underscores between them.  Saturates. */
static int py_int(const char *s, long *out) {
  while (isspace((unsigned char)*s)) s++;
  int neg = 0;
  if (*s == '+' || *s == '-') neg = *s++ == '-';
  if (!isdigit((unsigned char)*s)) return 0;
  long v = 0;
  while (*s) {
    if (isdigit((unsigned char)*s)) {
      if (v < LONG_MAX / 16) v = v * 10 + (*s - '0');
      s++;
    } else if (*s == '_' && isdigit((unsigned char)s[1])) {
      s++;
    } else break;
  }
  while (isspace((unsigned char)*s)) s++;
  if (*s) return 0;
  *out = neg ? -v : v;
  return 1;
}

int lm_g_get_revisions(lm_gctx *c, const char *id, lm_gvec *out, lm_err *err) {
  const lm_graph *g = c->g;
  gnum num;
  int rc = resolve_number(c, id, &num, err);
  if (rc != LM_OK) return rc;
  size_t count = num.raw ? 1 : num.ids.n;
  long rint;
  if (count == 1 && py_int(num.raw ? num.raw : g->revs[num.ids.v[0]].id, &rint) && rint < 0) {
    /* branch@-n: walk down from the (real) heads */
    for (size_t i = 0; i < g->n && rc == LM_OK; i++) {
      if (g->nallnext[i] != 0) continue;
      if (num.label && !lm_g_has_label(g, i, num.label)) continue;
      long r;
      rc = lm_g_walk(c, (long)i, rint, NULL, 1, &r, err);
      if (rc == LM_OK) lm_gvec_push(out, r);
    }
    gnum_free(&num);
    return rc;
  }
  if (num.raw) {
    long r;
    rc = lm_g_revision_for_ident(c, num.raw, num.label, &r, err);
    if (rc == LM_OK) lm_gvec_push(out, r);
  } else {
    for (size_t i = 0; i < num.ids.n && rc == LM_OK; i++) {
      long r;
      rc = lm_g_revision_for_ident(c, g->revs[num.ids.v[i]].id, num.label, &r, err);
      if (rc == LM_OK) lm_gvec_push(out, r);
    }
  }
  gnum_free(&num);
  return rc;
}

int lm_g_get_revision(lm_gctx *c, const char *id, long *out, lm_err *err) {
  const lm_graph *g = c->g;
  gnum num;
  int rc = resolve_number(c, id, &num, err);
  if (rc != LM_OK) return rc;
  if (!num.raw && num.ids.n > 1) {
    lm_buf b = LM_BUF_INIT;
    lm_g_join(g, num.ids.v, num.ids.n, &b);
    rc = lm_err_set(err, "multiple heads are present for '%s': %s; name one revision or a '<branchname>@head'", id,
                    lm_buf_str(&b));
    lm_buf_free(&b);
  } else {
    const char *rid = num.raw ? num.raw : num.ids.n ? g->revs[num.ids.v[0]].id : NULL;
    rc = lm_g_revision_for_ident(c, rid, num.label, out, err);
  }
  gnum_free(&num);
  return rc;
}

/* _walk: steps > 0 goes up by nextrev (bases from None), steps < 0 down by
 * down_revision (heads from None, then "base"). */
int lm_g_walk(lm_gctx *c, long start, long steps, const char *branch, int no_overwalk, long *out, lm_err *err) {
  const lm_graph *g = c->g;
  long initial = start;
  long n = steps < 0 ? -steps : steps;
  if (n > (long)g->n + 2) n = (long)g->n + 2;   /* the walk stops before this anyway */
  lm_gvec kids = {0}, filt = {0};
  int rc = LM_OK;
  for (long s = 0; s < n; s++) {
    kids.n = 0;
    filt.n = 0;
    lm_gvec *children = &kids;
    if (steps > 0) {
      if (initial == LM_G_BASE) { rc = lm_err_set(err, "cannot walk up from base"); goto done; }
      if (initial == LM_G_NONE) {
        for (size_t i = 0; i < g->n; i++)
          if (g->down[i].n == 0) lm_gvec_push(&kids, (long)i);
      } else {
        for (size_t k = 0; k < g->next[initial].n; k++) lm_gvec_push(&kids, (long)g->next[initial].v[k]);
      }
      if (branch && *branch) {
        if ((rc = lm_g_filter_for_lineage(c, kids.v, kids.n, branch, 0, &filt, err)) != LM_OK) goto done;
        children = &filt;
      }
    } else {
      if (initial != LM_G_BASE) {
        if (initial == LM_G_NONE) {
          for (size_t i = 0; i < g->n; i++)
            if (g->next[i].n == 0) lm_gvec_push(&kids, (long)i);
        } else {
          for (size_t k = 0; k < g->down[initial].n; k++) lm_gvec_push(&kids, (long)g->down[initial].v[k]);
        }
        if (kids.n == 0) lm_gvec_push(&kids, LM_G_BASE);
      }
    }
    if (children->n == 0) {
      *out = no_overwalk ? LM_G_NONE : initial;
      goto done;
    }
    if (children->n > 1) {
      lm_buf b = LM_BUF_INIT;
      lm_g_join(g, children->v, children->n, &b);
      rc = lm_err_set(err, "ambiguous walk: %s %s leads to several revisions (%s); name the revision instead",
                      initial >= 0 ? g->revs[initial].id : initial == LM_G_BASE ? "base" : "the current state",
                      steps > 0 ? "up" : "down", lm_buf_str(&b));
      lm_buf_free(&b);
      goto done;
    }
    initial = children->v[0];
  }
  *out = initial;
done:
  lm_gvec_free(&kids);
  lm_gvec_free(&filt);
  return rc;
}
