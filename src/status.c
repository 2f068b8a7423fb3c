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

static int each_log_row(lm_env *env, const char *columns, const char *where,
                        row_fn fn, void *payload) {
  int exists = 0;
  if (env->dialect->has_table(env->conn, env->version_table_schema,
                              env->log_table, &exists, &env->err) != LM_OK)
    return LM_ERROR;
  if (!exists) return LM_OK;
  lm_buf sql = LM_BUF_INIT;
  lm_buf_printf(&sql, "SELECT %s FROM ", columns);
  if (env->version_table_schema) {
    env->dialect->quote_ident(&sql, env->version_table_schema);
    lm_buf_putc(&sql, '.');
  }
  env->dialect->quote_ident(&sql, env->log_table);
  lm_buf_printf(&sql, " WHERE %s ORDER BY id", where);
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

/* The latest dirty row after the latest stamp: a stamp is how a person
 * says "I looked; the database is at this revision". */
static int dirty_row(lm_env *env, const lm_value *row, void *payload) {
  (void)env;
  lm_buf *out = payload;
  if (row[0].type == LM_V_TEXT && row[0].len == 5 &&
      memcmp(row[0].s, "stamp", 5) == 0) {
    lm_buf_reset(out);
    return LM_OK;
  }
  if (row[1].type != LM_V_TEXT || row[1].len != 5 ||
      memcmp(row[1].s, "dirty", 5) != 0)
    return LM_OK;
  char *rev = value_text(&row[2]), *dir = value_text(&row[0]);
  char *when = value_text(&row[3]), *msg = value_text(&row[4]);
  lm_buf_reset(out);
  lm_buf_printf(out, "%s of %s failed outside a transaction at %s UTC:\n  %s",
                dir, rev, when, msg);
  free(rev);
  free(dir);
  free(when);
  free(msg);
  return LM_OK;
}

int lm_check_dirty(lm_env *env, int *dirty, lm_buf *out) {
  lm_buf_reset(out);
  int rc = each_log_row(env, "direction, status, revision, started_at, message",
                        "status = 'dirty' OR direction = 'stamp'", dirty_row,
                        out);
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
  char *entry = lm_xasprintf("%s\t%s", dir, sum);
  free(dir);
  free(sum);
  void *slot = lm_map_get(&st->latest, rev);
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
  int rc = each_log_row(env, "revision, direction, checksum", "status = 'ok'",
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
