/*
 * introspect_norm.c - the dialect-neutral part of normalizing an
 * introspected schema (introspect_norm.h).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "introspect_norm.h"

/* Past the string literal or quoted name starting at p (its quote char
 * doubled inside). */
static const char *skip_quoted(const char *p) {
  char q = *p++;
  while (*p) {
    if (*p == q) {
      if (p[1] == q) { p += 2; continue; }
      return p + 1;
    }
    p++;
  }
  return p;
}

/* Does the '(' at p close at the last character of [p, end)? */
static int wraps(const char *p, const char *end) {
  int depth = 0;
  for (const char *q = p; q < end; q++) {
    if (*q == '\'' || *q == '"') {
      q = skip_quoted(q) - 1;
      continue;
    }
    if (*q == '(') depth++;
    else if (*q == ')' && --depth == 0) return q == end - 1;
  }
  return 0;
}

static int word_char(int c) { return isalnum(c) || c == '_' || c == '$'; }

/* Past a type name after "::": words (a multi-word type such as
 * `character varying` or `timestamp without time zone`), an optional
 * "(n[,m])", optional "[]". */
static const char *skip_type(const char *p) {
  const char *q = p;
  if (*q == '"') q = skip_quoted(q);
  else while (word_char((unsigned char)*q)) q++;
  if (q == p) return p;
  for (;;) {
    /* another word of a multi-word type name */
    const char *w = q;
    while (*w == ' ') w++;
    const char *e = w;
    while (word_char((unsigned char)*e)) e++;
    static const char *const words[] = {"varying", "without", "with",
                                        "time", "zone", "precision", NULL};
    int more = 0;
    for (size_t i = 0; words[i] && e > w; i++)
      if ((size_t)(e - w) == strlen(words[i]) &&
          strncasecmp(w, words[i], (size_t)(e - w)) == 0)
        more = 1;
    if (more) { q = e; continue; }
    if (*q == '(') {
      const char *c = strchr(q, ')');
      if (!c) return q;
      q = c + 1;
      continue;
    }
    if (q[0] == '[' && q[1] == ']') { q += 2; continue; }
    return q;
  }
}

/* Just past the group opened by the '(' at p (or the string's end). */
static const char *group_end(const char *p) {
  int depth = 0;
  for (; *p; p++) {
    if (*p == '\'' || *p == '"') {
      p = skip_quoted(p) - 1;
      continue;
    }
    if (*p == '(') depth++;
    else if (*p == ')' && --depth == 0) return p + 1;
  }
  return p;
}

/* Does the group [p, end) hold a comma outside nested (), [] and quotes? */
static int top_comma(const char *p, const char *end) {
  int depth = 0;
  for (; p < end; p++) {
    if (*p == '\'' || *p == '"') {
      p = skip_quoted(p) - 1;
      continue;
    }
    if (*p == '(' || *p == '[') depth++;
    else if (*p == ')' || *p == ']') depth--;
    else if (*p == ',' && depth == 1) return 1;
  }
  return 0;
}

/* One pass: casts removed, parentheses around a single token or around
 * another pair removed. */
static void strip_pass(lm_buf *out, const char *src) {
  const char *p = src;
  while (*p) {
    if (*p == '\'' || *p == '"') {
      const char *e = skip_quoted(p);
      lm_buf_add(out, p, (size_t)(e - p));
      p = e;
    } else if (p[0] == ':' && p[1] == ':') {
      p = skip_type(p + 2);
    } else if (*p == '(') {
      /* "(token)" where the token is a name, a literal or a number, and
       * the parenthesis does not open a function's arguments. */
      const char *q = p + 1, *e;
      if (*q == '\'' || *q == '"') e = skip_quoted(q);
      else { e = q; while (word_char((unsigned char)*e) || *e == '.') e++; }
      /* after a name or keyword ("lower (x)", "IN (1)") they stay */
      size_t back = out->len;
      while (back && out->data[back - 1] == ' ') back--;
      int call = back && word_char((unsigned char)out->data[back - 1]);
      const char *close = *q == '(' ? group_end(q) : NULL;
      if (!call && e > q && *e == ')') {
        lm_buf_add(out, q, (size_t)(e - q));
        p = e + 1;
      } else if (close && *close == ')' && (!call || !top_comma(q, close))) {
        /* "((x))": one pair is enough (but f((a, b)) passes a row) */
        p++;
        lm_buf_add(out, p, (size_t)(close - p));
        p = close + 1;
      } else {
        lm_buf_putc(out, *p++);
      }
    } else {
      lm_buf_putc(out, *p++);
    }
  }
}

/* Outer parentheses and surrounding blanks removed, in place. */
static char *unwrap(char *s) {
  for (;;) {
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    if (n >= 2 && s[0] == '(' && wraps(s, s + n)) {
      s[n - 1] = '\0';
      s++;
      continue;
    }
    return s;
  }
}

const char *lm_norm_expr(lm_schema *s, const char *text) {
  if (!text) return NULL;
  char *cur = lm_xstrdup(text);
  for (int round = 0; round < 8; round++) {
    lm_buf b = LM_BUF_INIT;
    strip_pass(&b, unwrap(cur));
    char *next = lm_buf_detach(&b);
    int same = strcmp(next, cur) == 0;
    free(cur);
    cur = next;
    if (same) break;
  }
  const char *r = lm_schema_str(s, unwrap(cur));
  free(cur);
  return r;
}

/* Is [p, end) a whole number (optionally signed)?  A decimal one? */
static int number_kind(const char *p) {
  if (*p == '-' || *p == '+') p++;
  int digits = 0, dot = 0, exp = 0;
  for (; *p; p++) {
    if (isdigit((unsigned char)*p)) digits = 1;
    else if (*p == '.' && !dot && !exp) dot = 1;
    else if ((*p == 'e' || *p == 'E') && digits && !exp) {
      exp = 1;
      if (p[1] == '-' || p[1] == '+') p++;
    } else return 0;
  }
  if (!digits) return 0;
  return dot || exp ? 2 : 1;
}

/* The type a trailing top-level cast names, or NULL. */
static const char *cast_type(const char *text) {
  const char *p = text, *last = NULL;
  while (*p) {
    if (*p == '\'' || *p == '"') { p = skip_quoted(p); continue; }
    if (p[0] == ':' && p[1] == ':') last = p + 2;
    p++;
  }
  return last;
}

static int numeric_type(const char *t) {
  static const char *const names[] = {"integer", "bigint", "smallint",
    "numeric", "double precision", "real", "int", "int4", "int8", "int2",
    "float8", "float4", "decimal", NULL};
  for (size_t i = 0; names[i]; i++)
    if (strncasecmp(t, names[i], strlen(names[i])) == 0) return 1;
  return 0;
}

void lm_norm_default(lm_schema *s, lm_default *out, const char *text) {
  memset(out, 0, sizeof *out);
  if (!text) return;
  const char *cast = cast_type(text);
  int to_number = cast && numeric_type(cast);
  const char *e = lm_norm_expr(s, text);
  size_t n = strlen(e);
  if (n == 0 || strcasecmp(e, "NULL") == 0) return;
  if (e[0] == '\'' && skip_quoted(e) == e + n) {
    /* one literal: its value, quotes undone */
    char *v = lm_arena_alloc(&s->arena, n);
    size_t k = 0;
    for (size_t i = 1; i + 1 < n; i++) {
      v[k++] = e[i];
      if (e[i] == '\'' && e[i + 1] == '\'') i++;
    }
    v[k] = '\0';
    int nk = to_number ? number_kind(v) : 0;
    if (nk == 1) {
      out->kind = LM_DEF_INT;
      out->i = strtoll(v, NULL, 10);
    } else if (nk == 2) {
      out->kind = LM_DEF_SQL;
      out->text = v;
    } else {
      out->kind = LM_DEF_STRING;
      out->text = v;
    }
    return;
  }
  int nk = number_kind(e);
  if (nk == 1) {
    out->kind = LM_DEF_INT;
    out->i = strtoll(e, NULL, 10);
  } else if (nk == 2) {
    /* as written: 1.50 stays 1.50, as op.text("1.50") gives it, and a
     * float's shortest form (1.5) is what a Lua number gives */
    out->kind = LM_DEF_SQL;
    out->text = e;
  } else if (strcasecmp(e, "true") == 0 || strcasecmp(e, "false") == 0) {
    out->kind = LM_DEF_BOOL;
    out->i = strcasecmp(e, "true") == 0;
  } else if (strcasecmp(e, "CURRENT_TIMESTAMP") == 0 ||
             strcasecmp(e, "now()") == 0) {
    out->kind = LM_DEF_FUNC;
    out->text = "now";
  } else {
    out->kind = LM_DEF_SQL;
    out->text = e;
  }
}

const char *lm_norm_action(lm_schema *s, const char *action) {
  if (!action || !*action) return NULL;
  lm_buf b = LM_BUF_INIT;
  int space = 0;
  for (const char *p = action; *p; p++) {
    if (isspace((unsigned char)*p)) { space = b.len > 0; continue; }
    if (space) lm_buf_putc(&b, ' ');
    space = 0;
    lm_buf_putc(&b, (char)toupper((unsigned char)*p));
  }
  const char *r = strcmp(lm_buf_str(&b), "NO ACTION") == 0
                      ? NULL : lm_schema_str(s, lm_buf_str(&b));
  lm_buf_free(&b);
  return r;
}

const char *const *lm_norm_split(lm_schema *s, const char *text, char sep,
                                 size_t *n) {
  *n = 0;
  if (!text || !*text) return NULL;
  size_t cnt = 1;
  for (const char *p = text; *p; p++) cnt += *p == sep;
  const char **names = lm_arena_alloc(&s->arena, cnt * sizeof *names);
  const char *p = text;
  for (size_t i = 0; i < cnt; i++) {
    const char *e = strchr(p, sep);
    size_t len = e ? (size_t)(e - p) : strlen(p);
    names[i] = lm_arena_strndup(&s->arena, p, len);
    p = e ? e + 1 : p + len;
  }
  *n = cnt;
  return names;
}
