/*
 * autogen_compare.c - models and database compared (autogen.h): the
 * database must be at head (a migration written against another revision
 * would be wrong), both sides are filtered alike, and the one diff runs
 * from the database to the models.  What the models cannot say is listed
 * as not compared: views, triggers, exclusion constraints, unnamed CHECKs
 * on a table both sides have (their text is the database's), how a
 * column is numbered (SERIAL, identity), and an expression default that
 * reads differently on the two sides (the database rewrites it).
 */
#include <stdlib.h>
#include <string.h>

#include "autogen.h"
#include "introspect.h"
#include "models.h"

void lm_compare_init(lm_compare *c) {
  memset(c, 0, sizeof *c);
  lm_schema_init(&c->db);
  lm_schema_init(&c->models);
  lm_diff_init(&c->diff);
}

void lm_compare_free(lm_compare *c) {
  lm_diff_free(&c->diff);
  lm_schema_free(&c->db);
  lm_schema_free(&c->models);
  free(c->items);
  lm_strvec_free(&c->not_compared);
  memset(c, 0, sizeof *c);
}

/* A default that is an SQL expression (not a literal, a number or a
 * function luamig knows). */
static int expression_default(const void *part) {
  const lm_mcolumn *c = part;
  if (!c || (c->server_default.kind != LM_DEF_SQL &&
             c->server_default.kind != LM_DEF_RAW))
    return 0;
  const char *p = c->server_default.text;
  if (*p == '-' || *p == '+') p++;
  return strspn(p, "0123456789.eE+-") != strlen(p);
}

/* Why an item is not compared, or NULL when it is. */
static const char *not_compared_reason(const lm_diff_item *it) {
  switch (it->object) {
  case LM_DIFF_VIEW: return "views are not modelled";
  case LM_DIFF_EXCLUDE: return "exclusion constraints are not modelled";
  case LM_DIFF_CHECK:
    if (!it->name && it->from_table && it->to_table)
      return "an unnamed CHECK is compared by its text, which the database "
             "rewrites; name it to compare it";
    return NULL;
  case LM_DIFF_COLUMN:
    if (it->change == LM_DIFF_CHANGED &&
        (strcmp(it->attribute, "numbering") == 0 ||
         strcmp(it->attribute, "autoincrement") == 0))
      return "how a column is numbered (serial, identity) is not changed by "
             "a migration luamig writes";
    if (it->change == LM_DIFF_CHANGED &&
        strcmp(it->attribute, "default") == 0 &&
        expression_default(it->from_part) && expression_default(it->to_part))
      return "the database rewrites an expression default in its own "
             "words, which luamig cannot always bring back to the models'";
    return NULL;
  default:
    return NULL;
  }
}

/* Triggers the database has that no model made (onupdate ones are). */
static void list_triggers(lm_compare *c) {
  for (size_t i = 0; i < c->db.ntables; i++) {
    const lm_mtable *t = &c->db.tables[i];
    const lm_mtable *m = lm_schema_table(&c->models, t->schema, t->name);
    for (size_t k = 0; k < t->ntriggers; k++) {
      int modelled = 0;
      for (size_t j = 0; m && j < m->ntriggers; j++)
        modelled |= strcmp(m->triggers[j].name, t->triggers[k].name) == 0;
      if (!modelled)
        lm_strvec_pushf(&c->not_compared, "trigger %s on %s (triggers are "
                        "not modelled)", t->triggers[k].name, t->name);
    }
  }
}

int lm_compare_run(lm_env *env, const char *models_path, lm_compare *c) {
  if (lm_models_load(env, models_path, &c->models) != LM_OK) return LM_ERROR;
  if (lm_models_at_head(env) != LM_OK) return LM_ERROR;
  if (lm_introspect_database(env, &c->db) != LM_OK) return LM_ERROR;
  lm_models_filter(env, &c->db);
  lm_models_filter(env, &c->models);
  /* A models file names the default schema's tables only. */
  size_t k = 0;
  for (size_t i = 0; i < c->db.ntables; i++) {
    const lm_mtable *t = &c->db.tables[i];
    if (t->schema)
      lm_strvec_pushf(&c->not_compared, "table %s.%s (a models file "
                      "describes the default schema's tables)", t->schema,
                      t->name);
    else
      c->db.tables[k++] = c->db.tables[i];
  }
  c->db.ntables = k;
  lm_schema_diff(&c->diff, &c->db, &c->models);
  c->items = lm_xcalloc(c->diff.n ? c->diff.n : 1, sizeof *c->items);
  for (size_t i = 0; i < c->diff.n; i++) {
    const lm_diff_item *it = &c->diff.items[i];
    const char *why = not_compared_reason(it);
    if (!why) {
      c->items[c->n++] = it;
      continue;
    }
    lm_buf line = LM_BUF_INIT;
    lm_diff_item_line(it, &line);
    lm_strvec_pushf(&c->not_compared, "%s (%s)", lm_buf_str(&line), why);
    lm_buf_free(&line);
  }
  list_triggers(c);
  return LM_OK;
}

void lm_compare_json(const lm_compare *c, lm_buf *out) {
  lm_buf_printf(out, "{\"match\": %s, \"differences\": [",
                c->n ? "false" : "true");
  for (size_t i = 0; i < c->n; i++) {
    if (i) lm_buf_puts(out, ", ");
    lm_diff_item_json(c->items[i], out);
  }
  lm_buf_puts(out, "], \"not_compared\": [");
  for (size_t i = 0; i < c->not_compared.n; i++) {
    if (i) lm_buf_puts(out, ", ");
    lm_json_string(out, c->not_compared.items[i]);
  }
  lm_buf_puts(out, "]}");
}
