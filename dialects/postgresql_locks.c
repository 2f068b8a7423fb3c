/*
 * postgresql_locks.c - what a lock-safe run needs from PostgreSQL: the
 * lock_timeout setting, its failure (SQLSTATE 55P03, lock_not_available),
 * and who held the lock a statement gave up waiting for.
 */
#include <stdio.h>
#include <string.h>

#include "postgresql.h"

void lm_pg_lock_timeout_sql(lm_buf *out, double seconds) {
  if (seconds <= 0) {
    lm_buf_puts(out, "RESET lock_timeout");
    return;
  }
  long ms = (long)(seconds * 1000 + 0.5);
  lm_buf_printf(out, "SET lock_timeout = '%ldms'", ms < 1 ? 1 : ms);
}

int lm_pg_is_lock_timeout(const lm_err *err) {
  return strcmp(err->sqlstate, "55P03") == 0;
}

/* The failed transaction is gone, and with it the wait that
 * pg_blocking_pids() would name: find the other sessions holding a lock on
 * a relation the text names instead (each word that is the name of one). */
int lm_pg_lock_blockers(lm_conn *conn, const char *text, lm_buf *out,
                        lm_err *err) {
  static const char sql[] =
      "SELECT DISTINCT a.pid, coalesce(a.state, ''), "
      "left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 200), "
      "l.mode, l.relation::regclass::text "
      "FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a "
      "ON a.pid = l.pid "
      "WHERE l.granted AND l.locktype = 'relation' "
      "AND l.pid <> pg_catalog.pg_backend_pid() "
      "AND l.database = (SELECT oid FROM pg_catalog.pg_database "
      "WHERE datname = pg_catalog.current_database()) "
      "AND l.relation IN (SELECT pg_catalog.to_regclass(w) FROM "
      "regexp_split_to_table($1, '[^A-Za-z0-9_.]+') w "
      "WHERE w ~ '^[A-Za-z_][A-Za-z0-9_]*(\\.[A-Za-z_][A-Za-z0-9_]*)?$') "
      "ORDER BY 1";
  const char *vals[1] = {text};
  PGresult *res = PQexecParams(conn->pg, sql, 1, NULL, vals, NULL, NULL, 0);
  if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
    int rc = lm_pg_result_error(conn, res, sql, err);
    PQclear(res);
    return rc;
  }
  for (int i = 0; i < PQntuples(res); i++)
    lm_buf_printf(out, "%spid %s (%s, %s on %s): %s", i ? "\n" : "",
                  PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
                  PQgetvalue(res, i, 3), PQgetvalue(res, i, 4),
                  PQgetvalue(res, i, 2));
  PQclear(res);
  return LM_OK;
}
