-- module_spec.lua - require "luamig" from Lua tooling.
local H = require "helpers"

local chain = {
  {rev = "aaaaaaaaaaa1", message = "create t",
   up = [[op.create_table("t", {{"id", "integer", primary_key = true}})]],
   down_code = [[op.drop_table("t")]]},
  {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", message = "add c",
   up = [[op.add_column("t", {"c", "text"})]],
   down_code = [[op.drop_column("t", "c")]]},
}

insulate("the luamig module", function()
  local luamig = require "luamig"

  for _, d in ipairs(H.dialects) do
    it("upgrades, reports and downgrades on " .. d.name, function()
      local url, query = d.fresh()
      local dir = H.project(url, chain)
      local events = {}
      local m = assert(luamig.open{config = dir .. "/luamig.lua",
                                   on_event = function(e) events[#events + 1] = e end})
      assert.are.same({}, assert(m:current()))
      assert.are.same({"aaaaaaaaaaa1", "bbbbbbbbbbb2"}, assert(m:upgrade("head")))
      assert.are.same({"bbbbbbbbbbb2"}, m:current())
      assert.are.same({"bbbbbbbbbbb2"}, m:heads())
      local hist = m:history()
      assert.are.equal("bbbbbbbbbbb2", hist[1].revision)
      assert.are.same({"aaaaaaaaaaa1"}, hist[1].down_revisions)
      assert.are.equal("create t", hist[2].message)
      assert.are.equal(4, #events)
      assert.are.equal("migration_start", events[1].kind)
      assert.are.equal("migration_done", events[2].kind)
      assert.are.equal("aaaaaaaaaaa1", events[2].revision)
      assert.are.same({"bbbbbbbbbbb2"}, assert(m:downgrade("-1")))
      assert.are.equal("aaaaaaaaaaa1\n", query("SELECT version_num FROM luamig_version"))
      assert.are.same({}, m:upgrade("aaaaaaaaaaa1"))
      m:close()
      m:close()   -- closing twice is harmless
      assert.has_error(function() m:current() end)
    end)
  end

  it("returns nil and a message on expected failures", function()
    local dir = H.project("sqlite:///" .. H.tempdir() .. "/m.db", chain)
    local m = assert(luamig.open{config = dir .. "/luamig.lua"})
    local ok, err = m:upgrade("nonexistent")
    assert.is_nil(ok)
    assert.matches("nonexistent", err)
    local r, e = luamig.open{config = dir .. "/nope.lua"}
    assert.is_nil(r)
    assert.matches("not found", e)
    m:close()
  end)

  it("raises on misuse", function()
    assert.has_error(function() luamig.open("x") end)
    assert.has_error(function() luamig.open{url = 42} end)
    local dir = H.project("sqlite:///" .. H.tempdir() .. "/m.db", chain)
    local m = assert(luamig.open{config = dir .. "/luamig.lua"})
    assert.has_error(function() m:upgrade({}) end)
    assert.has_error(function() m.upgrade(nil, "head") end)
    m:close()
  end)

  it("renders the offline script as a string", function()
    local dir = H.project("sqlite:///" .. H.tempdir() .. "/m.db", chain)
    local m = assert(luamig.open{config = dir .. "/luamig.lua"})
    local sql = assert(m:sql("upgrade", "base:head"))
    assert.matches("CREATE TABLE t", sql)
    assert.matches("ALTER TABLE t ADD COLUMN c TEXT", sql)
    m:close()
  end)

  it("shares the run lock with the command line", function()
    local path = H.tempdir() .. "/lock.db"
    local slow = {{rev = "aaaaaaaaaaa1",
      up = [[op.create_table("t", {{"id", "integer", primary_key = true}})
             io.stderr:write("started\n")
             op.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000000) SELECT count(*) FROM c")]]}}
    local dir = H.project("sqlite:///" .. path, slow, "  lock_timeout = 1,\n")
    local err = dir .. "/cli.err"
    local f = H.popen("cd " .. H.quote(dir) .. " && (" .. (H.asan and "LD_PRELOAD= " or "") ..
                      "exec " .. H.quote(H.bin) .. " upgrade head >/dev/null 2>" .. err .. ") & echo $!")
    local pid = f:read("l")
    f:close()
    local deadline = os.time() + 20
    while not (H.read(err) or ""):find("started") and os.time() < deadline do H.sh("sleep 0.05") end
    local m = assert(luamig.open{config = dir .. "/luamig.lua"})
    local ok, msg = m:upgrade("head")
    m:close()
    H.sh("kill -TERM " .. pid)
    assert.is_nil(ok)
    assert.matches("holds the lock", msg)
    assert.matches("pid " .. pid, msg)
  end)

  it("works with url and script_location instead of a config file", function()
    local dir = H.project("unused", chain)
    local path = H.tempdir() .. "/direct.db"
    local m = assert(luamig.open{url = "sqlite:///" .. path,
                                 script_location = dir .. "/migrations"})
    assert.are.same({"aaaaaaaaaaa1", "bbbbbbbbbbb2"}, assert(m:upgrade("heads")))
    m:close()
    assert.are.equal("bbbbbbbbbbb2\n", H.sqlite_query(path, "SELECT version_num FROM luamig_version"))
  end)
end)
