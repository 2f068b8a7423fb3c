/*
 * sql_lex.h - the SQL lexing every dialect shares, parameterised by what a
 * dialect's tokenizer knows (dollar quotes, E'' strings, [name] identifiers,
 * nested comments), so that $n placeholders are found where the database
 * would find them and nowhere else.
 */
#ifndef LM_SQL_LEX_H
#define LM_SQL_LEX_H

#include "dialect.h"

typedef struct lm_sql_lexer {
  int dollar_quotes;    /* $tag$ ... $tag$ bodies (PostgreSQL) */
  int escape_strings;   /* E'...' with backslash escapes (PostgreSQL) */
  int nested_comments;  /* a block comment may hold another (PostgreSQL) */
  int bracket_idents;   /* [name] and `name` identifiers (SQLite) */
  void (*render_literal)(lm_buf *out, const lm_value *value);
} lm_sql_lexer;

/* Copy sql into out with each $N placeholder replaced by the literal of
 * params[N-1]; string literals, quoted identifiers, dollar-quoted bodies
 * and comments are copied as written.  A placeholder with no value is an
 * error naming it. */
int lm_sql_render_params(const lm_sql_lexer *lx, lm_buf *out, const char *sql,
                         size_t nparams, const lm_value *params, lm_err *err);

#endif
