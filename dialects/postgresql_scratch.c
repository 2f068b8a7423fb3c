/*
 * postgresql_scratch.c - verify's scratch database on PostgreSQL: CREATE
 * DATABASE of a fresh name on the configured server, as the configured
 * user, and DROP DATABASE afterwards.  Both statements are sent from a
 * connection to the configured database, which they do not change.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "postgresql.h"

extern const lm_dialect lm_postgresql_dialect;

/* The URL with its database replaced by `name`; NULL (err set) when the
 * database is named in the query string, where a new one cannot be put
 * without rewriting libpq's parameters. */
static char *url_for(const lm_url *url, const char *name, lm_err *err) {
  const char *rest = url->rest;
  size_t auth = strcspn(rest, "/?");
  const char *after = rest + auth;
  const char *query = strchr(after, '?');
  if (query && (strstr(query, "dbname=") || strstr(query, "&dbname="))) {
    lm_err_set(err, "%s names its database in the query string; give "
               "verify an empty database with --scratch-url URL",
               url->display);
    return NULL;
  }
  return lm_xasprintf("%s://%.*s/%s%s", url->scheme, (int)auth, rest, name,
                      query ? query : "");
}

/* The configured database's name in lower-case letters, digits and
 * underscores, at most size - 1 of them ("db" when the URL names none). */
static void scratch_owner(const lm_url *url, char *out, size_t size) {
  const char *rest = url->rest;
  const char *p = rest + strcspn(rest, "/?");
  size_t n = 0;
  if (*p == '/')
    for (p++; *p && *p != '?' && n + 1 < size; p++) {
      char c = *p;
      if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
      out[n++] = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ? c : '_';
    }
  if (!n) n = (size_t)snprintf(out, size, "db");
  out[n] = '\0';
}

/* The role a connection runs as, for the privilege message. */
static char *current_role(lm_conn *c) {
  const lm_dialect *d = &lm_postgresql_dialect;
  lm_cursor *cur;
  lm_err err;
  lm_err_init(&err);
  char *role = NULL;
  if (d->query(c, "SELECT current_user", 0, NULL, &cur, &err) == LM_OK) {
    if (d->cursor_next(cur, &err) == 1) {
      const lm_value *v = d->cursor_value(cur, 0);
      if (v->type == LM_V_TEXT) role = lm_xstrndup(v->s, v->len);
    }
    d->cursor_close(cur);
  }
  lm_err_free(&err);
  return role;
}

int lm_pg_scratch_create(const lm_url *url, char **scratch_url, lm_err *err) {
  const lm_dialect *d = &lm_postgresql_dialect;
  *scratch_url = NULL;
  /* luamig_verify_<database>_<pid>_<stamp>: the configured database's
   * name (folded to what needs no quoting, cut to 20 characters) says
   * whose scratch database a leftover is, within 63 bytes. */
  char db[21];
  scratch_owner(url, db, sizeof db);
  char name[64];
  snprintf(name, sizeof name, "luamig_verify_%s_%ld_%lx", db, (long)getpid(),
           ((unsigned long)time(NULL) ^ (unsigned long)clock()) & 0xffffffffUL);
  char *target = url_for(url, name, err);
  if (!target) return LM_ERROR;
  lm_conn *c;
  if (d->connect(&c, url, "luamig verify", err) != LM_OK) {
    free(target);
    return LM_ERROR;
  }
  char *sql = lm_xasprintf("CREATE DATABASE %s", name);
  int rc = d->exec(c, sql, 0, NULL, NULL, err);
  free(sql);
  if (rc != LM_OK && strcmp(err->sqlstate, "42501") == 0) {
    char *role = current_role(c);
    lm_err_set(err, "verify cannot create a scratch database on %s: the role "
               "%s lacks the CREATEDB privilege (ALTER ROLE %s CREATEDB), or "
               "give verify an empty database with --scratch-url URL",
               url->display, role ? role : "luamig connects as",
               role ? role : "...");
    free(role);
  } else if (rc != LM_OK) {
    lm_err_prefix(err, "verify cannot create a scratch database on %s",
                  url->display);
  }
  d->close(c);
  if (rc != LM_OK) {
    free(target);
    return LM_ERROR;
  }
  *scratch_url = target;
  return LM_OK;
}

int lm_pg_scratch_drop(const lm_url *url, const char *scratch_url,
                       lm_err *err) {
  const lm_dialect *d = &lm_postgresql_dialect;
  /* The name is the last path segment of the URL scratch_create made. */
  const char *q = strchr(scratch_url, '?');
  size_t end = q ? (size_t)(q - scratch_url) : strlen(scratch_url);
  size_t start = end;
  while (start > 0 && scratch_url[start - 1] != '/') start--;
  char *name = lm_xstrndup(scratch_url + start, end - start);
  lm_conn *c;
  int rc = d->connect(&c, url, "luamig verify", err);
  if (rc == LM_OK) {
    /* FORCE (PostgreSQL 13) ends a session still open on it, such as one
     * a killed run left. */
    lm_buf sql = LM_BUF_INIT;
    lm_buf_puts(&sql, "DROP DATABASE IF EXISTS ");
    lm_pg_quote_ident(&sql, name);
    size_t plain = sql.len;
    lm_buf_puts(&sql, " WITH (FORCE)");
    rc = d->exec(c, lm_buf_str(&sql), 0, NULL, NULL, err);
    if (rc != LM_OK && strcmp(err->sqlstate, "42601") == 0) {
      sql.data[plain] = '\0';
      rc = d->exec(c, sql.data, 0, NULL, NULL, err);
    }
    lm_buf_free(&sql);
    d->close(c);
  }
  if (rc != LM_OK)
    lm_err_prefix(err, "cannot drop the scratch database %s", name);
  free(name);
  return rc;
}

int lm_pg_scratch_tune(lm_conn *c, lm_err *err) {
  return lm_postgresql_dialect.exec(c, "SET synchronous_commit = off", 0,
                                    NULL, NULL, err);
}
