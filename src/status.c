/*
 * status.c - what a person must know before moving the database: a dirty
 * mark left by a failed non-transactional script, and applied scripts
 * whose file changed (drifted) or disappeared (missing) since they ran.
 * Both are read from the log, so they work on any database luamig ran on.
 */
#include <stdlib.h>
#include <string.h>

#include "core.h"

void lm_drift_free(lm_drift *d) {
  lm_strvec_free(&d->drifted);
  lm_strvec_free(&d->missing);
}

/* Run a query on the log table and hand each row to fn. */
typedef int (*row_fn)(lm_env *env, const lm_value *row, void *payload);

static int each_log_row(lm_env *env, lm_sql_kind kind, row_fn fn,
                        void *payload) {
  int exists = 0;
  if (env->dialect->has_table(env->conn, env->version_table_schema,
                              env->log_table, &exists, &env->err) != LM_OK)
    return LM_ERROR;
  if (!exists) return LM_OK;
  lm_buf sql = LM_BUF_INIT;
  lm_sql_spec spec = {.kind = kind, .schema = env->version_table_schema,
                      .table = env->log_table};
  lm_core_sql(env->dialect, &sql, &spec);
  lm_cursor *cur;
  int rc = env->dialect->query(env->conn, lm_buf_str(&sql), 0, NULL, &cur,
                               &env->err);
  lm_buf_free(&sql);
  if (rc != LM_OK) return rc;
  size_t n = env->dialect->cursor_ncols(cur);
  lm_value *row = lm_xcalloc(n, sizeof *row);
  while ((rc = env->dialect->cursor_next(cur, &env->err)) == 1) {
    for (size_t i = 0; i < n; i++) row[i] = *env->dialect->cursor_value(cur, i);
    if (fn(env, row, payload) != LM_OK) {
      rc = -1;
      break;
    }
  }
  free(row);
  env->dialect->cursor_close(cur);
  return rc < 0 ? LM_ERROR : LM_OK;
}

static char *value_text(const lm_value *v) {
  if (v->type == LM_V_TEXT) return lm_xstrndup(v->s, v->len);
  if (v->type == LM_V_NULL) return lm_xstrdup("");
  if (v->type == LM_V_FLOAT) return lm_xasprintf("%g", v->f);
  return lm_xasprintf("%lld", (long long)v->i);
}

/* The latest dirty or unfinished row after the latest stamp: a stamp is
 * how a person says "I looked; the database is at this revision". */
static int dirty_row(lm_env *env, const lm_value *row, void *payload) {
  (void)env;
  lm_buf *out = payload;
  if (row[0].type == LM_V_TEXT && row[0].len == 5 &&
      memcmp(row[0].s, "stamp", 5) == 0) {
    lm_buf_reset(out);
    return LM_OK;
  }
  int dirty = row[1].type == LM_V_TEXT && row[1].len == 5 &&
              memcmp(row[1].s, "dirty", 5) == 0;
  int running = row[1].type == LM_V_TEXT && row[1].len == 7 &&
                memcmp(row[1].s, "running", 7) == 0;
  if (!dirty && !running) return LM_OK;
  char *rev = value_text(&row[2]), *dir = value_text(&row[0]);
  char *when = value_text(&row[3]), *msg = value_text(&row[4]);
  lm_buf_reset(out);
  if (dirty)
    lm_buf_printf(out, "%s of %s failed outside a transaction at %s UTC:\n  "
                  "%s", dir, rev, when, msg);
  else
    lm_buf_printf(out, "%s of %s started outside a transaction at %s UTC "
                  "and never finished: the run was killed or lost its "
                  "connection (unless it is still running: see the lock)",
                  dir, rev, when);
  free(rev);
  free(dir);
  free(when);
  free(msg);
  return LM_OK;
}

int lm_check_dirty(lm_env *env, int *dirty, lm_buf *out) {
  lm_buf_reset(out);
  int rc = each_log_row(env, LM_SQL_LOG_DIRTY, dirty_row, out);
  *dirty = rc == LM_OK && out->len > 0;
  return rc;
}

/* Latest row per revision: the map holds "direction\tchecksum". */
typedef struct drift_state {
  lm_map latest;                /* revision -> index into rows */
  lm_strvec keys, rows;
} drift_state;

static int drift_row(lm_env *env, const lm_value *row, void *payload) {
  (void)env;
  drift_state *st = payload;
  char *rev = value_text(&row[0]);
  char *dir = value_text(&row[1]), *sum = value_text(&row[2]);
  void *slot = lm_map_get(&st->latest, rev);
  /* An accepted checksum replaces the one logged, not the direction. */
  if (strcmp(dir, "accept") == 0) {
    free(dir);
    if (!slot) {
      free(sum);
      free(rev);
      return LM_OK;
    }
    const char *prev = st->rows.items[(size_t)(uintptr_t)slot - 1];
    dir = lm_xstrndup(prev, strcspn(prev, "\t"));
  }
  char *entry = lm_xasprintf("%s\t%s", dir, sum);
  free(dir);
  free(sum);
  if (slot) {
    size_t i = (size_t)(uintptr_t)slot - 1;
    free(st->rows.items[i]);
    st->rows.items[i] = entry;
    free(rev);
  } else {
    lm_strvec_push(&st->keys, rev);
    lm_strvec_push(&st->rows, entry);
    lm_map_put(&st->latest, rev, (void *)(uintptr_t)st->rows.n);
  }
  return LM_OK;
}

int lm_check_drift(lm_env *env, lm_drift *out) {
  drift_state st = {0};
  lm_map_init(&st.latest);
  int rc = each_log_row(env, LM_SQL_LOG_CHECKSUMS,
                        drift_row, &st);
  for (size_t i = 0; rc == LM_OK && i < st.keys.n; i++) {
    const char *row = st.rows.items[i];
    if (strncmp(row, "upgrade\t", 8) != 0) continue;   /* not applied now */
    const char *logged = row + 8;
    size_t idx;
    lm_err probe;
    lm_err_init(&probe);
    int found = lm_graph_lookup(env->graph, st.keys.items[i], &idx, &probe) ==
                    LM_OK &&
                strcmp(lm_graph_rev(env->graph, idx)->id, st.keys.items[i]) == 0;
    lm_err_free(&probe);
    if (!found) {
      lm_strvec_push(&out->missing, lm_xstrdup(st.keys.items[i]));
      continue;
    }
    lm_script *s = lm_script_at(env, idx);
    char sum[65];
    if (!*logged || lm_script_checksum(s, sum, &env->err) != LM_OK) continue;
    if (strcmp(sum, logged) != 0)
      lm_strvec_pushf(&out->drifted, "%s\t%s\t%s\t%s", s->rev.id, s->path,
                      logged, sum);
  }
  lm_map_free(&st.latest);
  lm_strvec_free(&st.keys);
  lm_strvec_free(&st.rows);
  return rc;
}

int lm_preflight(lm_env *env) {
  int dirty = 0;
  lm_buf why = LM_BUF_INIT;
  if (lm_check_dirty(env, &dirty, &why) != LM_OK) {
    lm_buf_free(&why);
    return LM_ERROR;
  }
  if (dirty) {
    lm_err_set(&env->err, "the database is dirty: %s\nInspect the schema, "
               "then run `luamig stamp REV` with the revision it is really at.",
               lm_buf_str(&why));
    lm_err_kind(&env->err, "dirty");
    lm_buf_free(&why);
    return LM_ERROR;
  }
  lm_buf_free(&why);
  lm_drift d = {0};
  if (lm_check_drift(env, &d) != LM_OK) {
    lm_drift_free(&d);
    return LM_ERROR;
  }
  lm_buf msg = LM_BUF_INIT;
  for (size_t i = 0; i < d.drifted.n; i++) {
    char *f = d.drifted.items[i];
    char *path = strchr(f, '\t') + 1;
    *strchr(path, '\t') = '\0';
    *strchr(f, '\t') = '\0';
    lm_buf_printf(&msg, "%sscript %s of applied revision %s changed since it "
                  "ran", msg.len ? "\n" : "", path, f);
  }
  for (size_t i = 0; i < d.missing.n; i++)
    lm_buf_printf(&msg, "%sapplied revision %s has no script any more",
                  msg.len ? "\n" : "", d.missing.items[i]);
  lm_drift_free(&d);
  int rc = LM_OK;
  if (msg.len && env->strict_checksums)
    rc = lm_err_set(&env->err, "%s\n(strict_checksums: refusing to run)",
                    lm_buf_str(&msg));
  else if (msg.len)
    lm_emit(env, LM_EVENT_INFO, NULL, "warning: %s", lm_buf_str(&msg));
  lm_buf_free(&msg);
  return rc;
}

/* stamp --accept-checksums REV...: a person looked at each edited script
 * and says its present text is what the database has.  All the names are
 * checked before anything is written; the rows commit together. */
int lm_accept_checksums(lm_env *env, const char *const *revs, size_t nrevs) {
  if (!nrevs)
    return lm_err_usage(&env->err, "stamp --accept-checksums needs the "
                        "revisions whose edited scripts to accept");
  if (lm_scripts_load(env) != LM_OK || lm_begin_run(env) != LM_OK) {
    lm_disconnect(env);
    return LM_ERROR;
  }
  lm_drift d = {0};
  lm_strvec chosen = LM_STRVEC_INIT;   /* entries of d.drifted, borrowed */
  int rc = lm_check_drift(env, &d);
  for (size_t i = 0; rc == LM_OK && i < nrevs; i++) {
    size_t idx;
    if (lm_graph_lookup(env->graph, revs[i], &idx, &env->err) != LM_OK) {
      rc = LM_ERROR;
      break;
    }
    const char *id = lm_graph_rev(env->graph, idx)->id;
    size_t len = strlen(id);
    char *hit = NULL;
    for (size_t k = 0; !hit && k < d.drifted.n; k++)
      if (strncmp(d.drifted.items[k], id, len) == 0 &&
          d.drifted.items[k][len] == '\t')
        hit = d.drifted.items[k];
    if (!hit)
      rc = lm_err_set(&env->err, "nothing to accept for %s: it is not "
                      "applied, or its script has not changed since it ran",
                      id);
    else
      lm_strvec_push(&chosen, hit);
  }
  if (rc == LM_OK) rc = lm_tx_begin(env);
  for (size_t i = 0; rc == LM_OK && i < chosen.n; i++) {
    /* "rev\tpath\tlogged\tfile" */
    char *rev = lm_xstrdup(chosen.items[i]);
    char *path = strchr(rev, '\t');
    *path++ = '\0';
    char *logged = strchr(path, '\t');
    *logged++ = '\0';
    char *file = strchr(logged, '\t');
    *file++ = '\0';
    char *msg = lm_xasprintf("edited script %s accepted; it was %s", path,
                             logged);
    rc = lm_log_note(env, rev, "accept", file, msg, &env->err);
    if (rc == LM_OK)
      lm_emit(env, LM_EVENT_INFO, rev, "Accepted the edited script %s of %s "
              "(checksum %.12s..., was %.12s...)", path, rev, file, logged);
    free(msg);
    free(rev);
  }
  if (rc == LM_OK) rc = lm_tx_commit(env);
  if (rc != LM_OK) lm_tx_rollback(env);
  chosen.n = 0;   /* borrowed */
  lm_strvec_free(&chosen);
  lm_drift_free(&d);
  lm_disconnect(env);
  return rc;
}

int lm_status_read(lm_env *env, lm_status *out) {
  memset(out, 0, sizeof *out);
  lm_buf_init(&out->dirty_mark);
  lm_buf_init(&out->lock_holder);
  int rc = lm_scripts_load(env);
  if (rc == LM_OK) rc = lm_connect(env);
  if (rc == LM_OK) rc = lm_read_heads(env, &out->heads);
  if (rc == LM_OK) rc = lm_check_dirty(env, &out->dirty, &out->dirty_mark);
  if (rc == LM_OK) rc = lm_check_drift(env, &out->drift);
  if (rc == LM_OK) rc = lm_lock_probe(env, &out->locked, &out->lock_holder);
  if (rc != LM_OK) return rc;
  /* A graph the heads do not fit is something to show, not a failure. */
  lm_err perr;
  lm_err_init(&perr);
  if (lm_graph_plan_upgrade(env->graph, "heads",
                            (const char *const *)out->heads.items,
                            out->heads.n, &out->pending, &perr) != LM_OK)
    out->pending_error = lm_xstrdup(lm_err_msg(&perr));
  lm_err_free(&perr);
  return LM_OK;
}

void lm_status_free(lm_status *st) {
  lm_strvec_free(&st->heads);
  lm_plan_free(&st->pending);
  free(st->pending_error);
  lm_drift_free(&st->drift);
  lm_buf_free(&st->dirty_mark);
  lm_buf_free(&st->lock_holder);
}
