/*
 * op_naming.c - the configuration's naming_convention, as SQLAlchemy's
 * MetaData(naming_convention=...) applies it: a template per kind (ix, uq,
 * ck, fk, pk) with %(token)s fields names every constraint and index left
 * unnamed; a template with %(constraint_name)s also turns an explicit name
 * into the full one, unless the name came through op.f(), which marks it
 * final.  Names are given when the op value is built, so every executor
 * (online, offline, lint, replay) sees the same ones.
 */
#include <lauxlib.h>
#include <string.h>

#include "op_internal.h"

#define NAMING_KEY "luamig.naming_convention"
#define FINAL_KEY "luamig.final_names"

/* op.f(name): the name as given, never converted. */
static int op_f(lua_State *L) {
  const char *name = lm_op_check_name(L, 1, "f", "the name");
  if (lua_getfield(L, LUA_REGISTRYINDEX, FINAL_KEY) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, FINAL_KEY);
  }
  lua_pushboolean(L, 1);
  lua_setfield(L, -2, name);
  lua_pop(L, 1);
  lua_pushstring(L, name);
  return 1;
}

static int is_final(lua_State *L, const char *name) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, FINAL_KEY) != LUA_TTABLE) {
    lua_pop(L, 1);
    return 0;
  }
  lua_getfield(L, -1, name);
  int final = lua_toboolean(L, -1);
  lua_pop(L, 2);
  return final;
}

int lm_naming_check(lua_State *L, int idx, const char *where, lm_err *err) {
  static const char *const kinds[] = {"ix", "uq", "ck", "fk", "pk", NULL};
  idx = lua_absindex(L, idx);
  if (lua_isnil(L, idx)) {
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, NAMING_KEY);
    return LM_OK;
  }
  if (!lua_istable(L, idx))
    return lm_err_set(err, "%s: naming_convention must be a table, not a %s",
                      where, luaL_typename(L, idx));
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2)
                                                      : NULL;
    int known = 0;
    for (size_t i = 0; key && kinds[i]; i++)
      if (strcmp(key, kinds[i]) == 0) known = 1;
    if (!known) {
      lm_err_set(err, "%s: naming_convention: unknown kind '%s' (ix, uq, ck, "
                 "fk, pk)", where, key ? key : luaL_typename(L, -2));
      lua_pop(L, 2);
      return LM_ERROR;
    }
    if (lua_type(L, -1) != LUA_TSTRING || !*lua_tostring(L, -1)) {
      lm_err_set(err, "%s: naming_convention.%s must be a template string",
                 where, key);
      lua_pop(L, 2);
      return LM_ERROR;
    }
    lua_pop(L, 1);
  }
  lua_pushvalue(L, idx);
  lua_setfield(L, LUA_REGISTRYINDEX, NAMING_KEY);
  return LM_OK;
}

/* The template for `kind`, or NULL. */
static const char *template_for(lua_State *L, const char *kind) {
  if (lua_getfield(L, LUA_REGISTRYINDEX, NAMING_KEY) != LUA_TTABLE) {
    lua_pop(L, 1);
    return NULL;
  }
  lua_getfield(L, -1, kind);
  const char *t = lua_tostring(L, -1);  /* kept alive by the registry */
  lua_pop(L, 2);
  return t;
}

/* A list of names joined by sep; `label` prefixes each with the table. */
static void joined(lm_buf *b, const char *table, const char *const *names,
                   size_t n, const char *sep, int label) {
  for (size_t i = 0; i < n; i++) {
    if (i) lm_buf_puts(b, sep);
    if (label) lm_buf_printf(b, "%s_", table);
    lm_buf_puts(b, names[i]);
  }
}

/* One %(token)s: column_0_name, column_0N_name, column_0_N_label,
 * referred_column_0_name, table_name, referred_table_name,
 * constraint_name.  0 when the token is unknown. */
static int expand(lm_buf *b, const char *tok, const lm_naming *n) {
  if (strcmp(tok, "table_name") == 0) {
    lm_buf_puts(b, n->table);
    return 1;
  }
  if (strcmp(tok, "referred_table_name") == 0) {
    lm_buf_puts(b, n->ref_table ? n->ref_table : "");
    return 1;
  }
  if (strcmp(tok, "constraint_name") == 0) {
    lm_buf_puts(b, n->name);
    return 1;
  }
  const char *rest = tok;
  const char *const *names = n->columns;
  size_t count = n->ncolumns;
  if (strncmp(rest, "referred_", 9) == 0) {
    rest += 9;
    names = n->ref_columns;
    count = n->nref_columns;
  }
  if (strncmp(rest, "column_", 7) != 0) return 0;
  rest += 7;
  const char *what = strchr(rest, '_');
  if (!what) return 0;
  what++;
  int label = strcmp(what, "label") == 0;
  if (!label && strcmp(what, "name") != 0) return 0;
  size_t numlen = (size_t)(what - 1 - rest);
  if (numlen == 2 && strncmp(rest, "0N", 2) == 0) {
    joined(b, n->table, names, count, "", label);
    return 1;
  }
  if (numlen == 3 && strncmp(rest, "0_N", 3) == 0) {
    joined(b, n->table, names, count, "_", label);
    return 1;
  }
  size_t k = 0;
  for (size_t i = 0; i < numlen; i++) {
    if (rest[i] < '0' || rest[i] > '9') return 0;
    k = k * 10 + (size_t)(rest[i] - '0');
  }
  if (!numlen || k >= count) return 0;
  joined(b, n->table, names + k, 1, "", label);
  return 1;
}

const char *lm_naming_name(lua_State *L, lm_arena *a, const char *op,
                           const char *kind, const lm_naming *n) {
  const char *tpl = template_for(L, kind);
  if (!tpl) return n->name;
  int wants_name = strstr(tpl, "%(constraint_name)s") != NULL;
  if (n->name && (!wants_name || is_final(L, n->name))) return n->name;
  if (!n->name && wants_name)
    luaL_error(L, "%s: naming_convention.%s uses %%(constraint_name)s, so "
               "the %s on %s needs a name", op, kind,
               strcmp(kind, "ix") == 0 ? "index" : "constraint", n->table);
  lm_buf b = LM_BUF_INIT;
  for (const char *p = tpl; *p;) {
    const char *end = strncmp(p, "%(", 2) == 0 ? strstr(p, ")s") : NULL;
    if (!end) {
      lm_buf_putc(&b, *p++);
      continue;
    }
    char tok[64];
    size_t len = (size_t)(end - p - 2);
    if (len >= sizeof tok) len = sizeof tok - 1;
    memcpy(tok, p + 2, len);
    tok[len] = 0;
    if (!expand(&b, tok, n)) {
      lm_buf_free(&b);
      luaL_error(L, "%s: naming_convention.%s: %%(%s)s is not a token this "
                 "%s has", op, kind, tok,
                 strcmp(kind, "ix") == 0 ? "index" : "constraint");
    }
    p = end + 2;
  }
  const char *name = lm_arena_strdup(a, lm_buf_str(&b));
  lm_buf_free(&b);
  return name;
}

void lm_naming_register(lua_State *L) {
  lua_pushcfunction(L, op_f);
  lua_setfield(L, -2, "f");
}

static const char *const con_kinds[] = {"pk", "uq", "ck", "fk"};

void lm_naming_constraint(lua_State *L, lm_arena *a, const char *op,
                          const char *table, lm_constraint *c) {
  if ((size_t)c->kind >= sizeof con_kinds / sizeof *con_kinds) return;
  lm_naming n = {.table = table, .name = c->name, .columns = c->columns,
                 .ncolumns = c->ncolumns, .ref_table = c->ref_table,
                 .ref_columns = c->ref_columns,
                 .nref_columns = c->nref_columns};
  c->name = lm_naming_name(L, a, op, con_kinds[c->kind], &n);
}

void lm_naming_columns(lua_State *L, lm_arena *a, const char *op, lm_op *o) {
  size_t npk = 0;
  for (size_t i = 0; i < o->ncolumns; i++) npk += o->columns[i].primary_key;
  if (npk) {
    const char **cols = lm_arena_alloc(a, npk * sizeof *cols);
    size_t k = 0;
    for (size_t i = 0; i < o->ncolumns; i++)
      if (o->columns[i].primary_key) cols[k++] = o->columns[i].name;
    lm_naming n = {.table = o->table, .columns = cols, .ncolumns = npk};
    o->pk_name = lm_naming_name(L, a, op, "pk", &n);
  }
  for (size_t i = 0; i < o->ncolumns; i++) {
    lm_column *c = &o->columns[i];
    lm_naming n = {.table = o->table, .columns = &c->name, .ncolumns = 1};
    if (c->index) {
      c->index_name = lm_naming_name(L, a, op, "ix", &n);
    } else if (c->unique) {
      c->unique_name = lm_naming_name(L, a, op, "uq", &n);
    }
    if (c->check) {
      lm_naming ck = {.table = o->table, .name = c->check_name,
                      .columns = &c->name, .ncolumns = 1};
      c->check_name = lm_naming_name(L, a, op, "ck", &ck);
    }
    if (c->ref_table) {
      n.ref_table = c->ref_table;
      n.ref_columns = &c->ref_column;
      n.nref_columns = 1;
      c->fk_name = lm_naming_name(L, a, op, "fk", &n);
    }
  }
  for (size_t i = 0; i < o->nconstraints; i++)
    lm_naming_constraint(L, a, op, o->table, &o->constraints[i]);
}
