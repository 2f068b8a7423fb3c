/*
 * fuzz_ident.c - random names into every dialect's identifier quoting and
 * string literals.  The oracle: a bare name is plain lower-case, and a
 * quoted one unquotes to exactly the input, so no name can break out.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dialect.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Undo "..." (or '...') quoting with doubled quote characters. */
static int unquotes_to(const char *q, size_t qlen, char mark, const char *want,
                       size_t wlen) {
  if (qlen < 2 || q[0] != mark || q[qlen - 1] != mark) return 0;
  size_t k = 0;
  for (size_t i = 1; i + 1 < qlen; i++) {
    if (q[i] == mark) {
      if (q[i + 1] != mark || i + 2 >= qlen) return 0;
      i++;
    }
    if (k >= wlen || q[i] != want[k++]) return 0;
  }
  return k == wlen;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t len = strnlen((const char *)data, size);
  if (!len) return 0;
  char *name = malloc(len + 1);
  memcpy(name, data, len);
  name[len] = '\0';
  for (size_t d = 0; lm_dialects[d]; d++) {
    lm_buf out = LM_BUF_INIT;
    lm_dialects[d]->quote_ident(&out, name);
    if (out.data[0] == '"') {
      if (!unquotes_to(out.data, out.len, '"', name, len)) abort();
    } else {
      if (strcmp(out.data, name) != 0) abort();
      for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '$'))
          abort();
    }
    lm_buf_reset(&out);
    lm_value v = {.type = LM_V_TEXT, .s = name, .len = len};
    lm_dialects[d]->render_literal(&out, &v);
    if (!unquotes_to(out.data, out.len, '\'', name, len)) abort();
    lm_buf_free(&out);
  }
  free(name);
  return 0;
}
