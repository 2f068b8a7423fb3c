/*
 * util.c - error records, string buffers, arenas, hash map, files, time.
 */
#define _POSIX_C_SOURCE 200809L
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

volatile sig_atomic_t lm_signal_received = 0;

/* ---- errors ---------------------------------------------------------- */

void lm_err_init(lm_err *err) {
  err->msg = NULL;
  err->sqlstate[0] = '\0';
  err->code = LM_OK;
  err->kind = NULL;
  err->revision = err->file = NULL;
  err->line = 0;
}

static void clear_where(lm_err *err) {
  free(err->revision);
  free(err->file);
  err->revision = err->file = NULL;
  err->line = 0;
}

void lm_err_free(lm_err *err) {
  free(err->msg);
  clear_where(err);
  lm_err_init(err);
}

int lm_err_vset(lm_err *err, const char *fmt, va_list ap) {
  lm_buf b = LM_BUF_INIT;
  lm_buf_vprintf(&b, fmt, ap);
  free(err->msg);
  err->msg = lm_buf_detach(&b);
  err->sqlstate[0] = '\0';
  err->code = LM_ERROR;
  err->kind = NULL;
  clear_where(err);
  return LM_ERROR;
}

int lm_err_set(lm_err *err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lm_err_vset(err, fmt, ap);
  va_end(ap);
  return LM_ERROR;
}

int lm_err_usage(lm_err *err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lm_err_vset(err, fmt, ap);
  va_end(ap);
  err->code = LM_EUSAGE;
  return LM_EUSAGE;
}

void lm_err_prefix(lm_err *err, const char *fmt, ...) {
  lm_buf b = LM_BUF_INIT;
  va_list ap;
  va_start(ap, fmt);
  lm_buf_vprintf(&b, fmt, ap);
  va_end(ap);
  if (err->msg) {
    lm_buf_puts(&b, ": ");
    lm_buf_puts(&b, err->msg);
  }
  free(err->msg);
  err->msg = lm_buf_detach(&b);
  if (err->code == LM_OK) err->code = LM_ERROR;
}

void lm_err_move(lm_err *dst, lm_err *src) {
  free(dst->msg);
  clear_where(dst);
  *dst = *src;
  lm_err_init(src);
}

const char *lm_err_msg(const lm_err *err) {
  if (err->msg) return err->msg;
  /* set without a message, as memory ran out (oom.c) */
  if (err->kind && strcmp(err->kind, "out_of_memory") == 0)
    return "out of memory";
  return "unknown error";
}

int lm_err_kind(lm_err *err, const char *kind) {
  err->kind = kind;
  if (err->code == LM_OK) err->code = LM_ERROR;
  return err->code;
}

const char *lm_err_code(const lm_err *err) {
  if (err->sqlstate[0]) return err->sqlstate;
  if (err->kind) return err->kind;
  return err->code == LM_EUSAGE ? "usage" : "";
}

void lm_err_copy_code(lm_err *dst, const lm_err *src) {
  memcpy(dst->sqlstate, src->sqlstate, sizeof dst->sqlstate);
  dst->kind = src->kind;
  if (dst != src) {
    clear_where(dst);
    lm_err_where(dst, src->revision, src->file, src->line);
  }
}

void lm_err_where(lm_err *err, const char *revision, const char *file,
                  int line) {
  /* copied before the old one goes, so that running out of memory
   * leaves nothing dangling */
  if (revision) {
    char *copy = lm_xstrdup(revision);
    free(err->revision);
    err->revision = copy;
  }
  if (file) {
    char *copy = lm_xstrdup(file);
    free(err->file);
    err->file = copy;
  }
  if (line > 0) err->line = line;
}

/* ---- allocation ------------------------------------------------------ */

void *lm_xmalloc(size_t n) {
  void *p = lm_oom_injected() ? NULL : malloc(n ? n : 1);
  if (!p) lm_out_of_memory();
  return p;
}

void *lm_xcalloc(size_t n, size_t size) {
  void *p = lm_oom_injected() ? NULL : calloc(n ? n : 1, size ? size : 1);
  if (!p) lm_out_of_memory();
  return p;
}

void *lm_xrealloc(void *p, size_t n) {
  void *q = lm_oom_injected() ? NULL : realloc(p, n ? n : 1);
  if (!q) lm_out_of_memory();
  return q;
}

char *lm_xstrdup(const char *s) {
  return lm_xstrndup(s, strlen(s));
}

char *lm_xstrndup(const char *s, size_t n) {
  char *p = lm_xmalloc(n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

char *lm_xasprintf(const char *fmt, ...) {
  lm_buf b = LM_BUF_INIT;
  va_list ap;
  va_start(ap, fmt);
  lm_buf_vprintf(&b, fmt, ap);
  va_end(ap);
  return lm_buf_detach(&b);
}

/* ---- string buffer --------------------------------------------------- */

void lm_buf_init(lm_buf *b) {
  b->data = NULL;
  b->len = b->cap = 0;
}

void lm_buf_free(lm_buf *b) {
  free(b->data);
  lm_buf_init(b);
}

void lm_buf_reset(lm_buf *b) {
  b->len = 0;
  if (b->data) b->data[0] = '\0';
}

void lm_buf_grow(lm_buf *b, size_t extra) {
  size_t need = b->len + extra + 1;
  if (need <= b->cap) return;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < need) cap *= 2;
  b->data = lm_xrealloc(b->data, cap);
  b->cap = cap;
}

void lm_buf_add(lm_buf *b, const char *s, size_t n) {
  lm_buf_grow(b, n);
  if (n) memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void lm_buf_puts(lm_buf *b, const char *s) {
  lm_buf_add(b, s, strlen(s));
}

void lm_buf_putc(lm_buf *b, char c) {
  lm_buf_add(b, &c, 1);
}

void lm_buf_vprintf(lm_buf *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) return;
  lm_buf_grow(b, (size_t)n);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
}

void lm_buf_printf(lm_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  lm_buf_vprintf(b, fmt, ap);
  va_end(ap);
}

const char *lm_buf_str(const lm_buf *b) {
  return b->data ? b->data : "";
}

char *lm_buf_detach(lm_buf *b) {
  char *s = b->data ? b->data : lm_xstrdup("");
  lm_buf_init(b);
  return s;
}

/* ---- string vector ------------------------------------------------- */

void lm_strvec_push(lm_strvec *v, char *owned) {
  if (v->n == v->cap) {
    v->cap = v->cap ? v->cap * 2 : 8;
    v->items = lm_xrealloc(v->items, v->cap * sizeof *v->items);
  }
  v->items[v->n++] = owned;
}

void lm_strvec_pushf(lm_strvec *v, const char *fmt, ...) {
  lm_buf b = LM_BUF_INIT;
  va_list ap;
  va_start(ap, fmt);
  lm_buf_vprintf(&b, fmt, ap);
  va_end(ap);
  lm_strvec_push(v, lm_buf_detach(&b));
}

void lm_strvec_free(lm_strvec *v) {
  for (size_t i = 0; i < v->n; i++) free(v->items[i]);
  free(v->items);
  v->items = NULL;
  v->n = v->cap = 0;
}

/* ---- arena ----------------------------------------------------------- */

struct lm_arena_block {
  lm_arena_block *next;
  size_t used, cap;
  max_align_t data[];
};

void lm_arena_init(lm_arena *a) {
  a->head = NULL;
}

void lm_arena_free(lm_arena *a) {
  lm_arena_block *blk = a->head;
  while (blk) {
    lm_arena_block *next = blk->next;
    free(blk);
    blk = next;
  }
  a->head = NULL;
}

void *lm_arena_alloc(lm_arena *a, size_t n) {
  const size_t align = sizeof(max_align_t);
  n = (n + align - 1) / align * align;
  if (!n) n = align;
  lm_arena_block *blk = a->head;
  if (!blk || blk->cap - blk->used < n) {
    size_t cap = n > 8192 ? n : 8192;
    blk = lm_xmalloc(sizeof *blk + cap);
    blk->used = 0;
    blk->cap = cap;
    blk->next = a->head;
    a->head = blk;
  }
  void *p = (char *)blk->data + blk->used;
  blk->used += n;
  memset(p, 0, n);
  return p;
}

char *lm_arena_strndup(lm_arena *a, const char *s, size_t n) {
  char *p = lm_arena_alloc(a, n + 1);
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

char *lm_arena_strdup(lm_arena *a, const char *s) {
  return s ? lm_arena_strndup(a, s, strlen(s)) : NULL;
}

/* ---- hash map -------------------------------------------------------- */

/* FNV-1a.  The string form takes one pass, not strlen and then the bytes:
 * the graph's maps hash every revision id at start-up. */
#define FNV_OFFSET 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL

uint64_t lm_hash_bytes(const void *p, size_t n) {
  const unsigned char *s = p;
  uint64_t h = FNV_OFFSET;
  for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * FNV_PRIME;
  return h;
}

uint64_t lm_hash_str(const char *s) {
  uint64_t h = FNV_OFFSET;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * FNV_PRIME;
  return h;
}

void lm_map_init(lm_map *m) {
  m->keys = NULL;
  m->vals = NULL;
  m->cap = m->count = 0;
}

void lm_map_free(lm_map *m) {
  free(m->keys);
  free(m->vals);
  lm_map_init(m);
}

static void map_rehash(lm_map *m, size_t cap) {
  const char **keys = m->keys;
  void **vals = m->vals;
  size_t old = m->cap;
  m->keys = lm_xcalloc(cap, sizeof *m->keys);
  m->vals = lm_xcalloc(cap, sizeof *m->vals);
  m->cap = cap;
  m->count = 0;
  for (size_t i = 0; i < old; i++)
    if (keys[i]) lm_map_put(m, keys[i], vals[i]);
  free(keys);
  free(vals);
}

void *lm_map_put(lm_map *m, const char *key, void *val) {
  if ((m->count + 1) * 2 > m->cap) map_rehash(m, m->cap ? m->cap * 2 : 16);
  size_t i = (size_t)lm_hash_str(key) & (m->cap - 1);
  while (m->keys[i]) {
    if (strcmp(m->keys[i], key) == 0) {
      void *old = m->vals[i];
      m->vals[i] = val;
      return old;
    }
    i = (i + 1) & (m->cap - 1);
  }
  m->keys[i] = key;
  m->vals[i] = val;
  m->count++;
  return NULL;
}

void *lm_map_get(const lm_map *m, const char *key) {
  if (!m->cap) return NULL;
  size_t i = (size_t)lm_hash_str(key) & (m->cap - 1);
  while (m->keys[i]) {
    if (strcmp(m->keys[i], key) == 0) return m->vals[i];
    i = (i + 1) & (m->cap - 1);
  }
  return NULL;
}

/* ---- files and time -------------------------------------------------- */

int lm_read_file(const char *path, char **out, size_t *len, lm_err *err) {
  FILE *f = fopen(path, "rb");
  if (!f) return lm_err_set(err, "cannot open %s: %s", path, strerror(errno));
  lm_buf b = LM_BUF_INIT;
  char chunk[16384];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) lm_buf_add(&b, chunk, n);
  int failed = ferror(f);
  fclose(f);
  if (failed) {
    lm_buf_free(&b);
    return lm_err_set(err, "cannot read %s: %s", path, strerror(errno));
  }
  if (len) *len = b.len;
  *out = lm_buf_detach(&b);
  return LM_OK;
}

static const char *file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

int lm_read_regular_file(const char *path, size_t max, char **out,
                         size_t *len, struct stat *st, lm_err *err) {
  /* O_NONBLOCK: opening a FIFO must not wait for a writer. */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return lm_err_set(err, "cannot open %s: %s", path, strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0) {
    int e = errno;
    close(fd);
    return lm_err_set(err, "cannot read %s: %s", path, strerror(e));
  }
  if (!S_ISREG(sb.st_mode)) {
    close(fd);
    return lm_err_set(err, "%s is %s; luamig reads only regular files", path,
                      file_kind(sb.st_mode));
  }
  if ((uintmax_t)sb.st_size > max) {
    close(fd);
    return lm_err_set(err, "%s is larger than %zu MB", path, max >> 20);
  }
  lm_buf b = LM_BUF_INIT;
  lm_buf_grow(&b, (size_t)sb.st_size + 1);
  char chunk[16384];
  ssize_t n;
  /* The file may grow while it is read: stop one byte past the bound. */
  while ((n = read(fd, chunk, sizeof chunk)) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    lm_buf_add(&b, chunk, (size_t)n);
    if (b.len > max) break;
  }
  int e = errno;
  close(fd);
  if (n < 0 || b.len > max) {
    lm_buf_free(&b);
    if (n < 0) return lm_err_set(err, "cannot read %s: %s", path, strerror(e));
    return lm_err_set(err, "%s is larger than %zu MB", path, max >> 20);
  }
  if (st) *st = sb;
  if (len) *len = b.len;
  lm_buf_add(&b, "", 0);   /* NUL-terminated, an empty file too */
  *out = lm_buf_detach(&b);
  return LM_OK;
}

double lm_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void lm_utc_timestamp(char out[32]) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  char date[24];
  strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &tm);
  snprintf(out, 32, "%.19s.%03d", date, (int)(ts.tv_nsec / 1000000) % 1000);
}

/* ---- revision ids and branch labels ---------------------------------- */

/* A value for a message: printable ASCII as is, anything else escaped,
 * long values cut, so that the message itself stays one line. */
static void put_escaped(lm_buf *b, const char *s) {
  size_t i = 0;
  for (; s[i] && i < 48; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\n') lm_buf_puts(b, "\\n");
    else if (c == '\\' || c == '\'') lm_buf_printf(b, "\\%c", c);
    else if (c < 0x20 || c >= 0x7f) lm_buf_printf(b, "\\x%02x", c);
    else lm_buf_putc(b, (char)c);
  }
  if (s[i]) lm_buf_puts(b, "...");
}

/* ASCII only: a locale must not widen what an id may hold. */
static int name_char(char c, const char *extra) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '_' || (c && strchr(extra, c));
}

static int check_name(const char *s, const char *kind, const char *extra,
                      size_t max, const char *rule, lm_err *err) {
  size_t len = strlen(s), bad = 0;
  while (bad < len && name_char(s[bad], extra)) bad++;
  if (bad == len && len && (!max || len <= max)) return LM_OK;
  lm_buf b = LM_BUF_INIT;
  lm_buf_printf(&b, "%s '", kind);
  put_escaped(&b, s);
  lm_buf_puts(&b, "': ");
  if (!len) {
    lm_buf_puts(&b, "it is empty");
  } else if (bad < len) {
    char one[2] = {s[bad], '\0'};
    lm_buf_puts(&b, "character '");
    put_escaped(&b, one);
    lm_buf_puts(&b, "' not allowed");
  } else {
    lm_buf_printf(&b, "%zu characters, more than %zu", len, max);
  }
  lm_buf_printf(&b, " (%s)", rule);
  int rc = lm_err_set(err, "%s", b.data);
  lm_buf_free(&b);
  return rc;
}

int lm_check_rev_id(const char *id, lm_err *err) {
  return check_name(id, "revision id", "", LM_REV_ID_MAX,
                    "an id is 1 to 32 letters, digits and underscores", err);
}

int lm_check_branch_label(const char *label, lm_err *err) {
  return check_name(label, "branch label", "-.", 0,
                    "a label is letters, digits, '_', '-' and '.'", err);
}
