/*
 * backfill_state.c - where a commit_every backfill got to: its last key,
 * recorded in luamig_backfill (revision, name) in the transaction of each
 * commit, so that an interrupted run resumes after it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backfill.h"

/* The table that remembers where a commit_every backfill got to. */
#define STATE_TABLE "luamig_backfill"

/* ---- where a commit_every backfill got to -------------------------------- */

/* Keys are stored as text: per value a type letter, the length of its
 * text, ':' and the text (blobs in hex), so any key type round-trips. */
static void encode_key(lm_buf *b, const lm_value *v, size_t n) {
  static const char hex[] = "0123456789abcdef";
  for (size_t i = 0; i < n; i++) {
    char num[64];
    switch (v[i].type) {
    case LM_V_NULL: lm_buf_puts(b, "n0:"); break;
    case LM_V_INT:
      snprintf(num, sizeof num, "%lld", (long long)v[i].i);
      lm_buf_printf(b, "i%zu:%s", strlen(num), num);
      break;
    case LM_V_FLOAT:
      snprintf(num, sizeof num, "%.17g", v[i].f);
      lm_buf_printf(b, "f%zu:%s", strlen(num), num);
      break;
    case LM_V_BOOL: lm_buf_printf(b, "b1:%d", (int)v[i].i); break;
    case LM_V_TEXT:
      lm_buf_printf(b, "t%zu:", v[i].len);
      lm_buf_add(b, v[i].s, v[i].len);
      break;
    case LM_V_BLOB:
      lm_buf_printf(b, "x%zu:", v[i].len * 2);
      for (size_t k = 0; k < v[i].len; k++) {
        lm_buf_putc(b, hex[(unsigned char)v[i].s[k] >> 4]);
        lm_buf_putc(b, hex[(unsigned char)v[i].s[k] & 15]);
      }
      break;
    }
  }
}

/* Decode n values into v, their bytes into pool (offsets fixed at the
 * end).  0 on success, -1 on text that is not an encoded key. */
static int decode_key(const char *s, size_t len, lm_value *v, size_t n,
                      lm_buf *pool) {
  const char *p = s, *end = s + len;
  lm_buf_reset(pool);
  for (size_t i = 0; i < n; i++) {
    if (p >= end) return -1;
    char type = *p++;
    char *colon;
    unsigned long long l = strtoull(p, &colon, 10);
    if (colon == p || *colon != ':' || l > (size_t)(end - colon - 1)) return -1;
    const char *text = colon + 1;
    p = text + l;
    memset(&v[i], 0, sizeof v[i]);
    char *tmp = lm_xstrndup(text, (size_t)l);
    switch (type) {
    case 'n': v[i].type = LM_V_NULL; break;
    case 'i': v[i].type = LM_V_INT; v[i].i = strtoll(tmp, NULL, 10); break;
    case 'f': v[i].type = LM_V_FLOAT; v[i].f = strtod(tmp, NULL); break;
    case 'b': v[i].type = LM_V_BOOL; v[i].i = tmp[0] == '1'; break;
    case 't':
      v[i].type = LM_V_TEXT;
      v[i].i = (int64_t)pool->len;
      v[i].len = (size_t)l;
      lm_buf_add(pool, text, (size_t)l);
      lm_buf_putc(pool, '\0');
      break;
    case 'x':
      v[i].type = LM_V_BLOB;
      v[i].i = (int64_t)pool->len;
      v[i].len = (size_t)l / 2;
      for (size_t k = 0; k + 1 < l; k += 2) {
        char byte[3] = {tmp[k], tmp[k + 1], 0};
        lm_buf_putc(pool, (char)strtol(byte, NULL, 16));
      }
      lm_buf_putc(pool, '\0');
      break;
    default:
      free(tmp);
      return -1;
    }
    free(tmp);
  }
  lm_backfill_pool_fix(pool, v, n);
  return p == end ? 0 : -1;
}

/* A statement on the state table, as the dialect writes it. */
static void state_sql(backfill *b, lm_sql_kind kind, lm_buf *out) {
  lm_sql_spec spec = {.kind = kind, .schema = b->env->version_table_schema,
                      .table = STATE_TABLE};
  lm_core_sql(b->d, out, &spec);
}

/* Create the state table if needed, in a transaction of its own. */
int lm_backfill_state_ensure(backfill *b) {
#define T(k) {.kind = (k), .length = -1, .precision = -1, .scale = -1}
#define S(n) {.kind = LM_T_STRING, .length = (n), .precision = -1, .scale = -1}
  lm_column cols[] = {
    {.name = "revision", .type = S(32), .nullable = 0},
    {.name = "name", .type = S(255), .nullable = 0},
    {.name = "last_key", .type = T(LM_T_TEXT), .nullable = 1},
    {.name = "rows_read", .type = T(LM_T_BIGINT), .nullable = 1},
    {.name = "rows_updated", .type = T(LM_T_BIGINT), .nullable = 1},
    {.name = "rows_skipped", .type = T(LM_T_BIGINT), .nullable = 1},
  };
#undef T
#undef S
  static const char *const pk_cols[] = {"revision", "name"};
  lm_constraint pk = {.kind = LM_CON_PRIMARY_KEY, .columns = pk_cols,
                      .ncolumns = 2, .deferrable = -1};
  lm_op op = {.kind = LM_OP_CREATE_TABLE,
              .schema = b->env->version_table_schema, .table = STATE_TABLE,
              .columns = cols, .ncolumns = sizeof cols / sizeof *cols,
              .constraints = &pk, .nconstraints = 1, .if_not_exists = 1};
  lm_env *env = b->env;
  if (lm_tx_begin(env) != LM_OK) {
    lm_err_move(&b->err, &env->err);
    return LM_ERROR;
  }
  if (lm_op_apply(env, &op, &b->err) != LM_OK) {
    lm_tx_rollback(env);
    return LM_ERROR;
  }
  /* Made if missing, so a rerun makes nothing twice. */
  if (lm_tx_commit_resumable(env) != LM_OK) {
    lm_err_move(&b->err, &env->err);
    lm_tx_rollback(env);
    return LM_ERROR;
  }
  return LM_OK;
}

/* revision and name as the two parameters every state statement ends
 * with. */
static void state_ids(backfill *b, lm_value *p) {
  p[0] = (lm_value){.type = LM_V_TEXT, .s = b->revision,
                    .len = strlen(b->revision)};
  p[1] = (lm_value){.type = LM_V_TEXT, .s = b->name, .len = strlen(b->name)};
}

/* Read where an earlier, interrupted run got to. */
int lm_backfill_state_load(backfill *b) {
  lm_buf sql = LM_BUF_INIT;
  state_sql(b, LM_SQL_STATE_READ, &sql);
  lm_value p[2];
  state_ids(b, p);
  lm_cursor *cur = NULL;
  int rc = b->d->query(b->env->conn, lm_buf_str(&sql), 2, p, &cur, &b->err);
  lm_buf_free(&sql);
  if (rc != LM_OK) return rc;
  rc = b->d->cursor_next(cur, &b->err);
  if (rc == 1) {
    const lm_value *k = b->d->cursor_value(cur, 0);
    if (k->type == LM_V_TEXT &&
        decode_key(k->s, k->len, b->last, b->nkeys, &b->last_pool) == 0) {
      b->have_last = 1;
      const lm_value *n = b->d->cursor_value(cur, 1);
      b->prior = n->type == LM_V_INT ? n->i : 0;
      n = b->d->cursor_value(cur, 2);
      b->prior_updated = n->type == LM_V_INT ? n->i : 0;
      n = b->d->cursor_value(cur, 3);
      b->prior_skipped = n->type == LM_V_INT ? n->i : 0;
    } else {
      /* Not silently: rows an earlier run changed are read again. */
      lm_emit(b->env, LM_EVENT_INFO, b->revision, "warning: backfill %s: "
              "the position saved in %s by an interrupted run does not fit "
              "the key now given; starting from the first row", b->table,
              STATE_TABLE);
    }
    rc = LM_OK;
  }
  b->d->cursor_close(cur);
  return rc < 0 ? LM_ERROR : LM_OK;
}

/* Record the last key, in the transaction that wrote its batch. */
int lm_backfill_state_save(backfill *b) {
  lm_buf key = LM_BUF_INIT, sql = LM_BUF_INIT;
  encode_key(&key, b->last, b->nkeys);
  lm_value p[6] = {
    {.type = LM_V_TEXT, .s = lm_buf_str(&key), .len = key.len},
    {.type = LM_V_INT, .i = b->prior + b->read},
    {.type = LM_V_INT, .i = b->prior_updated + b->updated},
    {.type = LM_V_INT, .i = b->prior_skipped + b->skipped},
  };
  state_ids(b, p + 4);
  state_sql(b, LM_SQL_STATE_UPDATE, &sql);
  int64_t n = 0;
  int rc = b->d->exec(b->env->conn, lm_buf_str(&sql), 6, p, &n, &b->err);
  if (rc == LM_OK && n == 0) {
    lm_buf_reset(&sql);
    state_sql(b, LM_SQL_STATE_INSERT, &sql);
    rc = b->d->exec(b->env->conn, lm_buf_str(&sql), 6, p, NULL, &b->err);
  }
  lm_buf_free(&key);
  lm_buf_free(&sql);
  return rc;
}

/* The backfill finished: forget its state, so running the migration
 * again (after a downgrade) starts from the beginning. */
int lm_backfill_state_clear(backfill *b) {
  lm_buf sql = LM_BUF_INIT;
  state_sql(b, LM_SQL_STATE_DELETE, &sql);
  lm_value p[2];
  state_ids(b, p);
  int rc = b->d->exec(b->env->conn, lm_buf_str(&sql), 2, p, NULL, &b->err);
  lm_buf_free(&sql);
  return rc;
}
