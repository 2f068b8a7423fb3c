/*
 * sql_lex.c - finding $n placeholders in SQL text as a dialect's tokenizer
 * would (see sql_lex.h), for the --sql script.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "sql_lex.h"

/* A character that may continue an identifier; "$" does on both dialects,
 * so "a$1" is a name, not a placeholder. */
static int ident_char(unsigned char c) {
  return isalnum(c) || c == '_' || c == '$' || c >= 0x80;
}

static int ident_start(unsigned char c) {
  return isalpha(c) || c == '_' || c >= 0x80;
}

/* The end of a quoted token starting at p (on its opening mark), the mark
 * doubled inside standing for itself; backslash != 0 also skips the
 * character after a backslash (E'' strings).  Unterminated: the end of sql. */
static const char *quoted_end(const char *p, char close, int backslash) {
  const char *q = p + 1;
  while (*q) {
    if (backslash && *q == '\\' && q[1]) {
      q += 2;
    } else if (*q == close) {
      if (q[1] != close || close == ']') return q + 1;
      q += 2;
    } else {
      q++;
    }
  }
  return q;
}

/* The end of a block comment starting at p ("/" "*"). */
static const char *comment_end(const char *p, int nested) {
  const char *q = p + 2;
  int depth = 1;
  while (*q) {
    if (q[0] == '*' && q[1] == '/') {
      q += 2;
      if (--depth == 0) return q;
    } else if (nested && q[0] == '/' && q[1] == '*') {
      q += 2;
      depth++;
    } else {
      q++;
    }
  }
  return q;
}

/* If p starts a dollar-quoted body ($tag$ ... $tag$), its end; else NULL. */
static const char *dollar_end(const char *p) {
  const char *t = p + 1;
  if (*t != '$') {
    if (!ident_start((unsigned char)*t)) return NULL;
    while (*t && *t != '$' && (isalnum((unsigned char)*t) || *t == '_' ||
                               (unsigned char)*t >= 0x80))
      t++;
    if (*t != '$') return NULL;
  }
  size_t taglen = (size_t)(t - p) + 1;
  const char *body = t + 1;
  for (const char *q = strchr(body, '$'); q; q = strchr(q + 1, '$'))
    if (strncmp(q, p, taglen) == 0) return q + taglen;
  return body + strlen(body);
}

int lm_sql_render_params(const lm_sql_lexer *lx, lm_buf *out, const char *sql,
                         size_t nparams, const lm_value *params, lm_err *err) {
  const char *p = sql;
  while (*p) {
    unsigned char prev = p > sql ? (unsigned char)p[-1] : ' ';
    const char *end = NULL;
    if (*p == '\'') {
      int esc = lx->escape_strings && p > sql && (prev == 'E' || prev == 'e') &&
                (p - 1 == sql || !ident_char((unsigned char)p[-2]));
      end = quoted_end(p, '\'', esc);
    } else if (*p == '"') {
      end = quoted_end(p, '"', 0);
    } else if (lx->bracket_idents && *p == '`') {
      end = quoted_end(p, '`', 0);
    } else if (lx->bracket_idents && *p == '[') {
      end = quoted_end(p, ']', 0);
    } else if (p[0] == '-' && p[1] == '-') {
      end = p + strcspn(p, "\n");
    } else if (p[0] == '/' && p[1] == '*') {
      end = comment_end(p, lx->nested_comments);
    } else if (*p == '$' && !ident_char(prev)) {
      if (isdigit((unsigned char)p[1])) {
        char *num_end;
        long k = strtol(p + 1, &num_end, 10);
        if (k < 1 || (size_t)k > nparams)
          return lm_err_set(err, "placeholder $%ld has no value (%zu given)\n"
                            "  in: %s", k, nparams, sql);
        lx->render_literal(out, &params[k - 1]);
        p = num_end;
        continue;
      }
      if (lx->dollar_quotes) end = dollar_end(p);
    } else if (ident_char((unsigned char)*p)) {
      /* A whole word at once, so a "$" inside it is not looked at. */
      end = p;
      while (*end && ident_char((unsigned char)*end)) end++;
      /* E'...' starts at its quote: leave the E to the quote's rule. */
      if (*end == '\'' && end - p == 1) end = p + 1;
    }
    if (!end) end = p + 1;
    lm_buf_add(out, p, (size_t)(end - p));
    p = end;
  }
  return LM_OK;
}
