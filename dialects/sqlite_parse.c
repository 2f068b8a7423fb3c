/*
 * sqlite_parse.c - a table's shape read back from SQLite: the CREATE TABLE
 * text in sqlite_schema parsed into the schema model, keeping the
 * database's own words (declared types, CHECK conditions, defaults, key
 * clauses) so that a rebuild writes them back exactly, plus the table's
 * indexes and triggers verbatim.  The same reader follows raw SQL
 * (op.execute) on the offline model.
 *
 * The tokenizer knows SQLite's lexical rules (quoted identifiers in "", [],
 * ``, strings, comments); the parser knows only the column and table
 * constraint grammar.  Anything else is an error, never a guess.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sqlite_ddl.h"

/* ---- tokens ------------------------------------------------------------ */

typedef struct lexer lexer;
static size_t find_kw(const lexer *lx, size_t i, const char *kw);

typedef enum { T_END, T_WORD, T_QUOTED, T_STRING, T_NUMBER, T_PUNCT } tkind;

typedef struct tok {
  tkind kind;
  const char *p;        /* start in the source */
  size_t len;
} tok;

typedef struct lexer {
  const char *src;
  tok *toks;
  size_t n, cap;
} lexer;

static void push(lexer *lx, tkind k, const char *p, size_t len) {
  if (lx->n == lx->cap) {
    lx->cap = lx->cap ? lx->cap * 2 : 64;
    lx->toks = lm_xrealloc(lx->toks, lx->cap * sizeof *lx->toks);
  }
  lx->toks[lx->n++] = (tok){k, p, len};
}

static int word_char(int c) {
  return isalnum(c) || c == '_' || c == '$' || c >= 0x80;
}

/* Split src into tokens (the last is T_END).  An unterminated quote or
 * comment is an error. */
static int lex(lexer *lx, const char *src, lm_err *err) {
  memset(lx, 0, sizeof *lx);
  lx->src = src;
  const char *p = src;
  while (*p) {
    unsigned char c = (unsigned char)*p;
    if (isspace(c)) {
      p++;
    } else if (p[0] == '-' && p[1] == '-') {
      p += strcspn(p, "\n");
    } else if (p[0] == '/' && p[1] == '*') {
      const char *e = strstr(p + 2, "*/");
      if (!e) return lm_err_set(err, "unterminated comment");
      p = e + 2;
    } else if (c == '\'' || c == '"' || c == '`' || c == '[') {
      char close = c == '[' ? ']' : (char)c;
      const char *e = p + 1;
      for (;;) {
        if (!*e) return lm_err_set(err, "unterminated quote");
        if (*e == close) {
          if (close != ']' && e[1] == close) { e += 2; continue; }
          break;
        }
        e++;
      }
      push(lx, c == '\'' ? T_STRING : T_QUOTED, p, (size_t)(e + 1 - p));
      p = e + 1;
    } else if (isdigit(c) || (c == '.' && isdigit((unsigned char)p[1]))) {
      const char *e = p;
      while (word_char((unsigned char)*e) || *e == '.' ||
             ((*e == '+' || *e == '-') && (e[-1] == 'e' || e[-1] == 'E')))
        e++;
      push(lx, T_NUMBER, p, (size_t)(e - p));
      p = e;
    } else if (word_char(c)) {
      const char *e = p;
      while (word_char((unsigned char)*e)) e++;
      push(lx, T_WORD, p, (size_t)(e - p));
      p = e;
    } else {
      push(lx, T_PUNCT, p, 1);
      p++;
    }
  }
  push(lx, T_END, p, 0);
  return LM_OK;
}

static void lex_free(lexer *lx) { free(lx->toks); }

/* Token i, or the end token past the end: truncated input never reads
 * beyond the list. */
static const tok *at(const lexer *lx, size_t i) {
  return &lx->toks[i < lx->n ? i : lx->n - 1];
}

/* Is token i the keyword kw (case-insensitive, unquoted)? */
static int is_kw(const lexer *lx, size_t i, const char *kw) {
  const tok *t = at(lx, i);
  return t->kind == T_WORD && t->len == strlen(kw) &&
         strncasecmp(t->p, kw, t->len) == 0;
}

static int is_punct(const lexer *lx, size_t i, char c) {
  return at(lx, i)->kind == T_PUNCT && at(lx, i)->p[0] == c;
}

/* An identifier's name: quotes removed and doubled quotes undone. */
static const char *ident(lm_schema *s, const tok *t) {
  if (t->kind != T_QUOTED && t->kind != T_STRING)
    return lm_arena_strndup(&s->arena, t->p, t->len);
  char q = t->p[0] == '[' ? ']' : t->p[0];
  char *out = lm_arena_alloc(&s->arena, t->len);
  size_t k = 0;
  for (size_t i = 1; i + 1 < t->len; i++) {
    out[k++] = t->p[i];
    if (t->p[i] == q && q != ']' && t->p[i + 1] == q) i++;
  }
  out[k] = '\0';
  return out;
}

static int is_name(const tok *t) {
  return t->kind == T_WORD || t->kind == T_QUOTED || t->kind == T_STRING;
}

/* Source text from token a to token b (inclusive), verbatim. */
static const char *span(lm_schema *s, const lexer *lx, size_t a, size_t b) {
  const char *from = at(lx, a)->p;
  const char *to = at(lx, b)->p + at(lx, b)->len;
  if (to < from) return "";       /* an empty group: "CHECK ()" */
  return lm_arena_strndup(&s->arena, from, (size_t)(to - from));
}

/* Index just past the group opened by the '(' at i (balanced). */
static size_t skip_group(const lexer *lx, size_t i) {
  int depth = 0;
  for (; at(lx, i)->kind != T_END; i++) {
    if (is_punct(lx, i, '(')) depth++;
    else if (is_punct(lx, i, ')') && --depth == 0) return i + 1;
  }
  return i;
}

/* "(a, b COLLATE x DESC, ...)" at i: the first name of each item. */
static size_t name_list(lm_schema *s, const lexer *lx, size_t i,
                        const char *const **out, size_t *n, lm_err *err) {
  if (!is_punct(lx, i, '(')) {
    lm_err_set(err, "expected a column list");
    return 0;
  }
  size_t end = skip_group(lx, i);
  size_t cnt = 0;
  const char **names = lm_arena_alloc(&s->arena,
                                      (end - i) * sizeof *names + 1);
  int want = 1, depth = 0;
  for (size_t k = i + 1; k + 1 < end; k++) {
    if (is_punct(lx, k, '(')) depth++;
    else if (is_punct(lx, k, ')')) depth--;
    else if (depth == 0 && is_punct(lx, k, ',')) { want = 1; continue; }
    if (want && depth == 0 && is_name(at(lx, k)))
      names[cnt++] = ident(s, at(lx, k));
    want = 0;
  }
  *out = names;
  *n = cnt;
  return end;
}

/* ---- column definitions ------------------------------------------------ */

/* Words that start a column constraint (they end the declared type). */
static int starts_clause(const lexer *lx, size_t i) {
  static const char *const kws[] = {
    "CONSTRAINT", "PRIMARY", "NOT", "NULL", "UNIQUE", "CHECK", "DEFAULT",
    "COLLATE", "REFERENCES", "GENERATED", "AS", NULL};
  for (size_t k = 0; kws[k]; k++)
    if (is_kw(lx, i, kws[k])) return 1;
  return 0;
}

/* [ON CONFLICT word] */
static size_t conflict(const lexer *lx, size_t i) {
  if (is_kw(lx, i, "ON") && is_kw(lx, i + 1, "CONFLICT")) return i + 3;
  return i;
}

/* The foreign key clause from REFERENCES at i; fills the constraint and
 * returns the index past it. */
static size_t fk_clause(lm_schema *s, const lexer *lx, size_t i,
                        lm_constraint *c, lm_err *err) {
  i++;                                      /* REFERENCES */
  if (!is_name(at(lx, i))) {
    lm_err_set(err, "REFERENCES without a table");
    return 0;
  }
  c->ref_table = ident(s, at(lx, i++));
  if (is_punct(lx, i, '(')) {
    i = name_list(s, lx, i, &c->ref_columns, &c->nref_columns, err);
    if (!i) return 0;
  }
  /* The actions and deferral are recorded as written (a rebuild writes
   * the clause's own text back; whole-schema introspection reads these). */
  for (;;) {
    if (is_kw(lx, i, "ON") && (is_kw(lx, i + 1, "DELETE") ||
                               is_kw(lx, i + 1, "UPDATE"))) {
      int del = is_kw(lx, i + 1, "DELETE");
      i += 2;
      size_t from = i;
      if (is_kw(lx, i, "SET") || is_kw(lx, i, "NO")) i++;
      const char *words = span(s, lx, from, i);
      if (del) c->ondelete = words;
      else c->onupdate = words;
      i++;
    } else if (is_kw(lx, i, "MATCH")) {
      i += 2;
    } else if (is_kw(lx, i, "NOT") && is_kw(lx, i + 1, "DEFERRABLE")) {
      c->deferrable = 0;
      i += 2;
    } else if (is_kw(lx, i, "DEFERRABLE")) {
      c->deferrable = 1;
      i++;
    } else if (is_kw(lx, i, "INITIALLY")) {
      c->initially = span(s, lx, i + 1, i + 1);
      i += 2;
    } else {
      return i;
    }
  }
}

/* One column definition, tokens [a, b). */
static int column_def(lm_schema *s, lm_mtable *t, const lexer *lx, size_t a,
                      size_t b, lm_err *err) {
  lm_mcolumn *col = lm_mtable_add_column(s, t);
  col->name = ident(s, at(lx, a));
  size_t i = a + 1;
  size_t type_from = i;
  while (i < b && !starts_clause(lx, i)) {
    if (is_punct(lx, i, '(')) i = skip_group(lx, i);
    else i++;
  }
  col->type.kind = LM_T_RAW;
  col->type.length = col->type.precision = col->type.scale = -1;
  col->type.raw = i > type_from ? span(s, lx, type_from, i - 1) : "";
  lm_buf extra = LM_BUF_INIT;
  const char *cname = NULL;
  while (i < b) {
    size_t from = i;
    if (is_kw(lx, i, "CONSTRAINT")) {
      if (i + 1 >= b) break;
      cname = ident(s, at(lx, i + 1));
      i += 2;
      continue;
    }
    lm_mconstraint *mc = NULL;
    if (is_kw(lx, i, "NOT") && is_kw(lx, i + 1, "NULL")) {
      col->nullable = 0;
      i = conflict(lx, i + 2);
    } else if (is_kw(lx, i, "NULL")) {
      i = conflict(lx, i + 1);
    } else if (is_kw(lx, i, "PRIMARY") && is_kw(lx, i + 1, "KEY")) {
      i += 2;
      if (is_kw(lx, i, "ASC") || is_kw(lx, i, "DESC")) i++;
      i = conflict(lx, i);
      if (is_kw(lx, i, "AUTOINCREMENT")) {
        col->autoincrement = 1;
        i++;
      }
      mc = lm_mtable_add_constraint(s, t);
      mc->con.kind = LM_CON_PRIMARY_KEY;
    } else if (is_kw(lx, i, "UNIQUE")) {
      i = conflict(lx, i + 1);
      mc = lm_mtable_add_constraint(s, t);
      mc->con.kind = LM_CON_UNIQUE;
    } else if (is_kw(lx, i, "CHECK") && is_punct(lx, i + 1, '(')) {
      i = skip_group(lx, i + 1);
      mc = lm_mtable_add_constraint(s, t);
      mc->con.kind = LM_CON_CHECK;
      mc->con.condition = span(s, lx, from + 2, i - 2);
    } else if (is_kw(lx, i, "DEFAULT")) {
      i++;
      size_t v = i;
      if (is_punct(lx, i, '(')) i = skip_group(lx, i);
      else if (is_punct(lx, i, '-') || is_punct(lx, i, '+')) i += 2;
      else i++;
      if (i > b) return lm_err_set(err, "column %s: DEFAULT without a value",
                                   col->name);
      col->server_default.kind = LM_DEF_RAW;
      col->server_default.text = span(s, lx, v, i - 1);
    } else if (is_kw(lx, i, "REFERENCES")) {
      mc = lm_mtable_add_constraint(s, t);
      mc->con.kind = LM_CON_FOREIGN_KEY;
      i = fk_clause(s, lx, i, &mc->con, err);
      if (!i) return LM_ERROR;
    } else if (is_kw(lx, i, "COLLATE")) {
      i += 2;
      lm_buf_printf(&extra, "%s%s", extra.len ? " " : "",
                    span(s, lx, from, i - 1));
    } else if (is_kw(lx, i, "GENERATED") || is_kw(lx, i, "AS")) {
      while (i < b && !is_punct(lx, i, '(')) i++;
      i = skip_group(lx, i);
      if (is_kw(lx, i, "STORED") || is_kw(lx, i, "VIRTUAL")) i++;
      col->generated = 1;
      lm_buf_printf(&extra, "%s%s", extra.len ? " " : "",
                    span(s, lx, from, i - 1));
    } else {
      lm_buf_free(&extra);
      return lm_err_set(err, "column %s: cannot read the clause starting at "
                        "'%.*s'", col->name, (int)at(lx, i)->len,
                        at(lx, i)->p);
    }
    if (i > b) i = b;
    if (mc) {
      /* Kept inline on its column, in the database's words. */
      const char **cols = lm_arena_alloc(&s->arena, sizeof *cols);
      cols[0] = col->name;
      if (mc->con.kind != LM_CON_CHECK) {
        mc->con.columns = cols;
        mc->con.ncolumns = 1;
      }
      mc->con.name = cname;
      mc->sql = span(s, lx, from, i - 1);
      mc->column = col->name;
    }
    cname = NULL;
  }
  if (extra.len) col->extra = lm_schema_str(s, lm_buf_str(&extra));
  lm_buf_free(&extra);
  return LM_OK;
}

/* One table constraint, tokens [a, b). */
static int table_constraint(lm_schema *s, lm_mtable *t, const lexer *lx,
                            size_t a, size_t b, lm_err *err) {
  lm_mconstraint *mc = lm_mtable_add_constraint(s, t);
  size_t i = a;
  if (is_kw(lx, i, "CONSTRAINT")) {
    mc->con.name = ident(s, at(lx, i + 1));
    i += 2;
  }
  size_t from = i;
  if (is_kw(lx, i, "PRIMARY") || is_kw(lx, i, "UNIQUE")) {
    mc->con.kind = is_kw(lx, i, "PRIMARY") ? LM_CON_PRIMARY_KEY
                                           : LM_CON_UNIQUE;
    i += mc->con.kind == LM_CON_PRIMARY_KEY ? 2 : 1;
    if (!name_list(s, lx, i, &mc->con.columns, &mc->con.ncolumns, err))
      return LM_ERROR;
  } else if (is_kw(lx, i, "CHECK") && is_punct(lx, i + 1, '(')) {
    mc->con.kind = LM_CON_CHECK;
    size_t e = skip_group(lx, i + 1);
    mc->con.condition = span(s, lx, i + 2, e - 2);
  } else if (is_kw(lx, i, "FOREIGN") && is_kw(lx, i + 1, "KEY")) {
    mc->con.kind = LM_CON_FOREIGN_KEY;
    i = name_list(s, lx, i + 2, &mc->con.columns, &mc->con.ncolumns, err);
    if (!i || !is_kw(lx, i, "REFERENCES"))
      return lm_err_set(err, "FOREIGN KEY without REFERENCES");
    if (!fk_clause(s, lx, i, &mc->con, err)) return LM_ERROR;
  } else {
    return lm_err_set(err, "cannot read the table constraint starting at "
                      "'%.*s'", (int)at(lx, i)->len, at(lx, i)->p);
  }
  mc->sql = span(s, lx, from, b - 1);
  return LM_OK;
}

/* CREATE [TEMP] TABLE [IF NOT EXISTS] [schema.]name (defs) [options] */
static int parse_table(lm_schema *s, const char *schema, const lexer *lx,
                       lm_mtable **out, lm_err *err) {
  size_t i = 0;
  if (!is_kw(lx, i++, "CREATE")) return lm_err_set(err, "not CREATE TABLE");
  if (is_kw(lx, i, "TEMP") || is_kw(lx, i, "TEMPORARY")) i++;
  if (!is_kw(lx, i++, "TABLE")) return lm_err_set(err, "not CREATE TABLE");
  if (is_kw(lx, i, "IF")) i += 3;
  if (!is_name(at(lx, i))) return lm_err_set(err, "no table name");
  if (is_punct(lx, i + 1, '.')) {
    if (!schema) schema = ident(s, at(lx, i));
    i += 2;
  }
  const char *name = ident(s, at(lx, i++));
  if (!is_punct(lx, i, '('))
    return lm_err_set(err, "CREATE TABLE %s ... AS SELECT cannot be read",
                      name);
  size_t end = skip_group(lx, i);
  lm_mtable *t = lm_schema_add_table(s, schema, name);
  size_t a = i + 1;
  int depth = 0;
  for (size_t k = i + 1; k < end; k++) {
    if (is_punct(lx, k, '(')) depth++;
    else if (is_punct(lx, k, ')')) depth--;
    if (!(depth == 0 && is_punct(lx, k, ',')) && k + 1 != end) continue;
    if (k == a) return lm_err_set(err, "empty definition in table %s", name);
    int rc;
    if (is_kw(lx, a, "CONSTRAINT") || is_kw(lx, a, "PRIMARY") ||
        is_kw(lx, a, "UNIQUE") || is_kw(lx, a, "CHECK") ||
        is_kw(lx, a, "FOREIGN"))
      rc = table_constraint(s, t, lx, a, k, err);
    else
      rc = column_def(s, t, lx, a, k, err);
    if (rc != LM_OK) return rc;
    a = k + 1;
  }
  if (at(lx, end)->kind != T_END && !is_punct(lx, end, ';'))
    t->options = span(s, lx, end, lx->n - 2);
  *out = t;
  return LM_OK;
}

int lm_sqlite_parse_table(lm_schema *model, const char *schema,
                          const char *sql, lm_mtable **out, lm_err *err) {
  lexer lx;
  int rc = lex(&lx, sql, err);
  if (rc == LM_OK) rc = parse_table(model, schema, &lx, out, err);
  lex_free(&lx);
  return rc;
}

/* CREATE [UNIQUE] INDEX [IF NOT EXISTS] [schema.]name ON table (items)
 * [WHERE cond]: an item that is one name (with COLLATE, ASC or DESC) is a
 * column, anything else an expression, kept as written. */
int lm_sqlite_parse_index(lm_schema *s, const char *sql, lm_index *out,
                          lm_err *err) {
  lexer lx;
  memset(out, 0, sizeof *out);
  int rc = lex(&lx, sql, err);
  size_t i = 1;
  if (rc == LM_OK && !is_kw(&lx, 0, "CREATE"))
    rc = lm_err_set(err, "not CREATE INDEX");
  if (rc == LM_OK) {
    out->unique = is_kw(&lx, i, "UNIQUE");
    i += (size_t)out->unique;
    size_t on = find_kw(&lx, i, "ON");
    if (!on || !(is_punct(&lx, on + 2, '(') ||
                 (is_punct(&lx, on + 2, '.') && is_punct(&lx, on + 4, '('))))
      rc = lm_err_set(err, "cannot read the index's column list");
    else
      i = is_punct(&lx, on + 2, '(') ? on + 2 : on + 4;
  }
  if (rc == LM_OK) {
    size_t end = skip_group(&lx, i);
    const char **cols = lm_arena_alloc(&s->arena, (end - i) * sizeof *cols);
    int *is_expr = lm_arena_alloc(&s->arena, (end - i) * sizeof *is_expr);
    size_t n = 0, a = i + 1;
    int depth = 0;
    for (size_t k = i + 1; k < end; k++) {
      if (is_punct(&lx, k, '(')) depth++;
      else if (is_punct(&lx, k, ')')) depth--;
      if (!(depth == 0 && is_punct(&lx, k, ',')) && k + 1 != end) continue;
      size_t last = k;                /* one past the item */
      if (last > a && (is_kw(&lx, last - 1, "ASC") ||
                       is_kw(&lx, last - 1, "DESC")))
        last--;
      if (last > a + 1 && is_kw(&lx, last - 2, "COLLATE")) last -= 2;
      if (last == a + 1 && is_name(at(&lx, a)) &&
          at(&lx, a)->kind != T_STRING) {
        cols[n] = ident(s, at(&lx, a));
        is_expr[n++] = 0;
      } else if (last > a) {
        cols[n] = span(s, &lx, a, last - 1);
        is_expr[n++] = 1;
      }
      a = k + 1;
    }
    out->columns = cols;
    out->is_expr = is_expr;
    out->ncolumns = n;
    if (is_kw(&lx, end, "WHERE") && at(&lx, end + 1)->kind != T_END) {
      size_t last = lx.n - 2;
      if (is_punct(&lx, last, ';')) last--;
      out->where = span(s, &lx, end + 1, last);
    }
  }
  lex_free(&lx);
  return rc;
}

/* ---- introspection ------------------------------------------------------ */

/* Index of the first top-level keyword kw at or after i, or 0. */
static size_t find_kw(const lexer *lx, size_t i, const char *kw) {
  for (; at(lx, i)->kind != T_END; i++)
    if (is_kw(lx, i, kw)) return i;
  return 0;
}

/* Tokens i.. are NEW . name or OLD . name (`row`): the name, or NULL. */
static const char *row_column(lm_schema *s, const lexer *lx, size_t i,
                              const char *row) {
  if (!is_kw(lx, i, row) || !is_punct(lx, i + 1, '.') ||
      !is_name(at(lx, i + 2)))
    return NULL;
  return ident(s, at(lx, i + 2));
}

/* The column an onupdate trigger (as sqlite_ddl.c writes them) sets, read
 * from its text, which SQLite keeps current through renames: AFTER UPDATE
 * ... WHEN NEW.c IS OLD.c BEGIN UPDATE t SET c = ...; NULL for any other
 * trigger. */
static const char *onupdate_column(lm_schema *s, const char *sql) {
  lm_err err;
  lm_err_init(&err);
  lexer lx;
  const char *col = NULL;
  if (lex(&lx, sql, &err) == LM_OK) {
    size_t after = find_kw(&lx, 0, "AFTER"), w = find_kw(&lx, 0, "WHEN");
    const char *c1 = w ? row_column(s, &lx, w + 1, "NEW") : NULL;
    const char *c2 = c1 && is_kw(&lx, w + 4, "IS")
                         ? row_column(s, &lx, w + 5, "OLD") : NULL;
    if (c2 && after && is_kw(&lx, after + 1, "UPDATE") &&
        strcmp(c1, c2) == 0 && is_kw(&lx, w + 8, "BEGIN") &&
        is_kw(&lx, w + 9, "UPDATE") && is_kw(&lx, w + 11, "SET") &&
        is_name(at(&lx, w + 12)) &&
        strcmp(ident(s, at(&lx, w + 12)), c1) == 0)
      col = c1;
  }
  lex_free(&lx);
  lm_err_free(&err);
  return col;
}

/* "SELECT ... FROM [schema.]sqlite_schema ..." with the schema quoted. */
static char *schema_query(const char *schema, const char *rest) {
  lm_buf b = LM_BUF_INIT;
  lm_buf_puts(&b, "SELECT type, name, sql FROM ");
  if (schema) {
    lm_sqlite_quote_ident(&b, schema);
    lm_buf_putc(&b, '.');
  }
  lm_buf_puts(&b, rest);
  return lm_buf_detach(&b);
}

int lm_sqlite_introspect(lm_conn *conn, const char *schema, const char *table,
                         lm_schema *model, int *found, lm_err *err) {
  /* The table first, then its indexes and triggers in creation order;
   * automatic indexes (sql IS NULL) come back with the table. */
  char *sql = schema_query(schema, "sqlite_schema WHERE tbl_name = ?1 "
                           "AND sql IS NOT NULL AND type IN ('table', "
                           "'index', 'trigger') ORDER BY type <> 'table', "
                           "rowid");
  sqlite3_stmt *st = NULL;
  *found = 0;
  if (sqlite3_prepare_v2(conn->db, sql, -1, &st, NULL) != SQLITE_OK) {
    int rc = lm_sqlite_error(conn, sql, err);
    free(sql);
    return rc;
  }
  sqlite3_bind_text(st, 1, table, -1, SQLITE_TRANSIENT);
  lm_mtable *t = NULL;
  int rc = LM_OK, step;
  while (rc == LM_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
    const char *type = (const char *)sqlite3_column_text(st, 0);
    const char *name = (const char *)sqlite3_column_text(st, 1);
    const char *text = (const char *)sqlite3_column_text(st, 2);
    if (!type || !name || !text) continue;
    if (strcmp(type, "table") == 0) {
      rc = lm_sqlite_parse_table(model, schema, text, &t, err);
      if (rc != LM_OK)
        lm_err_prefix(err, "reading table %s's CREATE TABLE", table);
      else
        t->name = lm_schema_str(model, table);
    } else if (t && strcmp(type, "index") == 0) {
      lm_mindex *ix = lm_mtable_add_index(model, t);
      ix->name = lm_schema_str(model, name);
      ix->sql = lm_schema_str(model, text);
    } else if (t) {
      lm_mtrigger *tr = lm_mtable_add_trigger(model, t);
      tr->name = lm_schema_str(model, name);
      tr->sql = lm_schema_str(model, text);
      tr->column = onupdate_column(model, text);
    }
  }
  if (rc == LM_OK && step != SQLITE_DONE) rc = lm_sqlite_error(conn, sql, err);
  sqlite3_finalize(st);
  free(sql);
  if (rc == LM_OK) *found = t != NULL;
  return rc;
}

/* ---- following raw SQL offline ------------------------------------------ */

/* The table named after token i ([schema.]name), or NULL. */
static lm_mtable *table_at(lm_schema *s, const lexer *lx, size_t i) {
  if (!is_name(at(lx, i))) return NULL;
  const char *schema = NULL;
  if (is_punct(lx, i + 1, '.') && is_name(at(lx, i + 2))) {
    schema = ident(s, at(lx, i));
    if (strcmp(schema, "main") == 0) schema = NULL;
    i += 2;
  }
  return lm_schema_table(s, schema, ident(s, at(lx, i)));
}

/* Remove an index or trigger named by token i from whichever table has it. */
static void drop_named(lm_schema *s, const lexer *lx, size_t i, int trigger) {
  if (is_kw(lx, i, "IF")) i += 2;
  if (is_punct(lx, i + 1, '.')) i += 2;
  if (!is_name(at(lx, i))) return;
  const char *name = ident(s, at(lx, i));
  for (size_t k = 0; k < s->ntables; k++) {
    lm_mtable *t = &s->tables[k];
    size_t n = trigger ? t->ntriggers : t->nindexes;
    for (size_t j = 0; j < n; j++) {
      const char *have = trigger ? t->triggers[j].name : t->indexes[j].name;
      if (strcasecmp(have, name) != 0) continue;
      if (trigger)
        memmove(&t->triggers[j], &t->triggers[j + 1],
                (t->ntriggers-- - j - 1) * sizeof *t->triggers);
      else
        memmove(&t->indexes[j], &t->indexes[j + 1],
                (t->nindexes-- - j - 1) * sizeof *t->indexes);
      return;
    }
  }
}

/* One statement of raw SQL, tokens [0, n) of lx. */
static void replay_statement(lm_schema *s, const lexer *lx, const char *sql,
                             const char *revision) {
  static const char *const harmless[] = {
    "INSERT", "UPDATE", "DELETE", "SELECT", "WITH", "REPLACE", "PRAGMA",
    "ANALYZE", "VACUUM", "REINDEX", "BEGIN", "COMMIT", "END", "ROLLBACK",
    "SAVEPOINT", "RELEASE", "VALUES", "EXPLAIN", NULL};
  for (size_t k = 0; harmless[k]; k++)
    if (is_kw(lx, 0, harmless[k])) return;
  const char *rev = lm_schema_str(s, revision);
  size_t i = 1;
  if (is_kw(lx, 0, "CREATE")) {
    if (is_kw(lx, i, "TEMP") || is_kw(lx, i, "TEMPORARY")) i++;
    if (is_kw(lx, i, "UNIQUE")) i++;
    if (is_kw(lx, i, "TABLE")) {
      lm_err err;
      lm_err_init(&err);
      lm_mtable *t = NULL;
      if (parse_table(s, NULL, lx, &t, &err) != LM_OK) {
        size_t pos = i + 1 + (is_kw(lx, i + 1, "IF") ? 3 : 0);
        lm_mtable *u = is_name(at(lx, pos))
            ? lm_schema_add_table(s, NULL, ident(s, at(lx, pos))) : NULL;
        if (u) u->unknown_since = rev;
        else s->unknown_since = rev;
      }
      lm_err_free(&err);
      return;
    }
    if (is_kw(lx, i, "VIEW") || is_kw(lx, i, "VIRTUAL")) return;
    if (is_kw(lx, i, "INDEX") || is_kw(lx, i, "TRIGGER")) {
      int trigger = is_kw(lx, i, "TRIGGER");
      size_t name = i + 1 + (is_kw(lx, i + 1, "IF") ? 3 : 0);
      size_t on = find_kw(lx, name, "ON");
      lm_mtable *t = on ? table_at(s, lx, on + 1) : NULL;
      if (!t || !is_name(at(lx, name))) return;  /* not a known table */
      if (is_punct(lx, name + 1, '.')) name += 2;
      if (trigger) {
        lm_mtrigger *tr = lm_mtable_add_trigger(s, t);
        tr->name = ident(s, at(lx, name));
        tr->sql = lm_schema_str(s, sql);
      } else {
        lm_mindex *ix = lm_mtable_add_index(s, t);
        ix->name = ident(s, at(lx, name));
        ix->sql = lm_schema_str(s, sql);
      }
      return;
    }
  } else if (is_kw(lx, 0, "DROP")) {
    if (is_kw(lx, 1, "TABLE")) {
      size_t pos = 2 + (is_kw(lx, 2, "IF") ? 2 : 0);
      lm_mtable *t = table_at(s, lx, pos);
      if (t) lm_schema_drop_table(s, t->schema, t->name);
      return;
    }
    if (is_kw(lx, 1, "INDEX") || is_kw(lx, 1, "TRIGGER")) {
      drop_named(s, lx, 2, is_kw(lx, 1, "TRIGGER"));
      return;
    }
    if (is_kw(lx, 1, "VIEW")) return;
  } else if (is_kw(lx, 0, "ALTER") && is_kw(lx, 1, "TABLE")) {
    lm_mtable *t = table_at(s, lx, 2);
    if (t) t->unknown_since = rev;
    return;
  }
  s->unknown_since = rev;       /* something luamig cannot follow */
}

void lm_sqlite_replay_sql(lm_schema *model, const char *sql,
                          const char *revision) {
  lm_err err;
  lm_err_init(&err);
  lexer lx;
  if (lex(&lx, sql, &err) != LM_OK) {
    lm_err_free(&err);
    lex_free(&lx);
    return;                     /* SQLite will refuse it too */
  }
  /* Statement by statement: re-lex each one so token 0 starts it.  A
   * trigger's body holds ';'s of its own: it ends at END ';'. */
  size_t a = 0;
  for (size_t k = 0; k < lx.n; k++) {
    if (!(is_punct(&lx, k, ';') || at(&lx, k)->kind == T_END)) continue;
    if (at(&lx, k)->kind != T_END && is_kw(&lx, a, "CREATE") &&
        (find_kw(&lx, a, "TRIGGER") && find_kw(&lx, a, "TRIGGER") < k) &&
        !(k > a && is_kw(&lx, k - 1, "END")))
      continue;
    if (k > a) {
      const char *from = at(&lx, a)->p;
      char *one = lm_xstrndup(from, (size_t)(at(&lx, k)->p - from));
      lexer sub;
      if (lex(&sub, one, &err) == LM_OK)
        replay_statement(model, &sub, one, revision);
      lex_free(&sub);
      free(one);
    }
    a = k + 1;
  }
  lex_free(&lx);
  lm_err_free(&err);
}
