/*
 * data_op.h - data operations as values (DESIGN 5 and 8).
 *
 * op.query, op.bulk_insert and op.backfill check their Lua arguments and
 * build one lm_data_op, which goes to the executor's `data` entry like a
 * schema operation goes to its `apply`: the online executor runs it, the
 * offline one writes what it can and refuses a read, a recorder could
 * keep it.  Strings and arrays belong to the operation's caller, as in an
 * lm_op (operation.h).
 */
#ifndef LM_DATA_OP_H
#define LM_DATA_OP_H

#include "dialect.h"

typedef enum lm_data_kind {
  LM_DATA_QUERY,        /* sql with params: rows streamed from a cursor */
  LM_DATA_BULK_INSERT,  /* rows into table (columns) */
  LM_DATA_BACKFILL      /* keyset walk over table, a function per row */
} lm_data_kind;

/* A bulk insert reaches the executor once per phase (rows: once per
 * chunk); a query and a backfill only at LM_DATA_START. */
typedef enum lm_data_phase {
  LM_DATA_START,        /* before any row */
  LM_DATA_ROWS,         /* nrows rows to store */
  LM_DATA_PAUSE,        /* the connection is needed elsewhere: finish
                           what is in flight, more rows may follow */
  LM_DATA_FINISH,       /* every row was given */
  LM_DATA_ABANDON       /* the operation failed: undo what can be */
} lm_data_phase;

typedef struct lm_data_op {
  lm_data_kind kind;
  lm_data_phase phase;
  const char *schema;           /* NULL: the default one */
  const char *table;            /* BULK_INSERT, BACKFILL */
  /* QUERY */
  const char *sql;
  const lm_value *params;
  size_t nparams;
  /* BULK_INSERT: the columns inserted; BACKFILL: those read (NULL:
   * every one) */
  const char *const *columns;
  size_t ncolumns;
  const lm_value *rows;         /* BULK_INSERT, ROWS: nrows * ncolumns */
  size_t nrows;
  /* BACKFILL */
  const char *const *keys;
  size_t nkeys;
  const char *where;            /* SQL, or NULL */
  int64_t batch_size, commit_every;
  int order;                    /* 1 ascending, -1 descending */
  const char *name;             /* of the saved position */
  /* Filled by the executor. */
  lm_cursor *cursor;            /* QUERY: the rows, the caller's to close */
  struct {
    lm_loader *loader;          /* the open stream, or NULL */
    size_t first;               /* the row the open stream began at */
    size_t sent;                /* rows stored so far */
    int own_tx;                 /* the insert runs in a transaction of its own */
  } stream;                     /* BULK_INSERT */
} lm_data_op;

#endif
