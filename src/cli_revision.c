/*
 * cli_revision.c - the commands that write files: init, revision, merge,
 * and edit.  The file contents come from lua/templates.lua.
 */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "autogen.h"
#include "cli_args.h"
#include "models.h"

/* Write a new file; refuses to overwrite one. */
static int write_new_file(const char *path, const char *text, lm_err *err) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0) return lm_err_set(err, "cannot create %s: %s", path, strerror(errno));
  size_t len = strlen(text);
  ssize_t n = write(fd, text, len);
  if (close(fd) != 0 || n != (ssize_t)len) {
    unlink(path);
    return lm_err_set(err, "cannot write %s", path);
  }
  return LM_OK;
}

/* Create dir and its missing parents; an existing empty folder is fine. */
static int make_dirs(const char *dir, lm_err *err) {
  struct stat st;
  if (stat(dir, &st) == 0) {
    DIR *d = S_ISDIR(st.st_mode) ? opendir(dir) : NULL;
    if (!d) return lm_err_set(err, "%s already exists and is not a folder", dir);
    struct dirent *e;
    int empty = 1;
    while (empty && (e = readdir(d)))
      empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return empty ? LM_OK : lm_err_set(err, "%s already exists and is not "
                                      "empty; not overwriting it", dir);
  }
  char *path = lm_xstrdup(dir);
  int rc = LM_OK;
  for (char *p = path + 1; rc == LM_OK; p++) {
    if (*p && *p != '/') continue;
    char c = *p;
    *p = '\0';
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
      rc = lm_err_set(err, "cannot create %s: %s", path, strerror(errno));
    *p = c;
    if (!c) break;
  }
  free(path);
  return rc;
}

/* Is line one of text's lines? */
static int has_line(const char *text, const char *line) {
  size_t len = strlen(line);
  for (const char *p = text; p; p = strchr(p, '\n')) {
    if (*p == '\n') p++;
    if (strncmp(p, line, len) == 0 && (p[len] == '\n' || !p[len])) return 1;
  }
  return 0;
}

/* .gitignore gets the script cache and the SQLite lock file (appended to
 * an existing one, without repeating a line it has). */
static int write_gitignore(lm_err *err) {
  static const char *const lines[] = {".luamig-cache", "*.luamig-lock"};
  FILE *f = fopen(".gitignore", "a+");
  if (!f) return lm_err_set(err, "cannot open .gitignore: %s", strerror(errno));
  lm_buf have = LM_BUF_INIT;
  char chunk[4096];
  size_t n;
  rewind(f);
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
    lm_buf_printf(&have, "%.*s", (int)n, chunk);
  lm_buf add = LM_BUF_INIT;
  if (have.len && lm_buf_str(&have)[have.len - 1] != '\n') lm_buf_putc(&add, '\n');
  size_t start = add.len;
  for (size_t i = 0; i < sizeof lines / sizeof *lines; i++)
    if (!has_line(lm_buf_str(&have), lines[i]))
      lm_buf_printf(&add, "%s\n", lines[i]);
  int rc = LM_OK;
  if (add.len > start && fputs(lm_buf_str(&add), f) == EOF)
    rc = lm_err_set(err, "cannot write .gitignore");
  if (fclose(f) != 0 && rc == LM_OK) rc = lm_err_set(err, "cannot write .gitignore");
  lm_buf_free(&have);
  lm_buf_free(&add);
  return rc;
}

int lm_cmd_init(lm_args *a) {
  const char *dir = a->pos.n ? a->pos.items[0] : "migrations";
  const char *config = "luamig.lua";
  struct stat st;
  if (stat(config, &st) == 0) {
    fprintf(stderr, "luamig: %s already exists; not overwriting it\n", config);
    return 1;
  }
  lm_env *env;
  lm_options none = {.config_path = "/dev/null/none", .quiet = 1};
  lm_open(&env, &none);       /* only its Lua state is needed */
  lua_State *L = env->L;
  lua_createtable(L, 0, 1);
  lua_pushstring(L, dir);
  lua_setfield(L, -2, "script_location");
  int rc = lm_lua_call(env, "luamig.templates", "config", 1);
  if (rc == LM_OK && (rc = make_dirs(dir, &env->err)) != LM_OK) lua_pop(L, 1);
  if (rc == LM_OK) {
    rc = write_new_file(config, lua_tostring(L, -1), &env->err);
    lua_pop(L, 1);
  }
  if (rc == LM_OK) rc = write_gitignore(&env->err);
  if (rc != LM_OK) {
    rc = lm_cli_fail(env, rc);
  } else if (a->json) {
    lm_buf out = LM_BUF_INIT;
    lm_buf_printf(&out, "{\"config\": \"%s\", \"script_location\": ", config);
    lm_json_string(&out, dir);
    lm_buf_puts(&out, ", \"gitignore\": \".gitignore\"}\n");
    fputs(lm_buf_str(&out), stdout);
    lm_buf_free(&out);
  } else {
    printf("Created %s and %s/ (.gitignore: .luamig-cache, *.luamig-lock)\n",
           config, dir);
  }
  lm_close(env);
  return rc;
}

/* 12 lowercase hex characters, like Alembic's uuid4().hex[-12:]. */
static int new_rev_id(char out[13], lm_err *err) {
  unsigned char bytes[6];
  int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || read(fd, bytes, sizeof bytes) != (ssize_t)sizeof bytes) {
    if (fd >= 0) close(fd);
    return lm_err_set(err, "cannot read /dev/urandom: %s", strerror(errno));
  }
  close(fd);
  for (int i = 0; i < 6; i++) snprintf(out + 2 * i, 3, "%02x", bytes[i]);
  return LM_OK;
}

static void push_list(lua_State *L, const char *const *items, size_t n) {
  lua_createtable(L, (int)n, 0);
  for (size_t i = 0; i < n; i++) {
    lua_pushstring(L, items[i]);
    lua_rawseti(L, -2, (lua_Integer)i + 1);
  }
}

/* Render lua/templates.lua's revision template (with autogen, the
 * migration lua/autogen.lua writes from those changes) and write the
 * file. */
static int write_revision(lm_env *env, lm_args *a, const lm_strvec *down,
                          const lm_compare *autogen) {
  char id[13];
  const char *rev = a->rev_id;
  if (!rev) {
    if (new_rev_id(id, &env->err) != LM_OK) return LM_ERROR;
    rev = id;
  }
  /* Checked before anything is written, as Alembic does: the id names
   * the file and is read back by every later command. */
  if (lm_check_rev_id(rev, &env->err) != LM_OK) {
    lm_err_prefix(&env->err, "bad --rev-id");
    env->err.code = LM_EUSAGE;
    return LM_EUSAGE;
  }
  for (size_t i = 0; i < a->branch_labels.n; i++)
    if (lm_check_branch_label(a->branch_labels.items[i], &env->err) != LM_OK) {
      lm_err_prefix(&env->err, "bad --branch-label");
      env->err.code = LM_EUSAGE;
      return LM_EUSAGE;
    }
  size_t ignored;
  lm_err probe;
  lm_err_init(&probe);
  int exists = lm_graph_size(env->graph) &&
               lm_graph_lookup(env->graph, rev, &ignored, &probe) == LM_OK &&
               strcmp(lm_graph_rev(env->graph, ignored)->id, rev) == 0;
  lm_err_free(&probe);
  if (exists)
    return lm_err_set(&env->err, "revision %s already exists", rev);
  lua_State *L = env->L;
  char date[32];
  time_t now = time(NULL);
  struct tm tm;
  localtime_r(&now, &tm);
  strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", &tm);

  lua_createtable(L, 0, 6);
  lua_pushstring(L, rev);
  lua_setfield(L, -2, "revision");
  push_list(L, (const char *const *)down->items, down->n);
  lua_setfield(L, -2, "down_revision");
  push_list(L, (const char *const *)a->branch_labels.items,
            a->branch_labels.n);
  lua_setfield(L, -2, "branch_labels");
  push_list(L, (const char *const *)a->depends_on.items, a->depends_on.n);
  lua_setfield(L, -2, "depends_on");
  lua_pushstring(L, a->message ? a->message : "");
  lua_setfield(L, -2, "message");
  lua_pushstring(L, date);
  lua_setfield(L, -2, "create_date");
  if (autogen) {
    lm_autogen_push(L, autogen);         /* stack: ctx changes notes */
    lua_setfield(L, -3, "not_compared");
    lua_setfield(L, -2, "changes");
  }
  if (lm_lua_call(env, autogen ? "luamig.autogen" : "luamig.templates",
                  "revision", 1) != LM_OK)
    return LM_ERROR;
  lua_pushstring(L, a->message ? a->message : "");
  if (lm_lua_call(env, "luamig.templates", "slug", 1) != LM_OK) {
    lua_pop(L, 1);
    return LM_ERROR;
  }
  char *path = lm_xasprintf("%s/%s_%s.lua", env->script_location, rev,
                            lua_tostring(L, -1));
  int rc = write_new_file(path, lua_tostring(L, -2), &env->err);
  lua_pop(L, 2);
  if (rc == LM_OK && !a->silent && a->json) {
    lm_buf out = LM_BUF_INIT;
    lm_buf_puts(&out, "{\"revision\": ");
    lm_json_string(&out, rev);
    lm_buf_puts(&out, ", \"path\": ");
    lm_json_string(&out, path);
    if (autogen) {
      lm_buf_puts(&out, ", \"differences\": [");
      for (size_t i = 0; i < autogen->n; i++) {
        if (i) lm_buf_puts(&out, ", ");
        lm_diff_item_json(autogen->items[i], &out);
      }
      lm_buf_putc(&out, ']');
    }
    lm_buf_puts(&out, "}\n");
    fputs(lm_buf_str(&out), stdout);
    lm_buf_free(&out);
  } else if (rc == LM_OK && !a->silent) {
    printf("Generating %s ...  done\n", path);
  }
  free(path);
  return rc;
}

/* --autogenerate: compare, say what was found (stderr), and say "no
 * changes detected" when there is nothing to write. */
static int autogenerate(lm_env *env, lm_args *a, lm_compare *c, int *empty) {
  const char *path;
  int rc = lm_models_path(env, a->models, &path);
  if (rc == LM_OK) rc = lm_compare_run(env, path, c);
  if (rc != LM_OK) return rc;
  lm_buf out = LM_BUF_INIT;
  for (size_t i = 0; i < c->n && !env->quiet && !a->silent; i++) {
    lm_buf_puts(&out, "detected ");
    lm_diff_item_line(c->items[i], &out);
    lm_buf_putc(&out, '\n');
  }
  for (size_t i = 0; i < c->not_compared.n && !env->quiet && !a->silent; i++)
    lm_buf_printf(&out, "not compared: %s\n", c->not_compared.items[i]);
  fputs(lm_buf_str(&out), stderr);
  lm_buf_free(&out);
  *empty = c->n == 0;
  if (*empty && !a->silent) {
    if (a->json) printf("{\"revision\": null, \"path\": null, "
                        "\"differences\": []}\n");
    else printf("no changes detected\n");
  }
  return LM_OK;
}

int lm_cmd_revision(lm_env *env, lm_args *a) {
  lm_compare cmp;
  lm_compare_init(&cmp);
  int empty = 0;
  int rc = LM_OK;
  if (a->autogenerate) rc = autogenerate(env, a, &cmp, &empty);
  else if (a->models)
    rc = lm_err_usage(&env->err, "--models goes with --autogenerate");
  if (rc == LM_OK && empty && a->silent)   /* the module: no script */
    rc = lm_err_set(&env->err, "no changes detected: the models match the "
                    "database; no revision written");
  if (rc != LM_OK || empty) {
    lm_compare_free(&cmp);
    if (a->silent) return rc;
    return rc == LM_OK ? 0 : lm_cli_fail(env, rc);
  }
  rc = lm_scripts_load(env);
  lm_revlist parents = {0};
  lm_strvec down = LM_STRVEC_INIT;
  if (rc == LM_OK)
    rc = lm_graph_new_revision_parents(env->graph, a->head ? a->head : "head",
                                       a->splice, &parents, &env->err);
  if (rc == LM_OK) {
    lm_ids(env, &parents, &down);
    for (size_t i = 0; i < a->depends_on.n && rc == LM_OK; i++) {
      lm_revlist dep = {0};
      rc = lm_graph_resolve(env->graph, a->depends_on.items[i], NULL, 0, &dep,
                            &env->err);
      /* A dependency is written as the full id it resolves to. */
      if (rc == LM_OK && dep.n == 1)
        a->depends_on.items[i] =
            (char *)lm_graph_rev(env->graph, dep.idx[0])->id;
      lm_revlist_free(&dep);
    }
  }
  if (rc == LM_OK)
    rc = write_revision(env, a, &down, a->autogenerate ? &cmp : NULL);
  lm_revlist_free(&parents);
  lm_strvec_free(&down);
  lm_compare_free(&cmp);
  if (a->silent) return rc;
  return rc == LM_OK ? 0 : lm_cli_fail(env, rc);
}

int lm_cmd_merge(lm_env *env, lm_args *a) {
  int rc = lm_scripts_load(env);
  lm_revlist parents = {0};
  lm_strvec down = LM_STRVEC_INIT;
  if (rc == LM_OK)
    rc = lm_graph_merge_parents(env->graph, (const char *const *)a->pos.items,
                                a->pos.n, &parents, &env->err);
  if (rc == LM_OK) {
    lm_ids(env, &parents, &down);
    rc = write_revision(env, a, &down, NULL);
  }
  lm_revlist_free(&parents);
  lm_strvec_free(&down);
  return rc == LM_OK ? 0 : lm_cli_fail(env, rc);
}

int lm_cmd_edit(lm_env *env, lm_args *a) {
  int rc = lm_scripts_load(env);
  lm_revlist l = {0};
  if (rc == LM_OK)
    rc = lm_graph_resolve(env->graph, a->pos.items[0], NULL, 0, &l, &env->err);
  if (rc == LM_OK && l.n != 1)
    rc = lm_err_set(&env->err, "%s names %zu revisions; edit takes one",
                    a->pos.items[0], l.n);
  if (rc != LM_OK) {
    lm_revlist_free(&l);
    return lm_cli_fail(env, rc);
  }
  const char *path = lm_script_at(env, l.idx[0])->path;
  lm_revlist_free(&l);
  const char *editor = getenv("EDITOR");
  if (!editor || !*editor) editor = "vi";
  pid_t pid = fork();
  if (pid == 0) {
    /* $EDITOR may carry arguments ("code -w"): let the shell split it. */
    execl("/bin/sh", "sh", "-c", "exec $0 \"$1\"", editor, path, (char *)NULL);
    _exit(127);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
      WEXITSTATUS(status) != 0)
    return lm_cli_fail(env, lm_err_set(&env->err, "editor %s failed on %s",
                                       editor, path));
  return 0;
}
