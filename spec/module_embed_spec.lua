-- module_embed_spec.lua - the module as tooling embeds it: one connection
-- per runner, callbacks that call back, the installed `require "luamig"`,
-- what history() returns and what misuse says.
local H = require "helpers"

local chain = {
  {rev = "aaaaaaaaaaa1", message = "create t",
   up = [[op.create_table("t", {{"id", "integer", primary_key = true}})]],
   down_code = [[op.drop_table("t")]]},
  {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", message = "add c",
   up = [[op.add_column("t", {"c", "text"})]],
   down_code = [[op.drop_column("t", "c")]]},
}

-- The message of an error raised by fn (which must raise).
local function raised(fn, ...)
  local ok, err = pcall(fn, ...)
  assert(not ok, "expected an error")
  return tostring(err)
end

insulate("a luamig runner", function()
  local luamig = require "luamig"

  describe("keeps one connection for its life", function()
    it("so an in-memory SQLite database remembers between calls", function()
      local dir = H.project("unused", chain)
      local m = assert(luamig.open{url = "sqlite://:memory:",
                                   script_location = dir .. "/migrations"})
      assert.are.same({"aaaaaaaaaaa1"}, assert(m:upgrade("aaaaaaaaaaa1")))
      assert.are.same({"aaaaaaaaaaa1"}, assert(m:current()))
      assert.are.same({"bbbbbbbbbbb2"}, assert(m:upgrade("head")))
      assert.are.same({"bbbbbbbbbbb2"}, assert(m:current()))
      assert.are.same({}, assert(m:upgrade("head")))
      assert.are.same({"bbbbbbbbbbb2"}, assert(m:downgrade("-1")))
      assert.are.same({"aaaaaaaaaaa1"}, assert(m:current()))
      assert.is_true(m:stamp("bbbbbbbbbbb2"))
      assert.are.same({"bbbbbbbbbbb2"}, assert(m:current()))
      m:close()
    end)

    it("and renders offline scripts from the scripts, not from it", function()
      local revs = {chain[1], {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1",
        up = [[op.add_column("t", {"c", "text"})
               op.alter_column("t", "c", {nullable = false})]]}}
      local dir = H.project("unused", revs)
      local m = assert(luamig.open{url = "sqlite://:memory:",
                                   script_location = dir .. "/migrations"})
      assert.are.same({}, assert(m:current()))   -- connected, at base
      -- The rebuild copies the table the script made, which the open
      -- database does not hold.
      local sql = assert(m:sql("upgrade", "base:head"))
      assert.matches("CREATE TABLE _lm_new_t %(\n\tid INTEGER NOT NULL, \n\tc TEXT NOT NULL", sql)
      assert.matches("INSERT INTO _lm_new_t %(id, c%) SELECT id, c FROM t", sql)
      assert.are.same({"aaaaaaaaaaa1", "bbbbbbbbbbb2"}, assert(m:upgrade("head")))
      assert.are.same({"bbbbbbbbbbb2"}, assert(m:current()))
      m:close()
    end)

    for _, d in ipairs(H.dialects) do
      it("so a session's temporary table outlives a command on " .. d.name, function()
        local url, query = d.fresh()
        local revs = {
          {rev = "aaaaaaaaaaa1",
           up = [[op.execute("CREATE TEMPORARY TABLE scratch (v integer)")
                  op.execute("INSERT INTO scratch (v) VALUES (41)")]]},
          {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1",
           up = [[op.create_table("kept", {{"v", "integer"}})
                  op.execute("INSERT INTO kept (v) SELECT v + 1 FROM scratch")]]},
        }
        local dir = H.project(url, revs)
        local m = assert(luamig.open{config = dir .. "/luamig.lua"})
        assert.are.same({"aaaaaaaaaaa1"}, assert(m:upgrade("aaaaaaaaaaa1")))
        assert.are.same({"bbbbbbbbbbb2"}, assert(m:upgrade("head")))
        m:close()
        assert.are.equal("42\n", query("SELECT v FROM kept"))
      end)

      it("and still lets the command line run between two calls on " .. d.name, function()
        local url, query = d.fresh()
        -- A schema-qualified version table on PostgreSQL: the lock must be
        -- released under the key it was taken with.
        local extra = "  lock_timeout = 1,\n" ..
                      (d.name == "postgresql" and "  version_table_schema = \"public\",\n" or "")
        local dir = H.project(url, chain, extra)
        local m = assert(luamig.open{config = dir .. "/luamig.lua"})
        assert.are.same({"aaaaaaaaaaa1"}, assert(m:upgrade("aaaaaaaaaaa1")))
        local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
        assert.are.equal(0, code, err)
        assert.are.same({"bbbbbbbbbbb2"}, assert(m:current()))
        local code, _, cli_err = H.run({"downgrade", "base"}, {dir = dir})
        assert.are.equal(0, code, cli_err)
        code, _, err = H.run({"upgrade", "aaaaaaaaaaa1"}, {dir = dir})
        assert.are.equal(0, code, err)
        assert.are.same({"aaaaaaaaaaa1"}, assert(m:current()))
        assert.are.same({"bbbbbbbbbbb2"}, assert(m:upgrade("head")))
        code, _, err = H.run({"downgrade", "base"}, {dir = dir})
        assert.are.equal(0, code, err)
        assert.are.same({}, assert(m:current()))
        m:close()
        assert.are.equal("", query("SELECT version_num FROM luamig_version"))
      end)
    end
  end)

  describe("called back from its own on_event", function()
    for _, d in ipairs(H.dialects) do
      it("answers read-only calls on " .. d.name, function()
        local url, query = d.fresh()
        local dir = H.project(url, chain)
        local m
        local seen = {}
        m = assert(luamig.open{config = dir .. "/luamig.lua", on_event = function(e)
          if e.kind ~= "migration_done" then return end
          seen[#seen + 1] = {rev = e.revision, current = assert(m:current()),
                             heads = assert(m:heads()), history = #assert(m:history())}
        end})
        assert.are.same({"aaaaaaaaaaa1", "bbbbbbbbbbb2"}, assert(m:upgrade("head")))
        assert.are.same({
          {rev = "aaaaaaaaaaa1", current = {"aaaaaaaaaaa1"}, heads = {"bbbbbbbbbbb2"}, history = 2},
          {rev = "bbbbbbbbbbb2", current = {"bbbbbbbbbbb2"}, heads = {"bbbbbbbbbbb2"}, history = 2},
        }, seen)
        assert.are.same({"bbbbbbbbbbb2"}, assert(m:current()))
        m:close()
        assert.are.equal("bbbbbbbbbbb2\n", query("SELECT version_num FROM luamig_version"))
      end)

      it("answers them during a backfill's batch writes on " .. d.name, function()
        local url, query = d.fresh()
        local revs = {
          {rev = "aaaaaaaaaaa1",
           up = [[op.create_table("p", {{"id", "integer", primary_key = true}, {"v", "integer"}})
                  local rows = {}
                  for i = 1, 1500 do rows[i] = {id = i} end
                  op.bulk_insert("p", rows)]]},
          {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1",
           up = [[op.backfill("p", {key = "id", columns = {"id"}, batch_size = 50},
                    function(row)
                      local t = os.clock() + 0.0008
                      while os.clock() < t do end
                      return {v = row.id * 2}
                    end)]]},
        }
        local dir = H.project(url, revs)
        local m
        local during = {}
        m = assert(luamig.open{config = dir .. "/luamig.lua", on_event = function(e)
          if e.kind == "progress" then during[#during + 1] = assert(m:current())[1] end
        end})
        assert.are.same({"aaaaaaaaaaa1", "bbbbbbbbbbb2"}, assert(m:upgrade("head")))
        m:close()
        assert.is_true(#during >= 1, "no progress event")
        for _, rev in ipairs(during) do assert.are.equal("aaaaaaaaaaa1", rev) end
        assert.are.equal("1500|0\n", query("SELECT count(*), sum(CASE WHEN v = id * 2 THEN 0 ELSE 1 END) FROM p"))
      end)

      it("refuses calls that would change it, clearly, on " .. d.name, function()
        local url, query = d.fresh()
        local dir = H.project(url, chain)
        local m
        local refused = {}
        local calls = {
          upgrade = function() return m:upgrade("head") end,
          downgrade = function() return m:downgrade("base") end,
          stamp = function() return m:stamp("aaaaaaaaaaa1") end,
          sql = function() return m:sql("upgrade", "base:head") end,
          close = function() return m:close() end,
        }
        m = assert(luamig.open{config = dir .. "/luamig.lua", on_event = function(e)
          if e.kind ~= "migration_done" or e.revision ~= "aaaaaaaaaaa1" then return end
          for name, call in pairs(calls) do
            local ok, err = pcall(call)
            refused[name] = not ok and tostring(err) or "not refused"
          end
        end})
        assert.are.same({"aaaaaaaaaaa1", "bbbbbbbbbbb2"}, assert(m:upgrade("head")))
        for name in pairs(calls) do
          assert.matches("m:" .. name .. "%(%) cannot be called from on_event while " ..
                         "m:upgrade%(%) runs", refused[name])
        end
        -- The runner is intact and its lock released: the command line can
        -- move the database, and the runner reads what it did.
        local code, _, err = H.run({"downgrade", "base"}, {dir = dir})
        assert.are.equal(0, code, err)
        assert.are.same({}, assert(m:current()))
        m:close()
        assert.are.equal("", query("SELECT version_num FROM luamig_version"))
      end)

      it("raises the callback's own error after the command on " .. d.name, function()
        local url, query = d.fresh()
        local dir = H.project(url, chain)
        local m
        m = assert(luamig.open{config = dir .. "/luamig.lua", on_event = function(e)
          if e.kind == "migration_done" then m:downgrade("base") end
        end})
        local err = raised(m.upgrade, m, "head")
        assert.matches("on_event raised an error during m:upgrade%(%)", err)
        assert.matches("the upgrade itself succeeded", err)
        assert.matches("m:downgrade%(%) cannot be called from on_event", err)
        assert.are.same({"bbbbbbbbbbb2"}, assert(m:current()))
        -- A callback that raises on every event: the failure beside it is
        -- reported too.
        local n = 0
        local m2 = assert(luamig.open{config = dir .. "/luamig.lua", on_event = function()
          n = n + 1
          error({n = n})
        end})
        local code, _, cli_err = H.run({"downgrade", "base"}, {dir = dir})
        assert.are.equal(0, code, cli_err)
        H.write(dir .. "/migrations/0002_bbbbbbbbbbb2.lua",
                H.script{rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", up = [[error("boom")]]})
        err = raised(m2.upgrade, m2, "head")
        assert.matches("on_event raised an error during m:upgrade%(%)", err)
        assert.matches("the upgrade itself failed: .*boom", err)
        assert.matches("table: 0x", err)
        m:close()
        m2:close()
        assert.are.equal("aaaaaaaaaaa1\n", query("SELECT version_num FROM luamig_version"))
      end)
    end
  end)

  it("lists in history() what history --json has", function()
    local revs = {
      {rev = "aaaaaaaaaaa1", message = "base"},
      {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", labels = {"left"}},
      {rev = "ccccccccccc3", down = "aaaaaaaaaaa1", depends = {"bbbbbbbbbbb2"}},
      {rev = "ddddddddddd4", down = {"bbbbbbbbbbb2", "ccccccccccc3"}},
    }
    local dir = H.project("sqlite:///" .. H.tempdir() .. "/h.db", revs)
    local m = assert(luamig.open{config = dir .. "/luamig.lua"})
    local by = {}
    for _, e in ipairs(assert(m:history())) do by[e.revision] = e end
    m:close()
    local code, json = H.run({"history", "--json"}, {dir = dir})
    assert.are.equal(0, code)
    for rev, e in pairs(by) do
      for _, key in ipairs({"is_head", "is_base", "is_branch_point", "is_merge_point"}) do
        assert.matches('"revision": "' .. rev .. '"[^}]*"' .. key .. '": ' .. tostring(e[key]),
                       json, nil, nil, rev .. " " .. key)
      end
    end
    assert.are.same({}, by.aaaaaaaaaaa1.depends_on)
    assert.are.same({"bbbbbbbbbbb2"}, by.ccccccccccc3.depends_on)
    assert.is_true(by.aaaaaaaaaaa1.is_base)
    assert.is_true(by.aaaaaaaaaaa1.is_branch_point)
    assert.is_false(by.aaaaaaaaaaa1.is_merge_point)
    assert.is_false(by.bbbbbbbbbbb2.is_base)
    assert.is_true(by.ddddddddddd4.is_merge_point)
    assert.is_true(by.ddddddddddd4.is_head)
    assert.is_false(by.ddddddddddd4.is_branch_point)
    assert.are.same({"left"}, by.bbbbbbbbbbb2.branch_labels)
  end)

  describe("on misuse", function()
    local dir = H.project("sqlite:///" .. H.tempdir() .. "/mis.db", chain)

    it("names the method and what is wrong", function()
      local m = assert(luamig.open{config = dir .. "/luamig.lua"})
      assert.matches("m:upgrade%(%): the target must be a string %(got table%)",
                     raised(m.upgrade, m, {}))
      assert.matches("m:downgrade%(%): the target must be a string %(got no value%)",
                     raised(m.downgrade, m))
      assert.matches("m:sql%(%): the command must be a string %(got boolean%)",
                     raised(m.sql, m, true, "head"))
      assert.matches("m:history%(%): the range must be a string %(got table%)",
                     raised(m.history, m, {}))
      assert.matches("m:stamp%(%): revision 2 must be a string %(got number%)",
                     raised(m.stamp, m, {"aaaaaaaaaaa1", 7}))
      assert.matches("m:stamp%(%): the options must be a table %(got string%)",
                     raised(m.stamp, m, "aaaaaaaaaaa1", "purge"))
      assert.matches("m:current%(%) must be called on a runner, as m:current%(%) %(got nil%)",
                     raised(m.current, nil))
      assert.matches("m:heads%(%) must be called on a runner, as m:heads%(%) %(got string%)",
                     raised(m.heads, "x"))
      m:close()
      assert.matches("m:history%(%): the runner is closed", raised(m.history, m))
      assert.matches("m:upgrade%(%): the runner is closed", raised(m.upgrade, m, "head"))
      -- nothing ran
      assert.is_nil(H.sqlite_query(dir .. "/mis.db", "SELECT * FROM luamig_version"))
    end)

    it("refuses an on_event that is not a function", function()
      for _, bad in ipairs({5, "print", {}, true}) do
        assert.matches("luamig.open: on_event must be a function %(got " .. type(bad) .. "%)",
                       raised(luamig.open, {config = dir .. "/luamig.lua", on_event = bad}))
      end
      local m = assert(luamig.open{config = dir .. "/luamig.lua", on_event = nil})
      m:close()
    end)
  end)
end)

describe("require \"luamig\" in a project", function()
  -- Debian's lua5.4 searches the system directories before ./?.lua: this
  -- is that path, with the temporary prefix in place of /usr/local.
  local function lua_paths(prefix)
    local share, lib = prefix .. "/share/lua/5.4", prefix .. "/lib/lua/5.4"
    return share .. "/?.lua;" .. share .. "/?/init.lua;" .. lib .. "/?.lua;" ..
           lib .. "/?/init.lua;./?.lua;./?/init.lua",
           prefix .. "/lib/x86_64-linux-gnu/lua/5.4/?.so;./?.so"
  end

  -- Run a Lua program with lua5.4 in dir; the sanitizer runtime stays
  -- preloaded for an instrumented module.  Returns exit code, output.
  local function lua_in(dir, path, cpath, program)
    local file = dir .. "/program.lua"
    H.write(file, program)
    local out = dir .. "/program.out"
    local ok, _, code = os.execute("cd " .. H.quote(dir) ..
      " && env -u LUA_PATH_5_4 -u LUA_CPATH_5_4 -u LUA_INIT -u LUA_INIT_5_4" ..
      " LUA_PATH=" .. H.quote(path) .. " LUA_CPATH=" .. H.quote(cpath) ..
      " lua5.4 program.lua >" .. H.quote(out) .. " 2>&1")
    return ok and 0 or code, H.read(out)
  end

  local program = [[
    local luamig = require "luamig"
    local m = assert(luamig.open{})   -- ./luamig.lua, the configuration
    print(table.concat(assert(m:upgrade("head")), ","))
    m:close()
  ]]

  it("finds the installed module before the project's luamig.lua", function()
    local build = H.bin:match("^(.*)/[^/]*$")
    local root = H.tempdir()
    local code = H.sh("make -s -o all install BUILD=" .. H.quote(build) .. " DESTDIR=" ..
                      H.quote(root) .. " PREFIX=/usr/local >" .. H.quote(root .. "/make.log") .. " 2>&1")
    assert.are.equal(0, code, H.read(root .. "/make.log"))
    local prefix = root .. "/usr/local"
    local path, cpath = lua_paths(prefix)
    local dir = H.project("sqlite:///app.db", chain)
    local out
    code, out = lua_in(dir, path, cpath, program)
    assert.are.equal(0, code, out)
    assert.are.equal("aaaaaaaaaaa1,bbbbbbbbbbb2\n", out)
    assert.are.equal("bbbbbbbbbbb2\n", H.sqlite_query(dir .. "/app.db", "SELECT version_num FROM luamig_version"))

    -- luamig.so alone on LUA_CPATH, as before, where no luamig.lua is in
    -- the way; and luamig.core, the module's own name, everywhere.
    local empty = H.tempdir()
    code, out = lua_in(empty, "./?.lua", cpath,
                       "print(require('luamig').version == require('luamig.core').version)")
    assert.are.equal(0, code, out)
    assert.are.equal("true\n", out)
  end)

  it("finds the module in a build tree as luamig.core", function()
    local build = H.bin:match("^(.*)/[^/]*$")
    local dir = H.project("sqlite:///app.db", chain)
    local code, out = lua_in(dir, "./?.lua;./?/init.lua", build .. "/?.so",
                             (program:gsub('require "luamig"', 'require "luamig.core"')))
    assert.are.equal(0, code, out)
    assert.are.equal("aaaaaaaaaaa1,bbbbbbbbbbb2\n", out)
  end)
end)
