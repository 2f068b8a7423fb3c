/*
 * backup.c - upgrade --backup (or backup = true): before the first
 * migration, under the run lock, the dialect backs the database up (SQLite:
 * the whole file, with the online backup API; PostgreSQL: pg_dump of the
 * tables the pending migrations touch, found by running them against the
 * recorder, exec_record.c).  Raw SQL and data operations touch tables
 * recording cannot name: then everything is backed up.  A backup that
 * fails stops the run before anything migrates.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "exec_record.h"
#include "keep.h"
#include "schema.h"

/* A script whose data part an offline run skips (`if not op.offline`)
 * or writes as statements of no operation (op.bulk_insert) changes
 * tables recording cannot name. */
static int has_data_part(const lm_script *s) {
  char *text = NULL;
  size_t len = 0;
  lm_err err;
  lm_err_init(&err);
  int found = lm_read_file(s->path, &text, &len, &err) != LM_OK || !text ||
              strstr(text, "offline") || strstr(text, "bulk_insert");
  free(text);
  lm_err_free(&err);
  return found;
}

/* What a recorder's observer collects: the tables operations touch
 * ("schema\ttable", schema empty for the default one), and whether raw
 * SQL ran. */
typedef struct touched {
  lm_strvec *tables;
  int *raw;
} touched;

static void note_table(touched *t, const char *schema, const char *table) {
  lm_strvec_pushf(t->tables, "%s\t%s", schema ? schema : "", table);
}

static void observe(void *payload, const lm_record *rec, lm_schema *model) {
  (void)model;
  touched *t = payload;
  if (rec->kind == LM_REC_BACKFILL) {
    note_table(t, rec->schema, rec->table);
  } else if (rec->kind == LM_REC_OP && rec->op->kind == LM_OP_EXECUTE) {
    *t->raw = 1;
  } else if (rec->kind == LM_REC_OP && rec->op->table &&
             rec->op->kind != LM_OP_CREATE_TABLE) {
    note_table(t, rec->op->schema, rec->op->table);
  }
}

/* Run the pending upgrades against the recorder (exec_record.c), noting
 * the tables they touch; *raw when one runs raw SQL. */
static int record_tables(lm_env *env, const lm_plan *plan, lm_strvec *tables,
                         int *raw) {
  touched t = {tables, raw};
  lm_recorder r;
  lm_recorder_init(&r);
  r.observe = observe;
  r.payload = &t;
  lm_recorder_install(env, &r);
  int rc = LM_OK;
  for (size_t i = 0; rc == LM_OK && i < plan->nsteps; i++) {
    const lm_step *st = &plan->steps[i];
    lm_script *s = st->rev >= 0 ? lm_script_at(env, (size_t)st->rev) : NULL;
    if (s && st->upgrade && has_data_part(s)) *raw = 1;
    if (s && st->upgrade) rc = lm_script_run(env, s, 1);
  }
  lm_recorder_remove(env);
  lm_recorder_free(&r);
  return rc;
}

/* The tables recorded that exist now, each once. */
static int existing(lm_env *env, const lm_strvec *recorded, lm_strvec *schemas,
                    lm_strvec *tables) {
  for (size_t i = 0; i < recorded->n; i++) {
    const char *rec = recorded->items[i], *tab = strchr(rec, '\t') + 1;
    char *schema = tab - rec > 1 ? lm_xstrndup(rec, (size_t)(tab - rec - 1))
                                 : NULL;
    int seen = 0, exists = 0;
    for (size_t k = 0; k < tables->n; k++)
      seen |= strcmp(tables->items[k], tab) == 0 &&
              ((!schema && !schemas->items[k]) ||
               (schema && schemas->items[k] &&
                strcmp(schema, schemas->items[k]) == 0));
    if (!seen && env->dialect->has_table(env->conn, schema, tab, &exists,
                                         &env->err) != LM_OK) {
      free(schema);
      return LM_ERROR;
    }
    if (!seen && exists) {
      lm_strvec_push(schemas, schema);
      lm_strvec_push(tables, lm_xstrdup(tab));
    } else {
      free(schema);
    }
  }
  return LM_OK;
}

int lm_backup_run(lm_env *env, const lm_plan *plan, const char *const *heads,
                  size_t nheads) {
  const lm_dialect *d = env->dialect;
  if (d->version < 10 || !d->keep || !d->keep->backup)
    return lm_err_set(&env->err, "the %s dialect cannot back up: run "
                      "without --backup (and backup = true)", d->name);
  lm_strvec recorded = LM_STRVEC_INIT, schemas = LM_STRVEC_INIT,
            tables = LM_STRVEC_INIT;
  int raw = 0, whole = 0;
  if (record_tables(env, plan, &recorded, &raw) != LM_OK) {
    lm_emit(env, LM_EVENT_INFO, NULL, "backup: which tables the pending "
            "migrations touch is unknown (%s): backing up the whole database",
            lm_errmsg(env));
    lm_err_free(&env->err);
    lm_err_init(&env->err);
    whole = 1;
  } else if (raw) {
    lm_emit(env, LM_EVENT_INFO, NULL, "backup: a pending migration runs raw "
            "SQL or changes data: backing up the whole database");
    whole = 1;
  }
  int rc = whole ? LM_OK : existing(env, &recorded, &schemas, &tables);
  if (rc == LM_OK && !whole && !tables.n) {
    lm_emit(env, LM_EVENT_INFO, NULL, "backup: the pending migrations change "
            "no table that exists yet: nothing to back up");
    goto done;
  }
  /* <db>.<timestamp>-<rev>.bak */
  char stamp[32];
  time_t now = time(NULL);
  strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", gmtime(&now));
  const char *rev = nheads ? heads[0] : "base";
  char *suffix = lm_xasprintf(".%s-%s.bak", stamp, rev);
  char *written = NULL;
  if (rc == LM_OK)
    rc = d->keep->backup(env->conn, &env->parsed_url, env->backup_path,
                         suffix, (const char *const *)schemas.items,
                         (const char *const *)tables.items,
                         whole ? 0 : tables.n, &written, &env->err);
  free(suffix);
  if (rc != LM_OK) {
    lm_err_prefix(&env->err, "backup failed, nothing was migrated");
    goto done;
  }
  struct stat sb;
  long long size = stat(written, &sb) == 0 ? (long long)sb.st_size : -1;
  lm_buf msg = LM_BUF_INIT;
  lm_buf_printf(&msg, "backup written to %s (", written);
  lm_group_digits(&msg, size);
  lm_buf_puts(&msg, " bytes");
  for (size_t i = 0; !whole && i < tables.n; i++)
    lm_buf_printf(&msg, "%s%s%s%s", i ? ", " : "; tables the upgrade "
                  "touches: ", schemas.items[i] ? schemas.items[i] : "",
                  schemas.items[i] ? "." : "", tables.items[i]);
  lm_buf_putc(&msg, ')');
  lm_emit(env, LM_EVENT_INFO, NULL, "%s", lm_buf_str(&msg));
  rc = lm_log_note(env, rev, "backup", NULL, lm_buf_str(&msg), &env->err);
  lm_buf_free(&msg);
  free(written);
done:
  lm_strvec_free(&recorded);
  lm_strvec_free(&schemas);
  lm_strvec_free(&tables);
  return rc;
}
