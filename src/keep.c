/*
 * keep.c - kept data (keep.h).  A drop_column of an upgrade copies the
 * table's primary key and the column into a kept table before the column
 * goes; a drop_table moves the table into the dialect's kept area.  A
 * catalogue row (luamig_kept) says what was kept, how it was defined and
 * what depended on it.  All of it runs in the migration's transaction, so
 * the keep, the drop and the version change commit together.  When the
 * downgrade of that revision adds the column or creates the table again,
 * its values or rows come back (by primary key), then, once the script's
 * downgrade is done, its indexes and constraints, and the kept copy goes.
 */
#define _DEFAULT_SOURCE   /* timegm */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>

#include "keep.h"
#include "keep_sql.h"
#include "lua_registry.h"
#include "schema.h"
#include "schema_text.h"

#define STATE_KEY "luamig.keep"
#define NAME_MAX_BYTES 63       /* PostgreSQL's identifier length */

/* A refill done by the running downgrade, finished by lm_keep_finish. */
typedef struct refill {
  long long id;
  char *kept;                   /* the kept table's name (in the kept area) */
  char *schema, *table;
  char *what;                   /* "persons.role", "table roles" */
  lm_strvec lines;              /* the dialect's dependents */
} refill;

typedef struct keep_state {
  int busy;                     /* running the keep's own operations */
  refill *refills;
  size_t nrefills, cap;
} keep_state;

static void refills_clear(keep_state *st) {
  for (size_t i = 0; i < st->nrefills; i++) {
    free(st->refills[i].kept);
    free(st->refills[i].schema);
    free(st->refills[i].table);
    free(st->refills[i].what);
    lm_strvec_free(&st->refills[i].lines);
  }
  st->nrefills = 0;
}

static int state_gc(lua_State *L) {
  keep_state *st = lua_touserdata(L, 1);
  refills_clear(st);
  free(st->refills);
  return 0;
}

/* Lives in the environment's Lua registry, like the executor's. */
static keep_state *state(lm_env *env) {
  int created;
  return lm_registry_userdata(env->L, STATE_KEY, sizeof(keep_state), state_gc,
                              &created);
}

int lm_keep_option(lua_State *L, int idx, const char *op) {
  if (lua_isnoneornil(L, idx)) return 0;
  lua_getfield(L, idx, "keep");
  int v = 0;
  if (lua_isboolean(L, -1)) v = lua_toboolean(L, -1) ? 1 : -1;
  else if (!lua_isnil(L, -1))
    luaL_error(L, "%s: keep must be a boolean, not a %s", op,
               luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

void lm_group_digits(lm_buf *out, long long n) {
  char digits[32];
  snprintf(digits, sizeof digits, "%lld", n < 0 ? -n : n);
  size_t len = strlen(digits);
  if (n < 0) lm_buf_putc(out, '-');
  for (size_t i = 0; i < len; i++) {
    if (i && (len - i) % 3 == 0) lm_buf_putc(out, ',');
    lm_buf_putc(out, digits[i]);
  }
}

/* ---- small helpers ------------------------------------------------------ */

static lm_value text(const char *s) {
  if (!s) return (lm_value){.type = LM_V_NULL};
  return (lm_value){.type = LM_V_TEXT, .s = s, .len = strlen(s)};
}

/* Run a query and collect every cell as text (NULL stays NULL), row by
 * row, ncols per row. */
static int query_cells(lm_env *env, const char *sql, size_t nparams,
                       const lm_value *params, lm_strvec *cells,
                       size_t *ncols, lm_err *err) {
  const lm_dialect *d = env->dialect;
  lm_cursor *cur;
  if (d->query(env->conn, sql, nparams, params, &cur, err) != LM_OK)
    return LM_ERROR;
  int rc;
  *ncols = 0;
  while ((rc = d->cursor_next(cur, err)) == 1) {
    *ncols = d->cursor_ncols(cur);
    for (size_t i = 0; i < *ncols; i++) {
      const lm_value *v = d->cursor_value(cur, i);
      switch (v->type) {
      case LM_V_NULL: lm_strvec_push(cells, NULL); break;
      case LM_V_INT: case LM_V_BOOL:
        lm_strvec_pushf(cells, "%lld", (long long)v->i);
        break;
      case LM_V_FLOAT: lm_strvec_pushf(cells, "%.17g", v->f); break;
      default: lm_strvec_push(cells, lm_xstrndup(v->s, v->len)); break;
      }
    }
  }
  d->cursor_close(cur);
  return rc < 0 ? LM_ERROR : LM_OK;
}

/* The one number a query returns. */
static int query_number(lm_env *env, const char *sql, size_t nparams,
                        const lm_value *params, long long *out, lm_err *err) {
  lm_strvec cells = LM_STRVEC_INIT;
  size_t ncols;
  int rc = query_cells(env, sql, nparams, params, &cells, &ncols, err);
  *out = rc == LM_OK && cells.n && cells.items[0]
             ? strtoll(cells.items[0], NULL, 10) : 0;
  lm_strvec_free(&cells);
  return rc;
}

static int count_rows(lm_env *env, const char *schema, const char *table,
                      long long *out, lm_err *err) {
  lm_buf sql = LM_BUF_INIT;
  lm_keep_sql_count(env->dialect, &sql, schema, table);
  int rc = query_number(env, lm_buf_str(&sql), 0, NULL, out, err);
  lm_buf_free(&sql);
  return rc;
}

/* A table's column names, in order, from an empty result. */
static int column_names(lm_env *env, const char *schema, const char *table,
                        lm_strvec *out, lm_err *err) {
  const lm_dialect *d = env->dialect;
  lm_buf sql = LM_BUF_INIT;
  lm_keep_sql_no_rows(d, &sql, schema, table);
  lm_cursor *cur;
  int rc = d->query(env->conn, lm_buf_str(&sql), 0, NULL, &cur, err);
  lm_buf_free(&sql);
  if (rc != LM_OK) return rc;
  rc = d->cursor_next(cur, err);
  for (size_t i = 0; rc >= 0 && i < d->cursor_ncols(cur); i++)
    lm_strvec_push(out, lm_xstrdup(d->cursor_colname(cur, i)));
  d->cursor_close(cur);
  return rc < 0 ? LM_ERROR : LM_OK;
}

/* The table's shape as the database has it, or NULL (*rc says whether
 * reading it failed). */
static lm_mtable *introspect(lm_env *env, lm_schema *m, const char *schema,
                             const char *table, int *rc, lm_err *err) {
  const lm_dialect *d = env->dialect;
  int found = 0;
  *rc = LM_OK;
  if (d->introspect) {
    *rc = d->introspect(env->conn, schema, table, m, &found, err);
    if (*rc != LM_OK || !found) return NULL;
  } else if (d->version >= 6 && d->introspect_schema) {
    *rc = d->introspect_schema(env->conn, schema ? &schema : NULL,
                               schema ? 1 : 0, NULL, 0, m, err);
    if (*rc != LM_OK) return NULL;
  }
  lm_mtable *t = lm_schema_table(m, schema, table);
  return t ? t : lm_schema_table(m, NULL, table);
}

static const lm_constraint *primary_key(const lm_mtable *t) {
  for (size_t i = 0; i < t->nconstraints; i++)
    if (t->constraints[i].con.kind == LM_CON_PRIMARY_KEY)
      return &t->constraints[i].con;
  return NULL;
}

/* The kept table's name: prefix, the catalogue id, what it held; cut to
 * an identifier's length.  Malloc'ed. */
static char *kept_name(const lm_keep_methods *km, long long id,
                       const char *table, const char *column) {
  char *name = column ? lm_xasprintf("%s%lld_%s_%s", km->prefix ? km->prefix
                                     : "", id, table, column)
                      : lm_xasprintf("%s%lld_%s", km->prefix ? km->prefix
                                     : "", id, table);
  size_t len = strlen(name);
  if (len > NAME_MAX_BYTES) {
    len = NAME_MAX_BYTES;
    while (len && ((unsigned char)name[len] & 0xC0) == 0x80) len--;
    name[len] = '\0';
  }
  return name;
}

/* The kept table's name as messages show it: quoted, qualified. */
static void kept_quoted(lm_env *env, lm_buf *b, const char *name) {
  lm_sql_qualified(env->dialect, b, env->dialect->keep->schema, name);
}

/* The catalogue, made in the migration's transaction when missing. */
static int ensure_catalogue(lm_env *env, keep_state *st, lm_err *err) {
  int exists = 0;
  if (env->dialect->has_table(env->conn, env->version_table_schema,
                              LM_KEPT_TABLE, &exists, err) != LM_OK)
    return LM_ERROR;
  if (exists) return LM_OK;
#define T(k) {.kind = (k), .length = -1, .precision = -1, .scale = -1}
#define S(n) {.kind = LM_T_STRING, .length = (n), .precision = -1, .scale = -1}
  lm_column cols[] = {
    {.name = "id", .type = T(LM_T_BIGINT), .primary_key = 1,
     .autoincrement = LM_AUTO_FALSE},
    {.name = "revision", .type = S(32), .nullable = 0},
    {.name = "kind", .type = S(8), .nullable = 0},
    {.name = "table_schema", .type = S(255), .nullable = 1},
    {.name = "table_name", .type = S(255), .nullable = 0},
    {.name = "column_name", .type = S(255), .nullable = 1},
    {.name = "kept_as", .type = S(255), .nullable = 0},
    {.name = "key_columns", .type = T(LM_T_TEXT), .nullable = 1},
    {.name = "definition", .type = T(LM_T_TEXT), .nullable = 1},
    {.name = "dependents", .type = T(LM_T_TEXT), .nullable = 1},
    {.name = "row_count", .type = T(LM_T_BIGINT), .nullable = 0},
    {.name = "kept_at", .type = T(LM_T_DATETIME), .nullable = 0},
  };
#undef T
#undef S
  lm_op op = {.kind = LM_OP_CREATE_TABLE, .schema = env->version_table_schema,
              .table = LM_KEPT_TABLE, .columns = cols,
              .ncolumns = sizeof cols / sizeof *cols, .if_not_exists = 1};
  st->busy = 1;
  int rc = lm_op_apply(env, &op, err);
  st->busy = 0;
  return rc;
}

/* Lines joined by newlines, each line's own newlines and backslashes
 * escaped, so that one text column holds them all. */
static void join_lines(lm_buf *out, const lm_strvec *lines) {
  for (size_t i = 0; i < lines->n; i++) {
    if (i) lm_buf_putc(out, '\n');
    for (const char *p = lines->items[i]; *p; p++) {
      if (*p == '\n') lm_buf_puts(out, "\\n");
      else if (*p == '\\') lm_buf_puts(out, "\\\\");
      else lm_buf_putc(out, *p);
    }
  }
}

static void split_lines(const char *s, lm_strvec *out) {
  lm_buf line = LM_BUF_INIT;
  for (const char *p = s; p && *p; p++) {
    if (*p == '\n') {
      lm_strvec_push(out, lm_buf_detach(&line));
    } else if (*p == '\\' && p[1]) {
      p++;
      lm_buf_putc(&line, *p == 'n' ? '\n' : *p);
    } else {
      lm_buf_putc(&line, *p);
    }
  }
  if (s && *s) lm_strvec_push(out, lm_buf_detach(&line));
  lm_buf_free(&line);
}

/* Everything a keep does first: the catalogue, the kept area, the next
 * id. */
static int keep_start(lm_env *env, keep_state *st, const char *what,
                      long long *id, lm_err *err) {
  const lm_dialect *d = env->dialect;
  if (d->version < 10 || !d->keep)
    return lm_err_set(err, "%s: the %s dialect cannot keep dropped data "
                      "(pass keep = false)", what, d->name);
  if (!env->tx_open)
    return lm_err_set(err, "%s: keeping needs the migration's transaction, "
                      "and this script runs outside one (transactional = "
                      "false): pass keep = false", what);
  if (ensure_catalogue(env, st, err) != LM_OK) return LM_ERROR;
  if (d->keep->prepare_sql &&
      lm_exec_sql(env, d->keep->prepare_sql, 0, NULL, NULL, err) != LM_OK)
    return LM_ERROR;
  lm_buf sql = LM_BUF_INIT;
  lm_keep_sql_next_id(d, &sql, env->version_table_schema, LM_KEPT_TABLE);
  int rc = query_number(env, lm_buf_str(&sql), 0, NULL, id, err);
  lm_buf_free(&sql);
  return rc;
}

typedef struct catalogue_row {
  long long id;
  const char *revision, *kind, *schema, *table, *column, *kept_as;
  const char *key_columns, *definition, *dependents;
  long long rows;
} catalogue_row;

static int catalogue_insert(lm_env *env, const catalogue_row *r,
                            lm_err *err) {
  char now[32];
  lm_utc_timestamp(now);
  lm_buf sql = LM_BUF_INIT;
  lm_keep_sql_catalogue_insert(env->dialect, &sql, env->version_table_schema,
                               LM_KEPT_TABLE);
  lm_value p[12] = {{.type = LM_V_INT, .i = r->id}, text(r->revision),
                    text(r->kind), text(r->schema), text(r->table),
                    text(r->column), text(r->kept_as), text(r->key_columns),
                    text(r->definition), text(r->dependents),
                    {.type = LM_V_INT, .i = r->rows}, text(now)};
  int rc = lm_exec_sql(env, lm_buf_str(&sql), 12, p, NULL, err);
  lm_buf_free(&sql);
  return rc;
}

/* ---- keeping ------------------------------------------------------------ */

static int wants_keep(const lm_env *env, const lm_op *op) {
  return op->keep > 0 || (op->keep == 0 && env->keep_dropped);
}

static const char *running_revision(lm_env *env) {
  for (size_t i = 0; env->running && i < env->nscripts; i++)
    if (env->scripts[i].path && strcmp(env->scripts[i].path, env->running) == 0)
      return env->scripts[i].rev.id;
  return NULL;
}

/* drop_column: the primary key and the column, copied. */
static int keep_column(lm_env *env, keep_state *st, const char *schema,
                       const char *table, const char *column, lm_err *err) {
  lm_buf what = LM_BUF_INIT, sql = LM_BUF_INIT, def = LM_BUF_INIT,
         keys = LM_BUF_INIT, deps = LM_BUF_INIT;
  lm_strvec lines = LM_STRVEC_INIT;
  lm_schema m;
  lm_schema_init(&m);
  char *name = NULL;
  int rc;
  lm_buf_printf(&what, "drop_column %s.%s", table, column);
  lm_mtable *t = introspect(env, &m, schema, table, &rc, err);
  lm_mcolumn *c = t ? lm_mtable_column(t, column) : NULL;
  if (rc != LM_OK || !c) goto done;   /* the drop says what is missing */
  const lm_constraint *pk = primary_key(t);
  if (!pk) {
    rc = lm_err_set(err, "%s: cannot keep the column's values: %s has no "
                    "primary key to find its rows by again (pass keep = "
                    "false to drop them)", lm_buf_str(&what), table);
    goto done;
  }
  for (size_t i = 0; i < pk->ncolumns; i++)
    if (strcmp(pk->columns[i], column) == 0) {
      rc = lm_err_set(err, "%s: cannot keep a column of the primary key "
                      "(pass keep = false)", lm_buf_str(&what));
      goto done;
    }
  long long id, rows;
  if ((rc = keep_start(env, st, lm_buf_str(&what), &id, err)) != LM_OK)
    goto done;
  const lm_keep_methods *km = env->dialect->keep;
  if ((rc = km->dependents(env->conn, schema, table, column, &lines, err)) !=
      LM_OK)
    goto done;
  name = kept_name(km, id, table, column);
  for (size_t i = 0; i < pk->ncolumns; i++)
    lm_buf_printf(&keys, "%s%s", i ? "\n" : "", pk->columns[i]);
  /* CREATE TABLE ... AS, where it reports the rows it wrote; else made
   * empty and filled by one INSERT, whose count is exact (no second scan
   * to count them). */
  lm_keep_sql_column_create(env->dialect, &sql, km->schema, name, schema,
                            table, pk->columns, pk->ncolumns, column,
                            !km->ctas_counts);
  int64_t copied = 0;
  rc = lm_exec_sql(env, lm_buf_str(&sql), 0, NULL, &copied, err);
  lm_buf_reset(&sql);
  lm_keep_sql_column_fill(env->dialect, &sql, km->schema, name, schema, table,
                          pk->columns, pk->ncolumns, column);
  if (rc == LM_OK && !km->ctas_counts)
    rc = lm_exec_sql(env, lm_buf_str(&sql), 0, NULL, &copied, err);
  if (rc != LM_OK) goto done;
  rows = copied;
  lm_buf_puts(&def, "type ");
  lm_type_text(&def, &c->type);
  lm_buf_puts(&def, c->nullable ? ", null" : ", not null");
  if (c->server_default.kind != LM_DEF_NONE) {
    lm_buf_puts(&def, ", default ");
    lm_default_text(&def, &c->server_default);
  }
  join_lines(&deps, &lines);
  catalogue_row r = {id, running_revision(env), "column", schema, table,
                     column, name, lm_buf_str(&keys), lm_buf_str(&def),
                     lm_buf_str(&deps), rows};
  if ((rc = catalogue_insert(env, &r, err)) != LM_OK) goto done;
  lm_buf_reset(&sql);
  lm_buf_printf(&sql, "kept %s.%s: ", table, column);
  lm_group_digits(&sql, rows);
  lm_buf_printf(&sql, " value%s in %s%s%s", rows == 1 ? "" : "s",
                km->schema ? km->schema : "", km->schema ? "." : "", name);
  lm_emit(env, LM_EVENT_INFO, r.revision, "%s", lm_buf_str(&sql));
done:
  lm_schema_free(&m);
  lm_strvec_free(&lines);
  free(name);
  lm_buf_free(&what);
  lm_buf_free(&sql);
  lm_buf_free(&def);
  lm_buf_free(&keys);
  lm_buf_free(&deps);
  return rc;
}

/* drop_table: the table moves into the kept area, whole. */
static int keep_table(lm_env *env, keep_state *st, const lm_op *op,
                      int *done, lm_err *err) {
  int exists = 0;
  if (env->dialect->has_table(env->conn, op->schema, op->table, &exists,
                              err) != LM_OK)
    return LM_ERROR;
  if (!exists) return LM_OK;          /* if_exists, or the drop's error */
  lm_buf what = LM_BUF_INIT, def = LM_BUF_INIT, deps = LM_BUF_INIT,
         msg = LM_BUF_INIT;
  lm_strvec lines = LM_STRVEC_INIT;
  lm_schema m;
  lm_schema_init(&m);
  char *name = NULL;
  long long id;
  int64_t rows = 0;
  int rc;
  lm_buf_printf(&what, "drop_table %s", op->table);
  lm_mtable *t = introspect(env, &m, op->schema, op->table, &rc, err);
  if (rc != LM_OK) goto done;
  if (t) lm_mtable_text(&def, t);
  if ((rc = keep_start(env, st, lm_buf_str(&what), &id, err)) != LM_OK)
    goto done;
  const lm_keep_methods *km = env->dialect->keep;
  if ((rc = km->dependents(env->conn, op->schema, op->table, NULL, &lines,
                           err)) != LM_OK)
    goto done;
  /* A move takes no time whatever the size; counting a big table would:
   * the dialect says how many rows, at the cost of the move. */
  if ((rc = km->rows(env->conn, op->schema, op->table, &rows, err)) != LM_OK)
    goto done;
  name = kept_name(km, id, op->table, NULL);
  if ((rc = km->move(env->conn, op->schema, op->table, name, err)) != LM_OK ||
      (rc = lm_tx_check(env, err)) != LM_OK)
    goto done;
  join_lines(&deps, &lines);
  catalogue_row r = {id, running_revision(env), "table", op->schema,
                     op->table, NULL, name, NULL, lm_buf_str(&def),
                     lm_buf_str(&deps), rows};
  if ((rc = catalogue_insert(env, &r, err)) != LM_OK) goto done;
  *done = 1;
  lm_buf_printf(&msg, "kept table %s: ", op->table);
  lm_group_digits(&msg, (long long)rows);
  lm_buf_printf(&msg, " row%s in %s%s%s", rows == 1 ? "" : "s",
                km->schema ? km->schema : "", km->schema ? "." : "", name);
  lm_emit(env, LM_EVENT_INFO, r.revision, "%s", lm_buf_str(&msg));
done:
  lm_schema_free(&m);
  lm_strvec_free(&lines);
  free(name);
  lm_buf_free(&what);
  lm_buf_free(&def);
  lm_buf_free(&deps);
  lm_buf_free(&msg);
  return rc;
}

static int is_fn(const lm_env *env, const char *fn) {
  return env->running_fn && strcmp(env->running_fn, fn) == 0;
}

int lm_keep_before(lm_env *env, const lm_op *op, int *done, lm_err *err) {
  *done = 0;
  if (!is_fn(env, "upgrade")) return LM_OK;
  keep_state *st = state(env);
  if (st->busy) return LM_OK;
  if (op->kind == LM_OP_DROP_COLUMN && wants_keep(env, op))
    return keep_column(env, st, op->schema, op->table, op->name, err);
  if (op->kind == LM_OP_DROP_TABLE && wants_keep(env, op))
    return keep_table(env, st, op, done, err);
  for (size_t i = 0; op->kind == LM_OP_BATCH && i < op->nops; i++) {
    const lm_op *sub = &op->ops[i];
    if (sub->kind == LM_OP_DROP_COLUMN && wants_keep(env, sub) &&
        keep_column(env, st, op->schema, op->table, sub->name, err) != LM_OK)
      return LM_ERROR;
  }
  return LM_OK;
}

/* ---- restoring ---------------------------------------------------------- */

/* The newest catalogue row of the running revision for this table (and
 * column); *found = 0 when there is none. */
static int find_kept(lm_env *env, const char *kind, const char *schema,
                     const char *table, const char *column, lm_strvec *cells,
                     int *found, lm_err *err) {
  *found = 0;
  const char *rev = running_revision(env);
  int exists = 0;
  if (!rev || env->dialect->version < 10 || !env->dialect->keep) return LM_OK;
  if (env->dialect->has_table(env->conn, env->version_table_schema,
                              LM_KEPT_TABLE, &exists, err) != LM_OK)
    return LM_ERROR;
  if (!exists) return LM_OK;
  lm_buf sql = LM_BUF_INIT;
  lm_keep_sql_catalogue_find(env->dialect, &sql, env->version_table_schema,
                             LM_KEPT_TABLE);
  lm_value p[5] = {text(rev), text(kind), text(table),
                   text(schema ? schema : ""), text(column ? column : "")};
  size_t ncols;
  int rc = query_cells(env, lm_buf_str(&sql), 5, p, cells, &ncols, err);
  lm_buf_free(&sql);
  *found = rc == LM_OK && cells->n >= 5;
  return rc;
}

static void add_refill(keep_state *st, long long id, const char *kept,
                       const char *schema, const char *table,
                       const char *what, const char *deps) {
  if (st->nrefills == st->cap) {
    st->cap = st->cap ? 2 * st->cap : 4;
    st->refills = lm_xrealloc(st->refills, st->cap * sizeof *st->refills);
  }
  refill *r = &st->refills[st->nrefills++];
  memset(r, 0, sizeof *r);
  r->id = id;
  r->kept = lm_xstrdup(kept);
  r->schema = schema ? lm_xstrdup(schema) : NULL;
  r->table = lm_xstrdup(table);
  r->what = lm_xstrdup(what);
  split_lines(deps, &r->lines);
}

/* add_column of a kept column: its values, on their rows by key. */
static int refill_column(lm_env *env, keep_state *st, const char *schema,
                         const char *table, const lm_column *col,
                         lm_err *err) {
  lm_strvec cells = LM_STRVEC_INIT, keys = LM_STRVEC_INIT;
  int found;
  int rc = find_kept(env, "column", schema, table, col->name, &cells, &found,
                     err);
  if (rc != LM_OK || !found) {
    lm_strvec_free(&cells);
    return rc;
  }
  lm_buf sql = LM_BUF_INIT, kq = LM_BUF_INIT, msg = LM_BUF_INIT;
  kept_quoted(env, &kq, cells.items[1]);
  split_lines(cells.items[2], &keys);
  lm_keep_sql_column_refill(env->dialect, &sql, schema, table,
                            env->dialect->keep->schema, cells.items[1],
                            (const char *const *)keys.items, keys.n,
                            col->name);
  int64_t values = 0;
  long long total = 0;
  rc = lm_exec_sql(env, lm_buf_str(&sql), 0, NULL, &values, err);
  if (rc == LM_OK) rc = count_rows(env, schema, table, &total, err);
  if (rc == LM_OK) {
    lm_buf_printf(&msg, "%s.%s", table, col->name);
    add_refill(st, strtoll(cells.items[0], NULL, 10), cells.items[1], schema,
               table, lm_buf_str(&msg), cells.items[3]);
    lm_buf_reset(&msg);
    long long added = total - values;
    lm_buf_printf(&msg, "restored %s.%s: ", table, col->name);
    lm_group_digits(&msg, values);
    lm_buf_printf(&msg, " value%s", values == 1 ? "" : "s");
    if (added > 0) {
      lm_buf_puts(&msg, "; ");
      lm_group_digits(&msg, added);
      lm_buf_printf(&msg, " row%s added since the drop %s %s", added == 1 ?
                    "" : "s", added == 1 ? "has" : "have",
                    col->server_default.kind != LM_DEF_NONE
                        ? "the column's default" : "NULL");
    }
    lm_emit(env, LM_EVENT_INFO, running_revision(env), "%s",
            lm_buf_str(&msg));
  } else {
    lm_err_prefix(err, "restoring %s.%s from %s", table, col->name,
                  lm_buf_str(&kq));
  }
  lm_strvec_free(&cells);
  lm_strvec_free(&keys);
  lm_buf_free(&sql);
  lm_buf_free(&kq);
  lm_buf_free(&msg);
  return rc;
}

/* create_table of a kept table: its rows, in the columns both have. */
static int refill_table(lm_env *env, keep_state *st, const char *schema,
                        const char *table, lm_err *err) {
  lm_strvec cells = LM_STRVEC_INIT;
  int found;
  int rc = find_kept(env, "table", schema, table, NULL, &cells, &found, err);
  if (rc != LM_OK || !found) {
    lm_strvec_free(&cells);
    return rc;
  }
  lm_strvec now = LM_STRVEC_INIT, was = LM_STRVEC_INIT;
  lm_buf kq = LM_BUF_INIT, msg = LM_BUF_INIT;
  kept_quoted(env, &kq, cells.items[1]);
  rc = column_names(env, schema, table, &now, err);
  if (rc == LM_OK)
    rc = column_names(env, env->dialect->keep->schema, cells.items[1], &was,
                      err);
  const char **common = lm_xcalloc(now.n + 1, sizeof *common);
  size_t ncommon = 0;
  for (size_t i = 0; i < now.n; i++)
    for (size_t k = 0; k < was.n; k++)
      if (strcmp(now.items[i], was.items[k]) == 0) common[ncommon++] = now.items[i];
  int64_t rows = 0;
  if (rc == LM_OK && ncommon)
    rc = env->dialect->keep->copy_rows(env->conn, schema, table,
                                       cells.items[1], common, ncommon,
                                       &rows, err);
  if (rc == LM_OK) rc = lm_tx_check(env, err);
  if (rc == LM_OK) {
    lm_buf_printf(&msg, "table %s", table);
    add_refill(st, strtoll(cells.items[0], NULL, 10), cells.items[1], schema,
               table, lm_buf_str(&msg), cells.items[3]);
    lm_buf_reset(&msg);
    lm_buf_printf(&msg, "restored table %s: ", table);
    lm_group_digits(&msg, rows);
    lm_buf_printf(&msg, " row%s", rows == 1 ? "" : "s");
    if (ncommon < was.n)
      lm_buf_printf(&msg, " (%zu kept column%s the new table lacks: not "
                    "restored)", was.n - ncommon,
                    was.n - ncommon == 1 ? "" : "s");
    lm_emit(env, LM_EVENT_INFO, running_revision(env), "%s",
            lm_buf_str(&msg));
  } else {
    lm_err_prefix(err, "restoring table %s from %s", table, lm_buf_str(&kq));
  }
  free(common);
  lm_strvec_free(&cells);
  lm_strvec_free(&now);
  lm_strvec_free(&was);
  lm_buf_free(&kq);
  lm_buf_free(&msg);
  return rc;
}

int lm_keep_after(lm_env *env, const lm_op *op, lm_err *err) {
  if (!is_fn(env, "downgrade")) return LM_OK;
  keep_state *st = state(env);
  if (st->busy) return LM_OK;
  if (op->kind == LM_OP_ADD_COLUMN && op->ncolumns == 1)
    return refill_column(env, st, op->schema, op->table, &op->columns[0], err);
  if (op->kind == LM_OP_CREATE_TABLE)
    return refill_table(env, st, op->schema, op->table, err);
  for (size_t i = 0; op->kind == LM_OP_BATCH && i < op->nops; i++) {
    const lm_op *sub = &op->ops[i];
    if (sub->kind == LM_OP_ADD_COLUMN && sub->ncolumns == 1 &&
        refill_column(env, st, op->schema, op->table, &sub->columns[0],
                      err) != LM_OK)
      return LM_ERROR;
  }
  return LM_OK;
}

/* What was refilled gets back what depended on it; the kept copy and its
 * catalogue row go. */
static int finish_one(lm_env *env, const refill *r, lm_err *err) {
  const lm_keep_methods *km = env->dialect->keep;
  int made = 0, rc = LM_OK;
  for (size_t i = 0; rc == LM_OK && i < r->lines.n; i++) {
    int one = 0;
    rc = km->restore(env->conn, r->schema, r->table, r->lines.items[i], &one,
                     err);
    made += one;
  }
  if (rc == LM_OK) rc = lm_tx_check(env, err);
  lm_buf sql = LM_BUF_INIT;
  lm_keep_sql_drop(env->dialect, &sql, km->schema, r->kept, 0);
  if (rc == LM_OK) rc = lm_exec_sql(env, lm_buf_str(&sql), 0, NULL, NULL, err);
  lm_buf_reset(&sql);
  lm_keep_sql_catalogue_delete(env->dialect, &sql, env->version_table_schema,
                               LM_KEPT_TABLE);
  lm_value id = {.type = LM_V_INT, .i = r->id};
  if (rc == LM_OK) rc = lm_exec_sql(env, lm_buf_str(&sql), 1, &id, NULL, err);
  lm_buf_free(&sql);
  if (rc != LM_OK)
    lm_err_prefix(err, "restoring what depended on %s", r->what);
  else if (made)
    lm_emit(env, LM_EVENT_INFO, running_revision(env), "restored %s: %d "
            "index%s or constraint%s made again", r->what, made,
            made == 1 ? "" : "es", made == 1 ? "" : "s");
  return rc;
}

int lm_keep_finish(lm_env *env, const char *revision, int rc) {
  (void)revision;
  lua_State *L = env->L;
  if (lua_getfield(L, LUA_REGISTRYINDEX, STATE_KEY) != LUA_TUSERDATA) {
    lua_pop(L, 1);
    return rc;
  }
  keep_state *st = lua_touserdata(L, -1);
  lua_pop(L, 1);
  for (size_t i = 0; rc == LM_OK && i < st->nrefills; i++) {
    st->busy = 1;
    rc = finish_one(env, &st->refills[i], &env->err);
    st->busy = 0;
  }
  refills_clear(st);
  return rc;
}

/* ---- the catalogue, read ------------------------------------------------ */

static char *dup_or_null(const char *s) { return s ? lm_xstrdup(s) : NULL; }

/* Seconds since "YYYY-MM-DD HH:MM:SS" (UTC). */
static double age_of(const char *when) {
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  if (!when || sscanf(when, "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon,
                      &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) < 3)
    return 0;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  double a = difftime(time(NULL), timegm(&tm));
  return a < 0 ? 0 : a;
}

int lm_kept_read(lm_env *env, lm_kept **out, size_t *n) {
  *out = NULL;
  *n = 0;
  int exists = 0;
  if (lm_connect(env) != LM_OK ||
      env->dialect->has_table(env->conn, env->version_table_schema,
                              LM_KEPT_TABLE, &exists, &env->err) != LM_OK)
    return LM_ERROR;
  if (!exists) return LM_OK;
  lm_buf sql = LM_BUF_INIT;
  lm_keep_sql_catalogue_list(env->dialect, &sql, env->version_table_schema,
                             LM_KEPT_TABLE);
  lm_strvec cells = LM_STRVEC_INIT;
  size_t ncols = 0;
  int rc = query_cells(env, lm_buf_str(&sql), 0, NULL, &cells, &ncols,
                       &env->err);
  lm_buf_free(&sql);
  size_t rows = rc == LM_OK && ncols == 9 ? cells.n / 9 : 0;
  lm_kept *k = lm_xcalloc(rows + 1, sizeof *k);
  for (size_t i = 0; i < rows; i++) {
    char **c = &cells.items[i * 9];
    k[i].id = strtoll(c[0], NULL, 10);
    k[i].revision = dup_or_null(c[1]);
    k[i].kind = dup_or_null(c[2]);
    k[i].schema = dup_or_null(c[3]);
    k[i].table = dup_or_null(c[4]);
    k[i].column = dup_or_null(c[5]);
    k[i].kept_as = dup_or_null(c[6]);
    k[i].rows = c[7] ? strtoll(c[7], NULL, 10) : 0;
    k[i].kept_at = dup_or_null(c[8]);
    k[i].age = age_of(c[8]);
    k[i].bytes = -1;
    int64_t bytes = -1;
    lm_err err;
    lm_err_init(&err);
    if (env->dialect->keep &&
        env->dialect->keep->size(env->conn, k[i].kept_as, &bytes, &err) ==
            LM_OK)
      k[i].bytes = bytes;
    lm_err_free(&err);
  }
  lm_strvec_free(&cells);
  *out = k;
  *n = rows;
  return rc;
}

void lm_kept_free(lm_kept *rows, size_t n) {
  for (size_t i = 0; rows && i < n; i++) {
    free(rows[i].revision);
    free(rows[i].kind);
    free(rows[i].schema);
    free(rows[i].table);
    free(rows[i].column);
    free(rows[i].kept_as);
    free(rows[i].kept_at);
  }
  free(rows);
}

void lm_kept_describe(lm_buf *out, const lm_kept *row) {
  if (row->column)
    lm_buf_printf(out, "%s%s%s.%s", row->schema ? row->schema : "",
                  row->schema ? "." : "", row->table, row->column);
  else
    lm_buf_printf(out, "table %s%s%s", row->schema ? row->schema : "",
                  row->schema ? "." : "", row->table);
}

int lm_kept_remove(lm_env *env, const lm_kept *row) {
  lm_buf sql = LM_BUF_INIT;
  lm_keep_sql_drop(env->dialect, &sql, env->dialect->keep->schema,
                   row->kept_as, 1);
  int rc = lm_exec_sql(env, lm_buf_str(&sql), 0, NULL, NULL, &env->err);
  lm_buf_reset(&sql);
  lm_keep_sql_catalogue_delete(env->dialect, &sql, env->version_table_schema,
                               LM_KEPT_TABLE);
  lm_value id = {.type = LM_V_INT, .i = row->id};
  if (rc == LM_OK)
    rc = lm_exec_sql(env, lm_buf_str(&sql), 1, &id, NULL, &env->err);
  lm_buf_free(&sql);
  return rc;
}
