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
  " c.relname, c.relkind IN ('v', 'm'), ds.description"
  " FROM pg_catalog.pg_class c"
  " LEFT JOIN pg_catalog.pg_description ds ON ds.objoid = c.oid"
  "   AND ds.classoid = 'pg_catalog.pg_class'::regclass AND ds.objsubid = 0"
  IN_SCHEMAS
  " AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition"
  " ORDER BY c.oid";

/* Joins rather than per-row functions (col_description is a query of
 * its own each time).  A default cannot name a column, so it is deparsed
 * without its table (pg_get_expr would open the table for each one); a
 * generated column's expression can, and is deparsed with it. */
static const char *const columns_sql =
  "SELECT a.attrelid, a.attname,"
  " pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,"
  " CASE WHEN a.attgenerated <> '' THEN"
  "   pg_catalog.pg_get_expr(d.adbin, d.adrelid)"
  "   ELSE pg_catalog.pg_get_expr(d.adbin, 0) END, a.attidentity,"
  " a.attgenerated, ds.description, NULL, a.attnum"
  " FROM pg_catalog.pg_attribute a"
  " JOIN pg_catalog.pg_class c ON c.oid = a.attrelid"
  " LEFT JOIN pg_catalog.pg_attrdef d"
  "   ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
  " LEFT JOIN pg_catalog.pg_description ds ON ds.objoid = a.attrelid"
  "   AND ds.classoid = 'pg_catalog.pg_class'::regclass"
  "   AND ds.objsubid = a.attnum"
  IN_SCHEMAS TABLES
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
  " pg_catalog.array_to_string(con.conkey, ' '),"
  " fn.nspname, fn.nspname = pg_catalog.current_schema(), fc.relname,"
  " CASE WHEN con.contype = 'f' THEN "
  KEY_NAMES("con.confrelid", "con.confkey") " END,"
  " con.confdeltype, con.confupdtype, con.condeferrable, con.condeferred,"
  " CASE WHEN con.contype = 'c'"
  "   THEN pg_catalog.pg_get_constraintdef(con.oid) END"
  " FROM pg_catalog.pg_constraint con"
  " JOIN pg_catalog.pg_class c ON c.oid = con.conrelid"
  " LEFT JOIN pg_catalog.pg_class fc ON fc.oid = con.confrelid"
  " LEFT JOIN pg_catalog.pg_namespace fn ON fn.oid = fc.relnamespace"
  IN_SCHEMAS TABLES " AND con.contype IN ('p', 'u', 'c', 'f')"
  " ORDER BY con.conrelid, con.contype, con.conname";

/* Indexes that back no constraint: the key columns' numbers (0 for an
 * expression), and only where there are expressions, each key's text. */
static const char *const indexes_sql =
  "SELECT i.indrelid, ic.relname, i.indisunique, am.amname,"
  " i.indkey::text, i.indnkeyatts,"
  " CASE WHEN i.indexprs IS NOT NULL THEN pg_catalog.array_to_string(ARRAY("
  "   SELECT pg_catalog.pg_get_indexdef(i.indexrelid, k, true)"
  "   FROM generate_series(1, i.indnkeyatts) k ORDER BY k), '" SEP "') END,"
  " pg_catalog.pg_get_expr(i.indpred, i.indrelid)"
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
  int *attnum;                  /* each column's number in the catalog */
} rel;

/* The rel for an oid (rels sorted by oid), or NULL. */
static rel *rel_of(rel *rels, size_t n, const char *oidtext) {
  unsigned long oid = strtoul(oidtext, NULL, 10);
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (rels[mid].oid < oid) lo = mid + 1;
    else hi = mid;
  }
  return lo < n && rels[lo].oid == oid ? &rels[lo] : NULL;
}

/* Column names for catalog numbers ("1 3"), in the model's arena; an
 * unknown number (a dropped column) reads as "?". */
static const char **names_of(lm_schema *s, const rel *r, const char *nums,
                             size_t *n) {
  const lm_mtable *t = &s->tables[r->table];
  size_t cap = 1;
  for (const char *p = nums; *p; p++) cap += *p == ' ';
  const char **names = lm_arena_alloc(&s->arena, cap * sizeof *names);
  size_t k = 0;
  for (const char *p = nums; *p && k < cap;) {
    char *end;
    long num = strtol(p, &end, 10);
    if (end == p) break;
    const char *name = num == 0 ? "" : "?";
    for (size_t c = 0; c < t->ncolumns; c++)
      if (r->attnum[c] == num) name = t->columns[c].name;
    names[k++] = name;
    p = end;
    while (*p == ' ') p++;
  }
  *n = k;
  return names;
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
    rels[k].attnum = NULL;
    k++;
  }
  *out = rels;
  *nout = k;
  return LM_OK;
}

static void read_columns(lm_schema *s, PGresult *r, rel *rels,
                         size_t nrels) {
  for (int i = 0, n = PQntuples(r); i < n; i++) {
    rel *rl = rel_of(rels, nrels, val(r, i, 0));
    if (!rl) continue;
    lm_mtable *t = &s->tables[rl->table];
    lm_mcolumn *c = lm_mtable_add_column(s, t);
    rl->attnum = lm_xrealloc(rl->attnum, t->ncolumns * sizeof *rl->attnum);
    rl->attnum[t->ncolumns - 1] = atoi(val(r, i, 9));
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
      c->extra = lm_norm_expr(s, def);
      def = NULL;
    } else if (def && strncmp(def, "nextval(", 8) == 0 &&
               (c->type.kind == LM_T_INTEGER || c->type.kind == LM_T_BIGINT ||
                c->type.kind == LM_T_SMALLINT)) {
      c->serial = LM_MSERIAL_SERIAL;      /* SERIAL: numbered by a sequence */
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

/* Does `name` start with "<table>_" and continue with `rest`? */
static int named_after(const char *name, const char *table, const char *rest,
                       int digits) {
  size_t n = strlen(table);
  if (strncmp(name, table, n) != 0 || name[n] != '_') return 0;
  name += n + 1;
  size_t r = strlen(rest);
  if (strncmp(name, rest, r) != 0) return 0;
  name += r;
  while (digits && *name >= '0' && *name <= '9') name++;
  return *name == '\0';
}

/* Is the constraint's name the one PostgreSQL gives an unnamed one
 * (<t>_pkey, <t>_<cols>_key, <t>_<cols>_fkey, <t>[_<col>]_check)?  Then
 * the model leaves it unnamed, as a replayed model does. */
static int default_name(const lm_mtable *t, const lm_constraint *c) {
  lm_buf want = LM_BUF_INIT;
  for (size_t i = 0; i < c->ncolumns; i++)
    lm_buf_printf(&want, "%s_", c->columns[i]);
  int r = 0;
  switch (c->kind) {
  case LM_CON_PRIMARY_KEY: r = named_after(c->name, t->name, "pkey", 0); break;
  case LM_CON_UNIQUE:
    lm_buf_puts(&want, "key");
    r = named_after(c->name, t->name, lm_buf_str(&want), 1);
    break;
  case LM_CON_FOREIGN_KEY:
    lm_buf_puts(&want, "fkey");
    r = named_after(c->name, t->name, lm_buf_str(&want), 1);
    break;
  case LM_CON_CHECK:
    r = named_after(c->name, t->name, "check", 1);
    for (size_t i = 0; !r && i < t->ncolumns; i++) {
      lm_buf_reset(&want);
      lm_buf_printf(&want, "%s_check", t->columns[i].name);
      r = named_after(c->name, t->name, lm_buf_str(&want), 1);
    }
    break;
  case LM_CON_EXCLUDE:          /* op.create_exclude_constraint names it */
    break;
  }
  lm_buf_free(&want);
  return r;
}

static void read_constraints(lm_schema *s, PGresult *r, rel *rels,
                             size_t nrels) {
  for (int i = 0, n = PQntuples(r); i < n; i++) {
    rel *rl = rel_of(rels, nrels, val(r, i, 0));
    if (!rl) continue;
    lm_mtable *t = &s->tables[rl->table];
    lm_mconstraint *mc = lm_mtable_add_constraint(s, t);
    lm_constraint *con = &mc->con;
    con->name = lm_schema_str(s, val(r, i, 1));
    con->columns = names_of(s, rl, val(r, i, 3) ? val(r, i, 3) : "",
                            &con->ncolumns);
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
    if (default_name(t, con)) con->name = NULL;
  }
}

static void read_indexes(lm_schema *s, PGresult *r, rel *rels,
                         size_t nrels) {
  for (int i = 0, n = PQntuples(r); i < n; i++) {
    rel *rl = rel_of(rels, nrels, val(r, i, 0));
    if (!rl) continue;
    lm_mtable *t = &s->tables[rl->table];
    lm_mindex *ix = lm_mtable_add_index(s, t);
    ix->name = lm_schema_str(s, val(r, i, 1));
    ix->ix.unique = flag(r, i, 2);
    const char *method = val(r, i, 3);
    ix->method = method && strcmp(method, "btree") != 0
                     ? lm_schema_str(s, method) : NULL;
    /* indkey lists the included (non-key) columns too: keys come first */
    size_t ncols, nkeys = (size_t)atoi(val(r, i, 5)), nexprs = 0;
    const char **cols = names_of(s, rl, val(r, i, 4), &ncols);
    if (nkeys < ncols) ncols = nkeys;
    const char *const *exprs = val(r, i, 6)
        ? lm_norm_split(s, val(r, i, 6), SEP[0], &nexprs) : NULL;
    int *is_expr = lm_arena_alloc(&s->arena, (ncols + 1) * sizeof *is_expr);
    for (size_t k = 0; k < ncols; k++) {
      is_expr[k] = cols[k][0] == '\0';
      if (is_expr[k]) cols[k] = k < nexprs ? lm_norm_expr(s, exprs[k]) : "?";
    }
    ix->ix.columns = cols;
    ix->ix.is_expr = is_expr;
    ix->ix.ncolumns = ncols;
    ix->ix.where = lm_norm_expr(s, val(r, i, 7));
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
  for (size_t i = 0; i < nrels; i++) free(rels[i].attnum);
  free(rels);
  free(list);
  return rc;
}

/* A type's own spelling of a name format_type() writes otherwise. */
static const struct { const char *alias, *name; } type_aliases[] = {
  {"int", "integer"}, {"int4", "integer"}, {"int8", "bigint"},
  {"int2", "smallint"}, {"varchar", "character varying"},
  {"char", "character"}, {"bool", "boolean"},
  {"float8", "double precision"}, {"float", "double precision"},
  {"float4", "real"}, {"decimal", "numeric"},
  {"timestamp", "timestamp without time zone"},
  {"timestamptz", "timestamp with time zone"},
  {"time", "time without time zone"}, {"timetz", "time with time zone"},
  {"varbit", "bit varying"}, {NULL, NULL}};

/* dialect.h, read_type: a declared type in format_type()'s words, then as
 * a column of it reads back (norm_type). */
void lm_pg_read_type(lm_schema *s, lm_type *t) {
  const char *raw = t->kind == LM_T_PER_DIALECT
                        ? lm_type_choice(t, "postgresql")
                    : t->kind == LM_T_RAW ? t->raw : NULL;
  if (!raw) return;
  /* lower case, single blanks, none next to ( ) , [ ] */
  lm_buf b = LM_BUF_INIT;
  int blank = 0;
  for (const char *p = raw; *p; p++) {
    if (*p == ' ' || *p == '\t' || *p == '\n') { blank = 1; continue; }
    char ch = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    int tight = strchr("(),[]", ch) ||
                (b.len && strchr("(,[", b.data[b.len - 1]));
    if (blank && b.len && !tight) lm_buf_putc(&b, ' ');
    blank = 0;
    lm_buf_putc(&b, ch);
  }
  const char *text = lm_buf_str(&b);
  size_t name_len = strcspn(text, "([");
  lm_buf named = LM_BUF_INIT;
  for (size_t i = 0; type_aliases[i].alias; i++)
    if (strlen(type_aliases[i].alias) == name_len &&
        strncmp(text, type_aliases[i].alias, name_len) == 0) {
      lm_buf_printf(&named, "%s%s", type_aliases[i].name, text + name_len);
      text = lm_buf_str(&named);
      break;
    }
  norm_type(s, t, text);
  lm_buf_free(&named);
  lm_buf_free(&b);
}
