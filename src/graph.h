/*
 * graph.h - the revision graph: loading and validating revision scripts'
 * metadata, resolving targets, planning upgrade/downgrade/stamp walks and
 * formatting revisions for `heads`, `current`, `history`, `show` and
 * `branches`.  The semantics are Alembic's RevisionMap (1.8) exactly, with
 * refusals where Alembic is ambiguous or crashes.  Pure C: no database, no
 * Lua.
 */
#ifndef LM_GRAPH_H
#define LM_GRAPH_H

#include <stddef.h>
#include "util.h"

/* One revision as read from its script.  Strings are owned by the caller
 * and must outlive the graph. */
typedef struct lm_revision {
  const char *id;
  const char **down; size_t ndown;        /* down_revision: 0 = a base, >1 = a merge point */
  const char **depends; size_t ndepends;  /* depends_on: revision ids (or unique prefixes) or branch labels */
  const char **labels; size_t nlabels;    /* branch_labels */
  const char *message;                    /* doc line, may be NULL */
  const char *path;                       /* script file, used in error messages; may be NULL */
} lm_revision;

typedef struct lm_graph lm_graph;

/* A list of revisions as indexes into the graph (malloc'ed). */
typedef struct lm_revlist { size_t *idx; size_t n; } lm_revlist;
void lm_revlist_free(lm_revlist *l);

/* Build a graph.  revs come in script-file-name order (Alembic reads
 * scripts in that order and its tie-breaks follow it).  Fails with a
 * message naming the revisions (and files) on: an empty or duplicate id, a
 * down_revision or depends_on naming nothing, a revision that is its own
 * down_revision, a cycle, a branch label used twice or equal to a revision
 * id.  Linear time. */
int lm_graph_new(lm_graph **out, const lm_revision *revs, size_t n, lm_err *err);
void lm_graph_free(lm_graph *g);
/* Test hook: on != 0 makes every walk of g use Alembic's literal
 * (quadratic) topological sort instead of the linear one, so that a test
 * can compare the two. */
void lm_graph_test_topo_literal(lm_graph *g, int on);
size_t lm_graph_size(const lm_graph *g);
const lm_revision *lm_graph_rev(const lm_graph *g, size_t idx);

/* Exact id, else a unique prefix; an ambiguous prefix lists the candidates.
 * Does not accept labels or symbols (see lm_graph_resolve). */
int lm_graph_lookup(const lm_graph *g, const char *id_or_prefix, size_t *idx, lm_err *err);

/* All heads (revisions nothing names as down_revision; depends_on does not
 * count), in Alembic's order (RevisionMap.heads). */
int lm_graph_heads(const lm_graph *g, lm_revlist *out);
/* All bases (no down_revision), in Alembic's order. */
int lm_graph_bases(const lm_graph *g, lm_revlist *out);
/* Real heads: revisions nothing names as down_revision nor depends_on
 * (Alembic's _real_heads: what "heads" means as a target, and what
 * `heads --resolve-dependencies` prints), in Alembic's order.  A head that
 * is not a real head prints as "(effective head)". */
int lm_graph_real_heads(const lm_graph *g, lm_revlist *out);
/* Branch points in `alembic branches` order (walk_revisions, newest first). */
int lm_graph_branch_points(const lm_graph *g, lm_revlist *out);
/* The revisions that name idx as down_revision (Alembic's nextrev), in
 * file order (Alembic keeps a frozenset, whose order varies per process;
 * luamig fixes file order, which `branches` and `show -v` print). */
int lm_graph_nextrev(const lm_graph *g, size_t idx, lm_revlist *out);

/* Revision properties, as Alembic's Revision.is_head etc. */
int lm_graph_is_head(const lm_graph *g, size_t idx);
int lm_graph_is_branch_point(const lm_graph *g, size_t idx);
int lm_graph_is_merge_point(const lm_graph *g, size_t idx);
int lm_graph_is_base(const lm_graph *g, size_t idx);

/* Resolve a target as Alembic would, relative to the current heads in the
 * database (ids as strings; may be empty): head, heads, base, full id,
 * unique prefix (Alembic: of an id or a label longer than 3 characters),
 * +N, -N, REV+N, REV-N, LABEL@head, LABEL@heads, LABEL@base, LABEL@+N,
 * LABEL@-N, LABEL (the labelled revision), REV@head.  "base" resolves to
 * the empty list.  A relative target going up resolves as `upgrade` does
 * (Alembic's _parse_upgrade_target), one going down as `downgrade` does
 * (_parse_downgrade_target); anything else as get_revisions.  One target
 * per call.  current ids must be revisions of the graph. */
int lm_graph_resolve(const lm_graph *g, const char *target, const char *const *current, size_t ncurrent,
                     lm_revlist *out, lm_err *err);

/* The heads `revision --head H [--splice]` would put a new revision on top
 * of: H resolved (head, LABEL@head, REV, REV@head), checked as Alembic's
 * ScriptDirectory.generate_revision checks it (H must be a head unless
 * splice; "head" with several heads refuses).  out gets the down_revision
 * list for the new script (0 entries = a new base, for "base"). */
int lm_graph_new_revision_parents(const lm_graph *g, const char *head, int splice,
                                  lm_revlist *out, lm_err *err);

/* Version-table actions. */
typedef enum { LM_VT_INSERT, LM_VT_DELETE, LM_VT_UPDATE } lm_vt_kind;
/* INSERT uses to, DELETE uses from, UPDATE both.  Strings point into the
 * revisions given to lm_graph_new or into the current list given to the
 * planner; they stay valid as long as those do. */
typedef struct lm_vt_action { lm_vt_kind kind; const char *from; const char *to; } lm_vt_action;
typedef struct lm_step {
  long rev;            /* graph index of the script to run, or -1 for a stamp-only step */
  int upgrade;         /* 1: run upgrade(), 0: run downgrade() */
  lm_vt_action *actions; size_t nactions;   /* what this step does to the version table, in order */
} lm_step;
typedef struct lm_plan { lm_step *steps; size_t nsteps; } lm_plan;
void lm_plan_free(lm_plan *p);

/* The migrations `upgrade TARGET` / `downgrade TARGET` run, in Alembic's
 * order, from the current heads, with the version-table changes Alembic's
 * HeadMaintainer makes at each step.  `upgrade X` stores only X even when
 * it ran X's dependencies.  Returns LM_ERROR, with out empty, where Alembic
 * raises and where luamig refuses Alembic's ambiguous or crashing cases
 * (see graph_plan.c).  A current id that is not in the graph is an error. */
int lm_graph_plan_upgrade(const lm_graph *g, const char *target, const char *const *current, size_t ncurrent,
                          lm_plan *out, lm_err *err);
int lm_graph_plan_downgrade(const lm_graph *g, const char *target, const char *const *current, size_t ncurrent,
                            lm_plan *out, lm_err *err);
/* stamp REV... [--purge]: version-table actions only (steps with rev = -1),
 * as Alembic's command.stamp / StampStep.  With purge the caller empties
 * the table first and the plan starts from nothing. */
int lm_graph_plan_stamp(const lm_graph *g, const char *const *targets, size_t ntargets,
                        const char *const *current, size_t ncurrent, int purge, lm_plan *out, lm_err *err);

/* Output, byte for byte as Alembic's Script.cmd_format (no trailing
 * newline; the verbose form ends in one newline, as log_entry does, and
 * Alembic's print adds another).  LM_FMT_TREE also prints (head) /
 * (effective head), as Alembic's tree_indicators do.  Branch labels are
 * the propagated ones (a label spreads to the branch), sorted by name.
 *   heads      LM_FMT_BRANCHES | LM_FMT_EFFECTIVE
 *   current    LM_FMT_TREE
 *   history    LM_FMT_BRANCHES | LM_FMT_TREE | LM_FMT_PARENTS | LM_FMT_DOC
 *   branches   LM_FMT_BRANCHES | LM_FMT_TREE (and LM_FMT_BRANCHES [| LM_FMT_DOC]
 *              for the "-> child" lines, see lm_graph_format_branch_point)
 * plus LM_FMT_VERBOSE for -v, which prints Alembic's multi-line log_entry
 * instead (the flags then only matter for LM_FMT_EFFECTIVE vs TREE). */
enum { LM_FMT_VERBOSE = 1, LM_FMT_BRANCHES = 2 /* (labels) */, LM_FMT_TREE = 4 /* (head) (branchpoint) (mergepoint) */,
       LM_FMT_PARENTS = 8 /* "p1, p2 (dep) -> " */, LM_FMT_DOC = 16 /* ", message" */,
       LM_FMT_EFFECTIVE = 32 /* (head) / (effective head), as `heads` */,
       LM_FMT_CURRENT = 64 /* " (current)": the database is at this revision (history -i) */ };
/* Alembic's Script.doc: the first paragraph of the doc (the script's
 * leading comment), or the message when there is none. */
void lm_graph_short_doc(const lm_graph *g, size_t idx, const char *doc, lm_buf *out);
/* The ids of l as "a, b, c". */
void lm_graph_ids_joined(const lm_graph *g, const lm_revlist *l, lm_buf *out);
void lm_graph_format(const lm_graph *g, size_t idx, unsigned flags, lm_buf *out);
/* Same, with the text Alembic prints as the module docstring in the
 * verbose form (luamig: the script's leading comment block, comment
 * markers stripped, e.g. "Add x\n\nRevision ID: ...\nRevises: ...\nCreate
 * Date: ...").  doc NULL falls back to the message. */
void lm_graph_format_doc(const lm_graph *g, size_t idx, unsigned flags, const char *doc, lm_buf *out);
/* One `branches` entry: the branch point line and its "   -> child" lines,
 * followed by the blank line Alembic prints ("%s\n%s\n" plus print's
 * newline gives text ending in "\n" here; the caller adds one newline). */
void lm_graph_format_branch_point(const lm_graph *g, size_t idx, int verbose, const char *doc, lm_buf *out);

/* history -r RANGE: revisions newest first, a revision before its parents,
 * as `alembic history` orders them; RANGE as Alembic ("a:b", "a:", ":b",
 * "-3:", "current:" etc., `current` resolved from current).  range NULL is
 * the whole history. */
int lm_graph_history(const lm_graph *g, const char *range, const char *const *current, size_t ncurrent,
                     lm_revlist *out, lm_err *err);

/* `current`: Alembic's get_all_current: the current rows and all their
 * ancestors (depends_on included), keeping those with no down_revision
 * child in that set; so a dependency on another branch shows too.  File
 * order (Alembic prints a set). */
int lm_graph_current(const lm_graph *g, const char *const *current, size_t ncurrent, lm_revlist *out, lm_err *err);

/* `merge REV...`: resolve the revisions to merge (each a head, id, prefix,
 * label or "heads") as Alembic's generate_revision does: each must be a
 * head, none twice.  luamig also refuses fewer than two (Alembic would
 * write a one-parent "merge"). */
int lm_graph_merge_parents(const lm_graph *g, const char *const *revs, size_t nrevs, lm_revlist *out, lm_err *err);

/* ---- internals shared by graph.c, graph_plan.c and graph_format.c ---- */
#ifdef LM_GRAPH_INTERNAL

/* An adjacency list (indexes into the graph), allocated in the arena. */
typedef struct lm_gadj { size_t *v; size_t n; } lm_gadj;

struct lm_graph {
  size_t n;
  lm_revision *revs;      /* shallow copy of the input */
  lm_arena arena;
  lm_map ids;             /* id -> index+1 */
  lm_map keys;            /* ids and branch labels -> index+1 (Alembic's _revision_map) */
  const char **keyorder;  /* keys in Alembic's map order: ids (file order), then labels */
  size_t nkeys;
  lm_gadj *down;          /* _versioned_down_revisions */
  lm_gadj *deps;          /* _resolved_dependencies, deduplicated, declared order */
  lm_gadj *normdown;      /* _normalized_down_revisions: down + deps not implied by an ancestor */
  lm_gadj *next;          /* nextrev (children by down_revision), file order */
  lm_gadj *normnext;      /* reverse of normdown, file order */
  size_t *nallnext;       /* |_all_nextrev| (children by down_revision or depends_on) */
  lm_gadj *labels;        /* branch labels after Alembic's propagation, as indexes into labelnames, sorted by name */
  const char **labelnames;
  size_t nlabelnames;
  int topo_literal;       /* test hook: always Alembic's literal sort */
};

/* Alembic's "a revision, 'base' or None" as one value. */
#define LM_G_NONE (-1L)
#define LM_G_BASE (-2L)

/* A growable list of longs (revisions, LM_G_BASE or LM_G_NONE). */
typedef struct lm_gvec { long *v; size_t n, cap; } lm_gvec;
void lm_gvec_push(lm_gvec *v, long x);
void lm_gvec_free(lm_gvec *v);
int lm_gvec_has(const lm_gvec *v, long x);

/* Per-call scratch space: traversal marks with a generation counter, so a
 * traversal costs what it visits, not the graph size. */
typedef struct lm_gctx {
  const lm_graph *g;
  unsigned *mark;
  unsigned gen;
  size_t *stack;
} lm_gctx;
void lm_gctx_init(lm_gctx *c, const lm_graph *g);
void lm_gctx_free(lm_gctx *c);
/* Start a new marking; returns the generation that marks a node. */
unsigned lm_gctx_next(lm_gctx *c);
/* Mark with gen every node reachable from starts (inclusive): dir 0 goes
 * down (ancestors), 1 up (descendants); deps 0 follows down_revision only,
 * 1 also depends_on. */
void lm_g_reach(lm_gctx *c, const long *starts, size_t n, int up, int deps, unsigned gen);

/* Alembic RevisionMap methods, mirrored one to one (see graph.c). */
int lm_g_get_revisions(lm_gctx *c, const char *id, lm_gvec *out, lm_err *err);
int lm_g_get_revision(lm_gctx *c, const char *id, long *out, lm_err *err);
int lm_g_revision_for_ident(lm_gctx *c, const char *id, const char *branch, long *out, lm_err *err);
int lm_g_walk(lm_gctx *c, long start, long steps, const char *branch, int no_overwalk, long *out, lm_err *err);
int lm_g_filter_for_lineage(lm_gctx *c, const long *targets, size_t n, const char *check_against, int deps,
                            lm_gvec *out, lm_err *err);
int lm_g_shares_lineage(lm_gctx *c, long target, const long *against, size_t n, int deps);
int lm_g_has_label(const lm_graph *g, size_t idx, const char *label);
/* An upper/lower bound as Alembic passes them: a string, or a tuple of
 * strings (the current heads). */
typedef struct lm_gspec {
  const char *str;                /* non-NULL: a string */
  const char *const *list;        /* else: a tuple (may be empty) */
  size_t n;
} lm_gspec;
lm_gspec lm_gspec_str(const char *s);
lm_gspec lm_gspec_list(const char *const *l, size_t n);
/* graph_target.c: get_revisions over a bound, Alembic's target parsers,
 * and checks shared with graph_plan.c. */
int lm_g_spec_revisions(lm_gctx *c, lm_gspec s, lm_gvec *out, lm_err *err);
int lm_g_parse_downgrade_target(lm_gctx *c, lm_gspec cur, const char *target, int assert_len, char **label,
                                long *rev, lm_err *err);
int lm_g_parse_upgrade_target(lm_gctx *c, lm_gspec cur, lm_gspec target, int assert_len, lm_gvec *out, lm_err *err);
int lm_g_check_current(const lm_graph *g, const char *const *current, size_t n, lm_err *err);
int lm_g_not_a_revision(const lm_graph *g, const char *what, long r, lm_err *err);
/* The index a map (ids, keys) holds for key, or -1. */
static inline long lm_g_map_idx(const lm_map *m, const char *key) {
  void *p = lm_map_get(m, key);
  return p ? (long)((size_t)p - 1) : -1;
}
/* Error helpers: the revision list "a, b, c" into a buffer. */
void lm_g_join(const lm_graph *g, const long *v, size_t n, lm_buf *b);

/* A walk's todo set as flags, and the heads the topological sort starts
 * from (graph_plan.c collects it). */
typedef struct lm_gwalk {
  unsigned char *todo;
  lm_gvec heads;
  size_t ntodo;
} lm_gwalk;
void lm_gwalk_free(lm_gwalk *w);
/* graph_topo.c: the walk's revisions in Alembic's order, heads first. */
int lm_g_topo_sort(lm_gctx *c, const lm_gwalk *w, lm_gvec *out, lm_err *err);
/* graph_versions.c: run the steps in order through the head maintainer,
 * appending them with their version-table changes to out. */
int lm_g_plan_steps(lm_gctx *c, const lm_gvec *order, int upgrade, const char *const *current, size_t ncurrent,
                    lm_plan *out, lm_err *err);

#endif /* LM_GRAPH_INTERNAL */

#endif
