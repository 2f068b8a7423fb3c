/*
 * script_cache.c - a cache of the revision scripts' metadata (id, parents,
 * labels, dependencies, message, doc, checksum), kept beside the scripts
 * as .luamig-cache, like Python's __pycache__.  With it, heads, history,
 * current and a no-op upgrade read one file and stat the scripts instead of
 * compiling and running every one; a script is compiled only when it runs.
 * An entry is used only while the file's size, inode, modification time
 * and status-change time are unchanged: restoring the modification time
 * after an edit (touch -r, an editor or a tool that keeps it) still
 * changes the status-change time, which no program can set back.  When a
 * script runs, its checksum is compared with the entry's (script.c).
 * Anything unexpected in the cache makes it ignored.
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"

#define CACHE_NAME ".luamig-cache"
#define CACHE_MAGIC "luamig-cache 2\n"
/* A bound on the cache file (10,000 scripts take about 3 MB). */
#define CACHE_MAX_BYTES ((size_t)256 << 20)

/* ---- writing ------------------------------------------------------------ */

static void put_str(lm_buf *b, const char *s) {
  lm_buf_puts(b, s);
  lm_buf_putc(b, '\0');
}

/* An optional string: "-" for none, "+text" otherwise. */
static void put_opt(lm_buf *b, const char *s) {
  if (!s) {
    put_str(b, "-");
    return;
  }
  lm_buf_putc(b, '+');
  put_str(b, s);
}

static void put_num(lm_buf *b, long long n) {
  lm_buf_printf(b, "%lld", n);
  lm_buf_putc(b, '\0');
}

static void put_list(lm_buf *b, const char *const *items, size_t n) {
  put_num(b, (long long)n);
  for (size_t i = 0; i < n; i++) put_str(b, items[i]);
}

/* A string the format cannot hold (an embedded NUL cannot happen in a C
 * string; a name starting the optional marker is fine). */
static void put_entry(lm_buf *b, const lm_script *s) {
  const char *name = strrchr(s->path, '/');
  put_str(b, name ? name + 1 : s->path);
  put_num(b, s->key.size);
  put_num(b, s->key.mtime_sec);
  put_num(b, s->key.mtime_nsec);
  put_num(b, s->key.ino);
  put_num(b, s->key.ctime_sec);
  put_num(b, s->key.ctime_nsec);
  put_str(b, s->rev.id);
  put_opt(b, s->rev.message);
  put_opt(b, s->doc);
  put_num(b, s->transactional);
  put_str(b, s->checksum);
  put_list(b, s->rev.down, s->rev.ndown);
  put_list(b, s->rev.depends, s->rev.ndepends);
  put_list(b, s->rev.labels, s->rev.nlabels);
}

static char *cache_path(const lm_env *env) {
  return lm_xasprintf("%s/%s", env->script_location, CACHE_NAME);
}

void lm_cache_write(lm_env *env) {
  lm_buf b = LM_BUF_INIT;
  lm_buf_puts(&b, CACHE_MAGIC);
  for (size_t i = 0; i < env->nscripts; i++)
    if (env->scripts[i].checksum[0]) put_entry(&b, &env->scripts[i]);
  /* Written aside and renamed, so a reader never sees half a cache; a
   * read-only script folder simply goes without one. */
  char *path = cache_path(env);
  char *tmp = lm_xasprintf("%s.%ld", path, (long)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd >= 0) {
    ssize_t n = write(fd, b.data, b.len);
    int ok = n == (ssize_t)b.len;
    if (close(fd) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) unlink(tmp);
  }
  free(tmp);
  free(path);
  lm_buf_free(&b);
}

/* ---- reading ------------------------------------------------------------ */

typedef struct reader {
  const char *p, *end;
  int bad;
} reader;

static const char *get_str(reader *r) {
  if (r->bad) return "";
  const char *nul = memchr(r->p, '\0', (size_t)(r->end - r->p));
  if (!nul) {
    r->bad = 1;
    return "";
  }
  const char *s = r->p;
  r->p = nul + 1;
  return s;
}

/* A decimal number (the cache writes only these: no sign but '-'). */
static long long get_num(reader *r) {
  const char *s = get_str(r);
  int neg = *s == '-';
  const char *p = s + neg;
  long long n = 0;
  if (!*p) r->bad = 1;
  for (; *p; p++) {
    if (*p < '0' || *p > '9' || n > (LLONG_MAX - 9) / 10) {
      r->bad = 1;
      return 0;
    }
    n = n * 10 + (*p - '0');
  }
  return neg ? -n : n;
}

static const char *get_opt(reader *r) {
  const char *s = get_str(r);
  if (s[0] == '-' && !s[1]) return NULL;
  if (s[0] != '+') {
    r->bad = 1;
    return NULL;
  }
  return s + 1;
}

static const char **get_list(reader *r, lm_arena *a, size_t *n) {
  long long count = get_num(r);
  if (r->bad || count < 0 || count > 100000) {
    r->bad = 1;
    *n = 0;
    return NULL;
  }
  const char **items = lm_arena_alloc(a, (size_t)(count ? count : 1) *
                                             sizeof *items);
  for (long long i = 0; i < count; i++) items[i] = get_str(r);
  *n = (size_t)count;
  return items;
}

void lm_cache_read(lm_env *env, lm_map *entries, char **buffer,
                   size_t *out_len) {
  char *path = cache_path(env);
  size_t len = 0;
  *out_len = 0;
  lm_err err;
  lm_err_init(&err);
  *buffer = NULL;
  int rc = lm_read_regular_file(path, CACHE_MAX_BYTES, buffer, &len, NULL,
                                &err);
  lm_err_free(&err);
  free(path);
  if (rc != LM_OK) return;   /* no cache yet */
  *out_len = len;
  size_t magic = strlen(CACHE_MAGIC);
  if (len < magic || memcmp(*buffer, CACHE_MAGIC, magic) != 0) return;
  /* Index the entries by name; each is parsed only when its file matches. */
  reader r = {*buffer + magic, *buffer + len, 0};
  while (r.p < r.end && !r.bad) {
    const char *start = r.p;
    const char *name = get_str(&r);
    for (int i = 0; i < 11; i++) get_str(&r);     /* up to checksum */
    for (int list = 0; list < 3 && !r.bad; list++) {
      long long n = get_num(&r);
      if (n < 0 || n > 100000) r.bad = 1;
      for (long long i = 0; i < n && !r.bad; i++) get_str(&r);
    }
    if (!r.bad) lm_map_put(entries, name, (void *)start);
  }
  if (r.bad) lm_map_free(entries);   /* a damaged cache is no cache */
}

int lm_cache_fill(lm_env *env, lm_script *s, const char *entry,
                  const char *end) {
  lm_arena *a = &env->script_arena;
  reader r = {entry, end, 0};
  (void)get_str(&r);
  lm_script_key key;
  key.size = get_num(&r);
  key.mtime_sec = get_num(&r);
  key.mtime_nsec = get_num(&r);
  key.ino = get_num(&r);
  key.ctime_sec = get_num(&r);
  key.ctime_nsec = get_num(&r);
  if (r.bad || memcmp(&key, &s->key, sizeof key) != 0) return 0;
  lm_script tmp = *s;
  /* Strings point into the cache buffer, which the environment keeps as
   * long as the scripts (env->cache_buf). */
  tmp.rev.id = get_str(&r);
  tmp.rev.message = get_opt(&r);
  tmp.doc = (char *)get_opt(&r);
  tmp.transactional = (int)get_num(&r);
  const char *sum = get_str(&r);
  if (strlen(sum) != 64) return 0;
  memcpy(tmp.checksum, sum, 65);
  tmp.rev.down = get_list(&r, a, &tmp.rev.ndown);
  tmp.rev.depends = get_list(&r, a, &tmp.rev.ndepends);
  tmp.rev.labels = get_list(&r, a, &tmp.rev.nlabels);
  if (r.bad || !*tmp.rev.id) return 0;
  tmp.rev.path = s->path;
  *s = tmp;
  return 1;
}

void lm_script_key_of(lm_script_key *key, const struct stat *st) {
  memset(key, 0, sizeof *key);
  key->size = (long long)st->st_size;
  key->mtime_sec = (long long)st->st_mtim.tv_sec;
  key->mtime_nsec = (long long)st->st_mtim.tv_nsec;
  key->ino = (long long)st->st_ino;
  key->ctime_sec = (long long)st->st_ctim.tv_sec;
  key->ctime_nsec = (long long)st->st_ctim.tv_nsec;
}

/* Only a regular file has a key: anything else is read (and refused) by
 * the loader, never taken from the cache. */
int lm_script_stat(int dirfd, const char *name, lm_script_key *key) {
  struct stat st;
  memset(key, 0, sizeof *key);
  if (fstatat(dirfd, name, &st, 0) != 0 || !S_ISREG(st.st_mode))
    return LM_ERROR;
  lm_script_key_of(key, &st);
  return LM_OK;
}
