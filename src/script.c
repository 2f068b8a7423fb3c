/*
 * script.c - revision scripts: find them, load each in its own
 * environment (loading has no effect on any database), read their
 * metadata, and call their upgrade/downgrade functions.
 */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "keep.h"

/* A bound on a script's size: a symlink to /dev/zero or a runaway
 * generator must not be read without end. */
#define SCRIPT_MAX_BYTES ((size_t)64 << 20)

/* dir/name, without a format string: it runs once per script. */
static char *join_path(const char *dir, const char *name) {
  size_t d = strlen(dir), n = strlen(name);
  char *path = lm_xmalloc(d + n + 2);
  memcpy(path, dir, d);
  path[d] = '/';
  memcpy(path + d + 1, name, n + 1);
  return path;
}

static int compare_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The leading comment block, "-- " markers stripped: Alembic shows the
 * module docstring in `show` and `history -v`. */
static char *leading_doc(lm_arena *a, const char *src) {
  lm_buf b = LM_BUF_INIT;
  const char *p = src;
  while (p[0] == '-' && p[1] == '-' && p[2] != '[') {
    const char *eol = strchr(p, '\n');
    size_t len = eol ? (size_t)(eol - p) : strlen(p);
    const char *text = p + 2;
    size_t tlen = len - 2;
    if (tlen && *text == ' ') text++, tlen--;
    lm_buf_add(&b, text, tlen);
    lm_buf_putc(&b, '\n');
    if (!eol) break;
    p = eol + 1;
  }
  while (b.len && b.data[b.len - 1] == '\n') b.data[--b.len] = '\0';
  char *doc = b.len ? lm_arena_strdup(a, b.data) : NULL;
  lm_buf_free(&b);
  return doc;
}

/* A string whose C form would be cut short ("r1\0..." read as "r1"). */
static int has_nul(lua_State *L, int idx) {
  size_t len;
  const char *str = lua_tolstring(L, idx, &len);
  return strlen(str) != len;
}

/* A field that may be nil, a string or a list of strings. */
static int string_list(lua_State *L, lm_arena *a, const char *path,
                       const char *key, const char ***out, size_t *n,
                       lm_err *err) {
  lua_getfield(L, -1, key);
  *out = NULL;
  *n = 0;
  if (lua_type(L, -1) == LUA_TSTRING) {
    if (has_nul(L, -1)) {
      lua_pop(L, 1);
      return lm_err_set(err, "%s: %s holds a NUL byte", path, key);
    }
    *out = lm_arena_alloc(a, sizeof **out);
    (*out)[0] = lm_arena_strdup(a, lua_tostring(L, -1));
    *n = 1;
  } else if (lua_istable(L, -1)) {
    size_t len = (size_t)luaL_len(L, -1);
    *out = lm_arena_alloc(a, (len ? len : 1) * sizeof **out);
    for (size_t i = 0; i < len; i++) {
      lua_geti(L, -1, (lua_Integer)i + 1);
      if (lua_type(L, -1) != LUA_TSTRING || has_nul(L, -1)) {
        int nul = lua_type(L, -1) == LUA_TSTRING;
        lua_pop(L, 2);
        return lm_err_set(err, "%s: %s[%zu] %s", path, key, i + 1,
                          nul ? "holds a NUL byte" : "must be a string");
      }
      (*out)[i] = lm_arena_strdup(a, lua_tostring(L, -1));
      lua_pop(L, 1);
    }
    *n = len;
  } else if (!lua_isnil(L, -1)) {
    int t = lua_type(L, -1);
    lua_pop(L, 1);
    return lm_err_set(err, "%s: %s must be a string or a list of strings, "
                      "not a %s", path, key, lua_typename(L, t));
  }
  lua_pop(L, 1);
  return LM_OK;
}

/* Ids and labels are checked as strictly as `revision --rev-id` checks
 * them, before anything runs: they end up in file names, in the version
 * table's 32-character column and in --sql comments. */
static int check_names(const lm_script *s, lm_err *err) {
  const lm_revision *r = &s->rev;
  const char *field = "revision";
  int rc = lm_check_rev_id(r->id, err);
  for (size_t i = 0; rc == LM_OK && i < r->ndown; i++) {
    field = "down_revision";
    rc = lm_check_rev_id(r->down[i], err);
  }
  for (size_t i = 0; rc == LM_OK && i < r->ndepends; i++) {
    field = "depends_on (a revision id or a branch label)";
    rc = lm_check_branch_label(r->depends[i], err);
  }
  for (size_t i = 0; rc == LM_OK && i < r->nlabels; i++) {
    field = "branch_labels";
    rc = lm_check_branch_label(r->labels[i], err);
  }
  if (rc != LM_OK) lm_err_prefix(err, "%s: %s", s->path, field);
  return rc;
}

/* What read_metadata works on. */
typedef struct metadata_ctx {
  lm_arena *arena;
  lm_script *s;
  lm_err *err;
} metadata_ctx;

/* The metadata of the script table at index 2 (a metadata_ctx at 1).
 * Run protected: reading a field may call the table's __index or __len,
 * which may raise or loop.  Returns the status as an integer. */
static int read_metadata(lua_State *L) {
  metadata_ctx *c = lua_touserdata(L, 1);
  lm_script *s = c->s;
  lm_arena *a = c->arena;
  lm_err *err = c->err;
  int rc = LM_ERROR;
  lua_settop(L, 2);                      /* stack: ctx tbl */
  lua_getfield(L, -1, "revision");
  if (lua_type(L, -1) != LUA_TSTRING || !*lua_tostring(L, -1)) {
    lm_err_set(err, "%s: the returned table has no revision (a string)",
               s->path);
    goto done;
  }
  if (has_nul(L, -1)) {
    lm_err_set(err, "%s: revision holds a NUL byte", s->path);
    goto done;
  }
  s->rev.id = lm_arena_strdup(a, lua_tostring(L, -1));
  lua_pop(L, 1);
  lua_getfield(L, -1, "message");
  if (lua_type(L, -1) == LUA_TSTRING)
    s->rev.message = lm_arena_strdup(a, lua_tostring(L, -1));
  lua_pop(L, 1);
  s->rev.path = s->path;
  if (string_list(L, a, s->path, "down_revision", &s->rev.down,
                  &s->rev.ndown, err) != LM_OK ||
      string_list(L, a, s->path, "depends_on", &s->rev.depends,
                  &s->rev.ndepends, err) != LM_OK ||
      string_list(L, a, s->path, "branch_labels", &s->rev.labels,
                  &s->rev.nlabels, err) != LM_OK)
    goto done;
  static const char *const fns[] = {"upgrade", "downgrade"};
  for (int i = 0; i < 2; i++) {
    lua_getfield(L, -1, fns[i]);
    int t = lua_type(L, -1);
    lua_pop(L, 1);
    if (t != LUA_TFUNCTION && t != LUA_TNIL) {
      lm_err_set(err, "%s: %s must be a function, not a %s", s->path, fns[i],
                 lua_typename(L, t));
      goto done;
    }
  }
  lua_getfield(L, -1, "transactional");
  s->transactional = lua_isnil(L, -1) ? 1 : lua_toboolean(L, -1);
  rc = LM_OK;
done:
  lua_pushinteger(L, rc);
  return 1;
}

/* Load one script: its chunk runs with a fresh _ENV whose reads fall back
 * to the globals, so scripts cannot see each other's variables.  The
 * chunk and the reading of its table run protected, under the interrupt
 * hook (sandbox.c). */
static int load_script(lm_env *env, lm_script *s, lm_err *err) {
  lua_State *L = env->L;
  char *src;
  size_t len;
  struct stat st;
  if (lm_read_regular_file(s->path, SCRIPT_MAX_BYTES, &src, &len, &st,
                           err) != LM_OK)
    return LM_ERROR;
  /* The key of what was read: an edit after this misses the cache. */
  lm_script_key_of(&s->key, &st);
  s->doc = leading_doc(&env->script_arena, src);
  lm_sha256_hex(src, len, s->checksum);
  int base = lua_gettop(L);
  lua_pushcfunction(L, lm_lua_message_handler);
  char *chunkname = lm_xasprintf("@%s", s->path);
  int rc = luaL_loadbufferx(L, src, len, chunkname, "t");
  free(chunkname);
  free(src);
  if (rc == LUA_OK) {
    lua_newtable(L);                     /* stack: handler chunk env */
    lua_newtable(L);
    lua_pushglobaltable(L);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
    rc = lua_pcall(L, 0, 1, base + 1);   /* stack: handler tbl */
  }
  if (rc != LUA_OK) {
    lm_err_set(err, "cannot load %s", lua_tostring(L, -1));
    lua_settop(L, base);
    return LM_ERROR;
  }
  if (!lua_istable(L, -1)) {
    lm_err_set(err, "%s must return a table (revision, down_revision, "
               "upgrade, downgrade), not a %s", s->path, luaL_typename(L, -1));
    lua_settop(L, base);
    return LM_ERROR;
  }
  metadata_ctx ctx = {&env->script_arena, s, err};
  lua_pushcfunction(L, read_metadata);
  lua_pushlightuserdata(L, &ctx);
  lua_pushvalue(L, -3);                  /* stack: handler tbl fn ctx tbl */
  if (lua_pcall(L, 2, 1, base + 1) != LUA_OK)
    rc = lm_err_set(err, "cannot load %s: reading its table: %s", s->path,
                    lua_tostring(L, -1));
  else
    rc = (int)lua_tointeger(L, -1);
  lua_pop(L, 1);                         /* stack: handler tbl */
  if (rc == LM_OK) rc = check_names(s, err);
  if (rc != LM_OK) {
    lua_settop(L, base);
    return LM_ERROR;
  }
  s->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_settop(L, base);
  return LM_OK;
}

/* A cache entry whose names would not pass (a cache written by hand or
 * by another program) is no entry. */
static int cached_names_ok(const lm_script *s) {
  lm_err scratch;
  lm_err_init(&scratch);
  int rc = check_names(s, &scratch);
  lm_err_free(&scratch);
  return rc == LM_OK;
}

int lm_scripts_load(lm_env *env) {
  if (env->scripts_loaded) return LM_OK;
  const char *dir = env->script_location;
  DIR *d = opendir(dir);
  if (!d)
    return lm_err_set(&env->err, "cannot read script_location %s: %s", dir,
                      strerror(errno));
  lm_strvec names = LM_STRVEC_INIT;
  struct dirent *de;
  while ((de = readdir(d))) {
    size_t len = strlen(de->d_name);
    if (de->d_name[0] == '.' || len < 5 ||
        strcmp(de->d_name + len - 4, ".lua") != 0)
      continue;
    lm_strvec_push(&names, lm_xstrdup(de->d_name));
  }
  closedir(d);
  if (names.n)   /* an empty folder has no array at all */
    qsort(names.items, names.n, sizeof *names.items, compare_names);

  env->scripts = lm_xcalloc(names.n ? names.n : 1, sizeof *env->scripts);
  /* Metadata comes from the cache when the file is unchanged; only new or
   * edited scripts are compiled now. */
  lm_map cache;
  lm_map_init(&cache);
  char *cache_buf = NULL;
  size_t cache_len = 0;
  lm_cache_read(env, &cache, &cache_buf, &cache_len);
  const char *cache_end = cache_buf ? cache_buf + cache_len : NULL;
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  size_t misses = 0;
  int rc = LM_OK;
  for (size_t i = 0; i < names.n && rc == LM_OK; i++) {
    lm_script *s = &env->scripts[i];
    s->ref = LUA_NOREF;
    s->path = join_path(dir, names.items[i]);
    env->nscripts = i + 1;
    const char *entry = lm_map_get(&cache, names.items[i]);
    if (dfd >= 0 && lm_script_stat(dfd, names.items[i], &s->key) == LM_OK &&
        entry && lm_cache_fill(env, s, entry, cache_end) && cached_names_ok(s))
      continue;
    misses++;
    lm_script blank = {.path = s->path, .ref = LUA_NOREF};
    *s = blank;
    rc = load_script(env, s, &env->err);
  }
  if (dfd >= 0) close(dfd);
  if (rc == LM_OK && (misses || cache.count != names.n)) lm_cache_write(env);
  lm_map_free(&cache);
  env->cache_buf = cache_buf;   /* cached scripts' strings live in it */
  lm_strvec_free(&names);
  if (rc != LM_OK) return rc;

  lm_revision *revs = lm_xcalloc(env->nscripts ? env->nscripts : 1,
                                 sizeof *revs);
  for (size_t i = 0; i < env->nscripts; i++) revs[i] = env->scripts[i].rev;
  rc = lm_graph_new(&env->graph, revs, env->nscripts, &env->err);
  free(revs);
  if (rc != LM_OK) return rc;
  env->scripts_loaded = 1;
  return LM_OK;
}

void lm_scripts_free(lm_env *env) {
  for (size_t i = 0; i < env->nscripts; i++) {
    if (env->L && env->scripts[i].ref != LUA_NOREF)
      luaL_unref(env->L, LUA_REGISTRYINDEX, env->scripts[i].ref);
    free(env->scripts[i].path);
  }
  free(env->scripts);
  env->scripts = NULL;
  env->nscripts = 0;
  lm_graph_free(env->graph);
  env->graph = NULL;
  lm_arena_free(&env->script_arena);
  free(env->cache_buf);
  env->cache_buf = NULL;
  env->scripts_loaded = 0;
}

lm_script *lm_script_at(lm_env *env, size_t graph_idx) {
  return graph_idx < env->nscripts ? &env->scripts[graph_idx] : NULL;
}

int lm_script_checksum(const lm_script *s, char out[65], lm_err *err) {
  if (s->checksum[0]) {
    memcpy(out, s->checksum, 65);
    return LM_OK;
  }
  char *src;
  size_t len;
  if (lm_read_regular_file(s->path, SCRIPT_MAX_BYTES, &src, &len, NULL,
                           err) != LM_OK)
    return LM_ERROR;
  lm_sha256_hex(src, len, out);
  free(src);
  return LM_OK;
}

/* A script known from the cache is compiled when it is about to run; it
 * must still be the script the cache described.  When it is not (edited
 * since it was read, or an entry that still matched the file's status),
 * the entry is dropped from the cache, so that the next run reads the
 * file afresh instead of failing the same way. */
static int compile_script(lm_env *env, lm_script *s) {
  if (s->ref != LUA_NOREF) return LM_OK;
  lm_script fresh = {.path = s->path, .ref = LUA_NOREF};
  int rc = load_script(env, &fresh, &env->err);
  if (rc == LM_OK && (strcmp(fresh.rev.id, s->rev.id) != 0 ||
                      strcmp(fresh.checksum, s->checksum) != 0)) {
    luaL_unref(env->L, LUA_REGISTRYINDEX, fresh.ref);
    rc = lm_err_set(&env->err, "%s changed since luamig read it; run the "
                    "command again", s->path);
  }
  if (rc != LM_OK) {
    s->checksum[0] = '\0';   /* not written to the cache again */
    lm_cache_write(env);
    return LM_ERROR;
  }
  s->ref = fresh.ref;
  return LM_OK;
}

/* Look up upgrade or downgrade in the script table and call it with the
 * op table; protected (a table's __index may raise).  Arguments: the env
 * (light userdata), the script table, the function's name.  Returns
 * false when the script has no such function. */
static int call_migration(lua_State *L) {
  lm_env *env = lua_touserdata(L, 1);
  lua_getfield(L, 2, lua_tostring(L, 3));
  if (lua_isnil(L, -1)) {
    lua_pushboolean(L, 0);
    return 1;
  }
  lm_op_push_table(env);
  lua_call(L, 1, 0);
  lua_pushboolean(L, 1);
  return 1;
}

/* Where in a script an error was raised. */
typedef struct script_where {
  const char *path;
  int line;             /* 0 when no frame of the script is on the stack */
} script_where;

/* The message handler of a script's call: before the message is made, the
 * innermost frame running the script's own chunk gives the line (an error
 * raised by an op, or by a helper the script called, is placed at the
 * script's line that led to it).  Upvalue 1: the script_where. */
static int script_handler(lua_State *L) {
  script_where *w = lua_touserdata(L, lua_upvalueindex(1));
  lua_Debug ar;
  for (int level = 0; !w->line && lua_getstack(L, level, &ar); level++)
    if (lua_getinfo(L, "Sl", &ar) && ar.source[0] == '@' &&
        strcmp(ar.source + 1, w->path) == 0 && ar.currentline > 0)
      w->line = ar.currentline;
  return lm_lua_message_handler(L);
}

int lm_script_call(lm_env *env, lm_script *s, const char *fn, int *found) {
  lua_State *L = env->L;
  *found = 0;
  if (compile_script(env, s) != LM_OK) {
    lm_err_where(&env->err, s->rev.id, s->path, 0);
    return LM_ERROR;
  }
  int base = lua_gettop(L);
  script_where where = {s->path, 0};
  lua_pushlightuserdata(L, &where);
  lua_pushcclosure(L, script_handler, 1);
  lua_pushcfunction(L, call_migration);
  lua_pushlightuserdata(L, env);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref);
  lua_pushstring(L, fn);                 /* stack: handler call env tbl fn */
  env->running = s->path;
  env->running_fn = fn;
  int rc = lua_pcall(L, 3, 1, base + 1);
  env->running = env->running_fn = NULL;
  if (rc != LUA_OK) {
    /* An error from the database keeps its own text (SQL and message);
     * a Lua error already names the file and line. */
    const char *msg = lua_tostring(L, -1);
    if (!msg) msg = "(error object is not a string)";
    lm_err_set(&env->err, "%s", msg);
    if (env->raised.msg && strcmp(env->raised.msg, msg) == 0)
      lm_err_copy_code(&env->err, &env->raised);
    else
      lm_err_kind(&env->err, "script_error");
    if (rc == LUA_ERRMEM) lm_err_kind(&env->err, "out_of_memory");
    lm_err_where(&env->err, s->rev.id, s->path, where.line);
    lm_err_free(&env->raised);
    lua_settop(L, base);
    return LM_ERROR;
  }
  *found = lua_toboolean(L, -1);
  lua_settop(L, base);
  return LM_OK;
}

int lm_script_run(lm_env *env, lm_script *s, int upgrade) {
  const char *fn = upgrade ? "upgrade" : "downgrade";
  int found;
  int rc = lm_script_call(env, s, fn, &found);
  if (rc == LM_OK && !found) {
    rc = lm_err_set(&env->err, "%s has no %s function", s->path, fn);
    lm_err_where(&env->err, s->rev.id, s->path, 0);
  }
  /* what a downgrade refilled gets its indexes back, its kept copy goes */
  return lm_keep_finish(env, s->rev.id, rc);
}

int lm_script_has(lm_env *env, lm_script *s, const char *fn, int *has) {
  lua_State *L = env->L;
  *has = 0;
  if (compile_script(env, s) != LM_OK) return LM_ERROR;
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref);
  lua_pushstring(L, fn);
  lua_rawget(L, -2);                     /* stack: tbl value */
  int t = lua_type(L, -1);
  lua_pop(L, 2);
  if (t != LUA_TNIL && t != LUA_TFUNCTION)
    return lm_err_set(&env->err, "%s: %s must be a function, not a %s",
                      s->path, fn, lua_typename(L, t));
  *has = t == LUA_TFUNCTION;
  return LM_OK;
}
