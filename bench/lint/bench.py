#!/usr/bin/env python3
"""bench/lint - `luamig lint` on a generated history of REVISIONS revisions
(default 1000; every rule's trigger somewhere, on tables that exist before
the revision), against squawk (the squawk-cli package from the npm
registry) linting the same migrations' `--sql` output, one file per
revision.  Reports the median of RUNS runs (default 3) of each, and checks
that luamig reports every squawk finding on the rules both have (the table
in README, "Linting migrations").

  BUILD    build directory holding luamig (default build)
  SQUAWK   the squawk binary (default: installed with npm into
           build/bench-squawk on first use)
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("BUILD", "build")
BIN = os.path.join(ROOT, BUILD, "luamig")
REVISIONS = int(os.environ.get("REVISIONS", "1000"))
RUNS = int(os.environ.get("RUNS", "3"))
TABLES = 50
COLS = 20

# squawk rule -> the luamig codes that report the same thing.
OVERLAP = {
    "ban-drop-table": {"drop_table"},
    "ban-drop-column": {"drop_column"},
    "adding-required-field": {"add_required_column"},
    "adding-not-nullable-field": {"set_not_null_without_backfill"},
    "changing-column-type": {"column_type_change", "primary_key_change"},
    "renaming-column": {"rename_column"},
    "renaming-table": {"rename_table"},
    "require-concurrent-index-creation": {"index_not_concurrent"},
    "ban-concurrent-index-creation-in-transaction": {"concurrent_in_transaction"},
    "constraint-missing-not-valid": {"foreign_key_not_valid", "check_not_valid",
                                     "unique_constraint_locks", "primary_key_change"},
    "adding-foreign-key-constraint": {"foreign_key_not_valid"},
    "disallowed-unique-constraint": {"unique_constraint_locks"},
    "adding-primary-key-constraint": {"primary_key_change"},
}


def squawk_bin():
    if os.environ.get("SQUAWK"):
        return os.environ["SQUAWK"]
    found = shutil.which("squawk")
    if found:
        return found
    prefix = os.path.join(ROOT, BUILD, "bench-squawk")
    path = os.path.join(prefix, "node_modules", ".bin", "squawk")
    if not os.path.exists(path):
        subprocess.run(["npm", "install", "--no-save", "--prefix", prefix,
                        "squawk-cli"], check=True, stdout=subprocess.DEVNULL)
    return path


def lua_str(s):
    return json.dumps(s)


def script(rev, down, up, down_code, extra=""):
    return "\n".join([
        "-- revision " + rev, "return {",
        "  revision = %s," % lua_str(rev),
        "  down_revision = %s," % (lua_str(down) if down else "nil"),
        extra,
        "  upgrade = function(op)", up, "  end,",
        "  downgrade = function(op)", down_code, "  end,", "}", ""])


def revision(k):
    """The upgrade, downgrade and extra fields of revision k (k >= 1)."""
    t = "b%d" % (k % TABLES)
    n = "n%d" % ((k // TABLES) % COLS)    # each (table, column) pair once
    c = "c%d" % k
    kind = k % 16
    if kind == 0:
        return ('op.add_column(%r, {%r, "integer", nullable = false})' % (t, c),
                'op.drop_column(%r, %r)' % (t, c), "")
    if kind == 1:
        return ('op.create_index("ix_%d", %r, {"name"})' % (k, t),
                'op.drop_index("ix_%d", %r)' % (k, t), "")
    if kind == 2:
        return ('op.create_index("ixc_%d", %r, {"email"}, {concurrently = true})' % (k, t),
                'op.drop_index("ixc_%d", %r)' % (k, t), "")
    if kind == 3:
        return ('op.create_foreign_key("fk_%d", %r, "b0", {"ref"}, {"id"})' % (k, t),
                'op.drop_constraint("fk_%d", %r)' % (k, t), "")
    if kind == 4:
        return ('op.create_check_constraint("ck_%d", %r, "%s > 0")' % (k, t, n),
                'op.drop_constraint("ck_%d", %r)' % (k, t), "")
    if kind == 5:
        return ('op.create_unique_constraint("uq_%d", %r, {"email"})' % (k, t),
                'op.drop_constraint("uq_%d", %r)' % (k, t), "")
    if kind == 6:
        return ('op.alter_column(%r, %r, {type_ = "bigint"})' % (t, n),
                'op.alter_column(%r, %r, {type_ = "integer"})' % (t, n), "")
    if kind == 7:
        return ('op.alter_column(%r, %r, {nullable = false})' % (t, n),
                'op.alter_column(%r, %r, {nullable = true})' % (t, n), "")
    if kind == 8:
        return ('op.add_column(%r, {%r, "text"})\n'
                'op.alter_column(%r, %r, {new_column_name = "r%d"})' % (t, c, t, c, k),
                'op.drop_column(%r, "r%d")' % (t, k), "")
    if kind == 9:
        return ('op.rename_table(%r, "%s_x")\nop.rename_table("%s_x", %r)' % (t, t, t, t),
                'op.rename_table(%r, "%s_x")\nop.rename_table("%s_x", %r)' % (t, t, t, t), "")
    if kind == 10:
        return ('op.add_column(%r, {%r, "text"})\nop.drop_column(%r, %r)' % (t, c, t, c),
                'op.add_column(%r, {%r, "text"})' % (t, c), "")
    if kind == 11:
        return ('op.create_table("z%d", {{"id", "integer", primary_key = true}})' % k,
                'op.drop_table("z%d")' % k, "")
    if kind == 12:   # the table revision k - 1 made
        return ('op.drop_table("z%d")' % (k - 1),
                'op.create_table("z%d", {{"id", "integer", primary_key = true}})' % (k - 1), "")
    if kind == 13:
        return ('op.create_primary_key("pk_q%d", "q%d", {"id"})' % (k, k),
                'op.drop_constraint("pk_q%d", "q%d", {type_ = "primary"})' % (k, k), "")
    if kind == 14:
        return ('op.execute("CREATE VIEW v%d AS SELECT id FROM %s")\n'
                'op.add_column("audit_log", {%r, "text"})' % (k, t, c),
                'op.execute("DROP VIEW v%d")' % k, "")
    # 15: a backfill, and a downgrade that forgets the column
    return ('op.add_column(%r, {%r, "text"})\n'
            'op.execute("UPDATE %s SET %s = name")' % (t, c, t, c), "", "")


def generate(dirname):
    mig = os.path.join(dirname, "migrations")
    os.makedirs(mig)
    base = ["op.create_table(%r, {{\"id\", \"integer\", primary_key = true}, "
            "{\"name\", \"string(50)\"}, {\"email\", \"string(80)\"}, "
            "{\"ref\", \"integer\"}%s})" % ("b%d" % i, "".join(
                ', {"n%d", "integer"}' % j for j in range(COLS)))
            for i in range(TABLES)]
    base += ['op.create_table("q%d", {{"id", "integer"}})' % k
             for k in range(1, REVISIONS) if k % 16 == 13]
    base.append('op.create_table("audit_log", {{"id", "integer", primary_key = true}})')
    revs = ["r%011d" % k for k in range(REVISIONS)]
    with open(os.path.join(mig, "%05d_%s.lua" % (0, revs[0])), "w") as f:
        f.write(script(revs[0], None, "\n".join(base), ""))
    for k in range(1, REVISIONS):
        up, down, extra = revision(k)
        with open(os.path.join(mig, "%05d_%s.lua" % (k, revs[k])), "w") as f:
            text = script(revs[k], revs[k - 1], up, down, extra)
            if k % 97 == 0:     # now and then a script without downgrade
                text = text.replace("  downgrade = function(op)\n" + down + "\n  end,\n", "")
            elif k % 89 == 0:   # or one whose downgrade raises
                text = text.replace("  downgrade = function(op)\n" + down,
                                    "  downgrade = function(op)\n  error('no way back')")
            if k == REVISIONS - 1:   # the last two: two heads
                text = text.replace(lua_str(revs[k - 1]) + ",", lua_str(revs[k - 2]) + ",", 1)
            f.write(text)
    with open(os.path.join(dirname, "luamig.lua"), "w") as f:
        f.write('return {url = "postgresql://bench@127.0.0.1:1/none", '
                'protected_tables = {"audit_*"}}\n')
    return revs


def split_sql(sql, outdir, revs):
    """One file per revision, cut at luamig's `-- Running upgrade` lines."""
    os.makedirs(outdir)
    chunks, current = {}, None
    for line in sql.splitlines(keepends=True):
        if line.startswith("-- Running upgrade"):
            current = line.split("-> ")[1].split(",")[0].strip()
            chunks[current] = []
        elif current:
            chunks[current].append(line)
    for rev in revs:
        with open(os.path.join(outdir, rev + ".sql"), "w") as f:
            f.write("".join(chunks.get(rev, [])))


def timed(argv, cwd):
    t0 = time.perf_counter()
    p = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    return time.perf_counter() - t0, p


def main():
    if not os.path.exists(BIN):
        sys.exit("build luamig first (%s)" % BIN)
    squawk = squawk_bin()
    tmp = tempfile.mkdtemp(prefix="luamig-bench-lint.")
    try:
        revs = generate(tmp)
        p = subprocess.run([BIN, "-q", "upgrade", "base:heads", "--sql"], cwd=tmp,
                           capture_output=True, text=True)
        if p.returncode != 0:
            sys.exit("luamig --sql failed: " + p.stderr)
        split_sql(p.stdout, os.path.join(tmp, "sql"), revs)
        files = sorted(os.path.join(tmp, "sql", r + ".sql") for r in revs)

        lint_times, squawk_times = [], []
        for _ in range(RUNS):
            t, lp = timed([BIN, "-q", "lint", "--all", "--json"], tmp)
            lint_times.append(t)
            t, sp = timed([squawk, "--reporter", "json"] + files, tmp)
            squawk_times.append(t)
        findings = json.loads(lp.stdout)
        violations = json.loads(sp.stdout) if sp.stdout.strip() else []

        ours = {}
        for f in findings:
            ours.setdefault(f["revision"], set()).add(f["code"])
        missed, compared = [], 0
        for v in violations:
            rule = v.get("rule_name") or v.get("rule")
            if rule not in OVERLAP:
                continue
            rev = os.path.basename(v["file"])[:-4]
            compared += 1
            if not (ours.get(rev, set()) & OVERLAP[rule]):
                missed.append("%s %s" % (rev, rule))
        codes = sorted({f["code"] for f in findings})
        lm, sq = statistics.median(lint_times), statistics.median(squawk_times)
        print("bench/lint: %d revisions, %d luamig findings (%d codes: %s)"
              % (len(revs), len(findings), len(codes), ", ".join(codes)))
        print("  luamig lint --all  median %.3f s" % lm)
        print("  squawk (%d files)  median %.3f s  (%d violations, %d on shared rules)"
              % (len(files), sq, len(violations), compared))
        print("  luamig / squawk    %.2f (target <= 1.00)" % (lm / sq if sq else 0))
        print("  squawk findings on shared rules luamig misses: %d" % len(missed))
        for m in missed[:20]:
            print("    " + m)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
