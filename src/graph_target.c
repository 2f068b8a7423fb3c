/*
 * graph_target.c - what a target names: Alembic's _relative_destination
 * pattern, _parse_upgrade_target and _parse_downgrade_target (relative
 * walks from the current heads, branch labels, refusals where Alembic
 * guesses or crashes), get_all_current for `current`, and the head checks
 * of `revision --head` and `merge`.
 */
#define LM_GRAPH_INTERNAL
#include "graph.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

lm_gspec lm_gspec_str(const char *s) { lm_gspec x = {s, NULL, 0}; return x; }
lm_gspec lm_gspec_list(const char *const *l, size_t n) { lm_gspec x = {NULL, l, n}; return x; }

/* get_revisions on a string or a tuple. */
int lm_g_spec_revisions(lm_gctx *c, lm_gspec s, lm_gvec *out, lm_err *err) {
  if (s.str) return lm_g_get_revisions(c, s.str, out, err);
  for (size_t i = 0; i < s.n; i++) {
    if (!s.list[i]) return lm_err_set(err, "empty revision identifier");
    int rc = lm_g_get_revisions(c, s.list[i], out, err);
    if (rc != LM_OK) return rc;
  }
  return LM_OK;
}

/* ---- Alembic's _relative_destination regex ---------------------------- */

/* re.match(r"(?:(.+?)@)?(\w+)?((?:\+|-)\d+)", s): the shortest label before
 * an '@' for which the rest matches, else no label. */
typedef struct grel {
  char *label;    /* NULL when the optional group did not match */
  char *symbol;   /* NULL when empty */
  long rel;
  char relstr[32];
} grel;

static int is_word(unsigned char ch) { return isalnum(ch) || ch == '_' || ch >= 0x80; }

static int rel_tail(const char *s, grel *m) {
  const char *p = s;
  while (is_word((unsigned char)*p)) p++;
  if ((*p != '+' && *p != '-') || !isdigit((unsigned char)p[1])) return 0;
  const char *q = p + 1;
  long v = 0;
  while (isdigit((unsigned char)*q)) {
    if (v < LONG_MAX / 16) v = v * 10 + (*q - '0');
    q++;
  }
  m->symbol = p > s ? lm_xstrndup(s, (size_t)(p - s)) : NULL;
  m->rel = *p == '-' ? -v : v;
  size_t len = (size_t)(q - p);
  if (len > sizeof m->relstr - 1) len = sizeof m->relstr - 1;
  memcpy(m->relstr, p, len);
  m->relstr[len] = '\0';
  return 1;
}

static int rel_match(const char *s, grel *m) {
  memset(m, 0, sizeof *m);
  for (const char *at = s; *at && *at != '\n'; at++) {
    if (*at != '@' || at == s) continue;
    if (rel_tail(at + 1, m)) {
      m->label = lm_xstrndup(s, (size_t)(at - s));
      return 1;
    }
  }
  return rel_tail(s, m);
}

static void rel_free(grel *m) {
  free(m->label);
  free(m->symbol);
}

/* ---- target parsing --------------------------------------------------- */

/* _get_all_current: the current revisions and their ancestors, reduced to
 * the ones with no down_revision descendant among them. */
static int get_all_current(lm_gctx *c, lm_gspec cur, lm_gvec *out, lm_err *err) {
  const lm_graph *g = c->g;
  lm_gvec top = {0};
  int rc = lm_g_spec_revisions(c, cur, &top, err);
  if (rc != LM_OK) { lm_gvec_free(&top); return rc; }
  unsigned gen = lm_gctx_next(c);
  lm_g_reach(c, top.v, top.n, 0, 1, gen);
  int has_none = 0;
  for (size_t i = 0; i < top.n; i++) if (top.v[i] < 0) has_none = 1;
  for (size_t i = 0; i < g->n; i++) {
    if (c->mark[i] != gen) continue;
    int keep = 1;
    for (size_t k = 0; k < g->next[i].n && keep; k++)
      if (c->mark[g->next[i].v[k]] == gen) keep = 0;
    /* a deeper descendant in the set implies a direct child in it, since
       the set is closed under ancestors */
    if (keep) lm_gvec_push(out, (long)i);
  }
  if (has_none) lm_gvec_push(out, LM_G_NONE);
  lm_gvec_free(&top);
  return LM_OK;
}

/* _parse_downgrade_target: the target revision and the branch label that
 * narrows it. *label is malloc'ed or NULL. */
int lm_g_parse_downgrade_target(lm_gctx *c, lm_gspec cur, const char *target, int assert_len, char **label,
                                  long *rev, lm_err *err) {
  const lm_graph *g = c->g;
  *label = NULL;
  *rev = LM_G_NONE;
  if (!target) return LM_OK;
  /* util.to_tuple(current_revisions): a string is a one-element tuple */
  const char *one[1];
  if (cur.str) {
    one[0] = cur.str;
    cur.list = one;
    cur.n = 1;
    cur.str = NULL;
  }
  grel m;
  int rc = LM_OK;
  if (rel_match(target, &m)) {
    if (m.rel >= 0) {
      if (!m.symbol) {
        rc = lm_err_set(err, "relative revision %s didn't produce %ld migrations", m.relstr, m.rel);
        goto out;
      }
      long start;
      if ((rc = lm_g_get_revision(c, m.symbol, &start, err)) != LM_OK) goto out;
      if ((rc = lm_g_walk(c, start, m.rel, m.label, assert_len, rev, err)) != LM_OK) goto out;
      if (*rev == LM_G_NONE) {
        rc = lm_err_set(err, "walked too far: %s goes past the top of the graph", target);
        goto out;
      }
      *label = m.label;
      m.label = NULL;
      goto out;
    }
    int relative_revision = m.symbol == NULL;
    char *symbol = m.symbol;
    m.symbol = NULL;
    char *branch = m.label ? lm_xstrdup(m.label) : NULL;
    if (relative_revision) {
      if (branch && *branch) {
        lm_gvec curv = {0}, sl = {0};
        for (size_t i = 0; i < cur.n; i++) {
          long r;
          if ((rc = lm_g_revision_for_ident(c, cur.list[i], NULL, &r, err)) != LM_OK) break;
          lm_gvec_push(&curv, r);
        }
        if (rc == LM_OK) rc = lm_g_filter_for_lineage(c, curv.v, curv.n, branch, 0, &sl, err);
        if (rc == LM_OK && sl.n == 0) {
          lm_gvec all = {0};
          rc = get_all_current(c, cur, &all, err);
          if (rc == LM_OK) rc = lm_g_filter_for_lineage(c, all.v, all.n, branch, 0, &sl, err);
          lm_gvec_free(&all);
        }
        if (rc == LM_OK && sl.n != 1) {
          lm_buf b = LM_BUF_INIT;
          lm_g_join(g, sl.v, sl.n, &b);
          if (sl.n == 0)
            rc = lm_err_set(err, "no current revision is on branch '%s'; nothing to walk down from", branch);
          else
            rc = lm_err_set(err, "branch '%s' has several current heads (%s); downgrade from one of them by name, "
                            "e.g. %s%s", branch, lm_buf_str(&b), g->revs[sl.v[0]].id, m.relstr);
          lm_buf_free(&b);
        }
        if (rc == LM_OK) symbol = lm_xstrdup(sl.v[0] >= 0 ? g->revs[sl.v[0]].id : "base");
        lm_gvec_free(&curv);
        lm_gvec_free(&sl);
      } else {
        if (cur.n == 0) {
          rc = lm_err_set(err, "relative revision %s didn't produce %ld migrations: the database has no current "
                          "revision", m.relstr, -m.rel);
        } else {
          int several = 0;
          for (size_t i = 1; i < cur.n; i++)
            if (strcmp(cur.list[i], cur.list[0]) != 0) several = 1;
          if (several) {
            lm_buf b = LM_BUF_INIT;
            for (size_t i = 0; i < cur.n; i++) lm_buf_printf(&b, "%s%s", i ? ", " : "", cur.list[i]);
            rc = lm_err_set(err, "downgrade %s is ambiguous with several current heads (%s); use "
                            "<branchname>@%s or <revision>%s", m.relstr, lm_buf_str(&b), m.relstr, m.relstr);
            lm_err_kind(err, "multiple_heads");
            lm_buf_free(&b);
          } else {
            symbol = lm_xstrdup(cur.list[0]);
            free(branch);
            branch = lm_xstrdup(symbol);
          }
        }
      }
    }
    if (rc == LM_OK) {
      long start;
      if (!branch) {
        rc = lm_g_get_revision(c, symbol, &start, err);
      } else {
        char *both = lm_xasprintf("%s@%s", branch, symbol);
        rc = lm_g_get_revision(c, both, &start, err);
        free(both);
      }
      if (rc == LM_OK) rc = lm_g_walk(c, start, m.rel, NULL, assert_len, rev, err);
      if (rc == LM_OK && *rev == LM_G_NONE) {
        if (relative_revision)
          rc = lm_err_set(err, "relative revision %s didn't produce %ld migrations", m.relstr, -m.rel);
        else
          rc = lm_err_set(err, "walked too far: %s goes below base", target);
      }
    }
    free(symbol);
    if (rc == LM_OK) *label = branch;
    else free(branch);
    goto out;
  }
  /* absolute: "label@rev" splits at the last '@' */
  {
    const char *at = strrchr(target, '@');
    if (at && at > target) *label = lm_xstrndup(target, (size_t)(at - target));
    rc = lm_g_get_revision(c, at ? at + 1 : target, rev, err);
    if (rc != LM_OK) { free(*label); *label = NULL; }
  }
out:
  rel_free(&m);
  return rc;
}

/* _parse_upgrade_target: the revisions to upgrade to. */
int lm_g_parse_upgrade_target(lm_gctx *c, lm_gspec cur, lm_gspec target, int assert_len, lm_gvec *out, lm_err *err) {
  const lm_graph *g = c->g;
  grel m;
  if (!target.str || !rel_match(target.str, &m)) return lm_g_spec_revisions(c, target, out, err);
  int rc = LM_OK;
  long r = LM_G_NONE;
  if (m.rel > 0) {
    if (!m.symbol) {
      /* start from the current revisions, narrowed to the branch */
      lm_gvec start = {0};
      int start_none = 0;
      lm_gvec curv = {0};
      size_t ncur = cur.str ? 1 : cur.n;
      if (ncur == 0) start_none = 1;
      if (m.label) {
        if (!start_none && (rc = lm_g_spec_revisions(c, cur, &curv, err)) != LM_OK) goto up_done;
        if ((rc = lm_g_filter_for_lineage(c, curv.v, curv.n, m.label, 0, &start, err)) != LM_OK) goto up_done;
        if (start.n == 0) {
          /* the branch is not at a head: use the tips of what is applied on it */
          unsigned gen = lm_gctx_next(c);
          lm_g_reach(c, curv.v, curv.n, 0, 1, gen);
          lm_gvec act = {0}, on = {0};
          for (size_t i = 0; i < g->n; i++)
            if (c->mark[i] == gen) lm_gvec_push(&act, (long)i);
          rc = lm_g_filter_for_lineage(c, act.v, act.n, m.label, 0, &on, err);
          if (rc == LM_OK) {
            unsigned char *below = lm_xcalloc(g->n + 1, 1);
            for (size_t i = 0; i < on.n; i++)
              for (size_t k = 0; k < g->normdown[on.v[i]].n; k++) below[g->normdown[on.v[i]].v[k]] = 1;
            for (size_t i = 0; i < on.n; i++)
              if (!below[on.v[i]]) lm_gvec_push(&start, on.v[i]);
            free(below);
          }
          lm_gvec_free(&act);
          lm_gvec_free(&on);
          if (rc != LM_OK) goto up_done;
          if (start.n == 0) start_none = 1;
        } else {
          start_none = 0;
        }
      } else if (!start_none) {
        /* the current strings themselves; resolved by _walk */
        if (ncur > 1) {
          lm_buf b = LM_BUF_INIT;
          for (size_t i = 0; i < ncur; i++) lm_buf_printf(&b, "%s%s", i ? ", " : "", cur.str ? cur.str : cur.list[i]);
          rc = lm_err_set(err, "upgrade %s is ambiguous from several current revisions (%s); use <branchname>@%s "
                          "or <revision>%s", m.relstr, lm_buf_str(&b), m.relstr, m.relstr);
          lm_err_kind(err, "multiple_heads");
          lm_buf_free(&b);
          goto up_done;
        }
        long s0;
        if ((rc = lm_g_get_revision(c, cur.str ? cur.str : cur.list[0], &s0, err)) != LM_OK) goto up_done;
        lm_gvec_push(&start, s0);
      }
      if (!start_none && start.n > 1) {
        lm_buf b = LM_BUF_INIT;
        lm_g_join(g, start.v, start.n, &b);
        rc = lm_err_set(err, "upgrade %s%s%s is ambiguous from several current revisions (%s); name the revision, "
                        "e.g. %s%s", m.label ? m.label : "", m.label ? "@" : "", m.relstr, lm_buf_str(&b),
                        g->revs[start.v[0]].id, m.relstr);
        lm_err_kind(err, "multiple_heads");
        lm_buf_free(&b);
        goto up_done;
      }
      rc = lm_g_walk(c, start_none ? LM_G_NONE : start.v[0], m.rel, m.label, assert_len, &r, err);
      if (rc == LM_OK && r == LM_G_NONE)
        rc = lm_err_set(err, "relative revision %s didn't produce %ld migrations: walked past a head", m.relstr, m.rel);
    up_done:
      lm_gvec_free(&start);
      lm_gvec_free(&curv);
    } else {
      long start;
      rc = lm_g_get_revision(c, m.symbol, &start, err);
      if (rc == LM_OK) rc = lm_g_walk(c, start, m.rel, m.label, assert_len, &r, err);
    }
  } else {
    if (!m.symbol) {
      rc = lm_err_set(err, "relative revision %s didn't produce %ld migrations: upgrade cannot go down", m.relstr,
                      m.rel < 0 ? -m.rel : m.rel);
    } else {
      long start;
      if (!m.label) {
        rc = lm_g_get_revision(c, m.symbol, &start, err);
      } else {
        char *both = lm_xasprintf("%s@%s", m.label, m.symbol);
        rc = lm_g_get_revision(c, both, &start, err);
        free(both);
      }
      if (rc == LM_OK) rc = lm_g_walk(c, start, m.rel, NULL, assert_len, &r, err);
    }
  }
  if (rc == LM_OK) lm_gvec_push(out, r);
  rel_free(&m);
  return rc;
}


/* Check the current rows name revisions of the graph. */
int lm_g_check_current(const lm_graph *g, const char *const *current, size_t n, lm_err *err) {
  for (size_t i = 0; i < n; i++) {
    if (!current[i] || !lm_map_get(&g->ids, current[i]))
      return lm_err_set(err, "the database is at revision %s, which no script defines",
                        current[i] ? current[i] : "(null)");
  }
  return LM_OK;
}

int lm_g_not_a_revision(const lm_graph *g, const char *what, long r, lm_err *err) {
  (void)g;
  return lm_err_set(err, "%s resolves to %s, not to a revision", what, r == LM_G_BASE ? "base" : "nothing (walked off the graph)");
}


int lm_graph_current(const lm_graph *g, const char *const *current, size_t ncurrent, lm_revlist *out, lm_err *err) {
  out->idx = NULL;
  out->n = 0;
  int rc = lm_g_check_current(g, current, ncurrent, err);
  if (rc != LM_OK) return rc;
  lm_gctx c;
  lm_gctx_init(&c, g);
  lm_gvec all = {0};
  rc = get_all_current(&c, lm_gspec_list(current, ncurrent), &all, err);
  if (rc == LM_OK) {
    out->idx = lm_xmalloc((all.n + 1) * sizeof *out->idx);
    for (size_t i = 0; i < all.n; i++)
      if (all.v[i] >= 0) out->idx[out->n++] = (size_t)all.v[i];
  }
  lm_gvec_free(&all);
  lm_gctx_free(&c);
  return rc;
}

/* ---- resolve, new revisions, merges --------------------------------------- */

int lm_graph_resolve(const lm_graph *g, const char *target, const char *const *current, size_t ncurrent,
                     lm_revlist *out, lm_err *err) {
  out->idx = NULL;
  out->n = 0;
  if (!target) return lm_err_set(err, "empty revision identifier");
  int rc = lm_g_check_current(g, current, ncurrent, err);
  if (rc != LM_OK) return rc;
  lm_gctx c;
  lm_gctx_init(&c, g);
  lm_gvec r = {0};
  grel m;
  int rel = rel_match(target, &m);
  if (rel) rel_free(&m);
  if (rel && m.rel > 0) rc = lm_g_parse_upgrade_target(&c, lm_gspec_list(current, ncurrent), lm_gspec_str(target), 1, &r, err);
  else if (rel) {
    char *lab = NULL;
    long x;
    rc = lm_g_parse_downgrade_target(&c, lm_gspec_list(current, ncurrent), target, 1, &lab, &x, err);
    free(lab);
    if (rc == LM_OK && x >= 0) lm_gvec_push(&r, x);
  } else rc = lm_g_get_revisions(&c, target, &r, err);
  if (rc == LM_OK) {
    out->idx = lm_xmalloc((r.n + 1) * sizeof *out->idx);
    for (size_t i = 0; i < r.n; i++)
      if (r.v[i] >= 0) out->idx[out->n++] = (size_t)r.v[i];
      else if (r.v[i] == LM_G_NONE) { rc = lm_g_not_a_revision(g, target, r.v[i], err); break; }
    if (rc != LM_OK) lm_revlist_free(out);
  }
  lm_gvec_free(&r);
  lm_gctx_free(&c);
  return rc;
}

/* generate_revision's head checks, shared by `revision` and `merge`. */
static int new_parents(const lm_graph *g, const char *const *heads, size_t nheads, int splice, lm_revlist *out,
                       lm_err *err) {
  out->idx = NULL;
  out->n = 0;
  lm_gctx c;
  lm_gctx_init(&c, g);
  lm_gvec r = {0};
  int rc = lm_g_spec_revisions(&c, lm_gspec_list(heads, nheads), &r, err);
  if (rc != LM_OK) {
    if (strstr(lm_err_msg(err), "multiple heads"))
      lm_err_prefix(err, "please specify the head revision on which the new revision should be based, or perform a merge");
  }
  for (size_t i = 0; rc == LM_OK && i < r.n; i++) {
    if (r.v[i] < 0) rc = lm_err_set(err, "%s does not name a revision to build on", heads[0]);
    for (size_t k = 0; rc == LM_OK && k < i; k++)
      if (r.v[k] == r.v[i]) rc = lm_err_set(err, "duplicate head revisions specified: %s", g->revs[r.v[i]].id);
    if (rc == LM_OK && !splice && g->next[r.v[i]].n != 0)
      rc = lm_err_set(err, "revision %s is not a head revision; please specify --splice to create a new branch "
                      "from this revision", g->revs[r.v[i]].id);
  }
  if (rc == LM_OK) {
    out->idx = lm_xmalloc((r.n + 1) * sizeof *out->idx);
    for (size_t i = 0; i < r.n; i++) out->idx[out->n++] = (size_t)r.v[i];
  }
  lm_gvec_free(&r);
  lm_gctx_free(&c);
  return rc;
}

int lm_graph_new_revision_parents(const lm_graph *g, const char *head, int splice, lm_revlist *out, lm_err *err) {
  const char *h = head && *head ? head : "head";
  return new_parents(g, &h, 1, splice, out, err);
}

int lm_graph_merge_parents(const lm_graph *g, const char *const *revs, size_t nrevs, lm_revlist *out, lm_err *err) {
  int rc = new_parents(g, revs, nrevs, 0, out, err);
  if (rc == LM_OK && out->n < 2) {
    lm_revlist_free(out);
    return lm_err_set(err, "merge needs at least two head revisions%s", nrevs ? "; only one was named" : "");
  }
  return rc;
}
