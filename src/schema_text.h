/*
 * schema_text.h - a schema model in one portable, stable text form (what
 * `luamig schema` prints and the schema diff can quote), and as JSON.
 */
#ifndef LM_SCHEMA_TEXT_H
#define LM_SCHEMA_TEXT_H

#include "schema.h"

/* A type by its portable name (`string(80)`, `numeric(10,2)`), or the
 * dialect's own words for LM_T_RAW. */
void lm_type_text(lm_buf *out, const lm_type *type);
/* A default as SQL in one spelling: 'draft', 42, true, now(); nothing for
 * none. */
void lm_default_text(lm_buf *out, const lm_default *def);
/* One table's block: a "table NAME" line, then one line per column, the
 * primary key, unique constraints, checks, indexes and foreign keys, each
 * group sorted so that the order they were made in does not show. */
void lm_mtable_text(lm_buf *out, const lm_mtable *t);
/* Every table's block, separated by blank lines, then the views. */
void lm_schema_text(lm_buf *out, const lm_schema *s);
/* The model as JSON: {"tables": [...], "views": [...]}.  `only` (when not
 * NULL) restricts tables to those flagged. */
void lm_schema_model_json(lm_buf *out, const lm_schema *s,
                          const char *only);

#endif
