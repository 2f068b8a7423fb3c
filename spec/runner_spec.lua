-- runner_spec.lua - upgrade, downgrade, the version table and the log,
-- and atomicity on failure, on SQLite files and on PostgreSQL.
local H = require "helpers"

local chain = {
  {rev = "aaaaaaaaaaa1", message = "create persons",
   up = [[op.create_table("persons", {{"id", "integer", primary_key = true},
                                      {"name", "string(50)", nullable = false}})]],
   down_code = [[op.drop_table("persons")]]},
  {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", message = "add email",
   up = [[op.add_column("persons", {"email", "string", nullable = true})
          op.execute("INSERT INTO persons (name, email) VALUES ($1, $2)", {"Ada", "ada@example.org"})]],
   down_code = [[op.drop_column("persons", "email")]]},
  {rev = "ccccccccccc3", down = "bbbbbbbbbbb2", message = "create rotations",
   up = [[op.create_table("rotations", {{"id", "integer", primary_key = true},
                                        {"person_id", "integer", references = "persons.id"}})]],
   down_code = [[op.drop_table("rotations")]]},
}

for _, d in ipairs(H.dialects) do
  describe("runner on " .. d.name, function()
    local url, query, dir

    before_each(function()
      url, query = d.fresh()
      dir = H.project(url, chain)
    end)

    it("upgrades to head, records the head and logs each migration", function()
      local code, out, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.matches("Running upgrade  %-> aaaaaaaaaaa1, create persons", err)
      assert.matches("Running upgrade bbbbbbbbbbb2 %-> ccccccccccc3", err)
      assert.are.equal("ccccccccccc3\n", query("SELECT version_num FROM luamig_version"))
      assert.are.equal("Ada|ada@example.org\n", query("SELECT name, email FROM persons"))
      local log = H.lines(query("SELECT revision, direction, length(checksum), status " ..
                                "FROM luamig_log ORDER BY id"))
      assert.are.same({"aaaaaaaaaaa1|upgrade|64|ok", "bbbbbbbbbbb2|upgrade|64|ok",
                       "ccccccccccc3|upgrade|64|ok"}, log)
      code, out = H.run({"current"}, {dir = dir})
      assert.are.equal(0, code)
      assert.are.equal("ccccccccccc3 (head)\n", out)
    end)

    it("checksums in the log are the SHA-256 of the script files", function()
      assert.are.equal(0, (H.run({"upgrade", "aaaaaaaaaaa1"}, {dir = dir})))
      local f = H.popen("sha256sum " .. H.quote(dir .. "/migrations/0001_aaaaaaaaaaa1.lua"))
      local sum = f:read("a"):match("^(%x+)")
      f:close()
      assert.are.equal(sum .. "\n", query("SELECT checksum FROM luamig_log"))
    end)

    it("steps up and down with relative targets", function()
      assert.are.equal(0, (H.run({"upgrade", "+2"}, {dir = dir})))
      assert.are.equal("bbbbbbbbbbb2\n", query("SELECT version_num FROM luamig_version"))
      assert.are.equal(0, (H.run({"downgrade", "-1"}, {dir = dir})))
      assert.are.equal("aaaaaaaaaaa1\n", query("SELECT version_num FROM luamig_version"))
      assert.is_nil(query("SELECT email FROM persons"))
      assert.are.equal(0, (H.run({"upgrade", "head"}, {dir = dir})))
      assert.are.equal(0, (H.run({"downgrade", "base"}, {dir = dir})))
      assert.are.equal("", query("SELECT version_num FROM luamig_version"))
      assert.is_nil(query("SELECT 1 FROM persons"))
      local dirs = query("SELECT direction, count(*) FROM luamig_log GROUP BY direction ORDER BY direction")
      assert.are.equal("downgrade|4\nupgrade|4\n", dirs)
    end)

    it("a second upgrade head has nothing to do", function()
      assert.are.equal(0, (H.run({"upgrade", "head"}, {dir = dir})))
      local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(0, code)
      assert.not_matches("Running upgrade", err)
      assert.are.equal("3\n", query("SELECT count(*) FROM luamig_log"))
    end)

    it("rolls back a failing migration with its version change", function()
      local bad = {
        chain[1],
        {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", message = "half done",
         up = [[op.create_table("half", {{"id", "integer", primary_key = true}})
                op.execute("INSERT INTO half (id) VALUES (1)")
                op.execute("INSERT INTO no_such_table VALUES (1)")]]},
      }
      dir = H.project(url, bad)
      local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(1, code)
      assert.matches("upgrade bbbbbbbbbbb2", err)
      assert.matches("0002_bbbbbbbbbbb2.lua:%d+:", err)
      assert.matches("no_such_table", err)
      assert.matches("INSERT INTO no_such_table VALUES %(1%)", err)
      if d.name == "postgresql" then assert.matches("SQLSTATE 42P01", err) end
      assert.are.equal("aaaaaaaaaaa1\n", query("SELECT version_num FROM luamig_version"))
      assert.is_nil(query("SELECT 1 FROM half"))
      assert.are.equal("1\n", query("SELECT count(*) FROM luamig_log"))
    end)

    it("a Lua error names the script file and line", function()
      local bad = {
        {rev = "aaaaaaaaaaa1", up = "local x = nil\n    x.field = 1"},
      }
      dir = H.project(url, bad)
      local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(1, code)
      assert.matches("0001_aaaaaaaaaaa1%.lua:%d+: attempt to index", err)
      assert.are.equal("0\n", query("SELECT count(*) FROM luamig_version"))
    end)

    it("transaction_per_migration = false runs everything in one transaction", function()
      local bad = {
        chain[1],
        {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", up = [[op.execute("SELECT * FROM nothing_here")]]},
      }
      dir = H.project(url, bad, "  transaction_per_migration = false,\n")
      local code = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(1, code)
      -- the first migration was rolled back with the second
      assert.is_nil(query("SELECT 1 FROM persons"))
      assert.are.equal("0\n", query("SELECT count(*) FROM luamig_version"))
    end)

    it("passes -x values to scripts as op.x", function()
      dir = H.project(url, {{rev = "aaaaaaaaaaa1",
        up = [[op.create_table(op.x.table, {{"id", "integer", primary_key = true}})]]}})
      local code, _, err = H.run({"-x", "table=from_x", "upgrade", "head"}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.are.equal("0\n", query("SELECT count(*) FROM from_x"))
    end)

    it("stamps without running and logs the stamp", function()
      local code, _, err = H.run({"stamp", "bbbbbbbbbbb2"}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.are.equal("bbbbbbbbbbb2\n", query("SELECT version_num FROM luamig_version"))
      assert.is_nil(query("SELECT 1 FROM persons"))
      assert.are.equal("bbbbbbbbbbb2|stamp\n", query("SELECT revision, direction FROM luamig_log"))
      assert.are.equal(0, (H.run({"stamp", "--purge", "aaaaaaaaaaa1"}, {dir = dir})))
      assert.are.equal("aaaaaaaaaaa1\n", query("SELECT version_num FROM luamig_version"))
    end)

    it("ensure_version creates the version table and nothing else", function()
      assert.are.equal(0, (H.run({"ensure_version"}, {dir = dir})))
      assert.are.equal("0\n", query("SELECT count(*) FROM luamig_version"))
      assert.is_nil(query("SELECT 1 FROM persons"))
    end)

    it("adopts an Alembic database through version_table = alembic_version", function()
      dir = H.project(url, chain, '  version_table = "alembic_version",\n')
      assert.are.equal(0, (H.run({"upgrade", "+1"}, {dir = dir})))
      assert.are.equal("aaaaaaaaaaa1\n", query("SELECT version_num FROM alembic_version"))
    end)
  end)
end
