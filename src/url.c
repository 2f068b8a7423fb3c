/*
 * url.c - database URLs: scheme://rest, and the same URL with its password
 * masked for anything a person may read.
 */
#define _GNU_SOURCE   /* memmem */
#include <stdlib.h>
#include <string.h>

#include "dialect.h"

void lm_url_free(lm_url *url) {
  free(url->full);
  free(url->scheme);
  free(url->rest);
  free(url->display);
  memset(url, 0, sizeof *url);
}

/* The password given in the userinfo, as a pointer and length into url.
 * The userinfo ends at the last '@' before the path, so a password may
 * itself contain '@' or ':'. */
static const char *userinfo_password(const char *url, size_t *n) {
  const char *rest = strstr(url, "://") + 3;
  size_t authority_len = strcspn(rest, "/?#");
  const char *at = NULL;
  for (const char *p = rest; p < rest + authority_len; p++)
    if (*p == '@') at = p;
  const char *colon = at ? memchr(rest, ':', (size_t)(at - rest)) : NULL;
  if (!colon) return NULL;
  *n = (size_t)(at - colon - 1);
  return colon + 1;
}

/* scheme://user:password@host/... -> scheme://user:***@host/... */
static void mask_userinfo(lm_buf *b, const char *url) {
  size_t n = 0;
  const char *pw = userinfo_password(url, &n);
  if (!pw) {
    lm_buf_puts(b, url);
    return;
  }
  lm_buf_add(b, url, (size_t)(pw - url));
  lm_buf_puts(b, "***");
  lm_buf_puts(b, pw + n);
}

/* The same in the query string: ?password=... or &password=... */
static void mask_query(lm_buf *b) {
  const char *q = strchr(b->data, '?');
  size_t pos = q ? (size_t)(q - b->data) : b->len;
  while (pos < b->len) {
    /* b->data[pos] is '?' or '&': a parameter starts after it. */
    if (strncmp(b->data + pos + 1, "password=", 9) == 0) {
      size_t value = pos + 10;
      size_t len = strcspn(b->data + value, "&#");
      char *tail = lm_xstrdup(b->data + value + len);
      b->len = value;
      lm_buf_puts(b, "***");
      lm_buf_puts(b, tail);
      free(tail);
      pos = value + 3;
    } else {
      pos++;
    }
    while (pos < b->len && b->data[pos] != '&') pos++;
  }
}

/* One pass of mask_everywhere; returns how many it replaced. */
static size_t mask_pass(lm_buf *b, const lm_buf *needle) {
  lm_buf out = LM_BUF_INIT;
  const char *p = lm_buf_str(b), *hit;
  size_t hits = 0;
  while ((hit = memmem(p, strlen(p), needle->data, needle->len)) != NULL) {
    lm_buf_add(&out, p, (size_t)(hit - p));
    lm_buf_puts(&out, ":***@");
    p = hit + needle->len;
    hits++;
  }
  lm_buf_puts(&out, p);
  lm_buf_free(b);
  *b = out;
  return hits;
}

/* Replace every ":secret@" in b by ":***@": the same credentials written
 * again elsewhere in the URL (a doubled or malformed one) stay hidden,
 * while a short password does not blot out its letters everywhere else.
 * A secret beginning with "***" can reappear where a mask meets the text
 * after it (":***@" + "@@" for the secret "***@@"), so passes repeat
 * until none is left; each shortens the text, since only a secret of
 * more than three characters can reappear. */
static void mask_everywhere(lm_buf *b, const char *secret, size_t n) {
  if (!n || (n == 3 && memcmp(secret, "***", 3) == 0)) return;
  lm_buf needle = LM_BUF_INIT;
  lm_buf_putc(&needle, ':');
  lm_buf_add(&needle, secret, n);
  lm_buf_putc(&needle, '@');
  while (mask_pass(b, &needle)) {}
  lm_buf_free(&needle);
}


static char *mask_password(const char *url) {
  lm_buf b = LM_BUF_INIT;
  mask_userinfo(&b, url);
  mask_query(&b);
  /* The same credentials written again elsewhere stay hidden too. */
  size_t n = 0;
  const char *pw = userinfo_password(url, &n);
  if (pw) mask_everywhere(&b, pw, n);
  return lm_buf_detach(&b);
}
int lm_url_parse(lm_url *out, const char *url, lm_err *err) {
  memset(out, 0, sizeof *out);
  const char *sep = strstr(url, "://");
  if (!sep || sep == url) {
    /* Never echo the URL: it may hold a password. */
    return lm_err_set(err, "malformed database URL: expected "
                      "scheme://..., e.g. sqlite:///app.db or "
                      "postgresql://user@host/db");
  }
  for (const char *p = url; p < sep; p++) {
    char c = *p;
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'))
      return lm_err_set(err, "malformed database URL: bad scheme");
  }
  const char *rest = sep + 3;
  out->full = lm_xstrdup(url);
  out->scheme = lm_xstrndup(url, (size_t)(sep - url));
  /* "postgresql+psycopg2://" from an Alembic config: the part before '+'. */
  char *plus = strchr(out->scheme, '+');
  if (plus) {
    *plus = '\0';
    free(out->full);
    out->full = lm_xasprintf("%s://%s", out->scheme, rest);
  }
  out->rest = lm_xstrdup(rest);
  out->display = mask_password(out->full);
  return LM_OK;
}
