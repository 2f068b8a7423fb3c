-- module_api_spec.lua - every method of the Lua module on both dialects,
-- loaded from the plain interpreter's state as a user's program would:
-- results as tables, nil and a message on expected failures, errors on
-- misuse, several runners in one state, a runner in a coroutine, <close>
-- and a runner collected without close.
local H = require "helpers"

local chain = {
  {rev = "aaaaaaaaaaa1", message = "create t",
   up = [[op.create_table("t", {{"id", "integer", primary_key = true}, {"name", "text"}})]],
   down_code = [[op.drop_table("t")]]},
  {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", message = "add c", labels = {"feature"},
   up = [[op.add_column("t", {"c", "text"})]],
   down_code = [[op.drop_column("t", "c")]]},
}

insulate("the luamig module's methods", function()
  local luamig = require "luamig.core"

  for _, d in ipairs(H.dialects) do
    describe("on " .. d.name, function()
      it("run every command and return what --json has", function()
        local url, query = d.fresh()
        local dir = H.project(url, chain)
        local events = {}
        local m <close> = assert(luamig.open{config = dir .. "/luamig.lua",
          on_event = function(e) events[#events + 1] = e end})
        assert.are.equal(d.name, m:dialect())
        assert.are.same({"bbbbbbbbbbb2"}, m:heads())

        local st = assert(m:status())
        assert.are.same({}, st.current)
        assert.are.same({"aaaaaaaaaaa1", "bbbbbbbbbbb2"}, st.pending)
        assert.are.same({}, st.drifted)
        assert.are.same({}, st.missing)
        assert.is_nil(st.dirty)
        assert.is_nil(st.lock)

        assert.are.same({"aaaaaaaaaaa1", "bbbbbbbbbbb2"}, assert(m:upgrade("head")))
        assert.are.same({"migration_start", "migration_done", "migration_start", "migration_done"},
                        {events[1].kind, events[2].kind, events[3].kind, events[4].kind})
        assert.are.equal("bbbbbbbbbbb2", events[4].revision)
        assert.is_number(events[4].duration)
        assert.is_true(events[4].duration >= 0 and events[4].duration < 60)
        assert.is_nil(events[3].duration)

        st = assert(m:status())
        assert.are.same({"bbbbbbbbbbb2"}, st.current)
        assert.are.same({}, st.pending)

        local shown = assert(m:show("feature"))
        assert.are.equal("bbbbbbbbbbb2", shown.revision)
        assert.are.same({"aaaaaaaaaaa1"}, shown.down_revisions)
        assert.are.same({"feature"}, shown.branch_labels)
        assert.are.equal("add c", shown.message)
        assert.is_true(shown.is_head)
        assert.are.equal("aaaaaaaaaaa1", assert(m:show("aaaa")).revision)

        assert.are.equal(1, assert(m:execute("INSERT INTO t (id, name) VALUES ($1, $2)", {1, "one"})))
        assert.are.equal(1, assert(m:execute("INSERT INTO t (id, name, c) VALUES ($1, $2, $3)",
                                             {n = 3, 2, "two", nil})))
        local rows = assert(m:query("SELECT id, name, c FROM t WHERE id >= $1 ORDER BY id", {1}))
        assert.are.equal(2, #rows)
        assert.are.equal(1, rows[1].id)
        assert.are.equal("one", rows[1].name)
        assert.are.equal("one", rows[1][2])
        assert.is_nil(rows[2].c)
        assert.are.equal("1|one|\n2|two|\n", query("SELECT id, name, c FROM t ORDER BY id"))

        assert.are.same({"bbbbbbbbbbb2"}, assert(m:downgrade("-1")))
        assert.are.equal("aaaaaaaaaaa1\n", query("SELECT version_num FROM luamig_version"))
        assert.is_true(assert(m:stamp("bbbbbbbbbbb2")))
        assert.are.same({"bbbbbbbbbbb2"}, m:current())
        assert.is_true(assert(m:stamp({"aaaaaaaaaaa1"}, {purge = true})))
        assert.are.equal("aaaaaaaaaaa1\n", query("SELECT version_num FROM luamig_version"))
        local sql = assert(m:sql("upgrade", "aaaaaaaaaaa1:bbbbbbbbbbb2"))
        assert.matches("ALTER TABLE t ADD COLUMN c", sql)
        assert.are.equal(2, #assert(m:history()))
      end)

      it("return nil and a message on expected failures", function()
        local url = d.fresh()
        local dir = H.project(url, chain)
        local m <close> = assert(luamig.open{config = dir .. "/luamig.lua"})
        local function fails(pattern, ok, msg)
          assert.is_nil(ok)
          assert.is_string(msg)
          assert.matches(pattern, msg)
        end
        fails("nosuchrev", m:show("nosuchrev"))
        fails("nosuchrev", m:upgrade("nosuchrev"))
        fails("nosuchrev", m:stamp("nosuchrev"))
        fails("no_such_table", m:query("SELECT * FROM no_such_table"))
        fails("no_such_table", m:execute("DELETE FROM no_such_table"))
        fails("FROM:TO", m:sql("downgrade", "base"))
        fails("unsupported database URL scheme .nosuch.", luamig.open{url = "nosuch://x", script_location = dir .. "/migrations"}:dialect())
        -- The runner is still usable after each.
        assert.are.same({"aaaaaaaaaaa1", "bbbbbbbbbbb2"}, assert(m:upgrade("head")))
      end)
    end)
  end

  it("raise on misuse, naming the method", function()
    local dir = H.project("sqlite:///" .. H.tempdir() .. "/m.db", chain)
    local m = assert(luamig.open{config = dir .. "/luamig.lua"})
    local function raises(pattern, fn)
      local ok, err = pcall(fn)
      assert.is_false(ok)
      assert.matches(pattern, tostring(err))
    end
    raises("m:show%(%): the revision must be a string", function() m:show({}) end)
    raises("m:execute%(%): the SQL must be a string", function() m:execute(nil) end)
    raises("m:query%(%): the parameters must be a table", function() m:query("SELECT 1", 5) end)
    raises("m:query%(%): parameter 1 must be", function() m:query("SELECT $1", {{}}) end)
    raises("m:status%(%) must be called on a runner", function() m.status(1) end)
    raises("m:dialect%(%) must be called on a runner", function() m.dialect() end)
    m:close()
    raises("m:status%(%): the runner is closed", function() m:status() end)
    raises("m:query%(%): the runner is closed", function() m:query("SELECT 1") end)
  end)

  for _, d in ipairs(H.dialects) do
    it("report each statement to on_event when asked, on " .. d.name, function()
      local url = d.fresh()
      local dir = H.project(url, chain)
      local stmts, plain = {}, {}
      local m <close> = assert(luamig.open{config = dir .. "/luamig.lua", statements = true,
        on_event = function(e) if e.kind == "statement" then stmts[#stmts + 1] = e end end})
      local n <close> = assert(luamig.open{config = H.project(d.fresh(), chain) .. "/luamig.lua",
        on_event = function(e) plain[#plain + 1] = e.kind end})
      assert(m:upgrade("+1"))
      assert(n:upgrade("+1"))
      local found
      for _, e in ipairs(stmts) do
        if e.message:match("CREATE TABLE t") then found = e end
      end
      assert.is_truthy(found)
      assert.are.equal("aaaaaaaaaaa1", found.revision)
      for _, kind in ipairs(plain) do assert.are_not.equal("statement", kind) end
    end)
  end

  it("write a new revision script with revision{}, as the command does", function()
    local dir = H.project("sqlite:///" .. H.tempdir() .. "/r.db", chain)
    local m <close> = assert(luamig.open{config = dir .. "/luamig.lua"})
    local r = assert(m:revision{message = "add index", branch_labels = {"ix"}})
    assert.matches("^%x%x%x%x%x%x%x%x%x%x%x%x$", r.revision)
    assert.are.same({"bbbbbbbbbbb2"}, r.down_revisions)
    assert.are.same({"ix"}, r.branch_labels)
    assert.are.equal("add index", r.message)
    assert.matches("/migrations/" .. r.revision .. "_add_index%.lua$", r.path)
    assert.is_truthy(H.read(r.path))
    assert.are.same({r.revision}, m:heads())
    local r2 = assert(m:revision{message = "on a", head = "aaaaaaaaaaa1", splice = true,
                                 rev_id = "ccccccccccc3", depends_on = "bbbb"})
    assert.are.equal("ccccccccccc3", r2.revision)
    assert.are.same({"aaaaaaaaaaa1"}, r2.down_revisions)
    assert.are.same({"bbbbbbbbbbb2"}, r2.depends_on)
    local ok, err = m:revision{message = "again", rev_id = "ccccccccccc3", head = "ix@head"}
    assert.is_nil(ok)
    assert.matches("ccccccccccc3 already exists", err)
    ok, err = m:revision{autogenerate = true}
    assert.is_nil(ok)
    assert.matches("no models file", err)
    assert.has_error(function() m:revision("msg") end,
                     "luamig: m:revision(): the options must be a table (got string)")
    assert.has_error(function() m:revision{depends_on = {true}} end,
                     "luamig: m:revision(): depends_on[1] must be a string (got boolean)")
    -- The command line sees the same scripts.
    local code, out = H.run({"-c", dir .. "/luamig.lua", "heads"})
    assert.are.equal(0, code)
    assert.matches(r.revision, out)
    assert.matches("ccccccccccc3", out)
  end)

  it("keep several runners on different databases in one state", function()
    local path = H.tempdir() .. "/a.db"
    local pg_url, pg_query = H.dialects[2].fresh()
    local a <close> = assert(luamig.open{config = H.project("sqlite:///" .. path, chain) .. "/luamig.lua"})
    local b <close> = assert(luamig.open{config = H.project(pg_url, chain) .. "/luamig.lua"})
    assert.are.same({"aaaaaaaaaaa1"}, assert(a:upgrade("+1")))
    assert.are.same({"aaaaaaaaaaa1", "bbbbbbbbbbb2"}, assert(b:upgrade("head")))
    assert.are.same({"aaaaaaaaaaa1"}, a:current())
    assert.are.same({"bbbbbbbbbbb2"}, b:current())
    assert.are.same({"sqlite", "postgresql"}, {a:dialect(), b:dialect()})
    assert.are.equal("aaaaaaaaaaa1\n", H.sqlite_query(path, "SELECT version_num FROM luamig_version"))
    assert.are.equal("bbbbbbbbbbb2\n", pg_query("SELECT version_num FROM luamig_version"))
  end)

  for _, d in ipairs(H.dialects) do
    it("is usable from a coroutine, between yields, on " .. d.name, function()
      local url, query = d.fresh()
      local dir = H.project(url, chain)
      local m <close> = assert(luamig.open{config = dir .. "/luamig.lua"})
      local co = coroutine.wrap(function()
        local first = assert(m:upgrade("+1"))
        coroutine.yield(first[1])
        local second = assert(m:upgrade("+1"))
        coroutine.yield(second[1])
        return "done"
      end)
      assert.are.equal("aaaaaaaaaaa1", co())
      assert.are.same({"aaaaaaaaaaa1"}, m:current())   -- the main thread, meanwhile
      assert.are.equal("bbbbbbbbbbb2", co())
      assert.are.equal("done", co())
      assert.are.equal("bbbbbbbbbbb2\n", query("SELECT version_num FROM luamig_version"))
    end)
  end

  it("closes a runner at the end of its <close> scope", function()
    local pg_url, pg_query = H.dialects[2].fresh()
    local dir = H.project(pg_url, chain)
    local name = pg_url:match("/([^/?]+)$")
    local count = "SELECT count(*) FROM pg_stat_activity WHERE datname = '" .. name .. "'"
    do
      local m <close> = assert(luamig.open{config = dir .. "/luamig.lua"})
      assert(m:upgrade("head"))
      assert.are.equal("1\n", pg_query(count .. " AND pid <> pg_backend_pid()"))
      assert.matches("open", tostring(m))
    end
    -- the server's backend ends shortly after its client hung up
    assert.is_true(H.wait_until(10, function()
      return pg_query(count .. " AND pid <> pg_backend_pid()") == "0\n"
    end))
  end)

  for _, d in ipairs(H.dialects) do
    it("frees the connection and the lock of a runner collected without close on " .. d.name, function()
      local url, query = d.fresh()
      local dir = H.project(url, chain, "  lock_timeout = 1,\n")
      -- The runner goes out of scope after a command, never closed: the
      -- collector closes its connection, and the lock its command took is
      -- free for the next runner.
      local seen
      do
        local m = assert(luamig.open{config = dir .. "/luamig.lua", on_event = function(e)
          if e.kind == "migration_done" then seen = e.revision end
        end})
        assert(m:upgrade("+1"))
      end
      collectgarbage()
      collectgarbage()
      assert.are.equal("aaaaaaaaaaa1", seen)
      if d.name == "postgresql" then
        local name = url:match("/([^/?]+)$")
        assert.is_true(H.wait_until(10, function()
          return query("SELECT count(*) FROM pg_stat_activity WHERE datname = '" ..
                       name .. "' AND pid <> pg_backend_pid()") == "0\n"
        end))
      end
      -- Another runner takes the lock within lock_timeout.
      local code, out, err = H.run({"-c", dir .. "/luamig.lua", "upgrade", "head"})
      assert.are.equal(0, code, err)
      assert.are.equal("bbbbbbbbbbb2\n", query("SELECT version_num FROM luamig_version"))
      assert.is_string(out)
    end)
  end
end)
