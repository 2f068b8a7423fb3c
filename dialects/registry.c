/*
 * registry.c - the list of dialects; adding a database is adding a file
 * and a line here.
 */
#include <string.h>

#include "dialect.h"

extern const lm_dialect lm_sqlite_dialect;
extern const lm_dialect lm_postgresql_dialect;

const lm_dialect *const lm_dialects[] = {
  &lm_sqlite_dialect,
  &lm_postgresql_dialect,
  NULL
};

const lm_dialect *lm_dialect_for_scheme(const char *scheme) {
  for (size_t i = 0; lm_dialects[i]; i++)
    for (const char *const *s = lm_dialects[i]->schemes; *s; s++)
      if (strcmp(*s, scheme) == 0) return lm_dialects[i];
  return NULL;
}

const lm_dialect *lm_dialect_for_lint(void) {
  for (size_t i = 0; lm_dialects[i]; i++)
    if (lm_dialects[i]->version >= 12 && lm_dialects[i]->ddl_locks_block)
      return lm_dialects[i];
  return lm_dialects[0];
}
