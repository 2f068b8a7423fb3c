/*
 * graph_versions.c - the version-table changes a plan's steps make
 * (Alembic's HeadMaintainer with RevisionStep), and `stamp` (StampStep):
 * which rows are inserted, updated and deleted, refusing a change Alembic
 * would crash on or guess at, with the revisions named.
 */
#define LM_GRAPH_INTERNAL
#include "graph.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

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
int lm_g_plan_steps(lm_gctx *c, const lm_gvec *order, int upgrade, const char *const *current, size_t ncurrent,
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
