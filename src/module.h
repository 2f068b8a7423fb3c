/*
 * module.h - what the files of the Lua module share (module.c,
 * module_commands.c, module_read.c): the runner object, the checks that
 * raise on misuse, the start and end of a command, and the results.
 */
#ifndef LM_MODULE_H
#define LM_MODULE_H

#include <lua.h>

#include "core.h"

#define RUNNER_META "luamig.Runner"

typedef struct lm_mod_runner {
  lm_env *env;                  /* NULL once closed */
  lua_State *L;                 /* the state of the command running, for on_event */
  int on_event;                 /* registry ref to the callback, or LUA_NOREF */
  const char *busy;             /* the method whose command runs, or NULL */
  int event_error;              /* registry ref to on_event's first error, or LUA_NOREF */
  double step_started;          /* lm_now() at the last migration_start */
} lm_mod_runner;

/* self of m:METHOD(): an open runner. */
lm_mod_runner *lm_mod_check_runner(lua_State *L, const char *method);
/* The same, for a method that starts a command: not from on_event while
 * another one runs. */
lm_mod_runner *lm_mod_check_idle(lua_State *L, const char *method);
/* A string argument (a number is taken as Lua takes it), without NULs. */
const char *lm_mod_check_string(lua_State *L, int idx, const char *method,
                                const char *what);

/* A command of m:METHOD() starts: its events go to the caller's state L. */
void lm_mod_command_start(lm_mod_runner *r, lua_State *L, const char *method);
/* The command is over (r->busy cleared before): raise what on_event
 * raised meanwhile, else return nresults. */
int lm_mod_command_end(lua_State *L, lm_mod_runner *r, const char *method,
                       int rc, int nresults);

/* A read-only call made from on_event keeps an error record of its own,
 * so the running command's stays as it is. */
typedef struct lm_mod_nested {
  int active;
  lm_err outer;
  lm_err info;          /* the nested call's code and place, when it failed */
} lm_mod_nested;

void lm_mod_nested_start(lm_mod_runner *r, lua_State *L, lm_mod_nested *n);
/* The call's error (message, code, place) moves to n->info, for
 * lm_mod_push_fail_info; the running command's is put back. */
void lm_mod_nested_end(lm_mod_runner *r, lm_mod_nested *n);

/* Run fn(env, payload), which reaches the core, under a recovery point
 * (oom.h): running out of memory there returns LM_ERROR, "out_of_memory",
 * instead of ending the process; a spent env is refused.  fn must not
 * raise into the caller's Lua state. */
int lm_mod_core(lm_env *env, int (*fn)(lm_env *env, void *payload),
                void *payload);

/* A failure: nil, message, code (nil when no code is known), and a table
 * {code=, sqlstate=, revision=, file=, line=} of what e knows (e may be
 * NULL). */
int lm_mod_push_fail_err(lua_State *L, const char *msg, const lm_err *e);
/* The same from a nested call's info (lm_mod_nested_end), freed. */
int lm_mod_push_fail_info(lua_State *L, lm_err *info);
/* The runner's last failure. */
int lm_mod_push_fail(lua_State *L, lm_mod_runner *r);
/* The JSON text the core wrote (malloc'ed, freed here whatever happens)
 * pushed as a Lua table; raises if it cannot be (module_commands.c). */
void lm_mod_push_json(lua_State *L, char *json);
void lm_mod_push_list(lua_State *L, char **items);
void lm_mod_push_strings(lua_State *L, const char *const *items, size_t n);
/* A revision as a table with the fields of `history --json`. */
void lm_mod_push_revision(lua_State *L, lm_env *env, size_t idx);
void lm_mod_push_revlist(lua_State *L, lm_env *env, const lm_revlist *l,
                         int ids_only);

/* module_commands.c */
int lm_mod_upgrade(lua_State *L);
int lm_mod_downgrade(lua_State *L);
int lm_mod_sql(lua_State *L);
int lm_mod_stamp(lua_State *L);
int lm_mod_status(lua_State *L);
int lm_mod_schema(lua_State *L);
int lm_mod_verify(lua_State *L);
/* module_review.c */
int lm_mod_check(lua_State *L);
int lm_mod_lint(lua_State *L);
int lm_mod_revision(lua_State *L);

/* module_read.c */
int lm_mod_current(lua_State *L);
int lm_mod_heads(lua_State *L);
int lm_mod_history(lua_State *L);
int lm_mod_show(lua_State *L);
int lm_mod_dialect(lua_State *L);
int lm_mod_execute(lua_State *L);
int lm_mod_query(lua_State *L);

#endif
