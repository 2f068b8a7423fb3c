/*
 * oom.c - recovery points for running out of memory (oom.h): what
 * lm_xmalloc & co do when malloc fails.
 */
#define _POSIX_C_SOURCE 200809L
#include <lauxlib.h>
#include <lua.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "oom.h"

/* The innermost recovery point of this thread; the test hook's countdown,
 * which every thread's allocations count down (a backfill's writer
 * thread's too). */
static _Thread_local lm_oom_point *top;
static _Atomic long fail_countdown;
static _Atomic int fail_elsewhere;      /* count other threads' only */
static pthread_t fail_setter;

/* How many calls are active on L. */
static int lua_depth(lua_State *L) {
  lua_Debug ar;
  int depth = 0;
  while (lua_getstack(L, depth, &ar)) depth++;
  return depth;
}

/* Name the failure without allocating: an lm_err with no message and
 * this code reads "out of memory" (lm_err_msg). */
static void set_out_of_memory(lm_err *err, int keep_message) {
  if (!keep_message) {
    free(err->msg);
    err->msg = NULL;
  }
  err->sqlstate[0] = '\0';
  err->code = LM_ERROR;
  err->kind = "out_of_memory";
}

int lm_oom_spent(const lm_env *env) {
  return env && env->oom_spent;
}

int lm_oom_enter(lm_oom_point *p, lm_env *const *envp, int refuse_spent) {
  lm_env *env = envp ? *envp : NULL;
  p->envp = envp;
  p->hit = 0;
  p->done = 1;
  p->prev = NULL;
  if (refuse_spent && lm_oom_spent(env)) {
    free(env->err.msg);
    env->err.msg = strdup("out of memory earlier: this environment can only "
                          "be closed");
    set_out_of_memory(&env->err, 1);
    return LM_ERROR;
  }
  p->depth = env && env->L ? lua_depth(env->L) : 0;
  p->done = 0;
  p->prev = top;
  top = p;
  return LM_OK;
}

void lm_oom_leave(lm_oom_point *p) {
  if (!p->done) {
    top = p->prev;
    p->done = 1;
  }
  lm_env *env = p->hit && p->envp ? *p->envp : NULL;
  if (env) {
    env->oom_spent = 1;
    set_out_of_memory(&env->err, 1);
  }
}

void lm_oom_fail_after(long n, int other_threads) {
  fail_setter = pthread_self();
  atomic_store(&fail_elsewhere, other_threads);
  atomic_store(&fail_countdown, n > 0 ? n : 0);
}

int lm_oom_injected(void) {
  if (atomic_load(&fail_elsewhere) && pthread_equal(pthread_self(), fail_setter))
    return 0;
  long n = atomic_load(&fail_countdown);
  while (n > 0 && !atomic_compare_exchange_weak(&fail_countdown, &n, n - 1)) {}
  return n == 1;
}

void lm_oom_set(lm_err *err) { set_out_of_memory(err, 0); }

void lm_out_of_memory(void) {
  lm_oom_point *p = top;
  if (!p) {
    fputs("luamig: out of memory\n", stderr);
    exit(1);
  }
  p->hit = 1;
  lm_env *env = p->envp ? *p->envp : NULL;
  if (env && env->L && lua_depth(env->L) > p->depth) {
    /* A Lua call runs above the point: unwind to its lua_pcall, as a
     * script error placed at the line that called the op. */
    luaL_where(env->L, 1);
    lua_pushliteral(env->L, "out of memory");
    lua_concat(env->L, 2);
    lua_error(env->L);
  }
  top = p->prev;
  p->done = 1;
  if (env) {
    env->oom_spent = 1;
    set_out_of_memory(&env->err, 0);
  }
  longjmp(p->jump, 1);
}

int lm_oom_close_spent(lm_env *env) {
  if (!lm_oom_spent(env)) return 0;
  /* The database rolls back and the run lock goes with the connection;
   * the rest is left as it is (oom.h). */
  lm_tx_rollback(env);
  lm_disconnect(env);
  return 1;
}
