/*
 * executor.c - what happens to an operation value: the online executor
 * compiles it through the dialect and runs it; the offline executor
 * compiles it and appends it to the --sql script, with parameters
 * rendered as escaped literals.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

/* Copy sql into out with each $N replaced by the literal of params[N-1].
 * Quoted strings, quoted identifiers, dollar-quoted bodies and comments
 * are copied untouched, so a '$1' inside a literal stays as it is. */
static int render_params(const lm_dialect *d, const char *sql, size_t nparams,
                         const lm_value *params, lm_buf *out, lm_err *err) {
  const char *p = sql;
  while (*p) {
    if (*p == '\'' || *p == '"') {
      char q = *p;
      const char *end = p + 1;
      while (*end && !(*end == q && end[1] != q)) end += (*end == q) ? 2 : 1;
      if (*end) end++;
      lm_buf_add(out, p, (size_t)(end - p));
      p = end;
    } else if (p[0] == '-' && p[1] == '-') {
      size_t n = strcspn(p, "\n");
      lm_buf_add(out, p, n);
      p += n;
    } else if (p[0] == '/' && p[1] == '*') {
      const char *end = strstr(p + 2, "*/");
      end = end ? end + 2 : p + strlen(p);
      lm_buf_add(out, p, (size_t)(end - p));
      p = end;
    } else if (*p == '$' && isdigit((unsigned char)p[1])) {
      char *end;
      long k = strtol(p + 1, &end, 10);
      if (k < 1 || (size_t)k > nparams)
        return lm_err_set(err, "placeholder $%ld has no value (%zu given)\n"
                          "  in: %s", k, nparams, sql);
      d->render_literal(out, &params[k - 1]);
      p = end;
    } else {
      lm_buf_putc(out, *p++);
    }
  }
  return LM_OK;
}

/* One statement of the offline script, as Alembic writes them. */
static void offline_statement(lm_env *env, const char *sql) {
  lm_buf_puts(env->sql_out, sql);
  size_t len = strlen(sql);
  while (len && isspace((unsigned char)sql[len - 1])) len--;
  if (!len || sql[len - 1] != ';') lm_buf_putc(env->sql_out, ';');
  lm_buf_puts(env->sql_out, "\n\n");
}

int lm_exec_sql(lm_env *env, const char *sql, size_t nparams,
                const lm_value *params, int64_t *affected, lm_err *err) {
  if (env->mode == LM_EXEC_OFFLINE) {
    if (!nparams) {
      offline_statement(env, sql);
    } else {
      lm_buf b = LM_BUF_INIT;
      int rc = render_params(env->dialect, sql, nparams, params, &b, err);
      if (rc == LM_OK) offline_statement(env, lm_buf_str(&b));
      lm_buf_free(&b);
      if (rc != LM_OK) return rc;
    }
    if (affected) *affected = 0;
    return LM_OK;
  }
  return env->dialect->exec(env->conn, sql, nparams, params, affected, err);
}

int lm_op_apply_execute(lm_env *env, const lm_op *op, int64_t *affected,
                        lm_err *err) {
  return lm_exec_sql(env, op->sql, op->nparams, op->params, affected, err);
}

int lm_op_apply(lm_env *env, const lm_op *op, lm_err *err) {
  if (op->kind == LM_OP_EXECUTE)
    return lm_op_apply_execute(env, op, NULL, err);
  lm_compile_ctx ctx = {.conn = env->conn,
                        .offline = env->mode == LM_EXEC_OFFLINE};
  lm_strvec stmts = LM_STRVEC_INIT;
  int rc = env->dialect->compile(&ctx, op, &stmts, err);
  for (size_t i = 0; rc == LM_OK && i < stmts.n; i++)
    rc = lm_exec_sql(env, stmts.items[i], 0, NULL, NULL, err);
  lm_strvec_free(&stmts);
  return rc;
}
