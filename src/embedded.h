/*
 * embedded.h - the Lua library compiled into the binary (see embedgen.c).
 */
#ifndef LM_EMBEDDED_H
#define LM_EMBEDDED_H

#include <stddef.h>

typedef struct lm_embedded {
  const char *module;   /* "luamig.template" for lua/template.lua */
  const char *source;
  size_t len;
} lm_embedded;

/* Terminated by an entry whose module is NULL. */
extern const lm_embedded lm_embedded_files[];

#endif
