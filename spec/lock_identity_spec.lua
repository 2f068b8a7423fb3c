-- lock_identity_spec.lua - the run lock is keyed on what the database is,
-- not on how a configuration names it: a symlinked SQLite path and a
-- schema-qualified PostgreSQL version table still exclude each other.
-- Also what the lock says about itself: its holder, its timeout, and the
-- status line.
local H = require "helpers"

local function rev_id(i) return string.format("%012x", i) end

-- A history that appends one row per revision to trace; every third
-- revision runs outside a transaction, where only the lock keeps a second
-- runner from applying it again.
local function append_history(n)
  local revs = {{rev = rev_id(1), message = "trace",
                 up = [[op.create_table("trace", {{"id", "integer", primary_key = true},
                                                {"rev", "string(32)", nullable = false}})]]}}
  for i = 2, n do
    revs[i] = {rev = rev_id(i), down = rev_id(i - 1),
               extra = i % 3 == 2 and "  transactional = false,\n" or nil,
               up = string.format([[op.execute("INSERT INTO trace (rev) VALUES ($1)", {%q})]], rev_id(i))}
  end
  return revs
end

-- Start `count` runners together, runner i with the arguments args(i);
-- wait for all; return their exit codes and stderr.
local function run_together(dir, count, args)
  local cmd = {}
  for i = 1, count do
    local argv = {}
    for _, a in ipairs(args(i)) do argv[#argv + 1] = H.quote(a) end
    cmd[#cmd + 1] = string.format("(%s%s %s >%s/r%d.out 2>%s/r%d.err; echo $? >%s/r%d.rc) &",
      H.asan and "LD_PRELOAD= ASAN_OPTIONS=detect_leaks=1:exitcode=99 " or "", H.quote(H.bin),
      table.concat(argv, " "), dir, i, dir, i, dir, i)
  end
  assert.are.equal(0, H.sh("cd " .. H.quote(dir) .. " && { " .. table.concat(cmd, " ") .. " wait; }"))
  local codes, errs = {}, {}
  for i = 1, count do
    codes[i] = tonumber(H.read(dir .. "/r" .. i .. ".rc"))
    errs[i] = H.read(dir .. "/r" .. i .. ".err")
  end
  return codes, errs
end

-- Every revision's row exactly once, and the head stored.
local function assert_applied_once(query, n)
  local rows = H.lines(query("SELECT rev, count(*) FROM trace GROUP BY rev ORDER BY rev"))
  local want = {}
  for i = 2, n do want[#want + 1] = rev_id(i) .. "|1" end
  assert.are.same(want, rows)
  assert.are.equal(rev_id(n) .. "\n", query("SELECT version_num FROM luamig_version"))
end

-- Per dialect: the database named two ways, as two configuration files.
local two_names = {
  sqlite = function(dir)
    local real = dir .. "/real.db"
    assert.are.equal(0, H.sh("ln -s real.db " .. H.quote(dir .. "/link.db")))
    return "sqlite:///" .. real, "sqlite:///" .. dir .. "/link.db", "",
           function(sql) return H.sqlite_query(real, sql) end
  end,
  postgresql = function()
    local url = H.pg_fresh()
    return url, url, '  version_table_schema = "public",\n',
           function(sql) return H.psql(url, sql) end
  end,
}

for _, d in ipairs(H.dialects) do
  describe("the run lock on " .. d.name, function()
    it("16 runners naming the database two ways apply every revision once", function()
      local n = 10
      local dir = H.project("sqlite::memory:", append_history(n))
      local url1, url2, extra2, query = two_names[d.name](dir)
      H.write(dir .. "/one.lua", "return {url = " .. string.format("%q", url1) ..
              ", script_location = \"migrations\"}\n")
      H.write(dir .. "/two.lua", "return {url = " .. string.format("%q", url2) ..
              ", script_location = \"migrations\",\n" .. extra2 .. "}\n")
      local codes, errs = run_together(dir, 16, function(i)
        return {"-c", i % 2 == 0 and "one.lua" or "two.lua", "upgrade", "head"}
      end)
      for i = 1, 16 do assert.are.equal(0, codes[i], errs[i]) end
      assert_applied_once(query, n)
      assert.are.equal(tostring(n) .. "\n", query("SELECT count(*) FROM luamig_log"))
    end)
  end)
end
