/*
 * embed.c - a program that migrates a database with the luamig C library.
 *
 *   cc embed.c $(pkg-config --cflags --libs luamig) -o embed
 *   ./embed sqlite:///app.db migrations
 *
 * Upgrades to head, printing each migration as it starts and ends, then
 * prints the revisions the database is at.  Exit 0, or 1 with luamig's
 * message.
 */
#include <stdio.h>

#include <luamig.h>

static void on_event(const lm_event *ev, void *payload) {
  (void)payload;
  if (ev->kind == LM_EVENT_MIGRATION_START)
    printf("start %s\n", ev->revision ? ev->revision : "?");
  else if (ev->kind == LM_EVENT_MIGRATION_DONE)
    printf("done %s\n", ev->revision ? ev->revision : "?");
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s URL SCRIPT_LOCATION\n", argv[0]);
    return 2;
  }
  printf("luamig %s (header %s)\n", lm_version(), LUAMIG_VERSION);
  lm_options opts = {.url = argv[1],
                     .script_location = argv[2], .quiet = 1,
                     .on_event = on_event};
  lm_env *env;
  int rc = lm_open(&env, &opts);
  char **applied = NULL, **heads = NULL;
  if (rc == 0) rc = lm_upgrade(&applied, env, "head");
  if (rc == 0) rc = lm_current(&heads, env);
  if (rc != 0) {
    fprintf(stderr, "embed: %s\n", lm_errmsg(env));
    lm_close(env);
    return 1;
  }
  int n = 0;
  while (applied[n]) n++;
  printf("applied %d\n", n);
  for (char **h = heads; *h; h++) printf("current %s\n", *h);
  lm_free_list(applied);
  lm_free_list(heads);
  lm_close(env);
  return 0;
}
