/*
 * postgresql_lock.c - the run lock on PostgreSQL: a session-level
 * advisory lock keyed by the version table's resolved name, held across
 * the run's transactions, with the holder named while waiting.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "postgresql.h"

/* ---- the run lock ---------------------------------------------------- */

/* A stable 64-bit key for pg_try_advisory_lock: FNV-1a of the name with a
 * prefix that keeps it apart from other applications' advisory locks.  The
 * same in every process and on every platform. */
static int64_t lock_key(const char *key) {
  uint64_t h = 14695981039346656037ULL;
  const char *parts[2] = {"luamig:", key};
  for (int k = 0; k < 2; k++)
    for (const unsigned char *p = (const unsigned char *)parts[k]; *p; p++) {
      h ^= *p;
      h *= 1099511628211ULL;
    }
  return (int64_t)h;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
}

/* Who holds the advisory lock: "pid 1234 (application luamig)".  A bigint
 * advisory lock shows in pg_locks as classid = high half, objid = low
 * half, objsubid = 1. */
static void lock_holder(lm_conn *c, const lm_value *key, char *out,
                        size_t size) {
  lm_err err;
  lm_err_init(&err);
  snprintf(out, size, "an unknown session");
  PGresult *res = lm_pg_run(c,
      "SELECT l.pid, coalesce(a.application_name, ''), "
      "coalesce(a.usename::text, ''), coalesce(host(a.client_addr), '') "
      "FROM pg_catalog.pg_locks l "
      "LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid "
      "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
      "AND l.database = (SELECT oid FROM pg_catalog.pg_database "
      "                  WHERE datname = pg_catalog.current_database()) "
      "AND l.classid::bigint = (($1::bigint >> 32) & 4294967295) "
      "AND l.objid::bigint = ($1::bigint & 4294967295) "
      "AND l.pid <> pg_catalog.pg_backend_pid() LIMIT 1",
      NULL, 1, key, &err);
  if (res && PQntuples(res) == 1) {
    /* "pid 1234 (application luamig, user app, from 10.0.0.5)", leaving
     * out what pg_stat_activity does not show. */
    static const char *const labels[] = {"application ", "user ", "from "};
    lm_buf b = LM_BUF_INIT;
    const char *sep = " (";
    lm_buf_printf(&b, "pid %s", PQgetvalue(res, 0, 0));
    for (int i = 0; i < 3; i++) {
      const char *v = PQgetvalue(res, 0, i + 1);
      if (!*v) continue;
      lm_buf_printf(&b, "%s%s%s", sep, labels[i], v);
      sep = ", ";
    }
    if (sep[0] == ',') lm_buf_putc(&b, ')');
    snprintf(out, size, "%s", lm_buf_str(&b));
    lm_buf_free(&b);
  }
  PQclear(res);
  lm_err_free(&err);
}

/* The lock for `key`, the version table's qualified name (quoted where
 * it needs it): the table as this session resolves it, its schema always
 * spelled out (the one `key` names, else current_schema(), where an
 * unqualified version table is created and read), so that two
 * configurations naming one table differently take one lock.  *name gets
 * that resolved name, for messages (the caller frees it), and num the
 * advisory lock's number as text. */
static int lock_id(lm_conn *c, const char *key, char **name, char *num,
                   size_t size, lm_err *err) {
  lm_value k = {.type = LM_V_TEXT, .s = key, .len = strlen(key)};
  *name = NULL;
  PGresult *res = lm_pg_run(c,
      "SELECT pg_catalog.quote_ident(CASE WHEN pg_catalog.cardinality(p) > 1 "
      "THEN p[1] ELSE coalesce(pg_catalog.current_schema(), '') END) "
      "|| '.' || pg_catalog.quote_ident(p[pg_catalog.cardinality(p)]) "
      "FROM (SELECT pg_catalog.parse_ident($1) AS p) AS s",
      NULL, 1, &k, err);
  if (!res) return LM_ERROR;
  if (PQntuples(res) != 1) {
    PQclear(res);
    return lm_err_set(err, "cannot resolve the version table name %s", key);
  }
  *name = lm_xstrdup(PQgetvalue(res, 0, 0));
  PQclear(res);
  snprintf(num, size, "%lld", (long long)lock_key(*name));
  return LM_OK;
}

/* A session-level advisory lock (not a transaction-level one, which each
 * migration's COMMIT would release), polled with pg_try_advisory_lock so
 * the wait is bounded and the holder can be named. */
int lm_pg_lock(lm_conn *c, const char *key, double timeout,
               void (*waiting)(const char *holder, void *payload),
               void *payload, lm_err *err) {
  char num[32], holder[256] = "";
  char *name;
  if (lock_id(c, key, &name, num, sizeof num, err) != LM_OK) {
    lm_err_prefix(err, "cannot take the lock on %s", key);
    return LM_ERROR;
  }
  lm_value k = {.type = LM_V_TEXT, .s = num, .len = strlen(num)};
  double start = lm_now();
  int rc;
  for (;;) {
    PGresult *res = lm_pg_run(c, "SELECT pg_catalog.pg_try_advisory_lock($1::bigint)",
                        NULL, 1, &k, err);
    if (!res) {
      lm_err_prefix(err, "cannot take the lock on %s", name);
      rc = LM_ERROR;
      break;
    }
    int got = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (got) {
      rc = LM_OK;
      break;
    }
    if (lm_signal_received) {
      rc = lm_err_set(err, "interrupted while waiting for the lock on %s",
                      name);
      break;
    }
    if (!holder[0]) {
      lock_holder(c, &k, holder, sizeof holder);
      if (waiting) waiting(holder, payload);
    }
    if (lm_now() - start >= timeout) {
      /* Name whoever holds it now, which may have changed meanwhile. */
      lock_holder(c, &k, holder, sizeof holder);
      rc = lm_err_set(err, "another luamig run holds the lock on %s: %s; "
                      "gave up after %g s (lock_timeout)", name, holder,
                      timeout);
      lm_err_kind(err, "lock_timeout");
      break;
    }
    /* Short sleeps first, so a lock freed quickly is taken quickly. */
    sleep_ms(lm_now() - start < 1.0 ? 50 : 100);
  }
  free(name);
  return rc;
}

int lm_pg_unlock(lm_conn *c, const char *key, lm_err *err) {
  char num[32];
  char *name;
  if (lock_id(c, key, &name, num, sizeof num, err) != LM_OK) {
    lm_err_prefix(err, "cannot release the lock on %s", key);
    return LM_ERROR;
  }
  lm_value k = {.type = LM_V_TEXT, .s = num, .len = strlen(num)};
  /* Unlock only what pg_locks shows as ours: pg_advisory_unlock of a lock
   * not held would also print a server WARNING beside our own error. */
  PGresult *res = lm_pg_run(c,
      "SELECT CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_locks l "
      "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
      "AND l.pid = pg_catalog.pg_backend_pid() "
      "AND l.classid::bigint = (($1::bigint >> 32) & 4294967295) "
      "AND l.objid::bigint = ($1::bigint & 4294967295)) "
      "THEN pg_catalog.pg_advisory_unlock($1::bigint) ELSE false END",
      NULL, 1, &k, err);
  int rc = LM_OK;
  if (!res) {
    lm_err_prefix(err, "cannot release the lock on %s", name);
    rc = LM_ERROR;
  } else {
    int released = PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    if (!released)
      rc = lm_err_set(err, "the lock on %s was not held by this session",
                      name);
  }
  free(name);
  return rc;
}

