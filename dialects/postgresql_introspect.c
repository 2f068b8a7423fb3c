/*
 * postgresql_introspect.c - a whole schema read from pg_catalog in four
 * queries (relations, columns, constraints, indexes), whatever the number
 * of tables, and normalized to the model a replay gives (dialect.h,
 * introspect_schema): portable types, defaults without casts, SERIAL and
 * identity columns as lm_mcolumn.serial.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "introspect_norm.h"
#include "postgresql.h"

/* Names in a list are separated by this (never in an identifier). */
#define SEP "\x1f"

/* The relations of the schemas asked for: $1 is a text[] of schema names,
 * or NULL for the current schema. */
#define IN_SCHEMAS \
  " JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace" \
  " WHERE n.nspname = ANY(coalesce($1::text[]," \
  " ARRAY[pg_catalog.current_schema()::text]))"
#define TABLES " AND c.relkind IN ('r', 'p') AND NOT c.relispartition"

static const char *const relations_sql =
  "SELECT c.oid, n.nspname, n.nspname = pg_catalog.current_schema(),"
  " c.relname, c.relkind IN ('v', 'm'),"
  " pg_catalog.obj_description(c.oid, 'pg_class')"
  " FROM pg_catalog.pg_class c" IN_SCHEMAS
  " AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition"
  " ORDER BY c.oid";

static const char *const columns_sql =
  "SELECT a.attrelid, a.attname,"
  " pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,"
  " pg_catalog.pg_get_expr(d.adbin, d.adrelid), a.attidentity,"
  " a.attgenerated, pg_catalog.col_description(a.attrelid, a.attnum),"
  " EXISTS (SELECT 1 FROM pg_catalog.pg_depend dep"
  "   JOIN pg_catalog.pg_class s ON s.oid = dep.objid AND s.relkind = 'S'"
  "   WHERE dep.classid = 'pg_catalog.pg_class'::regclass"
  "   AND dep.refobjid = a.attrelid AND dep.refobjsubid = a.attnum"
  "   AND dep.deptype = 'a')"
  " FROM pg_catalog.pg_attribute a"
  " JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
  " LEFT JOIN pg_catalog.pg_attrdef d"
  "   ON d.adrelid = a.attrelid AND d.adnum = a.attnum" IN_SCHEMAS TABLES
  " AND a.attnum > 0 AND NOT a.attisdropped"
  " ORDER BY a.attrelid, a.attnum";

/* Column names of a key, in key order. */
#define KEY_NAMES(rel, keys) \
  "pg_catalog.array_to_string(ARRAY(SELECT att.attname" \
  " FROM unnest(" keys ") WITH ORDINALITY k(num, pos)" \
  " JOIN pg_catalog.pg_attribute att ON att.attrelid = " rel \
  " AND att.attnum = k.num ORDER BY k.pos), '" SEP "')"

static const char *const constraints_sql =
  "SELECT con.conrelid, con.conname, con.contype,"
  " " KEY_NAMES("con.conrelid", "con.conkey") ","
  " fn.nspname, fn.nspname = pg_catalog.current_schema(), fc.relname,"
  " " KEY_NAMES("con.confrelid", "con.confkey") ","
  " con.confdeltype, con.confupdtype, con.condeferrable, con.condeferred,"
  " pg_catalog.pg_get_constraintdef(con.oid)"
  " FROM pg_catalog.pg_constraint con"
  " JOIN pg_catalog.pg_class c ON c.oid = con.conrelid"
  " LEFT JOIN pg_catalog.pg_class fc ON fc.oid = con.confrelid"
  " LEFT JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace"
  IN_SCHEMAS TABLES " AND con.contype IN ('p', 'u', 'c', 'f')"
  " ORDER BY con.conrelid, con.contype, con.conname";

/* Indexes that back no constraint: each key column's name, or its
 * expression; a flag string ("01") telling which are expressions. */
static const char *const indexes_sql =
  "SELECT i.indrelid, ic.relname, i.indisunique, am.amname,"
  " pg_catalog.array_to_string(ARRAY(SELECT CASE WHEN i.indkey[k - 1] = 0"
  "   THEN pg_catalog.pg_get_indexdef(i.indexrelid, k, true)"
  "   ELSE (SELECT att.attname FROM pg_catalog.pg_attribute att"
  "     WHERE att.attrelid = i.indrelid AND att.attnum = i.indkey[k - 1])"
  "   END FROM generate_series(1, i.indnkeyatts) k ORDER BY k), '" SEP "'),"
  " pg_catalog.array_to_string(ARRAY(SELECT (i.indkey[k - 1] = 0)::int"
  "   FROM generate_series(1, i.indnkeyatts) k ORDER BY k), ''),"
  " pg_catalog.pg_get_expr(i.indpred, i.indrelid),"
  " pg_catalog.pg_get_indexdef(i.indexrelid)"
  " FROM pg_catalog.pg_index i"
  " JOIN pg_catalog.pg_class c ON c.oid = i.indrelid"
  " JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid"
  " JOIN pg_catalog.pg_am am ON am.oid = ic.relam" IN_SCHEMAS TABLES
  " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint x"
  "   WHERE x.conindid = i.indexrelid AND x.contype IN ('p', 'u', 'x'))"
  " ORDER BY i.indrelid, ic.relname";

/* One catalog query with the schema list as $1. */
static PGresult *catalog(lm_conn *c, const char *sql, const char *schemas,
                         lm_err *err) {
  const char *vals[1] = {schemas};
  PGresult *res = PQexecParams(c->pg, sql, 1, NULL, vals, NULL, NULL, 0);
  if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
    lm_pg_result_error(c, res, sql, err);
    if (res) PQclear(res);
    return NULL;
  }
  return res;
}

/* A text[] literal of the names: {"a","b"}. */
static char *array_literal(const char *const *names, size_t n) {
  lm_buf b = LM_BUF_INIT;
  lm_buf_putc(&b, '{');
  for (size_t i = 0; i < n; i++) {
    if (i) lm_buf_putc(&b, ',');
    lm_buf_putc(&b, '"');
    for (const char *p = names[i]; *p; p++) {
      if (*p == '"' || *p == '\\') lm_buf_putc(&b, '\\');
      lm_buf_putc(&b, *p);
    }
    lm_buf_putc(&b, '"');
  }
  lm_buf_putc(&b, '}');
  return lm_buf_detach(&b);
}

static const char *val(PGresult *r, int row, int col) {
  return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static int flag(PGresult *r, int row, int col) {
  const char *v = val(r, row, col);
  return v && v[0] == 't';
}

/* A relation oid and the table it became. */
typedef struct rel {
  unsigned long oid;
  size_t table;
} rel;

/* The table for an oid (rels sorted by oid), or NULL. */
static lm_mtable *table_of(lm_schema *s, const rel *rels, size_t n,
                           const char *oidtext) {
  unsigned long oid = strtoul(oidtext, NULL, 10);
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (rels[mid].oid < oid) lo = mid + 1;
    else hi = mid;
  }
  if (lo < n && rels[lo].oid == oid) return &s->tables[rels[lo].table];
  return NULL;
}

/* format_type()'s words as a portable type where one matches. */
static void norm_type(lm_schema *s, lm_type *t, const char *text) {
  static const struct { const char *name; lm_type_kind kind; } plain[] = {
    {"integer", LM_T_INTEGER}, {"bigint", LM_T_BIGINT},
    {"smallint", LM_T_SMALLINT}, {"character varying", LM_T_STRING},
    {"text", LM_T_TEXT}, {"boolean", LM_T_BOOLEAN},
    {"double precision", LM_T_FLOAT}, {"numeric", LM_T_NUMERIC},
    {"date", LM_T_DATE}, {"timestamp without time zone", LM_T_DATETIME},
    {"timestamp with time zone", LM_T_TIMESTAMPTZ},
    {"time without time zone", LM_T_TIME}, {"json", LM_T_JSON},
    {"uuid", LM_T_UUID}, {"bytea", LM_T_BINARY}, {NULL, LM_T_NONE}};
  memset(t, 0, sizeof *t);
  t->length = t->precision = t->scale = -1;
  for (size_t i = 0; plain[i].name; i++) {
    size_t n = strlen(plain[i].name);
    if (strncmp(text, plain[i].name, n) != 0) continue;
    const char *rest = text + n;
    if (!*rest) {
      t->kind = plain[i].kind;
      return;
    }
    int a, b;
    char end;
    if (plain[i].kind == LM_T_STRING &&
        sscanf(rest, "(%d)%c", &a, &end) == 1) {
      t->kind = LM_T_STRING;
      t->length = a;
      return;
    }
    if (plain[i].kind == LM_T_NUMERIC) {
      if (sscanf(rest, "(%d,%d)%c", &a, &b, &end) == 2) {
        t->kind = LM_T_NUMERIC;
        t->precision = a;
        t->scale = b;
        return;
      }
    }
  }
  t->kind = LM_T_RAW;
  t->raw = lm_schema_str(s, text);
}

static int read_relations(lm_schema *s, PGresult *r, const char *const *skip,
                          size_t nskip, rel **out, size_t *nout) {
  int n = PQntuples(r);
  rel *rels = lm_xmalloc((size_t)(n ? n : 1) * sizeof *rels);
  size_t k = 0;
  for (int i = 0; i < n; i++) {
    const char *name = val(r, i, 3);
    const char *schema = flag(r, i, 2) ? NULL : val(r, i, 1);
    if (flag(r, i, 4)) {
      lm_schema_add_view(s, schema, name);
      continue;
    }
    int skipped = 0;
    for (size_t j = 0; j < nskip; j++)
      if (strcmp(skip[j], name) == 0) skipped = 1;
    if (skipped) continue;
    lm_mtable *t = lm_schema_add_table(s, schema, name);
    t->comment = lm_schema_str(s, val(r, i, 5));
    rels[k].oid = strtoul(val(r, i, 0), NULL, 10);
    rels[k].table = s->ntables - 1;
    k++;
  }
  *out = rels;
  *nout = k;
  return LM_OK;
}

static void read_columns(lm_schema *s, PGresult *r, const rel *rels,
                         size_t nrels) {
  for (int i = 0, n = PQntuples(r); i < n; i++) {
    lm_mtable *t = table_of(s, rels, nrels, val(r, i, 0));
    if (!t) continue;
    lm_mcolumn *c = lm_mtable_add_column(s, t);
    c->name = lm_schema_str(s, val(r, i, 1));
    norm_type(s, &c->type, val(r, i, 2));
    c->nullable = !flag(r, i, 3);
    const char *identity = val(r, i, 5), *generated = val(r, i, 6);
    const char *def = val(r, i, 4);
    if (identity && *identity) {
      c->serial = identity[0] == 'a' ? LM_MSERIAL_ALWAYS
                                     : LM_MSERIAL_IDENTITY;
    } else if (generated && *generated) {
      c->generated = 1;
      c->extra = lm_schema_str(s, def);
      def = NULL;
    } else if (def && flag(r, i, 8) && strncmp(def, "nextval(", 8) == 0) {
      c->serial = LM_MSERIAL_SERIAL;      /* SERIAL: the owned sequence */
      def = NULL;
    }
    lm_norm_default(s, &c->server_default, def);
    c->comment = lm_schema_str(s, val(r, i, 7));
  }
}

static const char *action(lm_schema *s, const char *code) {
  switch (code ? code[0] : 'a') {
  case 'r': return lm_norm_action(s, "RESTRICT");
  case 'c': return lm_norm_action(s, "CASCADE");
  case 'n': return lm_norm_action(s, "SET NULL");
  case 'd': return lm_norm_action(s, "SET DEFAULT");
  default: return NULL;           /* 'a': NO ACTION */
  }
}

/* CHECK ((cond)) [NOT VALID] as pg_get_constraintdef writes it: the
 * condition. */
static const char *check_condition(lm_schema *s, const char *def) {
  if (!def || strncmp(def, "CHECK ", 6) != 0) return lm_norm_expr(s, def);
  const char *from = def + 6;
  size_t n = strlen(from);
  const char *nv = " NOT VALID";
  if (n > strlen(nv) && strcmp(from + n - strlen(nv), nv) == 0)
    n -= strlen(nv);
  char *cond = lm_xstrndup(from, n);
  const char *r = lm_norm_expr(s, cond);
  free(cond);
  return r;
}

static void read_constraints(lm_schema *s, PGresult *r, const rel *rels,
                             size_t nrels) {
  for (int i = 0, n = PQntuples(r); i < n; i++) {
    lm_mtable *t = table_of(s, rels, nrels, val(r, i, 0));
    if (!t) continue;
    lm_mconstraint *mc = lm_mtable_add_constraint(s, t);
    lm_constraint *con = &mc->con;
    con->name = lm_schema_str(s, val(r, i, 1));
    con->columns = lm_norm_split(s, val(r, i, 3), SEP[0], &con->ncolumns);
    mc->sql = lm_schema_str(s, val(r, i, 12));
    switch (val(r, i, 2)[0]) {
    case 'p': con->kind = LM_CON_PRIMARY_KEY; break;
    case 'u': con->kind = LM_CON_UNIQUE; break;
    case 'c':
      con->kind = LM_CON_CHECK;
      con->condition = check_condition(s, val(r, i, 12));
      con->columns = NULL;
      con->ncolumns = 0;
      break;
    default:
      con->kind = LM_CON_FOREIGN_KEY;
      con->ref_schema = flag(r, i, 5) ? NULL : lm_schema_str(s, val(r, i, 4));
      con->ref_table = lm_schema_str(s, val(r, i, 6));
      con->ref_columns = lm_norm_split(s, val(r, i, 7), SEP[0],
                                       &con->nref_columns);
      con->ondelete = action(s, val(r, i, 8));
      con->onupdate = action(s, val(r, i, 9));
      con->deferrable = flag(r, i, 10);
      con->initially = flag(r, i, 11) ? "DEFERRED" : NULL;
      break;
    }
  }
}

static void read_indexes(lm_schema *s, PGresult *r, const rel *rels,
                         size_t nrels) {
  for (int i = 0, n = PQntuples(r); i < n; i++) {
    lm_mtable *t = table_of(s, rels, nrels, val(r, i, 0));
    if (!t) continue;
    lm_mindex *ix = lm_mtable_add_index(s, t);
    ix->name = lm_schema_str(s, val(r, i, 1));
    ix->ix.unique = flag(r, i, 2);
    const char *method = val(r, i, 3);
    ix->method = method && strcmp(method, "btree") != 0
                     ? lm_schema_str(s, method) : NULL;
    size_t ncols;
    const char **cols = (const char **)lm_norm_split(s, val(r, i, 4), SEP[0],
                                                     &ncols);
    const char *exprs = val(r, i, 5);
    int *is_expr = lm_arena_alloc(&s->arena, (ncols + 1) * sizeof *is_expr);
    for (size_t k = 0; k < ncols; k++) {
      is_expr[k] = exprs && exprs[k] == '1';
      if (is_expr[k]) cols[k] = lm_norm_expr(s, cols[k]);
    }
    ix->ix.columns = cols;
    ix->ix.is_expr = is_expr;
    ix->ix.ncolumns = ncols;
    ix->ix.where = lm_norm_expr(s, val(r, i, 6));
    ix->sql = lm_schema_str(s, val(r, i, 7));
  }
}

int lm_pg_introspect_schema(lm_conn *c, const char *const *schemas,
                            size_t nschemas, const char *const *skip,
                            size_t nskip, lm_schema *out, lm_err *err) {
  char *list = nschemas ? array_literal(schemas, nschemas) : NULL;
  rel *rels = NULL;
  size_t nrels = 0;
  int rc = LM_ERROR;
  PGresult *r = catalog(c, relations_sql, list, err);
  if (!r) goto done;
  read_relations(out, r, skip, nskip, &rels, &nrels);
  PQclear(r);
  if (!(r = catalog(c, columns_sql, list, err))) goto done;
  read_columns(out, r, rels, nrels);
  PQclear(r);
  if (!(r = catalog(c, constraints_sql, list, err))) goto done;
  read_constraints(out, r, rels, nrels);
  PQclear(r);
  if (!(r = catalog(c, indexes_sql, list, err))) goto done;
  read_indexes(out, r, rels, nrels);
  PQclear(r);
  rc = LM_OK;
done:
  free(rels);
  free(list);
  return rc;
}
