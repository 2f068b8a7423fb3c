-- graph_cli_spec.lua - luamig's graph commands against real Alembic on the
-- same graphs: heads, branches, history, show, current; upgrade, downgrade
-- and stamp walks (the order migrations ran in and the version table);
-- errors; revision and merge; --sql; --json.  Each graph is built twice,
-- as a luamig project and as an Alembic project (spec/alembic_peer.lua),
-- both on SQLite files, and each command runs through the built binary
-- and through Alembic's command line.
local H = require "helpers"
local P = require "alembic_peer"
local json = require "dkjson"

-- ---- graphs -------------------------------------------------------------

local function R(rev, down, extra)
  local r = {rev = rev, down = down, message = "rev " .. rev:sub(1, 4)}
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end

local graphs = {
  {name = "a linear chain", revs = {
    R("1a2b3c4d5e01"), R("2b3c4d5e6f02", "1a2b3c4d5e01"), R("3c4d5e6f7a03", "2b3c4d5e6f02"),
    R("4d5e6f7a8b04", "3c4d5e6f7a03"), R("5e6f7a8b9c05", "4d5e6f7a8b04")}},
  {name = "two bases", revs = {
    R("aa0000000001"), R("aa0000000002", "aa0000000001"),
    R("bb0000000001"), R("bb0000000002", "bb0000000001"), R("bb0000000003", "bb0000000002")}},
  {name = "a branch point with two heads", revs = {
    R("c10000000000"), R("c20000000000", "c10000000000"),
    R("d10000000000", "c20000000000"), R("d20000000000", "d10000000000"),
    R("e10000000000", "c20000000000")}},
  {name = "a merge point", revs = {
    R("f10000000000"), R("f20000000000", "f10000000000"),
    R("f3a000000000", "f20000000000"), R("f3b000000000", "f20000000000"),
    R("f40000000000", {"f3a000000000", "f3b000000000"}), R("f50000000000", "f40000000000")}},
  {name = "labelled branches", revs = {
    R("0a0000000001"), R("0a0000000002", "0a0000000001"),
    R("0b0000000001", "0a0000000002", {labels = {"billing"}}),
    R("0b0000000002", "0b0000000001"), R("0b0000000003", "0b0000000002"),
    R("0c0000000001", "0a0000000002", {labels = {"search"}}),
    R("0c0000000002", "0c0000000001")}},
  {name = "depends_on across branches", revs = {
    R("1100000000a1", nil, {labels = {"core"}}), R("1100000000a2", "1100000000a1"),
    R("1100000000a3", "1100000000a2"),
    R("2200000000b1", nil, {labels = {"addon"}}),
    R("2200000000b2", "2200000000b1", {depends = {"1100000000a2"}}),
    R("2200000000b3", "2200000000b2", {depends = {"core"}}),
    R("3300000000c1", "1100000000a1", {depends = {"2200000000b1"}})}},
  {name = "a diamond", revs = {
    R("d00000000001"), R("d00000000002", "d00000000001"), R("d00000000003", "d00000000001"),
    R("d00000000004", {"d00000000002", "d00000000003"})}},
  {name = "a merge of three", revs = {
    R("e00000000001"), R("e00000000002", "e00000000001"), R("e00000000003", "e00000000001"),
    R("e00000000004", "e00000000001"), R("e00000000005", "e00000000004"),
    R("e00000000006", {"e00000000002", "e00000000003", "e00000000005"}),
    R("e00000000007", "e00000000006")}},
}

-- A deterministic generator (a 32-bit LCG), independent of math.random.
local function lcg(seed)
  local s = seed
  return function(n)
    s = (s * 1103515245 + 12345) % 2147483648
    return (s // 65536) % n + 1
  end
end

-- A random graph of n revisions: new bases, branches off any revision,
-- merges of two or three heads, labels on the first revision of a
-- branch, dependencies on earlier non-ancestors (by id or by label).
local function random_graph(seed, n)
  local rnd = lcg(seed)
  local revs, byid, children, ids = {}, {}, {}, {}
  local function newid()
    while true do
      local t = {}
      for i = 1, 12 do t[i] = string.format("%x", rnd(16) - 1) end
      local id = table.concat(t)
      if not ids[id:sub(1, 6)] then ids[id:sub(1, 6)] = true; return id end
    end
  end
  local function heads()
    local h = {}
    for _, r in ipairs(revs) do if not children[r.rev] then h[#h + 1] = r.rev end end
    return h
  end
  local function ancestors(rev, acc)
    acc = acc or {}
    local r = byid[rev]
    local downs = type(r.down) == "table" and r.down or {r.down}
    for _, d in ipairs(downs) do
      if not acc[d] then acc[d] = true; ancestors(d, acc) end
    end
    return acc
  end
  local nbases, nlabels = 0, 0
  for i = 1, n do
    local r = {rev = newid(), message = "random " .. i}
    local h = heads()
    local roll = rnd(100)
    if i == 1 or (roll <= 7 and nbases < 3) then
      nbases = nbases + 1
    elseif roll <= 22 and #h >= 2 then
      local k = (#h >= 3 and rnd(3) == 1) and 3 or 2
      local pick, used = {}, {}
      while #pick < k do
        local c = h[rnd(#h)]
        if not used[c] then used[c] = true; pick[#pick + 1] = c end
      end
      -- no merge of a revision with its own ancestor
      local ok = true
      for _, a in ipairs(pick) do
        local anc = ancestors(a)
        for _, b in ipairs(pick) do if anc[b] then ok = false end end
      end
      if ok then r.down = pick else r.down = h[rnd(#h)] end
    elseif roll <= 70 then
      r.down = h[rnd(#h)]
    else
      r.down = revs[rnd(#revs)].rev
      if children[r.down] and nlabels < 5 and rnd(2) == 1 then
        nlabels = nlabels + 1
        r.labels = {"lab" .. nlabels}
      end
    end
    if r.down and rnd(100) <= 12 then
      local anc = {}
      for _, d in ipairs(type(r.down) == "table" and r.down or {r.down}) do
        anc[d] = true
        ancestors(d, anc)
      end
      local cand = {}
      for _, o in ipairs(revs) do
        if not anc[o.rev] then cand[#cand + 1] = o end
      end
      if #cand > 0 then
        local o = cand[rnd(#cand)]
        if o.labels and rnd(2) == 1 then r.depends = {o.labels[1]} else r.depends = {o.rev} end
      end
    end
    revs[#revs + 1] = r
    byid[r.rev] = r
    local downs = type(r.down) == "table" and r.down or {r.down}
    for _, d in ipairs(downs) do children[d] = true end
  end
  return revs
end

for _, seed in ipairs({11, 2024, 31337}) do
  graphs[#graphs + 1] = {name = "random graph (seed " .. seed .. ")",
                         revs = random_graph(seed, 30 + seed % 3), random = true}
end

-- ---- graph facts the spec needs ------------------------------------------

local function downs_of(r)
  if r.down == nil then return {} end
  return type(r.down) == "table" and r.down or {r.down}
end

local function facts(revs)
  local f = {byid = {}, children = {}, labels = {}, label_of = {}}
  for _, r in ipairs(revs) do f.byid[r.rev] = r; f.children[r.rev] = {} end
  for _, r in ipairs(revs) do
    for _, d in ipairs(downs_of(r)) do
      if f.children[d] then table.insert(f.children[d], r.rev) end
    end
    for _, l in ipairs(r.labels or {}) do f.labels[#f.labels + 1] = l; f.label_of[l] = r.rev end
  end
  return f
end

-- Ancestors of a revision, itself included (down_revision only).
local function lineage(f, rev, acc)
  acc = acc or {}
  if acc[rev] or not f.byid[rev] then return acc end
  acc[rev] = true
  for _, d in ipairs(downs_of(f.byid[rev])) do lineage(f, d, acc) end
  return acc
end

-- Descendants of a revision, itself included.
local function descendants(f, rev, acc)
  acc = acc or {}
  if acc[rev] then return acc end
  acc[rev] = true
  for _, c in ipairs(f.children[rev] or {}) do descendants(f, c, acc) end
  return acc
end

-- A prefix that names one revision only (at least 4 characters, as
-- Alembic wants).
local function prefix(revs, rev)
  for n = 4, #rev do
    local p, hits = rev:sub(1, n), 0
    for _, r in ipairs(revs) do if r.rev:sub(1, n) == p then hits = hits + 1 end end
    if hits == 1 and n < #rev then return p end
  end
  return rev
end

-- ---- comparing output ----------------------------------------------------

-- Path: lines name the script file: keep the file name without folder and
-- extension (luamig's is .lua, Alembic's .py, the stem is the same).
local function normalize(text)
  text = (text or ""):gsub("Path: [^\n]*/([^/\n]-)%.%a+\n", "Path: %1\n")
  return text
end

-- Orders Alembic takes from Python sets, which change from one process to
-- the next (hash order): branch labels (a set), a branch point's children
-- (frozenset nextrev: "Branches into:" and the "->" lines of `branches`),
-- and the revisions `current` prints (a set of Revision objects).  luamig
-- fixes an order (README); these compare as sets.
local function sort_items(list)
  local t = {}
  for item in list:gmatch("[^,]+") do t[#t + 1] = item:match("^%s*(.-)%s*$") end
  table.sort(t)
  return table.concat(t, ", ")
end

local function unordered(text, whole)
  local lines = {}
  for line in (text or ""):gmatch("([^\n]*)\n") do
    line = line:gsub("%(([^()]*,[^()]*)%)", function(l) return "(" .. sort_items(l) .. ")" end)
    line = line:gsub("^(Branch names: )(.*)$", function(a, b) return a .. sort_items(b) end)
    line = line:gsub("^(Branches into: )(.*)$", function(a, b) return a .. sort_items(b) end)
    lines[#lines + 1] = line
  end
  if whole then table.sort(lines) return table.concat(lines, "\n") end
  -- runs of "   -> child" lines
  local out, run = {}, {}
  local function flush()
    table.sort(run)
    for _, l in ipairs(run) do out[#out + 1] = l end
    run = {}
  end
  for _, l in ipairs(lines) do
    if l:match("^%s+%->") then run[#run + 1] = l else flush(); out[#out + 1] = l end
  end
  flush()
  return table.concat(out, "\n")
end

local function sorted_lines(text)
  local t = H.lines(text)
  table.sort(t)
  return table.concat(t, "\n")
end

local function rows_set(text)
  return sorted_lines(text or "")
end

local function strip_timing(lines)
  local t = {}
  for i, s in ipairs(lines) do t[i] = (s:gsub(" %(%d+%.%d+ s%)$", "")) end
  return t
end

-- A mismatch collector: a spec checks every case and fails once with all
-- the differences listed.
local function collector()
  local c = {list = {}, cases = 0}
  function c:case() self.cases = self.cases + 1 end
  function c:add(fmt, ...)
    self.list[#self.list + 1] = string.format(fmt, ...)
  end
  function c:check()
    assert(#self.list == 0, #self.list .. " of " .. self.cases .. " cases differ from Alembic:\n\n" ..
           table.concat(self.list, "\n\n"))
  end
  return c
end

local function argv_text(a) return table.concat(a, " ") end

local function lm_rows(p, tbl)
  return H.sqlite_query(p.lm_db, "SELECT version_num FROM " .. (tbl or "luamig_version") ..
                                 " ORDER BY version_num") or ""
end

local function lm_trace(p)
  return H.lines(H.sqlite_query(p.lm_db, "SELECT rev || ' ' || direction FROM trace ORDER BY id") or "")
end

-- ---- read-only commands --------------------------------------------------

-- The read commands for a graph: {lm = argv, al = argv}.
local function read_commands(g)
  local revs, f = g.revs, facts(g.revs)
  local cmds = {}
  local function add(lm, al) cmds[#cmds + 1] = {lm = lm, al = al or lm} end
  add({"heads"}); add({"heads", "-v"}); add({"heads", "--resolve-dependencies"})
  add({"branches"}); add({"branches", "-v"})
  add({"history"}); add({"history", "-v"})
  add({"history", "-r", "base:heads"}, {"history", "--rev-range=base:heads"})
  add({"history", "-r", "-3:"}, {"history", "--rev-range=-3:"})
  add({"current"})
  local step = g.random and math.max(1, #revs // 6) or 2
  for i = 1, #revs, step do
    local r = revs[i].rev
    add({"show", r})
    add({"history", "-r", r .. ":"}, {"history", "--rev-range=" .. r .. ":"})
    add({"history", "-r", ":" .. r}, {"history", "--rev-range=:" .. r})
  end
  local mid = revs[(#revs + 1) // 2].rev
  add({"history", "-r", revs[1].rev .. ":" .. mid}, {"history", "--rev-range=" .. revs[1].rev .. ":" .. mid})
  add({"show", "head"}); add({"show", "heads"}); add({"show", "base"})
  add({"show", prefix(revs, revs[#revs].rev)})
  for _, l in ipairs(f.labels) do
    add({"show", l}); add({"show", l .. "@head"})
    add({"history", "-r", l .. "@base:" .. l .. "@head"},
        {"history", "--rev-range=" .. l .. "@base:" .. l .. "@head"})
  end
  return cmds
end

-- Every read command on both sides; orders Alembic leaves to Python sets
-- compare as sets (see unordered).
local function compare_reads(g, p, c)
  local cmds = read_commands(g)
  local jobs = {}
  for i, cmd in ipairs(cmds) do jobs[i] = cmd.al end
  local al0 = P.batch(p, jobs, 0)
  for i, cmd in ipairs(cmds) do
    c:case()
    local code, out, err = P.luamig(p, cmd.lm)
    local a0 = al0[i]
    if a0.code ~= 0 then
      if code ~= 1 then
        c:add("[%s] luamig %s: Alembic fails (%s), luamig exits %d:\n%s%s", g.name, argv_text(cmd.lm),
              (a0.out .. a0.err):match("[^\n]*$") or "", code, out, err)
      end
    elseif code ~= 0 then
      c:add("[%s] luamig %s fails (exit %d): %s\nAlembic prints:\n%s", g.name, argv_text(cmd.lm), code,
            err, a0.out)
    else
      local whole = cmd.lm[1] == "current"
      local mine = normalize(out)
      if unordered(mine, whole) ~= unordered(normalize(a0.out), whole) then
        c:add("[%s] luamig %s prints:\n%s\nAlembic prints:\n%s", g.name, argv_text(cmd.lm), mine,
              normalize(a0.out))
      end
    end
  end
end

-- ---- migration walks ------------------------------------------------------

-- Whether luamig may refuse a command Alembic carries out (DESIGN section
-- 6): `downgrade -N` with several current heads or below a merge point,
-- `+N`/`REV+N`/`LABEL@+N` past a branch point or a head (or from several
-- heads), a label whose branch has two current heads.
local function refusal_allowed(f, cmd, current)
  local target = cmd[2]
  local label = target:match("^([%a_][%w_]*)@") or (f.label_of[target] and target)
  if label and f.label_of[label] then
    local branch = descendants(f, f.label_of[label])
    for k in pairs(lineage(f, f.label_of[label])) do branch[k] = true end
    local n = 0
    for _, cur in ipairs(current) do if branch[cur] then n = n + 1 end end
    if n >= 2 then return true end
  end
  local relative = target:match("[%+%-](%d+)$")
  if not relative then return false end
  if #current > 1 then return true end
  if cmd[1] == "downgrade" and target:match("%-%d+$") then
    for anc in pairs(lineage(f, current[1] or "")) do
      if #downs_of(f.byid[anc]) > 1 then return true end
    end
    return false
  end
  if target:match("%+%d+$") then
    local start = target:match("^(%x+)%+") or current[1]
    if label then start = nil end
    local n = tonumber(relative)
    if not start then return true end
    for full in pairs(f.byid) do
      if full:sub(1, #start) == start then start = full end
    end
    for _ = 1, n do
      local ch = f.children[start] or {}
      if #ch ~= 1 then return true end
      start = ch[1]
    end
  end
  return false
end

-- Run scenarios (lists of {"upgrade"|"downgrade"|"stamp", args...}; a
-- scenario starts from empty databases) on both sides, comparing after
-- each step: success or failure, the "Running ..." lines, the migrations
-- run (trace table), the version table, and `current`.
local function compare_walks(g, p, scenarios, c)
  local f = facts(g.revs)
  local jobs, index = {}, {}
  for s, steps in ipairs(scenarios) do
    jobs[#jobs + 1] = {reset = true}
    index[s] = {}
    for k, step in ipairs(steps) do
      local base = #jobs
      jobs[#jobs + 1] = step
      jobs[#jobs + 1] = {query = "SELECT rev || ' ' || direction FROM trace ORDER BY id"}
      jobs[#jobs + 1] = {query = "SELECT version_num FROM alembic_version ORDER BY version_num"}
      if k == #steps then jobs[#jobs + 1] = {"current"} end
      index[s][k] = base + 1
    end
  end
  local al = P.batch(p, jobs)
  local refused = 0
  for s, steps in ipairs(scenarios) do
    P.fresh_db(p.lm_db)
    local al_seen, lm_seen = 0, 0
    local history = {}
    for k, step in ipairs(steps) do
      c:case()
      local i = index[s][k]
      local a, a_trace, a_rows, a_cur = al[i], H.lines(al[i + 1].out), rows_set(al[i + 2].out), al[i + 3]
      local before = rows_set(lm_rows(p))
      local code, out, err = P.luamig(p, step)
      local trace = lm_trace(p)
      local rows = rows_set(lm_rows(p))
      local lm_ran = {table.unpack(trace, lm_seen + 1)}
      local al_ran = {table.unpack(a_trace, al_seen + 1)}
      history[#history + 1] = argv_text(step)
      local where = string.format("[%s] after %s:\n  luamig %s", g.name,
                                  table.concat(history, "; ", 1, #history - 1), argv_text(step))
      local crashed = a.code ~= 0 and a.err:match("Traceback")
      if a.code ~= 0 then
        if code ~= 1 then
          c:add("%s\nAlembic fails (%s), luamig exits %d:\n%s%s", where,
                (a.out .. a.err):match("([^\n]*)\n?$"), code, out, err)
        elseif rows ~= before or #lm_ran > 0 then
          c:add("%s\nfails but changed the database: %s -> %s", where, before, rows)
        end
        if crashed then refused = refused + 1 end
      elseif code ~= 0 then
        local current = H.lines(before)
        if code == 1 and refusal_allowed(f, step, current) then
          refused = refused + 1
          if rows ~= before or #lm_ran > 0 then
            c:add("%s\nrefuses but changed the database: %s -> %s", where, before, rows)
          elseif not err:match("%x%x%x%x") then
            c:add("%s\nrefuses without naming the revisions: %s", where, err)
          end
        else
          c:add("%s\nfails (exit %d): %s\nAlembic runs:\n%s\nAlembic's version table: %s", where, code,
                err, table.concat(P.running(a.err), "\n"), a_rows)
        end
      else
        local lr, ar = strip_timing(P.running(err)), P.running(a.err)
        if table.concat(lm_ran, ",") ~= table.concat(al_ran, ",") then
          c:add("%s\nruns: %s\nAlembic runs: %s", where, table.concat(lm_ran, ", "),
                table.concat(al_ran, ", "))
        elseif step[1] ~= "stamp" and table.concat(lr, "\n") ~= table.concat(ar, "\n") then
          c:add("%s\nlogs:\n%s\nAlembic logs:\n%s", where, table.concat(lr, "\n"), table.concat(ar, "\n"))
        end
        if rows ~= a_rows then
          c:add("%s\nleaves the version table at {%s}, Alembic at {%s}", where,
                rows:gsub("\n", ", "), a_rows:gsub("\n", ", "))
        elseif k == #steps then
          local cc, cout = P.luamig(p, {"current"})
          if cc ~= 0 or unordered(cout, true) ~= unordered(a_cur.out, true) then
            c:add("%s\nthen current (exit %d) prints:\n%s\nAlembic prints:\n%s", where, cc, cout, a_cur.out)
          end
        end
      end
      -- keep both sides at Alembic's state for the next step
      if rows ~= a_rows then
        local args = {"stamp", "--purge"}
        local t = H.lines(a_rows)
        if #t == 0 then t = {"base"} end
        for _, v in ipairs(t) do args[#args + 1] = v end
        P.luamig(p, args)
      end
      lm_seen, al_seen = #lm_trace(p), #a_trace
    end
  end
  return refused
end

-- Targets for a graph.
local function target_pool(g)
  local revs, f = g.revs, facts(g.revs)
  local pool = {"head", "heads", "base", "+1", "+2", "-1", "-2"}
  for _, r in ipairs(revs) do
    pool[#pool + 1] = r.rev
    pool[#pool + 1] = prefix(revs, r.rev)
    if not g.random or #pool % 3 == 0 then
      pool[#pool + 1] = r.rev .. "+1"
      pool[#pool + 1] = prefix(revs, r.rev) .. "-1"
    end
  end
  for _, l in ipairs(f.labels) do
    for _, form in ipairs({"%s@head", "%s@+1", "%s@base", "%s", "%s@-1"}) do
      pool[#pool + 1] = form:format(l)
    end
  end
  return pool
end

-- Scenarios: every target from empty and from all heads, then random
-- walks mixing upgrades, downgrades and stamps.
local function walk_scenarios(g, seed)
  local rnd = lcg(seed)
  local pool = target_pool(g)
  local scenarios = {}
  if g.random then
    -- a sample of the targets, each from empty and down to base again
    local every = {}
    for _ = 1, 16 do
      every[#every + 1] = {"upgrade", pool[rnd(#pool)]}
      every[#every + 1] = {"downgrade", "base"}
    end
    scenarios[1] = every
  else
    for _, t in ipairs(pool) do
      scenarios[#scenarios + 1] = {{"upgrade", t}}
      -- downgrade targets from all heads
      if t == "base" or t:match("%-%d+$") or t:match("@base$") or t:match("^%x+$") then
        scenarios[#scenarios + 1] = {{"upgrade", "heads"}, {"downgrade", t}}
      end
    end
  end
  for _ = 1, 1 do
    local steps = {}
    for _ = 1, (g.random and 20 or 12) do
      local t = pool[rnd(#pool)]
      local roll = rnd(10)
      if roll <= 5 then steps[#steps + 1] = {"upgrade", t}
      elseif roll <= 9 then steps[#steps + 1] = {"downgrade", t}
      elseif t ~= "head" and not t:match("[%+%-]") then steps[#steps + 1] = {"stamp", t} end
    end
    scenarios[#scenarios + 1] = steps
  end
  return scenarios
end

-- ---- the specs -----------------------------------------------------------

describe("graph commands against Alembic", function()
  it("Alembic is installed (the peer for these specs)", function()
    local path, python = pcall(P.require_alembic)
    assert(path, python)
    local p = P.pair(graphs[1].revs)
    -- the batch driver runs Alembic's command line as the command does
    local code, out = P.command(p, {"heads"})
    assert.are.equal(0, code)
    local r = P.batch(p, {{"heads"}})[1]
    assert.are.equal(out, r.out)
  end)

  for gi, g in ipairs(graphs) do
    describe("on " .. g.name, function()
      local p
      setup(function() p = P.pair(g.revs) end)

      it("heads, branches, history, show and current print as Alembic's", function()
        local c = collector()
        compare_reads(g, p, c)
        c:check()
      end)

      it("upgrade and downgrade to every target form run what Alembic runs", function()
        local c = collector()
        compare_walks(g, p, walk_scenarios(g, 100 + gi), c)
        c:check()
      end)

      it("--json output parses and names the revisions Alembic prints", function()
        P.reset(p)
        local al = P.batch(p, {{"upgrade", "heads"}, {"heads"}, {"history"}, {"current"}})
        assert.are.equal(0, (P.luamig(p, {"upgrade", "heads"})))
        for i, cmd in ipairs({"heads", "history", "current"}) do
          local code, out, err = P.luamig(p, {"--json", cmd})
          assert.are.equal(0, code, err)
          local v = json.decode(out)
          assert.is_table(v, out)
          local ids = {}
          for _, item in ipairs(v) do ids[#ids + 1] = item.revision end
          local want = {}
          for line in al[i + 1].out:gmatch("[^\n]+") do
            want[#want + 1] = line:match("%-> (%w+)") or line:match("^(%w+)")
          end
          -- Alembic prints `current` in set order (see unordered)
          if cmd == "current" then table.sort(want); table.sort(ids) end
          assert.are.same(want, ids, cmd)
        end
      end)
    end)
  end
end)

describe("stamp against Alembic", function()
  local g = graphs[5]   -- labelled branches
  local p
  setup(function() p = P.pair(g.revs) end)

  it("stamps several revisions, over existing heads and with --purge", function()
    local c = collector()
    compare_walks(g, p, {
      {{"stamp", "0b0000000002", "0c0000000001"}},
      {{"stamp", "0a0000000002"}, {"stamp", "0b0000000003"}, {"stamp", "0c0000000002"}},
      {{"upgrade", "heads"}, {"stamp", "0a0000000001"}},
      {{"upgrade", "billing@head"}, {"stamp", "--purge", "0c0000000001"}},
      {{"upgrade", "heads"}, {"stamp", "--purge", "0a0000000002", "0b0000000001"}},
      {{"upgrade", "heads"}, {"stamp", "base"}},
      {{"upgrade", "heads"}, {"stamp", "billing@base"}},
      {{"stamp", "heads"}, {"stamp", "search@head"}},
      {{"stamp", "0b0000000001"}, {"stamp", "0c0000000001"}, {"stamp", "0a0000000001"}},
    }, c)
    c:check()
  end)
end)

-- ---- refusals where Alembic is ambiguous or crashes ------------------------

describe("luamig refuses where Alembic is ambiguous", function()
  -- Each case: a graph, the steps that set the database up, and the
  -- command luamig must refuse (exit 1, naming revisions, nothing changed).
  local merge = graphs[4].revs
  local branch = graphs[3].revs
  local labelled = graphs[5].revs
  local cases = {
    -- Alembic 1.8: from the merge point f40000000000, `downgrade -1`
    -- goes down both parents to f20000000000 (Running downgrade
    -- f3a, f3b -> f2 ... leaving one row), silently taking two steps of one.
    {"downgrade -1 at a merge point", merge, {{"upgrade", "f40000000000"}},
     {"downgrade", "-1"}, {"f40000000000"}},
    -- Alembic 1.8: with heads d2 and e1 current, `downgrade -1` picks one
    -- of them by its own internal order.
    {"downgrade -1 with two current heads", branch, {{"upgrade", "heads"}},
     {"downgrade", "-1"}, {"d20000000000", "e10000000000"}},
    -- Alembic 1.8: `c1+2` steps past the branch point c2 and picks one
    -- of its children.
    {"REV+N past a branch point", branch, {}, {"upgrade", "c10000000000+2"}, {"c20000000000"}},
    -- Alembic 1.8: `+1` from the head e1 of one branch with another head
    -- current goes up the other branch or fails with a KeyError.
    {"+N past a head", branch, {{"upgrade", "e10000000000"}}, {"upgrade", "e10000000000+1"},
     {"e10000000000"}},
    -- Alembic 1.8: a label whose branch has two current heads makes
    -- `billing@-1` ambiguous (it downgrades one of them).
    {"a label with two current heads", labelled,
     {{"upgrade", "0b0000000002"}, {"stamp", "0b0000000002", "0c0000000002"}},
     {"downgrade", "0a0000000001@-1"}, nil},
  }
  for _, case in ipairs(cases) do
    it(case[1], function()
      local p = P.pair(case[2])
      for _, s in ipairs(case[3]) do
        local code, _, err = P.luamig(p, s)
        assert.are.equal(0, code, err)
      end
      local before = lm_rows(p)
      local trace = #lm_trace(p)
      local code, _, err = P.luamig(p, case[4])
      assert.are.equal(1, code, err)
      for _, name in ipairs(case[5] or {}) do
        assert.matches(name:sub(1, 4), err, 1, true)
      end
      assert.are.equal(before, lm_rows(p))
      assert.are.equal(trace, #lm_trace(p))
    end)
  end
end)

-- ---- errors ----------------------------------------------------------------

describe("errors as Alembic's", function()
  local function both_fail(revs, argv, names)
    local p = P.pair(revs)
    local a = P.batch(p, {argv})[1]
    assert.are_not.equal(0, a.code, "Alembic accepts " .. argv_text(argv) .. ":\n" .. a.out)
    local code, out, err = P.luamig(p, argv)
    assert.are.equal(1, code, out .. err)
    for _, n in ipairs(names or {}) do assert.matches(n, err, 1, true) end
    return err, a
  end

  local two_heads = graphs[3].revs

  it("upgrade head with several heads fails, naming the heads", function()
    both_fail(two_heads, {"upgrade", "head"}, {"d20000000000", "e10000000000"})
    both_fail(two_heads, {"downgrade", "head"}, {"d20000000000", "e10000000000"})
  end)

  it("an ambiguous prefix fails and luamig lists the candidates", function()
    local revs = {R("abcd10000000"), R("abcd20000000", "abcd10000000"), R("abce30000000", "abcd20000000")}
    both_fail(revs, {"upgrade", "abcd"}, {"abcd10000000", "abcd20000000"})
    both_fail(revs, {"show", "abcd"}, {"abcd10000000", "abcd20000000"})
  end)

  it("an unknown revision fails", function()
    both_fail(graphs[1].revs, {"upgrade", "ffffffffffff"}, {"ffffffffffff"})
    both_fail(graphs[1].revs, {"show", "ffffffffffff"}, {"ffffffffffff"})
    both_fail(graphs[1].revs, {"upgrade", "nolabel@head"}, {"nolabel"})
  end)

  it("a duplicate revision id fails, naming the revision and its files", function()
    local revs = {R("aaaa00000001"), R("aaaa00000002", "aaaa00000001"), R("aaaa00000002", "aaaa00000001")}
    -- Alembic 1.8 warns "Revision aaaa00000002 is present more than once"
    -- and keeps going; luamig refuses.
    local p = P.pair(revs)
    local a = P.batch(p, {{"heads"}})[1]
    local code, _, err = P.luamig(p, {"heads"})
    assert.are.equal(1, code)
    assert.matches("aaaa00000002", err, 1, true)
    assert.matches("0003_aaaa00000002.lua", err, 1, true)
    assert.matches("more than once", a.err .. a.out, 1, true)
  end)

  it("a cycle fails", function()
    local revs = {R("cccc00000001", "cccc00000003"), R("cccc00000002", "cccc00000001"),
                  R("cccc00000003", "cccc00000002"), R("cccc00000004")}
    both_fail(revs, {"upgrade", "heads"}, {"cccc00000001"})
    both_fail(revs, {"history"}, {"cccc00000001"})
  end)

  it("a down_revision naming nothing fails", function()
    local revs = {R("dddd00000001"), R("dddd00000002", "dddd0000ffff")}
    both_fail(revs, {"upgrade", "heads"}, {"dddd0000ffff", "dddd00000002"})
    both_fail(revs, {"heads"}, {"dddd0000ffff"})
  end)

  it("a depends_on naming nothing fails", function()
    local revs = {R("dddd00000001"), R("dddd00000002", "dddd00000001", {depends = {"nothing"}})}
    both_fail(revs, {"upgrade", "heads"}, {"nothing", "dddd00000002"})
  end)

  it("a duplicate branch label fails", function()
    local revs = {R("eeee00000001"), R("eeee00000002", "eeee00000001", {labels = {"twice"}}),
                  R("eeee00000003", "eeee00000001", {labels = {"twice"}})}
    both_fail(revs, {"heads"}, {"twice", "eeee00000002", "eeee00000003"})
  end)
end)

-- ---- revision and merge ----------------------------------------------------

describe("revision and merge against Alembic", function()
  local function newfile(dir, ext, known)
    local f = H.popen("ls " .. H.quote(dir))
    local found
    for name in f:lines() do
      if name:match("%." .. ext .. "$") and not known[name] then found = name end
    end
    f:close()
    return found
  end

  local function listing(dir)
    local t = {}
    local f = H.popen("ls " .. H.quote(dir))
    for name in f:lines() do t[name] = true end
    f:close()
    return t
  end

  local function lua_fields(path)
    local chunk = assert(loadfile(path, "t", {}))
    return chunk()
  end

  local function py_field(text, name)
    local v = text:match("\n" .. name .. " = ([^\n]*)")
    if not v or v == "None" then return {} end
    local t = {}
    for s in v:gmatch("'([^']*)'") do t[#t + 1] = s end
    table.sort(t)
    return t
  end

  local function as_list(v)
    if v == nil then return {} end
    if type(v) == "string" then return {v} end
    local t = {table.unpack(v)}
    table.sort(t)
    return t
  end

  -- Runs `revision`/`merge` ARGS on both; returns luamig's new file name and
  -- fields, and Alembic's new file name and text.
  local function both(p, args)
    local lm_known = listing(p.dir .. "/migrations")
    local al_known = listing(p.dir .. "/alembic/versions")
    local a = P.batch(p, {args})[1]
    local code, out, err = P.luamig(p, args)
    local lm_name = newfile(p.dir .. "/migrations", "lua", lm_known)
    local al_name = newfile(p.dir .. "/alembic/versions", "py", al_known)
    return {code = code, out = out, err = err, name = lm_name,
            fields = lm_name and lua_fields(p.dir .. "/migrations/" .. lm_name)},
           {code = a.code, out = a.out, err = a.err, name = al_name,
            text = al_name and H.read(p.dir .. "/alembic/versions/" .. al_name)}
  end

  local function slug(name) return name and name:match("^%x+_(.*)%.%a+$") end

  it("names the file <rev>_<slug> with Alembic's slug", function()
    local p = P.pair(graphs[1].revs)
    for _, msg in ipairs({"Add middle_name to Person",
                          "Fix: the unicode & punctuation!! (v2)",
                          "  spaces   everywhere  ",
                          "Ünïcödé naïve café",
                          "a rather long message that goes on well past the forty character slug limit"}) do
      local lm, al = both(p, {"revision", "-m", msg})
      assert.are.equal(0, al.code, al.out .. al.err)
      assert.are.equal(0, lm.code, lm.err)
      assert.are.equal(slug(al.name), slug(lm.name), msg)
      assert.matches("^%x%x%x%x%x%x%x%x%x%x%x%x_", lm.name)
      assert.are.equal(msg, lm.fields.message)
      assert.are.same(py_field(al.text, "down_revision"), as_list(lm.fields.down_revision))
      -- both now have two heads (each its own new revision on 5e6f...):
      -- stack the next one on the new head with --head
      os.remove(p.dir .. "/migrations/" .. lm.name)
      os.remove(p.dir .. "/alembic/versions/" .. al.name)
    end
  end)

  it("puts a new revision on the head, refuses several heads without --head", function()
    local p = P.pair(graphs[3].revs)
    local lm, al = both(p, {"revision", "-m", "next"})
    assert.are_not.equal(0, al.code)
    assert.are.equal(1, lm.code)
    assert.is_nil(lm.name)
    assert.matches("d20000000000", lm.err, 1, true)
    lm, al = both(p, {"revision", "-m", "on d2", "--head", "d20000000000", "--rev-id", "ab0000000001"})
    assert.are.equal(0, al.code, al.out .. al.err)
    assert.are.equal(0, lm.code, lm.err)
    assert.are.equal("ab0000000001_on_d2.lua", lm.name)
    assert.are.equal(slug(al.name), slug(lm.name))
    assert.are.same({"d20000000000"}, as_list(lm.fields.down_revision))
    assert.are.same(py_field(al.text, "down_revision"), as_list(lm.fields.down_revision))
    -- --head on a revision that is not a head: refused by both
    lm, al = both(p, {"revision", "-m", "mid", "--head", "c20000000000", "--rev-id", "ab0000000002"})
    assert.are_not.equal(0, al.code)
    assert.are.equal(1, lm.code)
    -- with --splice: accepted by both, a new branch from c2
    lm, al = both(p, {"revision", "-m", "spliced", "--head", "c20000000000", "--splice",
                      "--rev-id", "ab0000000003"})
    assert.are.equal(0, al.code, al.out .. al.err)
    assert.are.equal(0, lm.code, lm.err)
    assert.are.same(py_field(al.text, "down_revision"), as_list(lm.fields.down_revision))
    -- --head base: a new base
    lm, al = both(p, {"revision", "-m", "new base", "--head", "base", "--rev-id", "ab0000000004",
                      "--branch-label", "other"})
    assert.are.equal(0, al.code, al.out .. al.err)
    assert.are.equal(0, lm.code, lm.err)
    assert.are.same({}, as_list(lm.fields.down_revision))
    assert.are.same(py_field(al.text, "branch_labels"), as_list(lm.fields.branch_labels))
    -- then both graphs agree
    local a = P.batch(p, {{"heads"}, {"history"}, {"branches"}})
    assert.are.equal(a[1].out, select(2, P.luamig(p, {"heads"})))
    assert.are.equal(a[2].out, select(2, P.luamig(p, {"history"})))
  end)

  it("--branch-label, --depends-on and LABEL@head as --head", function()
    local p = P.pair(graphs[1].revs)
    local lm, al = both(p, {"revision", "-m", "feature", "--head", "base", "--branch-label", "feature",
                            "--rev-id", "fe0000000001"})
    assert.are.equal(0, al.code, al.out .. al.err)
    assert.are.equal(0, lm.code, lm.err)
    assert.are.same({"feature"}, as_list(lm.fields.branch_labels))
    lm, al = both(p, {"revision", "-m", "feature two", "--head", "feature@head",
                      "--depends-on", "3c4d5e6f7a03", "--rev-id", "fe0000000002"})
    assert.are.equal(0, al.code, al.out .. al.err)
    assert.are.equal(0, lm.code, lm.err)
    assert.are.same({"fe0000000001"}, as_list(lm.fields.down_revision))
    assert.are.same(py_field(al.text, "depends_on"), as_list(lm.fields.depends_on))
    assert.are.same(py_field(al.text, "down_revision"), as_list(lm.fields.down_revision))
    local a = P.batch(p, {{"heads"}, {"history"}})
    assert.are.equal(a[1].out, select(2, P.luamig(p, {"heads"})))
    assert.are.equal(a[2].out, select(2, P.luamig(p, {"history"})))
  end)

  it("merge heads -m makes one head, as Alembic's", function()
    local p = P.pair(graphs[8].revs)
    -- three heads first: two more branches off the merge's ancestors
    local lm, al = both(p, {"revision", "-m", "side", "--head", "e00000000003", "--splice",
                            "--rev-id", "5e0000000001"})
    assert.are.equal(0, al.code, al.out .. al.err)
    assert.are.equal(0, lm.code, lm.err)
    lm, al = both(p, {"merge", "heads", "-m", "merge the heads", "--rev-id", "3e0000000001"})
    assert.are.equal(0, al.code, al.out .. al.err)
    assert.are.equal(0, lm.code, lm.err)
    assert.are.equal(slug(al.name), slug(lm.name))
    assert.are.same(py_field(al.text, "down_revision"), as_list(lm.fields.down_revision))
    local a = P.batch(p, {{"heads"}, {"history"}})
    assert.are.equal(a[1].out, select(2, P.luamig(p, {"heads"})))
    assert.are.equal(a[2].out, select(2, P.luamig(p, {"history"})))
  end)
end)

-- ---- --sql -------------------------------------------------------------------

describe("--sql against Alembic", function()
  -- Both write alembic_version, so the statements compare as they are.
  local function statements(text)
    local t = {}
    for stmt in (text or ""):gmatch("[^;]+;") do
      stmt = stmt:gsub("%-%-[^\n]*", ""):gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")
      local up = stmt:upper()
      if up == "BEGIN;" or up == "BEGIN TRANSACTION;" then t[#t + 1] = "BEGIN"
      elseif up == "COMMIT;" then t[#t + 1] = "COMMIT"
      elseif up:match("ALEMBIC_VERSION") and not up:match("^CREATE") then
        -- equivalent spellings: "alembic_version.version_num", "a='b'"
        stmt = stmt:gsub(" RETURNING [%w_]+", ""):gsub("alembic_version%.version_num", "version_num")
        t[#t + 1] = (stmt:gsub("%s*=%s*", " = "))
      elseif up:match("^INSERT INTO TRACE") then
        t[#t + 1] = stmt
      end
    end
    return t
  end

  for _, gi in ipairs({4, 8, 6}) do
    local g = graphs[gi]
    it("upgrade heads --sql on " .. g.name .. " prints Alembic's script", function()
      local p = P.pair(g.revs, {version_table = "alembic_version"})
      local head = (#facts(g.revs).labels == 0 and gi ~= 6) and "head" or "heads"
      local first, last = g.revs[1].rev, g.revs[#g.revs].rev
      local cmds = {
        {"upgrade", head, "--sql"},
        {"upgrade", first .. ":" .. last, "--sql"},
        {"downgrade", last .. ":" .. first, "--sql"},
        {"downgrade", last .. ":base", "--sql"},
      }
      local al = P.batch(p, cmds)
      for i, cmd in ipairs(cmds) do
        local code, out, err = P.luamig(p, cmd)
        if al[i].code ~= 0 then
          assert.are.equal(1, code, argv_text(cmd) .. ": Alembic fails, luamig: " .. out .. err)
        else
          assert.are.equal(0, code, argv_text(cmd) .. ": " .. err)
          local function steps(t)
            local r = {}
            for k, v in ipairs(t) do r[k] = v:match("^(Running %w+ .- %-> %w+)") or v end
            return r
          end
          assert.are.same(steps(P.sql_running(al[i].out)), steps(P.sql_running(out)), argv_text(cmd))
          -- Alembic treats SQLite DDL as non-transactional and prints no
          -- BEGIN/COMMIT there; luamig wraps each migration: BEGIN and
          -- COMMIT must pair up, the rest must be Alembic's statements.
          local mine, depth = {}, 0
          for _, st in ipairs(statements(out)) do
            if st == "BEGIN" then depth = depth + 1; assert.are.equal(1, depth, argv_text(cmd))
            elseif st == "COMMIT" then depth = depth - 1; assert.are.equal(0, depth, argv_text(cmd))
            else mine[#mine + 1] = st end
          end
          assert.are.equal(0, depth, argv_text(cmd))
          local theirs = {}
          for _, st in ipairs(statements(al[i].out)) do
            if st ~= "BEGIN" and st ~= "COMMIT" then theirs[#theirs + 1] = st end
          end
          assert.are.same(theirs, mine, argv_text(cmd))
        end
      end
      -- no database was touched
      assert.is_nil(H.sqlite_query(p.lm_db, "SELECT 1 FROM alembic_version"))
    end)
  end

  it("the -- Running comments read as Alembic's", function()
    -- Alembic's offline comment is "-- Running upgrade A -> B", without
    -- the message its online log line has.
    local g = graphs[4]
    local p = P.pair(g.revs, {version_table = "alembic_version"})
    local al = P.batch(p, {{"upgrade", "head", "--sql"}})[1]
    local code, out, err = P.luamig(p, {"upgrade", "head", "--sql"})
    assert.are.equal(0, code, err)
    assert.are.same(P.sql_running(al.out), P.sql_running(out))
  end)
end)
