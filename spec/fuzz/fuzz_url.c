/*
 * fuzz_url.c - random bytes into the URL parser.  Beyond "no crash, no
 * leak": the URL shown to people never contains the password.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dialect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The password of scheme://user:password@host..., or NULL. */
static char *password_of(const char *url) {
  const char *rest = strstr(url, "://");
  if (!rest) return NULL;
  rest += 3;
  size_t auth = strcspn(rest, "/?#");
  const char *at = NULL;
  for (const char *p = rest; p < rest + auth; p++)
    if (*p == '@') at = p;
  if (!at) return NULL;
  const char *colon = memchr(rest, ':', (size_t)(at - rest));
  if (!colon || colon + 1 == at) return NULL;
  size_t n = (size_t)(at - colon - 1);
  char *pw = malloc(n + 3);
  pw[0] = ':';
  memcpy(pw + 1, colon + 1, n);
  pw[n + 1] = '@';
  pw[n + 2] = '\0';
  return pw;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  memcpy(s, data, size);
  s[size] = '\0';
  lm_url url;
  lm_err err;
  lm_err_init(&err);
  if (lm_url_parse(&url, s, &err) == LM_OK) {
    char *pw = password_of(url.full);
    if (pw && strcmp(pw, ":***@") != 0 && strstr(url.display, pw)) abort();
    free(pw);
    if (strstr(url.full, "://") == NULL) abort();
    lm_url_free(&url);
  } else {
    /* A refused URL's message must not echo its password either. */
    char *pw = password_of(s);
    if (pw && err.msg && strstr(err.msg, pw)) abort();
    free(pw);
  }
  lm_err_free(&err);
  free(s);
  return 0;
}
