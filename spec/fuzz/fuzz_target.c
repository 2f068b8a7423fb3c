/*
 * fuzz_target.c - random targets and ranges against a fixed revision graph
 * with bases, a branch point, a merge, labels and a dependency, from random
 * current heads.  Resolving, planning and history must never crash or
 * return an index outside the graph.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *d_a[] = {"aaaa00000001"};
static const char *d_b[] = {"aaaa00000002"};
static const char *d_c[] = {"aaaa00000002"};
static const char *d_m[] = {"bbbb00000003", "cccc00000004"};
static const char *d_x[] = {"dddd00000006"};
static const char *dep[] = {"cccc00000004"};
static const char *lab_b[] = {"billing"};
static const char *lab_d[] = {"other"};

static const lm_revision revs[] = {
  {"aaaa00000001", NULL, 0, NULL, 0, NULL, 0, "one", "1.lua"},
  {"aaaa00000002", d_a, 1, NULL, 0, NULL, 0, "two", "2.lua"},
  {"bbbb00000003", d_b, 1, NULL, 0, lab_b, 1, "b", "3.lua"},
  {"cccc00000004", d_c, 1, NULL, 0, NULL, 0, "c", "4.lua"},
  {"eeee00000005", d_m, 2, NULL, 0, NULL, 0, "merge", "5.lua"},
  {"dddd00000006", NULL, 0, NULL, 0, lab_d, 1, "other base", "6.lua"},
  {"ffff00000007", d_x, 1, dep, 1, NULL, 0, "dep", "7.lua"},
};

static void check(const lm_graph *g, const lm_revlist *l) {
  for (size_t i = 0; i < l->n; i++)
    if (l->idx[i] >= lm_graph_size(g)) abort();
}

static void check_plan(const lm_graph *g, const lm_plan *p) {
  for (size_t i = 0; i < p->nsteps; i++)
    if (p->steps[i].rev >= (long)lm_graph_size(g)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static lm_graph *g;
  if (!g) {
    lm_err err;
    lm_err_init(&err);
    if (lm_graph_new(&g, revs, sizeof revs / sizeof *revs, &err) != LM_OK)
      abort();
  }
  if (!size) return 0;
  /* First byte: which revisions the database is at. */
  const char *current[7];
  size_t ncurrent = 0;
  for (int i = 0; i < 7; i++)
    if (data[0] & (1u << i)) current[ncurrent++] = revs[i].id;
  char *target = malloc(size);
  memcpy(target, data + 1, size - 1);
  target[size - 1] = '\0';
  lm_err err;
  lm_err_init(&err);
  lm_revlist l = {0};
  if (lm_graph_resolve(g, target, current, ncurrent, &l, &err) == LM_OK)
    check(g, &l);
  lm_revlist_free(&l);
  lm_err_free(&err);
  lm_plan p = {0};
  if (lm_graph_plan_upgrade(g, target, current, ncurrent, &p, &err) == LM_OK)
    check_plan(g, &p);
  lm_plan_free(&p);
  lm_err_free(&err);
  if (lm_graph_plan_downgrade(g, target, current, ncurrent, &p, &err) == LM_OK)
    check_plan(g, &p);
  lm_plan_free(&p);
  lm_err_free(&err);
  const char *const targets[] = {target};
  if (lm_graph_plan_stamp(g, targets, 1, current, ncurrent, data[0] >> 7, &p,
                          &err) == LM_OK)
    check_plan(g, &p);
  lm_plan_free(&p);
  lm_err_free(&err);
  if (lm_graph_history(g, target, current, ncurrent, &l, &err) == LM_OK)
    check(g, &l);
  lm_revlist_free(&l);
  lm_err_free(&err);
  free(target);
  return 0;
}
