/*
 * graph_resolve.c - the resolution primitives of Alembic's RevisionMap
 * (get_revisions, get_revision, _revision_for_ident, _walk,
 * filter_for_lineage), mirrored one to one so that every command built on
 * them resolves targets exactly as Alembic 1.8 does.
 */
#define LM_GRAPH_INTERNAL
#include "graph.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---- identifier resolution (RevisionMap mirrors) ----------------------- */

/* Exact id, else a unique prefix.  Unlike Alembic's partial match this
 * looks at revision ids only (labels go through lm_graph_resolve). */
int lm_graph_lookup(const lm_graph *g, const char *id, size_t *idx, lm_err *err) {
  if (!id || !*id) return lm_err_set(err, "empty revision identifier");
  long i = lm_g_map_idx(&g->ids, id);
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
  else if (found == 0) {
    lm_err_set(err, "no such revision '%s'", id);
    rc = lm_err_kind(err, "unknown_revision");
  }
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
      lm_err_kind(err, "multiple_heads");
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
  long i = lm_g_map_idx(&c->g->keys, label);
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
  rev = lm_g_map_idx(&g->keys, id);
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
      for (size_t k = 0; k < cand.n; k++) lm_gvec_push(&revs, lm_g_map_idx(&g->keys, g->keyorder[cand.v[k]]));
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
      lm_err_set(err, "no such revision or branch '%s'", id);
      return lm_err_kind(err, "unknown_revision");
    }
    if (cand.n > 1) {
      lm_buf b = LM_BUF_INIT;
      for (size_t k = 0; k < cand.n && k < 10; k++) lm_buf_printf(&b, "%s'%s'", k ? ", " : "", g->keyorder[cand.v[k]]);
      lm_err_set(err, "multiple revisions start with '%s': %s%s", id, lm_buf_str(&b), cand.n > 10 ? ", ..." : "");
      lm_buf_free(&b);
      lm_gvec_free(&cand);
      return LM_ERROR;
    }
    rev = lm_g_map_idx(&g->keys, g->keyorder[cand.v[0]]);
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
    lm_err_kind(err, "multiple_heads");
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
