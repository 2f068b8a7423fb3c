/*
 * introspect.h - the live database's whole schema read into a model, for
 * `luamig schema`, `verify` and the diff.
 */
#ifndef LM_INTROSPECT_H
#define LM_INTROSPECT_H

#include "core.h"
#include "schema.h"

/* Fill `out` (initialised by the caller, normally empty) with every table
 * of the default schema, or of the config's include_schemas, as the
 * dialect normalizes them (dialect.h, introspect_schema), sorted by schema
 * and name, leaving out luamig's own tables (the version table, the log
 * table, luamig_backfill and any other luamig_* table).  Connects when
 * not connected.  LM_OK, or LM_ERROR with env->err set. */
int lm_introspect_database(lm_env *env, lm_schema *out);

/* Is `name` one of luamig's own tables in this environment? */
int lm_is_luamig_table(const lm_env *env, const char *name);

#endif
