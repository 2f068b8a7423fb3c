/*
 * introspect_norm.h - what every dialect's whole-schema introspection
 * does the same way: turning the database's text for a default, an
 * expression or a referential action into the form a replayed operation
 * gives (dialect.h, introspect_schema).  The dialect removes its own
 * spelling first (PostgreSQL's casts are removed here: `'x'::text` is
 * never valid SQLite).
 */
#ifndef LM_INTROSPECT_NORM_H
#define LM_INTROSPECT_NORM_H

#include "../src/schema.h"

/* An expression without the outer parentheses around it, casts to a type
 * (`::text`, `::character varying(20)`, `::text[]`) and parentheses
 * around a single name or literal: `((email)::text)` -> `email`.  The
 * result lives in the model's arena. */
const char *lm_norm_expr(lm_schema *s, const char *text);

/* A default as the database holds it, into the typed default an operation
 * would give: a lone string literal (LM_DEF_STRING), a whole number
 * (LM_DEF_INT), true/false (LM_DEF_BOOL), NULL (no default),
 * CURRENT_TIMESTAMP or now() (LM_DEF_FUNC "now"), else LM_DEF_SQL with the
 * expression normalized (a decimal number too, digits as written).  A
 * string literal cast to a number type (PostgreSQL writes `'-1'::integer`)
 * is that number.  Compare defaults by lm_default_text (schema_text.h):
 * a replayed 1.5 (LM_DEF_FLOAT) and an introspected "1.5" print alike. */
void lm_norm_default(lm_schema *s, lm_default *out, const char *text);

/* ON DELETE / ON UPDATE: upper case, single spaces; NULL for NO ACTION
 * (what not saying anything gives). */
const char *lm_norm_action(lm_schema *s, const char *action);

/* Copy a name list into the arena (names separated by `sep`). */
const char *const *lm_norm_split(lm_schema *s, const char *text, char sep,
                                 size_t *n);

#endif
