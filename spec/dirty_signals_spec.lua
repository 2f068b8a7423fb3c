-- dirty_signals_spec.lua - the dirty mark and what clears it (a stamp of
-- the real revision, accepted checksums), SIGKILL, SIGINT and SIGTERM
-- during non-transactional scripts and backfills, a signal during a long
-- C call, and COMMIT or ROLLBACK in a script's own SQL.
local H = require "helpers"

local spawn, wait_pid, wait_for = H.spawn, H.wait_pid, H.wait_for

-- Start the binary in the background under a shell that records its exit
-- code; returns its pid, its stderr file and a function waiting for that
-- code.
local function run_bg(args, dir, tag)
  local base = H.tempdir() .. "/" .. tag
  local rcfile = base .. ".rc"
  local out, err = base .. ".out", base .. ".err"
  local parts = {"cd", H.quote(dir), "&&"}
  if H.asan then parts[#parts + 1] = "LD_PRELOAD= ASAN_OPTIONS=detect_leaks=1:exitcode=99" end
  parts[#parts + 1] = H.quote(H.bin)
  for _, a in ipairs(args) do parts[#parts + 1] = H.quote(a) end
  parts[#parts + 1] = ">" .. out .. " 2>" .. err .. " </dev/null & pid=$!; echo $pid; wait $pid; echo $? >" .. rcfile
  local f = H.popen("sh -c " .. H.quote(table.concat(parts, " ")) .. " &")
  local pid = tonumber(f:read("l"))
  f:close()
  return pid, err, function()
    local deadline = os.time() + 20
    while os.time() <= deadline do
      local s = H.read(rcfile)
      if s and s:match("%d") then return tonumber(s:match("%d+")) end
      H.sh("sleep 0.05")
    end
  end
end

-- A slow statement per dialect, about `tenths` tenths of a second.
local function slow(dialect, tenths)
  if dialect == "postgresql" then
    return string.format([[op.execute("SELECT pg_sleep(%g)")]], tenths / 10)
  end
  return string.format([[op.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < %d) SELECT count(*) FROM c")]],
                       tenths * 1000000)
end

local base = {rev = "aaaaaaaaaaa1", message = "counter",
              up = [[op.create_table("counter", {{"id", "integer", primary_key = true}, {"n", "integer"}})
                     op.execute("INSERT INTO counter (id, n) VALUES (1, 0)")
                     op.create_table("rows", {{"id", "integer", primary_key = true}})]]}

for _, d in ipairs(H.dialects) do
  describe("dirty mark on " .. d.name, function()
    it("a stamp of the revision the database is at clears it, and says so", function()
      local url, query = d.fresh()
      local dir = H.project(url, {base,
        {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", extra = "  transactional = false,\n",
         up = [[op.execute("UPDATE counter SET n = n + 1")
                if not op.x.fixed then error("boom") end
                op.execute("INSERT INTO rows (id) VALUES (2)")]]}})
      local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(1, code)
      assert.matches("marked dirty", err)
      local _, status = H.run({"status"}, {dir = dir})
      assert.matches("Dirty: upgrade of bbbbbbbbbbb2 failed", status)
      -- the person undoes the half-done UPDATE and says where the database is
      assert(query("UPDATE counter SET n = 0"))
      local scode, sout, serr = H.run({"stamp", "aaaaaaaaaaa1"}, {dir = dir})
      assert.are.equal(0, scode, serr)
      assert.matches("dirty mark is cleared.*aaaaaaaaaaa1", (sout or "") .. serr)
      local _, status2 = H.run({"status"}, {dir = dir})
      assert.matches("Dirty: no", status2)
      code, _, err = H.run({"-x", "fixed=1", "upgrade", "head"}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.are.equal("1\n", query("SELECT n FROM counter"))
      assert.are.equal("2\n", query("SELECT id FROM rows"))
      assert.are.equal("bbbbbbbbbbb2\n", query("SELECT version_num FROM luamig_version"))
    end)

    it("stamp base clears a mark left by the first revision", function()
      local url, query = d.fresh()
      local dir = H.project(url, {{rev = "aaaaaaaaaaa1", extra = "  transactional = false,\n",
        up = [[op.create_table("t", {{"id", "integer", primary_key = true}})
               error("boom")]]}})
      assert.are.equal(1, (H.run({"upgrade", "head"}, {dir = dir})))
      assert(query("DROP TABLE t"))
      local code, _, err = H.run({"stamp", "base"}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.matches("dirty mark is cleared: the database is recorded at base", err)
      local scode, status = H.run({"status"}, {dir = dir})
      assert.are.equal(0, scode, status)
      assert.matches("Dirty: no", status)
    end)

    it("stamp --accept-checksums records an edited script's checksum and who accepted it", function()
      local url, query = d.fresh()
      local dir = H.project(url, {base}, "  strict_checksums = true,\n")
      assert.are.equal(0, (H.run({"upgrade", "head"}, {dir = dir})))
      local path = dir .. "/migrations/0001_aaaaaaaaaaa1.lua"
      H.write(path, H.read(path) .. "-- a comment added later\n")
      local _, status = H.run({"status"}, {dir = dir})
      assert.matches("Drifted scripts: 1", status)
      -- naming a revision whose script did not change is refused, nothing written
      local code, _, err = H.run({"stamp", "--accept-checksums", "zzzz"}, {dir = dir})
      assert.are.equal(1, code)
      code, _, err = H.run({"stamp", "--accept-checksums", "--purge", "aaaa"}, {dir = dir})
      assert.are.equal(2, code, err)
      code, _, err = H.run({"stamp", "--accept-checksums", "aaaa"}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.matches("Accepted the edited script", err)
      local _, status2 = H.run({"status"}, {dir = dir})
      assert.matches("Drifted scripts: 0", status2)
      local f = H.popen("sha256sum " .. H.quote(path))
      local sum = f:read("a"):match("^(%x+)")
      f:close()
      local row = query("SELECT checksum, run_by, status FROM luamig_log WHERE direction = 'accept'")
      assert.matches("^" .. sum .. "|[^|]+@[^|]+|ok\n$", row)
      code, _, err = H.run({"stamp", "--accept-checksums", "aaaa"}, {dir = dir})
      assert.are.equal(1, code)
      assert.matches("nothing to accept for aaaaaaaaaaa1", err)
      -- strict_checksums lets upgrade run again
      assert.are.equal(0, (H.run({"upgrade", "head"}, {dir = dir})))
    end)

    it("SIGKILL during a non-transactional script leaves it dirty", function()
      local url, query = d.fresh()
      local dir = H.project(url, {base,
        {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", extra = "  transactional = false,\n",
         up = [[op.execute("UPDATE counter SET n = n + 1")
                io.stderr:write("updated\n")
                ]] .. slow(d.name, 200)}})
      assert.are.equal(0, (H.run({"upgrade", "aaaaaaaaaaa1"}, {dir = dir})))
      local pid, _, err = spawn({"upgrade", "head"}, dir, "k9" .. d.name)
      assert.is_true(wait_for(err, "updated", 20))
      H.sh("kill -9 " .. pid)
      assert.is_true(wait_pid(pid, 10))
      local scode, status = H.run({"status"}, {dir = dir})
      assert.are.equal(1, scode)
      assert.matches("Dirty: upgrade of bbbbbbbbbbb2 started outside a transaction", status)
      local code, _, err2 = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(1, code)
      assert.matches("the database is dirty", err2)
      assert.are.equal("1\n", query("SELECT n FROM counter"))
    end)

    it("SIGKILL at random points: every run after refuses (dirty) or the script ran once", function()
      local outcomes = {}
      for run = 1, 5 do
        local url, query = d.fresh()
        local dir = H.project(url, {base,
          {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", extra = "  transactional = false,\n",
           up = [[op.execute("UPDATE counter SET n = n + 1")
                  ]] .. slow(d.name, 2) .. [[
                  op.execute("INSERT INTO rows (id) VALUES (1)")
                  ]] .. slow(d.name, 2) .. [[
                  op.bulk_insert("rows", {{id = 2}, {id = 3}})]]}})
        assert.are.equal(0, (H.run({"upgrade", "aaaaaaaaaaa1"}, {dir = dir})))
        local pid = spawn({"upgrade", "head"}, dir, "rk" .. d.name .. run)
        H.sh(string.format("sleep %.3f", math.random() * 1.1))
        H.sh("kill -9 " .. pid .. " 2>/dev/null")
        assert.is_true(wait_pid(pid, 10))
        local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
        local n = query("SELECT n FROM counter")
        local rows = query("SELECT count(*) FROM rows")
        if code == 0 then
          assert.are.equal("1\n", n, err)
          assert.are.equal("3\n", rows, err)
          outcomes[#outcomes + 1] = "once"
        else
          assert.are.equal(1, code)
          assert.matches("the database is dirty", err)
          assert.are.equal("aaaaaaaaaaa1\n", query("SELECT version_num FROM luamig_version"))
          assert.is_true(n == "0\n" or n == "1\n", n)
          outcomes[#outcomes + 1] = "dirty"
        end
      end
      assert.are.equal(5, #outcomes)
    end)

    for _, sig in ipairs({{"INT", 130}, {"TERM", 143}}) do
      it("SIG" .. sig[1] .. " during a long C call at a script's end is not committed", function()
        local url, query = d.fresh()
        local dir = H.project(url, {{rev = "aaaaaaaaaaa1",
          up = [[op.create_table("t", {{"id", "integer", primary_key = true}})
                 io.stderr:write("calling\n")
                 local hit = ("a"):rep(250):find(".-.-.-b")]]}})
        local pid, err, wait = run_bg({"upgrade", "head"}, dir, "cc" .. sig[1] .. d.name)
        assert.is_true(wait_for(err, "calling", 20))
        H.sh("sleep 0.2")
        H.sh("kill -" .. sig[1] .. " " .. pid)
        local code = wait()
        assert.are.equal(sig[2], code, H.read(err))
        assert.matches("interrupted by SIG" .. sig[1], H.read(err))
        assert.are.equal("0\n", query("SELECT count(*) FROM luamig_version"))
        assert.is_nil(query("SELECT 1 FROM t"))
      end)
    end

    it("SIGINT during a commit_every backfill leaves it resumable, not dirty", function()
      local url, query = d.fresh()
      local dir = H.project(url, {
        {rev = "aaaaaaaaaaa1", up = [[op.create_table("items", {{"id", "integer", primary_key = true}, {"n", "integer"}})
                                      local rows = {}
                                      for i = 1, 6000 do rows[i] = {id = i, n = 0} end
                                      op.bulk_insert("items", rows)]]},
        {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", extra = "  transactional = false,\n",
         up = [[local said = false
                op.backfill("items", {batch_size = 50, commit_every = 100}, function(row)
                  if not said then io.stderr:write("filling\n") said = true end
                  for _ = 1, 20000 do end
                  return {n = row.n + 1}
                end)]]}})
      assert.are.equal(0, (H.run({"upgrade", "aaaaaaaaaaa1"}, {dir = dir})))
      local pid, err, wait = run_bg({"upgrade", "head"}, dir, "bf" .. d.name)
      assert.is_true(wait_for(err, "filling", 20))
      H.sh("sleep 0.6")
      H.sh("kill -INT " .. pid)
      assert.are.equal(130, wait(), H.read(err))
      local text = H.read(err)
      assert.matches("interrupted by SIGINT", text)
      assert.not_matches("marked dirty", text)
      local _, status = H.run({"status"}, {dir = dir})
      assert.matches("Dirty: no", status)
      local done = tonumber(query("SELECT count(*) FROM items WHERE n = 1"))
      assert.is_true(done > 0 and done < 6000, tostring(done))
      local code, _, err2 = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(0, code, err2)
      assert.matches("resuming after", err2)
      assert.are.equal("6000\n", query("SELECT count(*) FROM items WHERE n = 1"))
    end)

    for _, caught in ipairs({false, true}) do
      it("a ROLLBACK in a script's SQL fails the migration" .. (caught and ", even caught by pcall" or "") ..
         "; nothing is committed", function()
        local url, query = d.fresh()
        local call = caught and [[pcall(op.execute, "ROLLBACK")]] or [[op.execute("ROLLBACK")]]
        local dir = H.project(url, {{rev = "aaaaaaaaaaa1",
          up = [[op.create_table("t", {{"id", "integer", primary_key = true}})
                 ]] .. call .. [[
                 op.create_table("u", {{"id", "integer", primary_key = true}})]]}})
        local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
        assert.are.equal(1, code)
        assert.matches("ended by the script's own SQL", err)
        assert.matches("rolled back", err)
        assert.are.equal("0\n", query("SELECT count(*) FROM luamig_version"))
        assert.is_nil(query("SELECT 1 FROM t"))
        assert.is_nil(query("SELECT 1 FROM u"))
        local _, status = H.run({"status"}, {dir = dir})
        assert.matches("Dirty: no", status)
      end)
    end

    it("a COMMIT in a script's SQL, then an error, leaves the database dirty", function()
      local url, query = d.fresh()
      local dir = H.project(url, {{rev = "aaaaaaaaaaa1",
        up = [[op.create_table("t", {{"id", "integer", primary_key = true}})
               op.execute("COMMIT")
               error("later")]]}})
      local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(1, code)
      assert.matches("ended by the script's own SQL", err)
      assert.matches("marked dirty", err)
      assert.not_matches("rolled back", err)
      assert.are.equal("0\n", query("SELECT count(*) FROM t"))
      assert.are.equal("0\n", query("SELECT count(*) FROM luamig_version"))
      local scode, status = H.run({"status"}, {dir = dir})
      assert.are.equal(1, scode)
      assert.matches("Dirty: upgrade of aaaaaaaaaaa1", status)
      code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(1, code)
      assert.matches("the database is dirty", err)
    end)
  end)
end

describe("a lost PostgreSQL connection during a non-transactional backfill", function()
  it("says one true thing: the database is marked dirty", function()
    local url, dbname = H.pg_fresh()
    local dir = H.project(url, {
      {rev = "aaaaaaaaaaa1", up = [[op.create_table("items", {{"id", "integer", primary_key = true}, {"n", "integer"}})
                                    op.execute("INSERT INTO items SELECT g, 0 FROM generate_series(1, 4000) g")
                                    op.create_table("flag", {{"id", "integer", primary_key = true}})]]},
      {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", extra = "  transactional = false,\n",
       up = [[op.execute("INSERT INTO flag (id) VALUES (1)")
              local said = false
              op.backfill("items", {batch_size = 50, commit_every = 100}, function(row)
                if not said then io.stderr:write("filling\n") said = true end
                for _ = 1, 20000 do end
                return {n = row.n + 1}
              end)]]}})
    assert.are.equal(0, (H.run({"upgrade", "aaaaaaaaaaa1"}, {dir = dir})))
    local pid, err, wait = run_bg({"upgrade", "head"}, dir, "pglost")
    assert.is_true(wait_for(err, "filling", 20))
    H.sh("sleep 0.3")
    assert(H.psql(H.pg_url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity " ..
                  "WHERE datname = '" .. dbname .. "' AND application_name = 'luamig'"))
    assert.are.equal(1, wait())
    local text = H.read(err)
    assert.matches("marked dirty", text)
    assert.not_matches("could not record the dirty state", text)
    local scode, status = H.run({"status"}, {dir = dir})
    assert.are.equal(1, scode)
    assert.matches("Dirty: upgrade of bbbbbbbbbbb2", status)
  end)
end)
