/*
 * versions.c - the versions of the database libraries luamig runs with,
 * for `luamig --version`: SQLite as linked, libpq when it can be loaded
 * (it is loaded only for PostgreSQL URLs, see pq_shim.c).
 */
#include <dlfcn.h>
#include <sqlite3.h>

#include "dialect.h"

void lm_dialect_versions(lm_buf *out) {
  lm_buf_printf(out, "SQLite %s", sqlite3_libversion());
  void *lib = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
  int (*lib_version)(void) = NULL;
  if (lib) *(void **)&lib_version = dlsym(lib, "PQlibVersion");
  if (lib_version) {
    int v = lib_version();
    /* 10 and later: major * 10000 + minor. */
    lm_buf_printf(out, ", libpq %d.%d", v / 10000, v % 10000);
  } else {
    lm_buf_puts(out, ", libpq not found");
  }
  if (lib) dlclose(lib);
}
