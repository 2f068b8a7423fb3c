/*
 * exec_record.h - the recording executor: op.* calls are not run but
 * handed, with the script line that made them, to an observer (lint's
 * rules), and replayed on a schema model.  No database is needed:
 * op.offline is true, op.query yields no rows, op.backfill records the
 * table it would fill without calling its function.
 */
#ifndef LM_EXEC_RECORD_H
#define LM_EXEC_RECORD_H

#include "core.h"
#include "schema.h"

typedef enum lm_record_kind {
  LM_REC_OP,                    /* a schema operation (or op.execute) */
  LM_REC_QUERY,                 /* op.query: reads only */
  LM_REC_BACKFILL               /* op.backfill(table, ...) */
} lm_record_kind;

/* One recorded call.  Its strings live as long as the call. */
typedef struct lm_record {
  lm_record_kind kind;
  const lm_op *op;              /* LM_REC_OP */
  const char *schema, *table;   /* LM_REC_BACKFILL */
  const char *sql;              /* LM_REC_QUERY */
  int line;                     /* the op call's line in the script, or 0 */
} lm_record;

typedef struct lm_recorder {
  lm_schema model;              /* the schema as the recorded ops leave it */
  /* Called before each call is replayed (model as it was before it);
   * NULL: replay only. */
  void (*observe)(void *payload, const lm_record *rec, lm_schema *model);
  void *payload;
  int executed;                 /* op.execute calls since the last reset */
  const struct lm_executor *saved;   /* the executor before install */
} lm_recorder;

void lm_recorder_init(lm_recorder *r);
void lm_recorder_free(lm_recorder *r);
/* Route env's op.* calls to r (offline, no database needed) until
 * lm_recorder_remove.  The op table's query and backfill record too. */
void lm_recorder_install(lm_env *env, lm_recorder *r);
void lm_recorder_remove(lm_env *env);

/* op.query's iterator in the recorder: no rows. */
int lm_op_no_rows(lua_State *L);

#endif
