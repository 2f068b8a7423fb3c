/*
 * sqlite_scratch.c - verify's scratch database on SQLite: a new empty file
 * in the temporary directory, removed with its journal, WAL and lock
 * files afterwards.
 */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sqlite.h"

int lm_sqlite_scratch_create(const lm_url *url, char **scratch_url,
                             lm_err *err) {
  (void)url;   /* a file of its own, wherever the configured one is */
  const char *dir = getenv("TMPDIR");
  if (!dir || !*dir) dir = "/tmp";
  char *path = lm_xasprintf("%s/luamig-verify-XXXXXX", dir);
  int fd = mkstemp(path);
  if (fd < 0) {
    lm_err_set(err, "cannot create a scratch SQLite database in %s: %s", dir,
               strerror(errno));
    free(path);
    return LM_ERROR;
  }
  close(fd);   /* an empty file is an empty database */
  /* sqlite:/// followed by the path: an absolute one keeps its slash. */
  *scratch_url = lm_xasprintf("sqlite:///%s", path);
  free(path);
  return LM_OK;
}

int lm_sqlite_scratch_drop(const lm_url *url, const char *scratch_url,
                           lm_err *err) {
  (void)url;
  const char *prefix = "sqlite:///";
  if (strncmp(scratch_url, prefix, strlen(prefix)) != 0)
    return lm_err_set(err, "not a scratch SQLite URL: %s", scratch_url);
  const char *path = scratch_url + strlen(prefix);
  /* The lock file is named after the resolved path (sqlite.c). */
  char *real = realpath(path, NULL);
  static const char *const suffixes[] = {"-journal", "-wal", "-shm",
                                         ".luamig-lock"};
  for (size_t i = 0; i < sizeof suffixes / sizeof *suffixes; i++) {
    char *side = lm_xasprintf("%s%s", real ? real : path, suffixes[i]);
    unlink(side);
    free(side);
  }
  free(real);
  if (unlink(path) != 0 && errno != ENOENT)
    return lm_err_set(err, "cannot remove the scratch database %s: %s", path,
                      strerror(errno));
  return LM_OK;
}

int lm_sqlite_scratch_tune(lm_conn *c, lm_err *err) {
  char *msg = NULL;
  if (sqlite3_exec(c->db, "PRAGMA synchronous = OFF", NULL, NULL, &msg) !=
      SQLITE_OK) {
    lm_err_set(err, "cannot set up the scratch database %s: %s", c->path,
               msg ? msg : "?");
    sqlite3_free(msg);
    return LM_ERROR;
  }
  return LM_OK;
}
