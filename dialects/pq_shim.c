/*
 * pq_shim.c - load libpq on first use (see pq_shim.h for why).
 */
#include <dlfcn.h>

#define LM_PQ_NO_REDIRECT
#include "pq_shim.h"

lm_pq_api lm_pq;

int lm_pq_load(lm_err *err) {
  static int loaded;
  if (loaded) return LM_OK;
  /* The soname is stable across PostgreSQL releases. */
  void *lib = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
  if (!lib)
    return lm_err_set(err, "cannot load libpq (the PostgreSQL client "
                      "library, Debian package libpq5): %s", dlerror());
  lm_pq_api api;
  /* dlsym returns an object pointer; POSIX guarantees it converts to a
   * function pointer, which the union spells without a cast warning. */
#define LM_PQ_LOAD(name)                                                      \
  {                                                                           \
    union { void *obj; __typeof__(api.name) fn; } u;                          \
    u.obj = dlsym(lib, #name);                                                \
    if (!u.obj)                                                               \
      return lm_err_set(err, "libpq lacks %s: %s", #name, dlerror());         \
    api.name = u.fn;                                                          \
  }
  LM_PQ_FUNCTIONS(LM_PQ_LOAD)
#undef LM_PQ_LOAD
  lm_pq = api;
  loaded = 1;
  return LM_OK;
}
