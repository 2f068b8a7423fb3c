-- cli_firstday_spec.lua - what a new user's first day turned up (issue 9):
-- current --check-heads, the messages of a failed single-transaction run and
-- of a target already passed, stamping down from a merge point, the line
-- that says which migration is running, and the Alembic habits: show
-- current, glued -r ranges, init with nested folders and a .gitignore, one
-- prefix rule, --json everywhere, no colour on a dumb terminal.
local H = require "helpers"
local json = require "dkjson"

local A, B, C, R = "a1a1a1a1a1a1", "b2b2b2b2b2b2", "c3c3c3c3c3c3", "41e04aa65363"

-- base R, two branches A and B on it, merged by C; each makes a table.
local function table_rev(rev, down)
  return {rev = rev, down = down,
          up = ("op.create_table(%q, {{'id', 'integer', primary_key = true}})"):format("t_" .. rev),
          down_code = ("op.drop_table(%q)"):format("t_" .. rev)}
end
local merge_graph = {table_rev(R), table_rev(A, R), table_rev(B, R), table_rev(C, {A, B})}

local function rows(query)
  local t = H.lines(assert(query("SELECT version_num FROM luamig_version ORDER BY version_num")))
  return t
end

local function decode(out, what)
  local v, _, err = json.decode(out or "")
  assert(v ~= nil, (what or "json") .. ": " .. tostring(err) .. " in " .. tostring(out))
  return v
end

for _, d in ipairs(H.dialects) do
  describe("first day on " .. d.name, function()
    local url, query, dir

    before_each(function()
      url, query = d.fresh()
      dir = H.project(url, merge_graph)
    end)

    it("current --check-heads fails unless the database is at every head", function()
      -- at base: not at the head
      local code, out, err = H.run({"current", "--check-heads"}, {dir = dir})
      assert.are.equal(1, code, err)
      assert.are.equal("", out)
      assert.matches("not at the head .*it is at base, the head is " .. C, err)
      -- at the first revision: exit 1 with a message (this crashed with a
      -- read of freed memory)
      assert.are.equal(0, (H.run({"upgrade", R}, {dir = dir})))
      code, out, err = H.run({"current", "--check-heads"}, {dir = dir})
      assert.are.equal(1, code, err)
      assert.matches("it is at " .. R, err)
      -- on one of two branches
      assert.are.equal(0, (H.run({"upgrade", A}, {dir = dir})))
      code, _, err = H.run({"current", "--check-heads", "--json"}, {dir = dir})
      assert.are.equal(1, code, err)
      assert.matches("it is at " .. A, err)
      -- at the head
      assert.are.equal(0, (H.run({"upgrade", "head"}, {dir = dir})))
      code, out, err = H.run({"current", "--check-heads"}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.are.equal(C .. " (head) (mergepoint)\n", out)
    end)

    it("stamps down from a merge point to its parents", function()
      assert.are.equal(0, (H.run({"upgrade", "head"}, {dir = dir})))
      local code, out, err = H.run({"stamp", "a1a1", "b2b2"}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.are.same({A, B}, rows(query))
      -- and back up to the merge point
      code, out, err = H.run({"stamp", C, "--json"}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.are.same({C}, rows(query))
      assert.are.same({C}, decode(out).current)
      -- one revision per branch: a parent and its own ancestor refuse
      code, _, err = H.run({"stamp", A, R}, {dir = dir})
      assert.are.equal(1, code)
      assert.matches("cannot stamp " .. R, err)
      assert.are.same({C}, rows(query))
    end)

    it("says the database is already past an upgrade target", function()
      assert.are.equal(0, (H.run({"upgrade", "head"}, {dir = dir})))
      local code, _, err = H.run({"upgrade", R}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.matches("Nothing to upgrade: the database is already past " .. R .. ", at " .. C .. "%.", err)
      code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.matches("Nothing to upgrade: the database is already at " .. C .. "%.", err)
      assert.are.equal(0, (H.run({"downgrade", R}, {dir = dir})))
      code, _, err = H.run({"downgrade", "41e0"}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.matches("Nothing to downgrade: the database is already at " .. R .. "%.", err)
    end)

    it("prints which migration runs when it starts, and its duration when it ends", function()
      local chain = {
        {rev = "aaaaaaaaaaa1", up = [[io.stderr:write("inside aaaaaaaaaaa1\n")]]},
        {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", up = [[io.stderr:write("inside bbbbbbbbbbb2\n")]]},
      }
      local p = H.project(url, chain)
      local code, _, err = H.run({"upgrade", "head"}, {dir = p})
      assert.are.equal(0, code, err)
      local l = H.lines(err)
      assert.matches("^Running upgrade  %-> aaaaaaaaaaa1", l[1])
      assert.are.equal("inside aaaaaaaaaaa1", l[2])
      assert.matches("^Finished upgrade aaaaaaaaaaa1 in %d+%.%d+ s$", l[3])
      assert.matches("^Running upgrade aaaaaaaaaaa1 %-> bbbbbbbbbbb2", l[4])
      assert.are.equal("inside bbbbbbbbbbb2", l[5])
      assert.matches("^Finished upgrade bbbbbbbbbbb2 in", l[6])
      -- the module's on_event gets a start event before each done event
      package.cpath = (os.getenv("LUAMIG_CPATH") or "build/?.so") .. ";" .. package.cpath
      local luamig = require "luamig"
      local events = {}
      local m = assert(luamig.open{config = p .. "/luamig.lua", quiet = true,
                                   on_event = function(e) events[#events + 1] = e.kind .. " " .. tostring(e.revision) end})
      assert(m:downgrade("base"))
      m:close()
      assert.are.same({"migration_start bbbbbbbbbbb2", "migration_done bbbbbbbbbbb2",
                       "migration_start aaaaaaaaaaa1", "migration_done aaaaaaaaaaa1"}, events)
    end)

    it("with transaction_per_migration = false, a failure says all of the run was rolled back", function()
      local chain = {}
      for i = 1, 14 do
        local rev = ("%012d"):format(i)
        chain[i] = {rev = rev, down = i > 1 and ("%012d"):format(i - 1) or nil,
                    up = ("op.create_table('t%d', {{'id', 'integer', primary_key = true}})"):format(i)}
      end
      chain[15] = {rev = "d4d4d4d4d4d4", down = ("%012d"):format(14),
                   up = [[op.execute("SELECT * FROM no_such_table")]]}
      local p = H.project(url, chain, "  transaction_per_migration = false,\n")
      local code, _, err = H.run({"upgrade", "head"}, {dir = p})
      assert.are.equal(1, code)
      assert.matches("upgrade d4d4d4d4d4d4 %(.-%) failed and was rolled back", err)
      assert.matches("The 14 migrations run before it in the same transaction %(transaction_per_migration = false%) " ..
                     "were rolled back with it: 000000000001, .*000000000014; nothing of this run is applied", err)
      -- none of the 14 says it is done for good
      assert.not_matches("Finished upgrade 000000000001 in [%d.]+ s\n", err)
      assert.matches("Finished upgrade 000000000001 in [%d.]+ s %(commits with the rest of the run", err)
      assert.are.equal("", query("SELECT version_num FROM luamig_version"))
      assert.is_nil(query("SELECT 1 FROM t1"))
    end)

    it("show current shows the revisions the database is at", function()
      local code, out, err = H.run({"show", "current"}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.are.equal("", out)
      assert.matches("at base", err)
      assert.are.equal(0, (H.run({"upgrade", A}, {dir = dir})))
      code, out, err = H.run({"show", "current"}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.matches("^Rev: " .. A, out)
      code, out = H.run({"show", "current", "--json"}, {dir = dir})
      assert.are.equal(0, code)
      local v = decode(out)
      assert.are.equal(1, #v)
      assert.are.equal(A, v[1].revision)
      assert.are.same({R}, v[1].down_revisions)
    end)

    it("upgrade and downgrade --json list the revisions applied with durations", function()
      local code, out, err = H.run({"upgrade", A, "--json"}, {dir = dir})
      assert.are.equal(0, code, err)
      local v = decode(out)
      assert.are.equal("upgrade", v.command)
      assert.are.equal(2, #v.applied)
      assert.are.equal(R, v.applied[1].revision)
      assert.are.equal(A, v.applied[2].revision)
      for _, a in ipairs(v.applied) do
        assert.are.equal("upgrade", a.direction)
        assert.is_true(type(a.duration) == "number" and a.duration >= 0 and a.duration < 60)
      end
      assert.are.same({A}, v.current)
      code, out = H.run({"downgrade", "base", "--json", "-q"}, {dir = dir})
      assert.are.equal(0, code)
      v = decode(out)
      assert.are.same({A, R}, {v.applied[1].revision, v.applied[2].revision})
      assert.are.same({}, v.current)
      code, out = H.run({"upgrade", "base", "--json"}, {dir = dir})
      assert.are.equal(0, code)
      assert.are.same({}, decode(out).applied)
    end)
  end)
end

describe("first day, the Alembic habits", function()
  local function sqlite_project(revs, extra)
    return H.project("sqlite:///" .. H.tempdir() .. "/t.db", revs, extra)
  end

  it("history takes -r glued to its range, and current:head", function()
    local chain = {{rev = R}, {rev = "8398a1b2c3d4", down = R}, {rev = "9a9a9a9a9a9a", down = "8398a1b2c3d4"},
                   {rev = "abab12121212", down = "9a9a9a9a9a9a"}, {rev = "cdcd34343434", down = "abab12121212"}}
    local dir = sqlite_project(chain)
    assert.are.equal(0, (H.run({"upgrade", "abab"}, {dir = dir})))
    local code, out, err = H.run({"history", "-r41e04:8398"}, {dir = dir})
    assert.are.equal(0, code, err)
    assert.are.same({"41e04aa65363 -> 8398a1b2c3d4, revision 8398a1b2c3d4",
                     "<base> -> 41e04aa65363, revision 41e04aa65363"}, H.lines(out))
    local code2, out2 = H.run({"history", "-r", "-3:current"}, {dir = dir})
    code, out, err = H.run({"history", "-r-3:current"}, {dir = dir})
    assert.are.equal(0, code, err)
    assert.are.equal(0, code2)
    assert.are.equal(out2, out)
    assert.are.equal(3, #H.lines(out))
    code, out, err = H.run({"history", "-r", "current:head"}, {dir = dir})
    assert.are.equal(0, code, err)
    assert.are.same({"abab12121212 -> cdcd34343434 (head), revision cdcd34343434",
                     "9a9a9a9a9a9a -> abab12121212, revision abab12121212"}, H.lines(out))
    -- -m glued to its message
    code, out, err = H.run({"revision", "-mglued message"}, {dir = dir})
    assert.are.equal(0, code, err)
    assert.matches("_glued_message%.lua", out)
  end)

  it("init creates parent folders, accepts an empty one and writes .gitignore entries", function()
    local dir = H.tempdir()
    local code, out, err = H.run({"init", "db/versions"}, {dir = dir})
    assert.are.equal(0, code, err)
    assert.matches("Created luamig.lua and db/versions/", out)
    assert.are.equal(0, H.sh("test -d " .. H.quote(dir .. "/db/versions")))
    assert.are.equal(".luamig-cache\n*.luamig-lock\n", H.read(dir .. "/.gitignore"))
    -- the project works
    assert.are.equal(0, (H.run({"revision", "-m", "first"}, {dir = dir})))
    -- an existing empty folder is fine; an existing .gitignore is kept and
    -- gets only the lines it lacks
    local dir2 = H.tempdir()
    assert.are.equal(0, H.sh("mkdir " .. H.quote(dir2 .. "/migrations")))
    H.write(dir2 .. "/.gitignore", "*.o\n.luamig-cache")
    code, out, err = H.run({"init", "--json"}, {dir = dir2})
    assert.are.equal(0, code, err)
    assert.are.equal("migrations", decode(out).script_location)
    assert.are.equal("*.o\n.luamig-cache\n*.luamig-lock\n", H.read(dir2 .. "/.gitignore"))
    -- a folder with files in it is refused, and nothing is written
    local dir3 = H.tempdir()
    assert.are.equal(0, H.sh("mkdir " .. H.quote(dir3 .. "/migrations") .. " && touch " ..
                             H.quote(dir3 .. "/migrations/x.lua")))
    code, _, err = H.run({"init"}, {dir = dir3})
    assert.are.equal(1, code)
    assert.matches("migrations already exists and is not empty", err)
    assert.is_nil(H.read(dir3 .. "/luamig.lua"))
  end)

  it("one prefix rule: any unique prefix, however short, in every command", function()
    local dir = sqlite_project({{rev = R}, {rev = "8398a1b2c3d4", down = R}})
    local code, _, err = H.run({"stamp", "zz"}, {dir = dir})
    assert.are.equal(1, code)
    assert.matches("no such revision or branch 'zz'", err)
    assert.not_matches("four characters", err)
    assert.are.equal(0, (H.run({"upgrade", "4"}, {dir = dir})))
    code, _, err = H.run({"stamp", "8"}, {dir = dir})
    assert.are.equal(0, code, err)
    local _, out = H.run({"current"}, {dir = dir})
    assert.are.equal("8398a1b2c3d4 (head)\n", out)
    code, out = H.run({"show", "4"}, {dir = dir})
    assert.are.equal(0, code)
    assert.matches("^Rev: " .. R, out)
  end)

  it("--json for show, branches, stamp, revision and merge", function()
    local dir = sqlite_project(merge_graph)
    local code, out, err = H.run({"branches", "--json"}, {dir = dir})
    assert.are.equal(0, code, err)
    local v = decode(out)
    assert.are.equal(R, v[1].revision)
    assert.are.same({A, B}, v[1].next_revisions)
    assert.is_true(v[1].is_branch_point)
    code, out = H.run({"show", "c3c3", "--json"}, {dir = dir})
    assert.are.equal(0, code)
    v = decode(out)
    assert.are.same({A, B}, v[1].down_revisions)
    assert.is_true(v[1].is_merge_point)
    code, out, err = H.run({"stamp", A, "--json"}, {dir = dir})
    assert.are.equal(0, code, err)
    assert.are.same({A}, decode(out).current)
    code, out, err = H.run({"revision", "-m", "new base", "--head", "base", "--rev-id", "e5e5e5e5e5e5", "--json"}, {dir = dir})
    assert.are.equal(0, code, err)
    v = decode(out)
    assert.are.equal("e5e5e5e5e5e5", v.revision)
    assert.is_truthy(H.read(dir .. "/" .. v.path))
    code, out, err = H.run({"merge", "heads", "-m", "join", "--json"}, {dir = dir})
    assert.are.equal(0, code, err)
    assert.is_truthy(H.read(dir .. "/" .. decode(out).path))
    -- --sql writes SQL: it does not combine with --json
    code, _, err = H.run({"upgrade", "head", "--sql", "--json"}, {dir = dir})
    assert.are.equal(2, code)
    assert.matches("does not combine with %-%-json", err)
  end)

  it("no colour on a dumb terminal", function()
    local dir = sqlite_project({{rev = "aaaaaaaaaaa1", up = [[
      op.execute("CREATE TABLE t (id integer PRIMARY KEY, v integer)")
      op.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 400000) " ..
                 "INSERT INTO t SELECT x, NULL FROM c")
      op.backfill("t", {key = "id", columns = {"id"}, batch_size = 1000},
                  function(row) return {v = row.id} end)]],
      down_code = [[op.execute("DROP TABLE t")]]}})
    -- the progress line draws only on a terminal: run under script(1)
    local function on_tty(term)
      local out = os.tmpname()
      local asan = H.asan and "LD_PRELOAD= ASAN_OPTIONS=detect_leaks=1:exitcode=99 " or ""
      local code = H.sh("cd " .. H.quote(dir) .. " && env -u NO_COLOR TERM=" .. term .. " " .. asan ..
                        "script -qec " .. H.quote(H.quote(H.bin) .. " upgrade head") .. " /dev/null >" .. out)
      local s = H.read(out)
      os.remove(out)
      assert.are.equal(0, code, s)
      assert.are.equal(0, (H.run({"downgrade", "base"}, {dir = dir})))
      return s
    end
    -- the premise: a terminal that can show colour gets it
    assert.matches("\27%[", on_tty("xterm"))
    local s = on_tty("dumb")
    assert.matches("backfill t", s)
    assert.not_matches("\27%[", s)
  end)
end)
