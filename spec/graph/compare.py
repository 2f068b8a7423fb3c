#!/usr/bin/env python3
"""Cross-check luamig's revision graph (src/graph*.c) against Alembic.

Generates random revision graphs (branches, merges, depends_on, branch
labels, several bases, file order independent of the graph), runs the same
queries through Alembic's RevisionMap / ScriptDirectory / HeadMaintainer
and through build/graph-driver, and reports every difference.

Alembic leaves some orders to Python sets (hash order, different in every
process).  To compare at all, this script pins those orders the way luamig
documents them: children (nextrev) in file order, normalized dependencies
in declared order, branch labels by name, merge/unmerge rows in down
revision order, label propagation in file order.  Nothing else in Alembic
is changed.

Where Alembic succeeds but luamig deliberately refuses (see
src/graph_plan.c), the refusal is checked against an independent
predicate and counted, not reported.

    python3 spec/graph/compare.py [--seed N] [--count N] [--verbose] [--no-timing]
Exit status: 0 when everything matched, 1 otherwise.
"""

import argparse
import os
import random
import re
import subprocess
import sys
import time
import types
import warnings

sys.path.insert(0, "/usr/lib/python3/dist-packages")
from alembic.script import revision as alrev  # noqa: E402
from alembic.script.base import Script, ScriptDirectory  # noqa: E402
from alembic.runtime.migration import HeadMaintainer, RevisionStep  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DRIVER = os.environ.get("LM_GRAPH_DRIVER") or os.path.join(
    ROOT, "build", "graph-driver-asan" if os.environ.get("LM_SANITIZE") else "graph-driver")

# ---------------------------------------------------------------- pinning


class OFS(frozenset):
    """A frozenset that iterates in insertion order."""

    def __new__(cls, items=()):
        items = list(dict.fromkeys(items))
        o = super().__new__(cls, items)
        o._order = items
        return o

    def __iter__(self):
        return iter(self._order)

    def union(self, other):
        return OFS(self._order + [x for x in other])


class SortedSet(set):
    def __iter__(self):
        return iter(sorted(set.__iter__(self)))


def _add_nextrev(self, revision):
    self._all_nextrev = OFS(list(self._all_nextrev) + [revision.revision])
    if self.revision in revision._versioned_down_revisions:
        self.nextrev = OFS(list(self.nextrev) + [revision.revision])


def _normalize_depends_on(self, revisions, map_):
    for revision in revisions:
        if revision._resolved_dependencies:
            drop = set()
            for rev in self._get_ancestor_nodes(
                [revision], include_dependencies=False, map_=map_
            ):
                if rev is revision:
                    continue
                elif rev._resolved_dependencies:
                    drop.update(rev._resolved_dependencies)
            revision._normalized_resolved_dependencies = tuple(
                d for d in dict.fromkeys(revision._resolved_dependencies) if d not in drop
            )
        else:
            revision._normalized_resolved_dependencies = ()


_orig_add_branches = alrev.RevisionMap._add_branches
FILE_ORDER = {}


def _add_branches(self, revisions, map_):
    revs = sorted(revisions, key=lambda r: FILE_ORDER.get(r.revision, 0))
    return _orig_add_branches(self, revs, map_)


def _merge_branch_idents(self, heads):
    other_heads = set(heads).difference(self.from_revisions)
    if other_heads:
        ancestors = set(
            r.revision
            for r in self.revision_map._get_ancestor_nodes(
                self.revision_map.get_revisions(other_heads), check=False
            )
        )
        from_revisions = [r for r in self.from_revisions if r not in ancestors]
    else:
        from_revisions = list(self.from_revisions)
    return (list(from_revisions[0:-1]), from_revisions[-1], self.to_revisions[0])


def _unmerge_to_revisions(self, heads):
    other_heads = set(heads).difference([self.revision.revision])
    if other_heads:
        ancestors = set(
            r.revision
            for r in self.revision_map._get_ancestor_nodes(
                self.revision_map.get_revisions(other_heads), check=False
            )
        )
        return tuple(r for r in self.to_revisions if r not in ancestors)
    else:
        return self.to_revisions


alrev.Revision.add_nextrev = _add_nextrev
alrev.RevisionMap._normalize_depends_on = _normalize_depends_on
alrev.RevisionMap._add_branches = _add_branches
RevisionStep.merge_branch_idents = _merge_branch_idents
RevisionStep._unmerge_to_revisions = _unmerge_to_revisions


class HM(HeadMaintainer):
    """HeadMaintainer with the SQL replaced by a log; same asserts."""

    def __init__(self, heads):
        self.heads = set(heads)
        self.log = []

    def _insert_version(self, version):
        assert version not in self.heads
        self.heads.add(version)
        self.log.append(" INSERT %s;" % version)

    def _delete_version(self, version):
        self.heads.remove(version)
        self.log.append(" DELETE %s;" % version)

    def _update_version(self, from_, to_):
        assert to_ not in self.heads
        self.heads.remove(from_)
        self.heads.add(to_)
        self.log.append(" UPDATE %s>%s;" % (from_, to_))


# ---------------------------------------------------------------- graphs


class G:
    """One random graph: revisions in file order."""

    def __init__(self, revs):
        self.revs = revs  # list of dicts: id, down, deps, labels, msg

    def lines(self):
        out = []
        for r in self.revs:
            out.append(
                "rev %s %s %s %s %s"
                % (
                    r["id"],
                    ",".join(r["down"]) or "-",
                    ",".join(r["deps"]) or "-",
                    ",".join(r["labels"]) or "-",
                    r["msg"],
                )
            )
        return out

    def alembic(self):
        FILE_ORDER.clear()
        scripts = []
        for i, r in enumerate(self.revs):
            FILE_ORDER[r["id"]] = i
            mod = types.SimpleNamespace(
                down_revision=None
                if not r["down"]
                else (r["down"][0] if len(r["down"]) == 1 else tuple(r["down"])),
                branch_labels=tuple(r["labels"]) or None,
                depends_on=tuple(r["deps"]) or None,
                __doc__=r["msg"],
                upgrade=lambda: None,
                downgrade=lambda: None,
            )
            scripts.append(Script(mod, r["id"], "versions/%s.py" % r["id"]))
        sd = object.__new__(ScriptDirectory)
        sd.revision_map = alrev.RevisionMap(lambda: scripts)
        rm = sd.revision_map
        rm._revision_map  # load now
        for s in scripts:
            s.branch_labels = SortedSet(s.branch_labels)
        return sd


ALPHA = "ab12"


def random_graph(rnd):
    n = rnd.randint(1, 14) if rnd.random() < 0.85 else rnd.randint(15, 60)
    ids = set()
    created = []
    labels_used = 0
    for i in range(n):
        while True:
            rid = "".join(rnd.choice(ALPHA) for _ in range(rnd.randint(4, 6)))
            if rid not in ids:
                break
        ids.add(rid)
        down = []
        if created and rnd.random() > 0.15:
            k = 1 if rnd.random() < 0.75 else rnd.randint(2, 3)
            down = rnd.sample([c["id"] for c in created], min(k, len(created)))
        labels = []
        if rnd.random() < 0.15:
            labels_used += 1
            labels.append("lb%d" % labels_used)
            if rnd.random() < 0.2:
                labels_used += 1
                labels.append("lb%d" % labels_used)
        created.append({"id": rid, "down": down, "deps": [], "labels": labels, "msg": "msg %s" % rid})
    # dependencies on earlier revisions (by id or label), never ancestors-only
    for i, r in enumerate(created):
        if i and rnd.random() < 0.2:
            for _ in range(rnd.randint(1, 2)):
                t = rnd.choice(created[:i])
                name = t["id"]
                if t["labels"] and rnd.random() < 0.4:
                    name = rnd.choice(t["labels"])
                if name not in r["deps"] and name not in r["down"]:
                    r["deps"].append(name)
    revs = list(created)
    if rnd.random() < 0.6:
        rnd.shuffle(revs)
    g = G(revs)
    if rnd.random() < 0.08:
        break_graph(rnd, g)
    return g


def break_graph(rnd, g):
    """Make the graph invalid in one of the ways lm_graph_new must catch."""
    revs = g.revs
    kind = rnd.choice(["dup-label", "missing-dep", "missing-down", "label-down", "cycle", "self", "dup-id",
                       "bad-char", "label-is-id"])
    g.broken = kind
    r = rnd.choice(revs)
    if kind == "dup-label":
        a, b = rnd.choice(revs), rnd.choice(revs)
        a["labels"].append("dupl")
        b["labels"].append("dupl")
    elif kind == "missing-dep":
        r["deps"].append("zzzz99")
    elif kind == "missing-down":
        r["down"].append("zzzz98")
    elif kind == "label-down":
        t = rnd.choice(revs)
        if t is not r:
            t["labels"].append("lbdown")
            r["down"].append("lbdown")
    elif kind == "cycle":
        # an ancestor takes one of its descendants as parent
        kids = [x for x in revs if x["down"]]
        if kids:
            k = rnd.choice(kids)
            byid = {x["id"]: x for x in revs}
            p = byid[k["down"][0]]
            if k["id"] not in p["down"]:
                p["down"].append(k["id"])
    elif kind == "self":
        r["down"].append(r["id"])
    elif kind == "dup-id":
        if len(revs) > 1:
            revs[-1]["id"] = revs[0]["id"]
    elif kind == "bad-char":
        r["msg"] = "bad"
        old = r["id"]
        r["id"] = old[:2] + "-" + old[2:]
        for x in revs:
            x["down"] = [r["id"] if d == old else d for d in x["down"]]
            x["deps"] = [r["id"] if d == old else d for d in x["deps"]]
    elif kind == "label-is-id":
        t = rnd.choice(revs)
        r["labels"].append(t["id"])


def has_cycle(g):
    """Cycle over down_revision + depends_on (labels resolved)."""
    key = {}
    for r in g.revs:
        key[r["id"]] = r["id"]
    for r in g.revs:
        for lb in r["labels"]:
            key.setdefault(lb, r["id"])
    edges = {r["id"]: [key[d] for d in r["down"] + r["deps"] if d in key] for r in g.revs}
    state = {}

    def visit(x):
        stack = [(x, iter(edges.get(x, ())))]
        state[x] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return True
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(edges.get(nxt, ()))))
        return False

    return any(visit(r["id"]) for r in g.revs if r["id"] not in state)


# ---------------------------------------------------------------- queries


def al_err(e):
    return ["error"]


def run_alembic(sd, g, q):
    """Ground truth for one driver command line; returns (lines, deliberate)."""
    parts = q.split(" ")
    cmd = parts[0]
    rm = sd.revision_map
    deliberate = None

    def cur_of(s):
        return tuple(x for x in s.split(",") if x) if s != "-" else ()

    def plan_lines(steps, cur):
        hm = HM(cur)
        out = []
        for st in steps:
            hm.log = []
            hm.update_to_step(st)
            if isinstance(st, RevisionStep):
                name = st.revision.revision
            else:
                name = "-"
            out.append("step %s %s:%s" % (name, "up" if st.is_upgrade else "down", "".join(hm.log)))
        out.append("end")
        return out

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        try:
            if cmd == "heads":
                res = ["ids: " + " ".join(rm.heads) if rm.heads else "ids:"]
            elif cmd == "realheads":
                res = ["ids:" + "".join(" " + x for x in rm._real_heads)]
            elif cmd == "bases":
                res = ["ids:" + "".join(" " + x for x in rm.bases)]
            elif cmd == "branchpoints":
                res = ["ids:" + "".join(" " + s.revision for s in sd.walk_revisions() if s.is_branch_point)]
            elif cmd == "current":
                cur = cur_of(parts[1])
                revs = [r for r in sd.get_all_current(cur) if r is not None]
                revs.sort(key=lambda r: FILE_ORDER[r.revision])
                res = ["ids:" + "".join(" " + r.revision for r in revs)]
            elif cmd == "history":
                rng = None if parts[1] == "-" else parts[1]
                cur = cur_of(parts[2])
                if rng is not None:
                    if ":" not in rng:
                        raise Exception("range")
                    base, head = rng.strip().split(":")
                else:
                    base = head = None
                if head == "current":
                    head = cur
                elif base == "current":
                    base = cur
                res = ["ids:" + "".join(" " + s.revision for s in sd.walk_revisions(base=base or "base", head=head or "heads"))]
            elif cmd == "upgrade":
                cur = cur_of(parts[2])
                steps = sd._upgrade_revs(parts[1], cur)
                res = plan_lines(steps, cur)
            elif cmd == "downgrade":
                cur = cur_of(parts[2])
                steps = sd._downgrade_revs(parts[1], cur)
                res = plan_lines(steps, cur)
            elif cmd == "stamp":
                targets = tuple(x for x in parts[1].split(",")) if parts[1] != "-" else ()
                cur = cur_of(parts[2])
                if parts[3] == "1":
                    cur = ()
                steps = sd._stamp_revs(targets, cur)
                res = plan_lines(steps, cur)
            elif cmd == "resolve":
                cur = cur_of(parts[2])
                t = parts[1]
                m = alrev._relative_destination.match(t)
                if m and int(m.group(3)) > 0:
                    revs = rm._parse_upgrade_target(cur, t, True)
                elif m:
                    revs = (rm._parse_downgrade_target(cur, t, True)[1],)
                else:
                    revs = rm.get_revisions(t)
                if any(r is None for r in revs):
                    raise Exception("walked off")
                res = ["ids:" + "".join(" " + r.revision for r in revs if r != "base")]
            elif cmd == "format":
                s = rm.get_revision(parts[1])
                fl = int(parts[2])
                if fl == 30:
                    t = s.cmd_format(False, include_branches=True, include_doc=True, include_parents=True)
                elif fl == 34:
                    t = s.cmd_format(False, include_branches=True, tree_indicators=False)
                elif fl == 4:
                    t = s.cmd_format(False)
                elif fl == 1:
                    t = s.cmd_format(True)
                else:
                    raise Exception("flags")
                res = ["text: " + t.replace("\\", "\\\\").replace("\n", "\\n")]
            elif cmd == "fmtbranch":
                sc = rm.get_revision(parts[1])
                verbose = parts[2] == "1"
                t = "%s\n%s\n" % (
                    sc.cmd_format(verbose, include_branches=True),
                    "\n".join(
                        "%s -> %s"
                        % (" " * len(str(sc.revision)), rm.get_revision(r).cmd_format(False, include_branches=True, include_doc=verbose))
                        for r in sc.nextrev
                    ),
                )
                res = ["text: " + t.replace("\\", "\\\\").replace("\n", "\\n")]
            else:
                raise Exception("unknown " + cmd)
        except Exception:  # noqa: BLE001 - any failure of Alembic is an error outcome
            res = ["error"]
        for x in w:
            if "downgrade -1 from multiple heads is ambiguous" in str(x.message):
                deliberate = "downgrade -N with several current heads"
    return res, deliberate


def make_queries(g, sd, rnd):
    rm = sd.revision_map
    ids = [r["id"] for r in g.revs]
    labels = [lb for r in g.revs for lb in r["labels"]]
    qs = ["heads", "realheads", "bases", "branchpoints", "history - -"]
    for rid in ids:
        for fl in (30, 34, 4, 1):
            qs.append("format %s %d" % (rid, fl))
        s = rm.get_revision(rid)
        if s.is_branch_point:
            qs.append("fmtbranch %s 0" % rid)
            qs.append("fmtbranch %s 1" % rid)

    def some_id():
        return rnd.choice(ids)

    def prefix():
        i = some_id()
        return i[: rnd.randint(1, len(i))]

    def label():
        return rnd.choice(labels) if labels else some_id()

    def target_pool(kind):
        pool = ["heads", "head", some_id(), some_id(), prefix(), "+1", "+2", "-1", "-2", "%s+1" % some_id(),
                "%s-1" % some_id(), "%s@head" % some_id(), "base"]
        if rnd.random() < 0.3:
            odd = ["@", "@head", "%s@" % some_id(), "+", "-", "1", "-0", "+0", "%s@-1x" % some_id(), "%s-1x" % some_id(),
                   "head@head", "heads@-1", "heads@head", "base+1", "base-1", "head-1", "heads+1", "@@",
                   "%s@%s@head" % (some_id(), some_id()), "%s@+1" % some_id(), "%s@-1" % some_id(), "-1_0",
                   "%s+99" % some_id(), "-99", "+99", "%s@base" % some_id(), "a", "ab", "current"]
            pool += rnd.sample(odd, 4)
        if labels:
            pool += [label(), "%s@head" % label(), "%s@heads" % label(), "%s@+1" % label(), "%s@-1" % label(),
                     "%s@base" % label(), "%s@%s" % (label(), some_id())]
        return pool

    # current states: walk from empty through random successful upgrades
    states = [()]
    cur = ()
    for _ in range(4):
        t = rnd.choice(target_pool("up"))
        try:
            steps = sd._upgrade_revs(t, cur)
            hm = HM(cur)
            for st in steps:
                hm.update_to_step(st)
            cur = tuple(sorted(hm.heads, key=lambda x: FILE_ORDER[x]))
            if rnd.random() < 0.3:
                cur = tuple(reversed(cur))
            if cur not in states:
                states.append(cur)
        except Exception:  # noqa: BLE001
            pass
    if rnd.random() < 0.3:
        states.append(tuple(rnd.sample(ids, min(len(ids), rnd.randint(1, 2)))))
    for st in states:
        c = ",".join(st) or "-"
        qs.append("current %s" % c)
        for t in rnd.sample(target_pool("up"), 8):
            qs.append("upgrade %s %s" % (t, c))
        for t in rnd.sample(target_pool("down"), 8):
            qs.append("downgrade %s %s" % (t, c))
        for _ in range(3):
            ts = [rnd.choice(target_pool("stamp")) for _ in range(rnd.choice((1, 1, 2)))]
            qs.append("stamp %s %s %d" % (",".join(ts), c, rnd.random() < 0.2))
        rngs = [":", "%s:" % some_id(), ":%s" % some_id(), "%s:%s" % (some_id(), some_id()), "-2:", "current:",
                ":current", "base:heads", "%s:heads" % prefix()]
        if labels:
            rngs += ["%s@base:%s@head" % (label(), label()), "%s@base:" % label()]
        for r in rnd.sample(rngs, 4):
            qs.append("history %s %s" % (r, c))
        for t in rnd.sample(target_pool("resolve"), 5):
            qs.append("resolve %s %s" % (t, c))
    return list(dict.fromkeys(qs))


def run_driver(lines, timing=False, literal=False):
    env = dict(os.environ)
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    if literal:
        env["LM_GRAPH_TOPO_LITERAL"] = "1"
    keep = os.path.join(ROOT, "build", "graph-driver-failure.txt")
    try:
        p = subprocess.run([DRIVER] + (["-t"] if timing else []), input="\n".join(lines) + "\n",
                           capture_output=True, text=True, timeout=120, env=env)
    except subprocess.TimeoutExpired:
        with open(keep, "w") as f:
            f.write("\n".join(lines) + "\n")
        raise RuntimeError("driver timed out, input kept in %s" % keep)
    if p.returncode != 0:
        with open(keep, "w") as f:
            f.write("\n".join(lines) + "\n")
        raise RuntimeError("driver failed (%d), input kept in %s: %s" % (p.returncode, keep, p.stderr[-3000:]))
    return p.stdout, p.stderr


def parse_driver(out):
    res = {}
    order = []
    cur = None
    for line in out.split("\n"):
        if line.startswith("== "):
            cur = line[3:]
            order.append(cur)
            res.setdefault(cur, [])
        elif cur is not None and line:
            res[cur].append(line)
    return order, res


def build():
    os.makedirs(os.path.join(ROOT, "build"), exist_ok=True)
    src = [os.path.join(ROOT, "src", f) for f in sorted(os.listdir(os.path.join(ROOT, "src")))
           if f.startswith("graph") and f.endswith(".c")]
    cmd = ["gcc", "-std=c11", "-O2", "-g", "-Wall", "-Wextra", "-Werror", "-Wshadow", "-Wundef", "-Wwrite-strings",
           "-Wmissing-prototypes", "-Wstrict-prototypes", "-I", os.path.join(ROOT, "src"), "-o", DRIVER,
           os.path.join(ROOT, "spec", "graph", "driver.c")] + src + [os.path.join(ROOT, "src", "util.c"),
                                                                     os.path.join(ROOT, "src", "sha256.c")]
    if os.environ.get("LM_SANITIZE"):
        # util.c's vsnprintf(NULL, 0, ...) trips -Wformat-truncation at -O1
        cmd[2:3] = ["-O1", "-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer",
                    "-Wno-error=format-truncation"]
    subprocess.run(cmd, check=True)


def big_check(rnd, count):
    """Larger graphs (100-400 revisions): the near-linear topological sort
    against the literal port of Alembic's, on upgrade/downgrade/history."""
    bad = 0
    for gi in range(count):
        n = rnd.randint(100, 400)
        revs = []
        for i in range(n):
            rid = "g%04dx" % i
            down = []
            if i and rnd.random() > 0.03:
                k = 1 if rnd.random() < 0.85 else 2
                lo = max(0, i - 30)
                down = rnd.sample(["g%04dx" % j for j in range(lo, i)], min(k, i - lo))
            deps = []
            if i > 5 and rnd.random() < 0.05:
                deps = ["g%04dx" % rnd.randrange(0, i)]
                deps = [d for d in deps if d not in down]
            revs.append({"id": rid, "down": down, "deps": deps, "labels": [], "msg": "m"})
        if rnd.random() < 0.5:
            rnd.shuffle(revs)
        g = G(revs)
        ids = [r["id"] for r in revs]
        lines = g.lines() + ["load", "history - -", "upgrade heads -"]
        for _ in range(5):
            lines.append("upgrade %s -" % rnd.choice(ids))
            lines.append("history %s: -" % rnd.choice(ids))
            lines.append("history :%s -" % rnd.choice(ids))
        out, _ = run_driver(lines)
        order, res = parse_driver(out)
        # downgrades from the state where every real head is applied
        lines2 = g.lines() + ["load", "realheads"]
        o2, _ = run_driver(lines2)
        rh = parse_driver(o2)[1].get("realheads", ["ids:"])[0].split(" ")[1:]
        cur = ",".join(rh) or "-"
        for _ in range(5):
            lines.append("downgrade %s %s" % (rnd.choice(ids), cur))
        lines.append("downgrade base %s" % cur)
        out, _ = run_driver(lines)
        out_lit, _ = run_driver(lines, literal=True)
        if out != out_lit:
            bad += 1
            a, b = out.split("\n"), out_lit.split("\n")
            diff = [(x, y) for x, y in zip(a, b) if x != y][:3]
            print("MISMATCH big graph %d: fast and literal topological sort differ: %s" % (gi, diff))
    print("big graphs: %d compared fast vs literal sort, %d mismatches" % (count, bad))
    return bad == 0


def timing_check():
    """10,000-revision chain and a wide branchy graph: milliseconds each."""
    ok = True
    for name, revs in (("chain", chain(10000)), ("branchy", branchy(10000))):
        lines = revs + ["load", "heads", "history - -", "upgrade heads -"]
        top = revs[-1].split(" ")[1]
        lines += ["downgrade base %s" % top if name == "chain" else "downgrade base " + ",".join(heads_of(revs))]
        t0 = time.time()
        out, err = run_driver(lines, timing=True)
        wall = time.time() - t0
        worst = 0.0
        for line in err.splitlines():
            ms = float(line.split(" ")[0])
            worst = max(worst, ms)
        print("timing %-8s 10000 revisions: slowest command %.1f ms, whole run %.0f ms" % (name, worst, wall * 1000))
        if "error" in out.split("\n"):
            print("timing run failed:\n" + out[-2000:])
            ok = False
        if worst > 200:
            print("  too slow:\n" + err)
            ok = False
    return ok


def chain(n):
    return ["rev r%05dab - - - m" % 0] + ["rev r%05dab r%05dab - - m" % (i, i - 1) for i in range(1, n)]


def branchy(n):
    # 50 branches of 200, merged pairwise near the top, with some depends_on
    out = ["rev base0000 - - - m"]
    tips = []
    for b in range(50):
        prev = "base0000"
        for i in range(n // 50 - 1):
            rid = "b%02dx%04d" % (b, i)
            dep = "-"
            if i == 10 and b > 0:
                dep = "b%02dx%04d" % (b - 1, 5)
            out.append("rev %s %s %s - m" % (rid, prev, dep))
            prev = rid
        tips.append(prev)
    while len(tips) > 1:
        a, b2 = tips.pop(0), tips.pop(0)
        rid = "m%s%s" % (a[:3], b2[:3])
        k = 0
        while any(line.split(" ")[1] == rid + str(k) for line in out[-3:]):
            k += 1
        rid = rid + "q%d" % len(out)
        out.append("rev %s %s,%s - - merge" % (rid, a, b2))
        tips.append(rid)
    return out


def heads_of(revs):
    ids = [r.split(" ")[1] for r in revs]
    down = set()
    for r in revs:
        d = r.split(" ")[2]
        if d != "-":
            down.update(d.split(","))
    return [i for i in ids if i not in down]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    if not args.no_build:
        build()
    rnd = random.Random(args.seed)
    mismatches = 0
    total = 0
    deliberate = {}
    counts = {}
    both_err = 0
    graphs_refused = 0
    for gi in range(args.count):
        g = random_graph(rnd)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                sd = g.alembic()
            al_ok = True
        except Exception:  # noqa: BLE001
            al_ok = False
        lines = g.lines() + ["load"]
        if al_ok and has_cycle(g):
            # Alembic's check misses some cycles and then loops forever in
            # _topological_sort; luamig must refuse the graph.
            out, _ = run_driver(lines)
            res = parse_driver(out)[1]
            total += 1
            msg = " ".join(res.get("load", []))
            dup = len(set(r["id"] for r in g.revs)) < len(g.revs)
            if res.get("load", [""])[0] == "graph-error" and ("cycle" in msg or (dup and "defined twice" in msg)):
                why = "cycle Alembic's check misses (it then loops forever)"
                deliberate[why] = deliberate.get(why, 0) + 1
            else:
                mismatches += 1
                print("MISMATCH graph %d: a cyclic graph was not refused: %s" % (gi, res.get("load")))
            continue
        if al_ok:
            qs = make_queries(g, sd, rnd)
            lines += qs
        out, _ = run_driver(lines)
        out_lit, _ = run_driver(lines, literal=True)
        if out != out_lit:
            mismatches += 1
            a, b = out.split("\n"), out_lit.split("\n")
            diff = [(x, y) for x, y in zip(a, b) if x != y][:3]
            print("MISMATCH graph %d: fast and literal topological sort differ: %s" % (gi, diff))
        order, res = parse_driver(out)
        load = res.get("load", [])
        if not al_ok:
            total += 1
            graphs_refused += 1
            if not load or load[0] != "graph-error":
                mismatches += 1
                print("MISMATCH graph %d: Alembic refuses the graph, luamig loads it\n  %s" % (gi, "\n  ".join(g.lines())))
            continue
        if not load or load[0] != "loaded":
            msg = " ".join(res.get("load", []))
            why = None
            if "defined twice" in msg and len(set(r["id"] for r in g.revs)) < len(g.revs):
                why = "duplicate revision id (Alembic warns, the later file wins)"
            elif "is a branch label; down_revision must name a revision id" in msg:
                why = "down_revision naming a branch label (Alembic loads, then fails walking)"
            if why:
                deliberate[why] = deliberate.get(why, 0) + 1
                total += 1
                continue
            mismatches += 1
            print("MISMATCH graph %d: luamig refuses a graph Alembic loads: %s\n  %s" % (gi, load, "\n  ".join(g.lines())))
            continue
        for q in qs:
            total += 1
            counts[q.split(" ")[0]] = counts.get(q.split(" ")[0], 0) + 1
            want, why = run_alembic(sd, g, q)
            got = [x for x in res.get(q, []) if not x.startswith("message: ")]
            if want == got:
                if want == ["error"]:
                    both_err += 1
                continue
            if got == ["error"] and why:
                deliberate[why] = deliberate.get(why, 0) + 1
                continue
            mismatches += 1
            msg = [x for x in res.get(q, []) if x.startswith("message: ")]
            print("MISMATCH graph %d (seed %d): %s\n  alembic: %s\n  luamig:  %s %s" % (
                gi, args.seed, q, want, got, msg))
            if args.verbose or mismatches <= 3:
                print("  graph:\n    " + "\n    ".join(g.lines()))
    print("compared %d queries over %d graphs (seed %d): %d mismatches" % (total, args.count, args.seed, mismatches))
    print("of which both refused: %d (graphs both refused to load: %d)" % (both_err, graphs_refused))
    print("queries: " + ", ".join("%s %d" % kv for kv in sorted(counts.items())))
    for k, v in sorted(deliberate.items()):
        print("deliberate refusals (Alembic proceeds): %s: %d" % (k, v))
    ok = mismatches == 0
    ok = big_check(rnd, max(3, args.count // 20)) and ok
    if not args.no_timing:
        ok = timing_check() and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
