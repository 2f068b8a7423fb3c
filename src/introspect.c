/*
 * introspect.c - the whole live schema through the dialect seam.  The
 * dialect reads and normalizes; the core decides which schemas are read
 * and which tables are luamig's own, and puts the result in a stable
 * order.
 */
#include <string.h>

#include "introspect.h"

/* Prefix of every table luamig creates (the default version and log
 * tables, luamig_backfill, and whatever later keeps state). */
#define OWN_PREFIX "luamig_"

int lm_is_luamig_table(const lm_env *env, const char *name) {
  if (strncmp(name, OWN_PREFIX, strlen(OWN_PREFIX)) == 0) return 1;
  if (env->version_table && strcmp(name, env->version_table) == 0) return 1;
  return env->log_table && strcmp(name, env->log_table) == 0;
}

int lm_introspect_database(lm_env *env, lm_schema *out) {
  if (!env->conn && lm_connect(env) != LM_OK) return LM_ERROR;
  const lm_dialect *d = env->dialect;
  if (d->version < 6 || !d->introspect_schema)
    return lm_err_set(&env->err, "the %s dialect cannot read a whole schema",
                      d->name);
  const char *skip[3];
  size_t nskip = 0;
  if (env->version_table) skip[nskip++] = env->version_table;
  if (env->log_table) skip[nskip++] = env->log_table;
  skip[nskip++] = "luamig_backfill";
  const char *const *schemas =
      (const char *const *)env->include_schemas.items;
  if (d->introspect_schema(env->conn, schemas, env->include_schemas.n,
                           skip, nskip, out, &env->err) != LM_OK)
    return LM_ERROR;
  /* Whatever else luamig owns is left out here, whatever the dialect
   * was told. */
  size_t k = 0;
  for (size_t i = 0; i < out->ntables; i++)
    if (!lm_is_luamig_table(env, out->tables[i].name))
      out->tables[k++] = out->tables[i];
  out->ntables = k;
  lm_schema_sort(out);
  return LM_OK;
}
