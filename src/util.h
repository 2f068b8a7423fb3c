/*
 * util.h - small building blocks shared by the whole core: an error
 * record, a growable string buffer, an arena for short-lived values and a
 * string-keyed hash map.  Nothing here knows about databases or Lua.
 */
#ifndef LM_UTIL_H
#define LM_UTIL_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

#if defined(__GNUC__)
#define LM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define LM_PRINTF(a, b)
#endif

/* Status codes: every function that can fail returns one of these and
 * leaves a message in an lm_err the caller owns. */
enum {
  LM_OK = 0,
  LM_ERROR = -1,        /* failure: exit code 1 */
  LM_EUSAGE = -2,       /* usage error: exit code 2 */
  LM_EINTR = -3         /* interrupted by a signal */
};

/* An error record: a message for people and, for programs, the SQLSTATE
 * when a database produced it or a luamig code naming the condition
 * (README, "Error codes"), and where it happened when a revision script
 * failed. */
typedef struct lm_err {
  char *msg;            /* owned; NULL when no error */
  char sqlstate[6];     /* "" when unknown */
  int code;             /* LM_ERROR, LM_EUSAGE, ... */
  const char *kind;     /* a luamig code ("lock_timeout", ...), a string
                           literal; NULL when none.  lm_err_set clears it. */
  char *revision;       /* owned: the revision whose script failed, or NULL */
  char *file;           /* owned: that script's path, or NULL */
  int line;             /* the line in file where it failed, or 0 */
} lm_err;

void lm_err_init(lm_err *err);
void lm_err_free(lm_err *err);
/* Replace the message; returns LM_ERROR so callers can `return lm_err_set(...)`. */
int lm_err_set(lm_err *err, const char *fmt, ...) LM_PRINTF(2, 3);
int lm_err_vset(lm_err *err, const char *fmt, va_list ap);
/* Same, but the status is LM_EUSAGE. */
int lm_err_usage(lm_err *err, const char *fmt, ...) LM_PRINTF(2, 3);
/* Put context in front of the existing message: "prefix: old". */
void lm_err_prefix(lm_err *err, const char *fmt, ...) LM_PRINTF(2, 3);
/* Move the error from src to dst (dst's old message is freed). */
void lm_err_move(lm_err *dst, lm_err *src);
const char *lm_err_msg(const lm_err *err);
/* Name the failure just set with a luamig code (a string literal); returns
 * the status, so callers can `return lm_err_kind(err, "dirty")`. */
int lm_err_kind(lm_err *err, const char *kind);
/* The code for programs: the SQLSTATE, else the luamig code ("usage" for a
 * usage error without one), else "". */
const char *lm_err_code(const lm_err *err);
/* Give dst the code and the place of src: for a message rebuilt from
 * another one. */
void lm_err_copy_code(lm_err *dst, const lm_err *src);
/* Say where the failure just set happened (any may be NULL or 0: kept as
 * it was).  lm_err_set clears the place, lm_err_prefix keeps it. */
void lm_err_where(lm_err *err, const char *revision, const char *file,
                  int line);

/* Allocation that never returns NULL: out of memory goes to the thread's
 * recovery point (oom.h), so that the public call running returns an
 * error; with none, the process ends with a message (exit status 1). */
void *lm_xmalloc(size_t n);
void *lm_xcalloc(size_t n, size_t size);
void *lm_xrealloc(void *p, size_t n);
char *lm_xstrdup(const char *s);
char *lm_xstrndup(const char *s, size_t n);
char *lm_xasprintf(const char *fmt, ...) LM_PRINTF(1, 2);
/* oom.c: what a failed allocation leads to (it does not return), and
 * whether the test hook makes this allocation fail (oom.h). */
void lm_out_of_memory(void);
int lm_oom_injected(void);

/* A growable NUL-terminated string. */
typedef struct lm_buf {
  char *data;           /* always NUL-terminated once anything was added */
  size_t len, cap;
} lm_buf;

#define LM_BUF_INIT {NULL, 0, 0}
void lm_buf_init(lm_buf *b);
void lm_buf_free(lm_buf *b);
void lm_buf_reset(lm_buf *b);
void lm_buf_grow(lm_buf *b, size_t extra);
void lm_buf_add(lm_buf *b, const char *s, size_t n);
void lm_buf_puts(lm_buf *b, const char *s);
void lm_buf_putc(lm_buf *b, char c);
void lm_buf_printf(lm_buf *b, const char *fmt, ...) LM_PRINTF(2, 3);
void lm_buf_vprintf(lm_buf *b, const char *fmt, va_list ap);
/* The contents as a C string ("" when empty); stays owned by the buffer. */
const char *lm_buf_str(const lm_buf *b);
/* Hand the contents to the caller (malloc'ed) and empty the buffer. */
char *lm_buf_detach(lm_buf *b);

/* A growable list of owned strings (e.g. the statements one operation
 * compiles to). */
typedef struct lm_strvec {
  char **items;
  size_t n, cap;
} lm_strvec;

#define LM_STRVEC_INIT {NULL, 0, 0}
void lm_strvec_push(lm_strvec *v, char *owned);
void lm_strvec_pushf(lm_strvec *v, const char *fmt, ...) LM_PRINTF(2, 3);
void lm_strvec_free(lm_strvec *v);

/* An arena: many small allocations freed at once. */
typedef struct lm_arena_block lm_arena_block;
typedef struct lm_arena {
  lm_arena_block *head;
} lm_arena;

void lm_arena_init(lm_arena *a);
void lm_arena_free(lm_arena *a);
void *lm_arena_alloc(lm_arena *a, size_t n);     /* zeroed */
char *lm_arena_strdup(lm_arena *a, const char *s);
char *lm_arena_strndup(lm_arena *a, const char *s, size_t n);

/* A string-keyed hash map to pointers (open addressing).  Keys are not
 * copied: they must outlive the map. */
typedef struct lm_map {
  const char **keys;
  void **vals;
  size_t cap, count;
} lm_map;

void lm_map_init(lm_map *m);
void lm_map_free(lm_map *m);
/* Returns the previous value for key, or NULL. */
void *lm_map_put(lm_map *m, const char *key, void *val);
void *lm_map_get(const lm_map *m, const char *key);
uint64_t lm_hash_str(const char *s);
uint64_t lm_hash_bytes(const void *p, size_t n);

/* Read a whole file; returns LM_OK and a malloc'ed buffer (NUL-terminated). */
int lm_read_file(const char *path, char **out, size_t *len, lm_err *err);

/* Revision ids and branch labels as luamig accepts them, from scripts and
 * from the command line alike: an id is 1 to LM_REV_ID_MAX letters, digits
 * and underscores (the version table's column holds 32); a label may also
 * hold '-' and '.'.  Anything else could break out of a file name or of a
 * comment in --sql output.  On a bad one, the message names the value
 * (escaped) and the character; callers put where it came from in front. */
#define LM_REV_ID_MAX 32
int lm_check_rev_id(const char *id, lm_err *err);
int lm_check_branch_label(const char *label, lm_err *err);

/* Read a whole regular file of at most max bytes: a FIFO, a device or a
 * directory is refused with a message naming it, never waited on or read
 * without end.  *st (when not NULL) gets the status of the file read. */
struct stat;
int lm_read_regular_file(const char *path, size_t max, char **out,
                         size_t *len, struct stat *st, lm_err *err);

/* Monotonic seconds, for durations. */
double lm_now(void);
/* UTC wall-clock time as "YYYY-MM-DD HH:MM:SS.mmm" into a 32-byte buffer. */
void lm_utc_timestamp(char out[32]);

/* The signal (SIGINT, SIGTERM) the command line received, or 0.  Long
 * waits and Lua loops check it so that a run stops promptly, rolling back
 * the migration in flight. */
extern volatile sig_atomic_t lm_signal_received;

/* SHA-256 of a byte string as 64 lowercase hex characters plus NUL. */
void lm_sha256_hex(const void *data, size_t len, char out[65]);

#endif
