/*
 * oom.h - running out of memory returns an error instead of ending the
 * process.
 *
 * The core allocates through lm_xmalloc & co (util.h), which never return
 * NULL.  Each public entry (the C API's functions, the module's methods
 * that reach the core) sets a recovery point for its thread; when an
 * allocation fails under it:
 *
 *  - if the env's Lua state has run deeper since the point was set (a
 *    script, the configuration, an op), the failure is raised there as
 *    the Lua error "out of memory", and unwinds to the innermost
 *    lua_pcall like any script error: the migration in flight rolls back
 *    through the normal path;
 *  - otherwise the entry's own frame is returned to (longjmp) with the
 *    error set, skipping the C frames in between.
 *
 * Either way the entry returns LM_ERROR with the code "out_of_memory",
 * and the env is spent: memory the skipped frames held is leaked and
 * their structures may be half-built, so every later call on it fails the
 * same way except lm_close, which only rolls back and closes the database
 * connection (so the database is left as it was and the run lock goes)
 * and frees nothing else.  A backfill's writer thread has a point of its
 * own: the batch's write fails with that code and the migration rolls
 * back as after any failed write.  An allocation that fails with no
 * recovery point (code outside any entry) still ends the process with a
 * message and exit status 1.
 */
#ifndef LM_OOM_H
#define LM_OOM_H

#include <setjmp.h>

typedef struct lm_env lm_env;

typedef struct lm_oom_point {
  jmp_buf jump;
  lm_env *const *envp;          /* the entry's env, or NULL */
  int depth;                    /* its Lua state's call depth at entry */
  int hit;                      /* an allocation failed under this point */
  int done;                     /* no longer on the thread's list */
  struct lm_oom_point *prev;
} lm_oom_point;

/* Put p on the thread's list.  Returns LM_ERROR (the env's error set)
 * when the env is spent and the call must not start. */
int lm_oom_enter(lm_oom_point *p, lm_env *const *envp, int refuse_spent);
/* Take p off the list (the cleanup of LM_OOM_ENTRY), naming the failure
 * "out_of_memory" when an allocation failed under it. */
void lm_oom_leave(lm_oom_point *p);
/* Name err "out of memory" (code out_of_memory), allocating nothing. */
struct lm_err;
void lm_oom_set(struct lm_err *err);
/* Is env spent by running out of memory? */
int lm_oom_spent(const lm_env *env);
/* lm_close of a spent env: roll back, close the connection; returns 0
 * when env is not spent (the whole close is to be done). */
int lm_oom_close_spent(lm_env *env);

/* Test hook: the n-th allocation from now on, on any thread (through
 * lm_xmalloc & co), fails, once; 0 turns it off.  other_threads: count
 * only those of threads other than the caller's (a backfill's writer). */
void lm_oom_fail_after(long n, int other_threads);

/* The first lines of a public function: a recovery point for env (an
 * lm_env * variable; NULL allowed) that lives as long as the function's
 * scope; on a failure the function returns `ret`.  OPEN is lm_open's
 * (*out is set to NULL first), CLOSE lm_close's (a spent env is closed). */
#if defined(__GNUC__)
#define LM_OOM_CLEANUP __attribute__((cleanup(lm_oom_leave)))
#define LM_OOM_GUARD(envp, refuse, ret)                               \
  lm_oom_point lm_oom_here_ LM_OOM_CLEANUP;                           \
  if (lm_oom_enter(&lm_oom_here_, (envp), (refuse)) != 0) return ret; \
  if (setjmp(lm_oom_here_.jump)) return ret
#else
#define LM_OOM_GUARD(envp, refuse, ret) ((void)0)
#endif
#define LM_OOM_ENTRY(env, ret) LM_OOM_GUARD(&(env), 1, ret)
#define LM_OOM_OPEN(out, ret) *(out) = NULL; LM_OOM_GUARD((out), 1, ret)
#define LM_OOM_CLOSE(env) \
  LM_OOM_GUARD(NULL, 0, ); if (lm_oom_close_spent(env)) return

#endif
