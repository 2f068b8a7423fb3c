-- lock_identity_spec.lua - the run lock is keyed on what the database is,
-- not on how a configuration names it: a symlinked SQLite path and a
-- schema-qualified PostgreSQL version table still exclude each other.
-- Also what the lock says about itself: its holder, its timeout, and the
-- status line.
local H = require "helpers"

local function rev_id(i) return string.format("%012x", i) end

-- A history that appends one row per revision to trace; every third
-- revision runs outside a transaction, where only the lock keeps a second
-- runner from applying it again (a moment's work first widens the window
-- a second holder of the lock would have).
local function append_history(n)
  local revs = {{rev = rev_id(1), message = "trace",
                 up = [[op.create_table("trace", {{"id", "integer", primary_key = true},
                                                {"rev", "string(32)", nullable = false}})]]}}
  for i = 2, n do
    local outside = i % 3 == 2
    revs[i] = {rev = rev_id(i), down = rev_id(i - 1),
               extra = outside and "  transactional = false,\n" or nil,
               up = (outside and "for _ = 1, 2e6 do end\n" or "") ..
                    string.format([[op.execute("INSERT INTO trace (rev) VALUES ($1)", {%q})]], rev_id(i))}
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

-- Start the binary in the background (exec'd, so the pid is luamig's).
local function spawn(args, dir, tag)
  local err = dir .. "/" .. tag .. ".err"
  local argv = {}
  for _, a in ipairs(args) do argv[#argv + 1] = H.quote(a) end
  local f = H.popen("cd " .. H.quote(dir) .. " && (" ..
                    (H.asan and "LD_PRELOAD= ASAN_OPTIONS=detect_leaks=1:exitcode=99 " or "") ..
                    "exec " .. H.quote(H.bin) .. " " .. table.concat(argv, " ") ..
                    " >/dev/null 2>" .. H.quote(err) .. " </dev/null) & echo $!")
  local pid = tonumber(f:read("l"))
  f:close()
  return pid, err
end

local function wait_until(seconds, fn)
  local deadline = os.time() + seconds
  while os.time() <= deadline do
    if fn() then return true end
    H.sh("sleep 0.05")
  end
  return false
end

local function stop(pid)
  H.sh("kill -TERM " .. pid .. " 2>/dev/null")
  assert.is_true(wait_until(15, function() return H.sh("kill -0 " .. pid .. " 2>/dev/null") ~= 0 end))
end

local slow = {
  sqlite = [[op.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000000) SELECT count(*) FROM c")]],
  postgresql = [[op.execute("SELECT pg_sleep(20)")]],
}

for _, d in ipairs(H.dialects) do
  describe("what the lock on " .. d.name .. " says", function()
    it("a lock_timeout under a second is reported as it was, and status names the holder", function()
      local url = d.fresh()
      local dir = H.project(url, {{rev = "aaaaaaaaaaa1", up = [[io.stderr:write("holding\n")
                                                                ]] .. slow[d.name]}},
                            "  lock_timeout = 0.3,\n")
      local pid, err = spawn({"upgrade", "head"}, dir, "holder")
      assert.is_true(wait_until(20, function() return (H.read(err) or ""):find("holding") end))
      local code, _, err2 = H.run({"upgrade", "head"}, {dir = dir})
      local _, status = H.run({"status"}, {dir = dir})
      stop(pid)
      assert.are.equal(1, code)
      assert.matches("gave up after 0%.3 s", err2)
      local holder = d.name == "sqlite" and "pid " .. pid or "pid %d+ %(application luamig"
      assert.matches(holder, err2)
      assert.matches("\nLock: held by " .. holder, status)
      assert.is_nil(status:find("gave up", 1, true))
    end)
  end)
end

describe("the SQLite lock's holder", function()
  it("is not the last run's pid when another process holds the lock", function()
    local dir = H.tempdir()
    local path = dir .. "/app.db"
    local pdir = H.project("sqlite:///" .. path, {{rev = "aaaaaaaaaaa1",
      up = [[op.create_table("t", {{"id", "integer", primary_key = true}})]]}}, "  lock_timeout = 0.2,\n")
    local code, _, err = H.run({"upgrade", "head"}, {dir = pdir})
    assert.are.equal(0, code, err)
    local lock = path .. ".luamig-lock"
    assert.are.equal("", H.read(lock))   -- the run let go of it and left no pid
    -- a holder that is not luamig, then one that wrote a pid and died
    for _, pid_text in ipairs({"", "999999999\n"}) do
      H.write(lock, pid_text)
      local f = H.popen("flock -o " .. H.quote(lock) .. " sleep 60 >/dev/null 2>&1 & echo $!")
      local holder = tonumber(f:read("l"))
      f:close()
      -- the holder has the lock (not merely started) before luamig looks
      assert.is_true(H.wait_until(20, function()
        return H.sh("flock -n " .. H.quote(lock) .. " true") ~= 0
      end))
      local code2, _, err2 = H.run({"current"}, {dir = pdir})
      local _, status = H.run({"status"}, {dir = pdir})
      local code3, _, err3 = H.run({"stamp", "aaaaaaaaaaa1"}, {dir = pdir})
      H.sh("kill " .. holder .. " 2>/dev/null")   -- (its sleep holds no lock: -o)
      assert.is_true(H.wait_until(20, function()
        return H.sh("flock -n " .. H.quote(lock) .. " true") == 0
      end))
      assert.are.equal(0, code2, err2)
      assert.matches("\nLock: held by another process\n", status)
      assert.are.equal(1, code3)
      assert.matches("another luamig run %(another process%) holds the lock", err3)
    end
  end)
end)
