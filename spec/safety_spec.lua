-- safety_spec.lua - nothing lost under concurrency, crashes and signals:
-- many runners at once, SIGKILL and SIGINT mid-migration, the dirty mark of
-- a failed non-transactional script, checksum drift, and the lock holder.
local H = require "helpers"

-- A history whose every migration appends to trace.
local function trace_history(n)
  local revs = {{rev = string.format("%012x", 1), message = "trace",
                 up = [[op.create_table("trace", {{"seq", "integer", primary_key = true, autoincrement = false},
                                                {"rev", "string(32)", nullable = false}})
                        op.execute("INSERT INTO trace (seq, rev) VALUES (1, $1)", {"]] .. string.format("%012x", 1) .. [["})]]}}
  for i = 2, n do
    local id = string.format("%012x", i)
    revs[i] = {rev = id, down = string.format("%012x", i - 1),
               up = string.format([[op.execute("INSERT INTO trace (seq, rev) VALUES ($1, $2)", {%d, %q})]], i, id)}
  end
  return revs
end

local spawn, alive, wait_pid, wait_for = H.spawn, H.alive, H.wait_pid, H.wait_for

-- A slow statement for each dialect (seconds of work, interruptible).
local slow = {
  sqlite = [[op.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000000) SELECT count(*) FROM c")]],
  postgresql = [[op.execute("SELECT pg_sleep(20)")]],
}

for _, d in ipairs(H.dialects) do
  describe("safety on " .. d.name, function()
    it("8 runners at once: every migration runs exactly once, in order", function()
      local url, query = d.fresh()
      local dir = H.project(url, trace_history(50))
      local cmd = {}
      for i = 1, 8 do
        cmd[#cmd + 1] = string.format("(%s%s upgrade head >%s/r%d.out 2>%s/r%d.err; echo $? >%s/r%d.rc) &",
          H.asan and "LD_PRELOAD= " or "", H.quote(H.bin), dir, i, dir, i, dir, i)
      end
      -- Braces: without them only the first runner would run in dir.
      assert.are.equal(0, H.sh("cd " .. H.quote(dir) .. " && { " .. table.concat(cmd, " ") .. " wait; }"))
      for i = 1, 8 do
        assert.are.equal("0\n", H.read(dir .. "/r" .. i .. ".rc"), H.read(dir .. "/r" .. i .. ".err"))
      end
      local rows = H.lines(query("SELECT seq, rev FROM trace ORDER BY seq"))
      assert.are.equal(50, #rows)
      for i = 1, 50 do
        assert.are.equal(string.format("%d|%012x", i, i), rows[i])
      end
      assert.are.equal("50\n", query("SELECT count(*) FROM luamig_log"))
      assert.are.equal(string.format("%012x\n", 50), query("SELECT version_num FROM luamig_version"))
    end)

    it("SIGKILL mid-migration leaves the previous revision; the next run completes", function()
      local url, query = d.fresh()
      local revs = {
        {rev = "aaaaaaaaaaa1", up = [[op.create_table("kept", {{"id", "integer", primary_key = true}})
                                      op.execute("INSERT INTO kept (id) VALUES (1)")]]},
        {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1",
         up = [[op.create_table("doomed", {{"id", "integer", primary_key = true}})
                op.execute("INSERT INTO kept (id) VALUES (2)")
                if op.x.slow then ]] .. slow[d.name] .. [[ end]]},
      }
      local dir = H.project(url, revs)
      local pid, _, err = spawn({"-x", "slow=1", "upgrade", "head"}, dir, "kill9_" .. d.name)
      assert.is_true(wait_for(err, "%-> aaaaaaaaaaa1", 20), "the first migration never finished")
      H.sh("sleep 0.5")
      assert.is_true(alive(pid), "the runner ended before it could be killed")
      H.sh("kill -9 " .. pid)
      assert.is_true(wait_pid(pid, 10))
      assert.are.equal("aaaaaaaaaaa1\n", query("SELECT version_num FROM luamig_version"))
      assert.are.equal("1\n", query("SELECT id FROM kept ORDER BY id"))
      assert.is_nil(query("SELECT 1 FROM doomed"))
      local code, _, err2 = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(0, code, err2)
      assert.are.equal("bbbbbbbbbbb2\n", query("SELECT version_num FROM luamig_version"))
      assert.are.equal("1\n2\n", query("SELECT id FROM kept ORDER BY id"))
    end)

    for _, sig in ipairs({{"INT", 130}, {"TERM", 143}}) do
      it("SIG" .. sig[1] .. " rolls back the migration in flight and exits " .. sig[2], function()
        local url, query = d.fresh()
        local revs = {
          {rev = "aaaaaaaaaaa1", up = [[op.create_table("kept", {{"id", "integer", primary_key = true}})]]},
          {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1",
           up = [[op.create_table("doomed", {{"id", "integer", primary_key = true}})
                  ]] .. slow[d.name]},
        }
        local dir = H.project(url, revs)
        local tag = "sig" .. sig[1] .. d.name
        local pid, _, err = spawn({"upgrade", "head"}, dir, tag)
        assert.is_true(wait_for(err, "%-> aaaaaaaaaaa1", 20))
        H.sh("sleep 0.5")
        H.sh("kill -" .. sig[1] .. " " .. pid)
        assert.is_true(wait_pid(pid, 15), "the runner did not stop")
        local text = H.read(err)
        assert.matches("interrupted by SIG" .. sig[1], text)
        assert.matches("bbbbbbbbbbb2", text)
        assert.are.equal("aaaaaaaaaaa1\n", query("SELECT version_num FROM luamig_version"))
        assert.is_nil(query("SELECT 1 FROM doomed"))
      end)
    end

    it("a Lua loop is interrupted too", function()
      local url, query = d.fresh()
      local dir = H.project(url, {{rev = "aaaaaaaaaaa1",
        up = [[op.create_table("t", {{"id", "integer", primary_key = true}})
               io.stderr:write("looping\n")
               while true do end]]}})
      local pid, _, err = spawn({"upgrade", "head"}, dir, "loop" .. d.name)
      assert.is_true(wait_for(err, "looping", 20))
      H.sh("kill -INT " .. pid)
      assert.is_true(wait_pid(pid, 10))
      assert.matches("interrupted by SIGINT", H.read(err))
      assert.is_nil(query("SELECT 1 FROM t"))
    end)

    it("a waiting runner names the lock holder and gives up after lock_timeout", function()
      local url, query = d.fresh()
      local revs = {{rev = "aaaaaaaaaaa1", up = [[op.create_table("t", {{"id", "integer", primary_key = true}})
                                                  ]] .. slow[d.name]}}
      local dir = H.project(url, revs, "  lock_timeout = 1,\n")
      local pid, _, err = spawn({"upgrade", "head"}, dir, "holder" .. d.name)
      assert.is_true(wait_for(err, "", 1))
      H.sh("sleep 1")
      local code, _, err2 = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(1, code)
      -- SQLite names the runner's pid; PostgreSQL the server backend's,
      -- with the application name luamig sets
      local holder = d.name == "sqlite" and "pid " .. pid or "pid %d+ %(application luamig"
      assert.matches(holder, err2)
      assert.matches("lock", err2)
      local _, status = H.run({"status"}, {dir = dir})
      assert.matches("Lock: .*" .. holder, status)
      H.sh("kill -TERM " .. pid)
      assert.is_true(wait_pid(pid, 15))
      assert.are.equal("0\n", query("SELECT count(*) FROM luamig_version"))
    end)

    it("a failed non-transactional script leaves a dirty mark until stamp", function()
      local url, query = d.fresh()
      local revs = {
        {rev = "aaaaaaaaaaa1", up = [[op.create_table("t", {{"id", "integer", primary_key = true}})]]},
        {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", extra = "  transactional = false,\n",
         up = [[op.create_table("half", {{"id", "integer", primary_key = true}})
                op.execute("INSERT INTO nowhere VALUES (1)")]]},
        {rev = "ccccccccccc3", down = "bbbbbbbbbbb2", up = [[op.create_table("later", {{"id", "integer", primary_key = true}})]]},
      }
      local dir = H.project(url, revs)
      local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(1, code)
      assert.matches("dirty", err)
      assert.matches("nowhere", err)
      -- the half-applied statement stays: that is why it is dirty
      assert.are.equal("0\n", query("SELECT count(*) FROM half"))
      local scode, status = H.run({"status"}, {dir = dir})
      assert.are.equal(1, scode)
      assert.matches("Dirty: upgrade of bbbbbbbbbbb2 failed outside a transaction", status)
      assert.matches("INSERT INTO nowhere", status)
      code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(1, code)
      assert.matches("the database is dirty", err)
      assert.is_nil(query("SELECT 1 FROM later"))
      -- a person finishes the job by hand and says where the database is
      assert.are.equal(0, (H.run({"stamp", "bbbbbbbbbbb2"}, {dir = dir})))
      code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.are.equal("0\n", query("SELECT count(*) FROM later"))
    end)

    it("reports scripts edited or removed after they ran", function()
      local url = d.fresh()
      local revs = {
        {rev = "aaaaaaaaaaa1", up = [[op.create_table("t", {{"id", "integer", primary_key = true}})]]},
        {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", up = [[op.add_column("t", {"c", "text"})]]},
        {rev = "ccccccccccc3", down = "bbbbbbbbbbb2", up = [[op.add_column("t", {"d", "text"})]],
         down_code = [[op.drop_column("t", "d")]]},
      }
      local dir = H.project(url, revs)
      assert.are.equal(0, (H.run({"upgrade", "bbbbbbbbbbb2"}, {dir = dir})))
      local f = assert(io.open(dir .. "/migrations/0001_aaaaaaaaaaa1.lua", "a"))
      f:write("-- edited after it ran\n")
      f:close()
      local code, status = H.run({"status", "--json"}, {dir = dir})
      assert.are.equal(0, code)
      local st = require("dkjson").decode(status)
      assert.are.equal("aaaaaaaaaaa1", st.drifted[1].revision)
      assert.are.same({"ccccccccccc3"}, st.pending)
      code = H.run({"status", "--strict"}, {dir = dir})
      assert.are.equal(1, code)
      local err
      code, _, err = H.run({"upgrade", "head", "--strict"}, {dir = dir})
      assert.are.equal(1, code)
      assert.matches("0001_aaaaaaaaaaa1.lua of applied revision aaaaaaaaaaa1 changed", err)
      code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(0, code)
      assert.matches("warning: script .*0001_aaaaaaaaaaa1.lua", err)
      -- a removed head: status still answers, and names it
      assert.are.equal(0, (H.run({"downgrade", "-1"}, {dir = dir})))
      assert.are.equal(0, (H.run({"upgrade", "head"}, {dir = dir})))
      os.remove(dir .. "/migrations/0003_ccccccccccc3.lua")
      code, status = H.run({"status", "--json"}, {dir = dir})
      st = require("dkjson").decode(status)
      assert.are.same({"ccccccccccc3"}, st.missing)
      assert.is_string(st.pending_error)
    end)
  end)
end
