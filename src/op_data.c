/*
 * op_data.c - the data side of the op table: op.query, op.bulk_insert and
 * op.backfill (DESIGN section 5).
 */
#include <lauxlib.h>

#include "core.h"

void lm_op_data_register(lua_State *L) {
  (void)L;   /* stack: op */
}
