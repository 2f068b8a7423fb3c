/*
 * graph_format.c - revisions as text, byte for byte as Alembic's
 * Script.cmd_format (_head_only for one-line forms, log_entry for -v) and
 * the `branches` command print them.
 */
#define LM_GRAPH_INTERNAL
#include "graph.h"

#include <string.h>

/* _format_down_revision: "<base>" or the down revisions joined. */
static void put_down(const lm_graph *g, size_t idx, lm_buf *out) {
  const lm_revision *r = &g->revs[idx];
  if (r->ndown == 0) {
    lm_buf_puts(out, "<base>");
    return;
  }
  for (size_t k = 0; k < r->ndown; k++) {
    if (k) lm_buf_puts(out, ", ");
    lm_buf_puts(out, r->down[k]);
  }
}

static void put_deps(const lm_revision *r, lm_buf *out) {
  for (size_t k = 0; k < r->ndepends; k++) {
    if (k) lm_buf_puts(out, ", ");
    lm_buf_puts(out, r->depends[k]);
  }
}

static void put_labels(const lm_graph *g, size_t idx, lm_buf *out) {
  const lm_gadj *l = &g->labels[idx];
  for (size_t k = 0; k < l->n; k++) {
    if (k) lm_buf_puts(out, ", ");
    lm_buf_puts(out, g->labelnames[l->v[k]]);
  }
}

/* Python's str.strip() bounds of the doc text. */
static void strip_bounds(const char *s, const char **b, const char **e) {
  const char *ws = " \t\n\r\v\f";
  *b = s;
  *e = s + strlen(s);
  while (*b < *e && strchr(ws, **b)) (*b)++;
  while (*e > *b && strchr(ws, (*e)[-1])) (*e)--;
}

/* Script.doc: the first paragraph (up to the first blank line) of the
 * stripped docstring. */
static void put_short_doc(const lm_revision *r, const char *doc, lm_buf *out) {
  if (!doc) {
    if (r->message) lm_buf_puts(out, r->message);
    return;
  }
  const char *b, *e;
  strip_bounds(doc, &b, &e);
  const char *p = b;
  while (p + 1 < e && !(p[0] == '\n' && p[1] == '\n')) p++;
  if (p + 1 >= e) p = e;
  lm_buf_add(out, b, (size_t)(p - b));
}

/* Script.log_entry. */
static void log_entry(const lm_graph *g, size_t idx, const char *doc, int current, lm_buf *out) {
  const lm_revision *r = &g->revs[idx];
  int merge = g->down[idx].n > 1, branch = g->next[idx].n > 1;
  lm_buf_printf(out, "Rev: %s%s%s%s%s\n", r->id, g->next[idx].n == 0 ? " (head)" : "", branch ? " (branchpoint)" : "",
                merge ? " (mergepoint)" : "", current ? " (current)" : "");
  lm_buf_puts(out, merge ? "Merges: " : "Parent: ");
  put_down(g, idx, out);
  lm_buf_putc(out, '\n');
  if (r->ndepends) {
    lm_buf_puts(out, "Also depends on: ");
    put_deps(r, out);
    lm_buf_putc(out, '\n');
  }
  if (branch) {
    lm_buf_puts(out, "Branches into: ");
    for (size_t k = 0; k < g->next[idx].n; k++) {
      if (k) lm_buf_puts(out, ", ");
      lm_buf_puts(out, g->revs[g->next[idx].v[k]].id);
    }
    lm_buf_putc(out, '\n');
  }
  if (g->labels[idx].n) {
    lm_buf_puts(out, "Branch names: ");
    put_labels(g, idx, out);
    lm_buf_putc(out, '\n');
  }
  lm_buf_printf(out, "Path: %s\n", r->path ? r->path : "");
  /* "\n" + each line of the stripped doc indented by four spaces + "\n" */
  lm_buf_putc(out, '\n');
  const char *text = doc ? doc : r->message ? r->message : "";
  const char *b, *e;
  strip_bounds(text, &b, &e);
  int firstline = 1;
  while (b < e) {
    const char *nl = b;
    while (nl < e && *nl != '\n' && *nl != '\r') nl++;
    if (!firstline) lm_buf_putc(out, '\n');
    firstline = 0;
    lm_buf_puts(out, "    ");
    lm_buf_add(out, b, (size_t)(nl - b));
    if (nl < e && *nl == '\r' && nl + 1 < e && nl[1] == '\n') nl++;
    b = nl < e ? nl + 1 : e;
  }
  lm_buf_putc(out, '\n');
}

void lm_graph_format_doc(const lm_graph *g, size_t idx, unsigned flags, const char *doc, lm_buf *out) {
  if (idx >= g->n) return;
  if (flags & LM_FMT_VERBOSE) {
    log_entry(g, idx, doc, (flags & LM_FMT_CURRENT) != 0, out);
    return;
  }
  const lm_revision *r = &g->revs[idx];
  if (flags & LM_FMT_PARENTS) {
    put_down(g, idx, out);
    if (r->ndepends) {
      lm_buf_puts(out, " (");
      put_deps(r, out);
      lm_buf_putc(out, ')');
    }
    lm_buf_puts(out, " -> ");
  }
  lm_buf_puts(out, r->id);
  if ((flags & LM_FMT_BRANCHES) && g->labels[idx].n) {
    lm_buf_puts(out, " (");
    put_labels(g, idx, out);
    lm_buf_putc(out, ')');
  }
  if (flags & (LM_FMT_TREE | LM_FMT_EFFECTIVE)) {
    if (g->nallnext[idx] == 0) lm_buf_puts(out, " (head)");
    else if (g->next[idx].n == 0) lm_buf_puts(out, " (effective head)");
  }
  /* Alembic prints (current) among the head indicators, before the tree's. */
  if ((flags & LM_FMT_CURRENT) && (flags & (LM_FMT_TREE | LM_FMT_EFFECTIVE)))
    lm_buf_puts(out, " (current)");
  if (flags & LM_FMT_TREE) {
    if (g->next[idx].n > 1) lm_buf_puts(out, " (branchpoint)");
    if (g->down[idx].n > 1) lm_buf_puts(out, " (mergepoint)");
  }
  if (flags & LM_FMT_DOC) {
    lm_buf_puts(out, ", ");
    put_short_doc(r, doc, out);
  }
}

void lm_graph_short_doc(const lm_graph *g, size_t idx, const char *doc, lm_buf *out) {
  if (idx < g->n) put_short_doc(&g->revs[idx], doc, out);
}

void lm_graph_format(const lm_graph *g, size_t idx, unsigned flags, lm_buf *out) {
  lm_graph_format_doc(g, idx, flags, NULL, out);
}

/* `branches`: the branch point, then "<spaces> -> child" per child. */
void lm_graph_format_branch_point(const lm_graph *g, size_t idx, int verbose, const char *doc, lm_buf *out) {
  if (idx >= g->n) return;
  lm_graph_format_doc(g, idx, (verbose ? LM_FMT_VERBOSE : 0) | LM_FMT_BRANCHES | LM_FMT_TREE, doc, out);
  lm_buf_putc(out, '\n');
  size_t pad = strlen(g->revs[idx].id);
  for (size_t k = 0; k < g->next[idx].n; k++) {
    if (k) lm_buf_putc(out, '\n');
    for (size_t s = 0; s < pad; s++) lm_buf_putc(out, ' ');
    lm_buf_puts(out, " -> ");
    lm_graph_format(g, g->next[idx].v[k], LM_FMT_BRANCHES | LM_FMT_TREE | (verbose ? LM_FMT_DOC : 0), out);
  }
  lm_buf_putc(out, '\n');
}

void lm_graph_ids_joined(const lm_graph *g, const lm_revlist *l, lm_buf *out) {
  for (size_t i = 0; i < l->n; i++)
    lm_buf_printf(out, "%s%s", i ? ", " : "", lm_graph_rev(g, l->idx[i])->id);
}
