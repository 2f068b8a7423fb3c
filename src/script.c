/*
 * script.c - revision scripts: find them, load each in its own
 * environment (loading has no effect on any database), read their
 * metadata, and call their upgrade/downgrade functions.
 */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

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

/* A field that may be nil, a string or a list of strings. */
static int string_list(lua_State *L, lm_arena *a, const char *path,
                       const char *key, const char ***out, size_t *n,
                       lm_err *err) {
  lua_getfield(L, -1, key);
  *out = NULL;
  *n = 0;
  if (lua_isstring(L, -1) && lua_type(L, -1) == LUA_TSTRING) {
    *out = lm_arena_alloc(a, sizeof **out);
    (*out)[0] = lm_arena_strdup(a, lua_tostring(L, -1));
    *n = 1;
  } else if (lua_istable(L, -1)) {
    size_t len = (size_t)luaL_len(L, -1);
    *out = lm_arena_alloc(a, (len ? len : 1) * sizeof **out);
    for (size_t i = 0; i < len; i++) {
      lua_geti(L, -1, (lua_Integer)i + 1);
      if (lua_type(L, -1) != LUA_TSTRING) {
        lua_pop(L, 2);
        return lm_err_set(err, "%s: %s[%zu] must be a string", path, key,
                          i + 1);
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

/* Load one script: its chunk runs with a fresh _ENV whose reads fall back
 * to the globals, so scripts cannot see each other's variables. */
static int load_script(lm_env *env, lm_script *s, lm_err *err) {
  lua_State *L = env->L;
  lm_arena *a = &env->script_arena;
  char *src;
  size_t len;
  if (lm_read_file(s->path, &src, &len, err) != LM_OK) return LM_ERROR;
  s->doc = leading_doc(a, src);
  lm_sha256_hex(src, len, s->checksum);
  char *chunkname = lm_xasprintf("@%s", s->path);
  int rc = luaL_loadbufferx(L, src, len, chunkname, "t");
  free(chunkname);
  free(src);
  if (rc != LUA_OK) {
    lm_err_set(err, "cannot load %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return LM_ERROR;
  }
  lua_newtable(L);                       /* stack: chunk env */
  lua_newtable(L);
  lua_pushglobaltable(L);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
  if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
    lm_err_set(err, "cannot load %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    return LM_ERROR;
  }
  if (!lua_istable(L, -1)) {
    lm_err_set(err, "%s must return a table (revision, down_revision, "
               "upgrade, downgrade), not a %s", s->path, luaL_typename(L, -1));
    lua_pop(L, 1);
    return LM_ERROR;
  }
  lua_getfield(L, -1, "revision");
  if (lua_type(L, -1) != LUA_TSTRING || !*lua_tostring(L, -1)) {
    lm_err_set(err, "%s: the returned table has no revision (a string)",
               s->path);
    lua_pop(L, 2);
    return LM_ERROR;
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
                  &s->rev.nlabels, err) != LM_OK) {
    lua_pop(L, 1);
    return LM_ERROR;
  }
  static const char *const fns[] = {"upgrade", "downgrade"};
  for (int i = 0; i < 2; i++) {
    lua_getfield(L, -1, fns[i]);
    int t = lua_type(L, -1);
    lua_pop(L, 1);
    if (t != LUA_TFUNCTION && t != LUA_TNIL) {
      lm_err_set(err, "%s: %s must be a function, not a %s", s->path, fns[i],
                 lua_typename(L, t));
      lua_pop(L, 1);
      return LM_ERROR;
    }
  }
  lua_getfield(L, -1, "transactional");
  s->transactional = lua_isnil(L, -1) ? 1 : lua_toboolean(L, -1);
  lua_pop(L, 1);
  s->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  return LM_OK;
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
        entry && lm_cache_fill(env, s, entry, cache_end))
      continue;
    misses++;
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
  if (lm_read_file(s->path, &src, &len, err) != LM_OK) return LM_ERROR;
  lm_sha256_hex(src, len, out);
  free(src);
  return LM_OK;
}

/* Errors keep the message (which names file and line); a non-string
 * error value is described. */
static int message_handler(lua_State *L) {
  if (lua_type(L, 1) == LUA_TSTRING) return 1;
  if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
    return 1;
  lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  return 1;
}

/* Every few thousand instructions: stop a script that loops in Lua when
 * the command line got SIGINT or SIGTERM. */
static void interrupt_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  if (lm_signal_received)
    luaL_error(L, "interrupted by %s",
               lm_signal_received == SIGINT ? "SIGINT" : "SIGTERM");
}

/* A script known from the cache is compiled when it is about to run; it
 * must still be the script the cache described. */
static int compile_script(lm_env *env, lm_script *s) {
  if (s->ref != LUA_NOREF) return LM_OK;
  lm_script fresh = *s;
  fresh.ref = LUA_NOREF;
  if (load_script(env, &fresh, &env->err) != LM_OK) return LM_ERROR;
  if (strcmp(fresh.rev.id, s->rev.id) != 0 ||
      strcmp(fresh.checksum, s->checksum) != 0) {
    luaL_unref(env->L, LUA_REGISTRYINDEX, fresh.ref);
    return lm_err_set(&env->err, "%s changed while luamig was running; run "
                      "the command again", s->path);
  }
  s->ref = fresh.ref;
  return LM_OK;
}

int lm_script_run(lm_env *env, lm_script *s, int upgrade) {
  lua_State *L = env->L;
  const char *fn = upgrade ? "upgrade" : "downgrade";
  if (compile_script(env, s) != LM_OK) return LM_ERROR;
  lua_pushcfunction(L, message_handler);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->ref);
  lua_getfield(L, -1, fn);               /* stack: handler tbl fn */
  lua_remove(L, -2);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 2);
    return lm_err_set(&env->err, "%s has no %s function", s->path, fn);
  }
  lm_op_push_table(env);
  env->running = s->path;
  lua_sethook(L, interrupt_hook, LUA_MASKCOUNT, 10000);
  int rc = lua_pcall(L, 1, 0, -3);
  lua_sethook(L, NULL, 0, 0);
  env->running = NULL;
  if (rc != LUA_OK) {
    /* An error from the database keeps its own text (SQL and message);
     * a Lua error already names the file and line. */
    lm_err_set(&env->err, "%s", lua_tostring(L, -1));
    lua_pop(L, 2);
    return LM_ERROR;
  }
  lua_pop(L, 1);
  return LM_OK;
}
