/*
 * lint_output.c - lint's findings as a compiler prints them, as JSON (a
 * list of {code, severity, revision, file, line, message, acknowledged})
 * and as SARIF 2.1.0, the format code-scanning services read.
 */
#include <string.h>

#include "cli_args.h"
#include "lint.h"

void lm_lint_text(const lm_lint_report *r, lm_buf *out) {
  for (size_t i = 0; i < r->n; i++) {
    const lm_finding *f = &r->items[i];
    const lm_lint_rule *rule = &lm_lint_rules[f->rule];
    lm_buf_printf(out, "%s:%d: %s[%s]: %s\n", f->file, f->line,
                  lm_severity_name(f->severity), rule->code, f->message);
    if (f->acknowledged)
      lm_buf_printf(out, "  revision %s acknowledges it (allow = {\"%s\"})\n",
                    f->revision, rule->code);
    else
      lm_buf_printf(out, "  revision %s: %s, or acknowledge with allow = "
                    "{\"%s\"}\n", f->revision, rule->advice, rule->code);
  }
}

static void json_field(lm_buf *out, const char *key, const char *value,
                       int comma) {
  lm_json_string(out, key);
  lm_buf_putc(out, ':');
  lm_json_string(out, value);
  if (comma) lm_buf_putc(out, ',');
}

void lm_lint_json(const lm_lint_report *r, lm_buf *out) {
  lm_buf_putc(out, '[');
  for (size_t i = 0; i < r->n; i++) {
    const lm_finding *f = &r->items[i];
    const lm_lint_rule *rule = &lm_lint_rules[f->rule];
    if (i) lm_buf_putc(out, ',');
    lm_buf_putc(out, '{');
    json_field(out, "code", rule->code, 1);
    json_field(out, "severity", lm_severity_name(f->severity), 1);
    json_field(out, "revision", f->revision, 1);
    json_field(out, "file", f->file, 1);
    lm_buf_printf(out, "\"line\":%d,", f->line);
    json_field(out, "message", f->message, 1);
    json_field(out, "advice", rule->advice, 1);
    lm_buf_printf(out, "\"acknowledged\":%s}",
                  f->acknowledged ? "true" : "false");
  }
  lm_buf_putc(out, ']');
}

/* SARIF levels: error, warning, note. */
static const char *sarif_level(lm_severity s) {
  return s == LM_SEV_ERROR ? "error" : s == LM_SEV_WARNING ? "warning"
                                                           : "note";
}

void lm_lint_sarif(const lm_lint_report *r, lm_buf *out) {
  lm_buf_puts(out, "{\"version\":\"2.1.0\",\"$schema\":"
              "\"https://json.schemastore.org/sarif-2.1.0.json\","
              "\"runs\":[{\"tool\":{\"driver\":{\"name\":\"luamig\","
              "\"version\":\"" LUAMIG_VERSION "\",\"rules\":[");
  for (size_t i = 0; i < lm_lint_nrules; i++) {
    const lm_lint_rule *rule = &lm_lint_rules[i];
    if (i) lm_buf_putc(out, ',');
    lm_buf_puts(out, "{\"id\":");
    lm_json_string(out, rule->code);
    lm_buf_puts(out, ",\"name\":");
    lm_json_string(out, rule->code);
    lm_buf_puts(out, ",\"shortDescription\":{\"text\":");
    lm_json_string(out, rule->summary);
    lm_buf_puts(out, "},\"help\":{\"text\":");
    lm_json_string(out, rule->advice);
    lm_buf_printf(out, "},\"defaultConfiguration\":{\"level\":\"%s\"}}",
                  sarif_level(rule->severity));
  }
  lm_buf_puts(out, "]}},\"results\":[");
  for (size_t i = 0; i < r->n; i++) {
    const lm_finding *f = &r->items[i];
    if (i) lm_buf_putc(out, ',');
    lm_buf_puts(out, "{\"ruleId\":");
    lm_json_string(out, lm_lint_rules[f->rule].code);
    lm_buf_printf(out, ",\"ruleIndex\":%d,\"level\":\"%s\",\"message\":"
                  "{\"text\":", f->rule, sarif_level(f->severity));
    lm_json_string(out, f->message);
    lm_buf_puts(out, "},\"locations\":[{\"physicalLocation\":"
                "{\"artifactLocation\":{\"uri\":");
    lm_json_string(out, f->file);
    lm_buf_printf(out, "},\"region\":{\"startLine\":%d}}}]", f->line);
    lm_buf_puts(out, ",\"properties\":{\"revision\":");
    lm_json_string(out, f->revision);
    lm_buf_putc(out, '}');
    if (f->acknowledged)
      lm_buf_puts(out, ",\"suppressions\":[{\"kind\":\"inSource\","
                  "\"justification\":\"allow in the revision script\"}]");
    lm_buf_putc(out, '}');
  }
  lm_buf_puts(out, "]}]}");
}
