-- oom_spec.lua - running out of memory returns an error, never ends the
-- process: the n-th allocation of the core fails (luamig._test_fail_alloc,
-- a test hook), for every n from the first allocation of an upgrade to the
-- last, in a Lua interpreter of its own (so that a crash shows as a
-- signal).  Each failure is nil, a message saying "out of memory", the
-- code out_of_memory; the env then refuses everything but close; and the
-- database is left consistent: at a revision whose schema it has.
local H = require "helpers"

local revisions = {
  {rev = "aaaaaaaaaaa1", up = [[
    op.create_table("t", {{"id", "integer", primary_key = true}, {"v", "text"}})
    op.execute("INSERT INTO t (id, v) VALUES (1, 'x')")]]},
  {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", up = [[
    op.add_column("t", {"w", "integer"})
    op.create_index("ix_t_v", "t", {"v"})]]},
}

-- The child: argv config, reset SQL, has-t SQL, has-w SQL, mode.  One line
-- per n: n|result|message|after|current|t|w.
local child = [[
package.path = package.path:gsub("%./%?%.lua;?", "")   -- not ./luamig.lua
local luamig = require "luamig"
local config, reset, has_t, has_w, mode = arg[1], arg[2], arg[3], arg[4], arg[5]
local function count(m, sql)
  local rows = assert(m:query(sql))
  return tostring(rows[1].n)
end
for n = 1, 5000 do
  local r = assert(luamig.open{config = config})
  assert(r:execute(reset))
  r:close()
  local result, msg, after = "ok", "", ""
  if mode == "open" then
    luamig._test_fail_alloc(n)
    local m, emsg, code, info = luamig.open{config = config}
    luamig._test_fail_alloc(0)
    if m then
      m:close()
    else
      result, msg = tostring(code) .. "/" .. tostring(info.code), emsg
    end
  else
    local m = assert(luamig.open{config = config})
    luamig._test_fail_alloc(n)
    local ok, emsg, code = m:upgrade("head")
    luamig._test_fail_alloc(0)
    if not ok then
      result, msg = tostring(code), emsg
      local _, _, acode = m:current()
      after = tostring(acode)
    end
    m:close()
  end
  local m = assert(luamig.open{config = config})
  local cur = table.concat(assert(m:current()), ",")
  local t = count(m, has_t)
  local w = t == "1" and count(m, has_w) or "0"
  m:close()
  print(table.concat({n, result, (msg:gsub("[|\n]", " ")), after, cur, t, w}, "|"))
  io.stdout:flush()
  if result == "ok" then break end
end
]]

local queries = {
  sqlite = {
    reset = "DROP TABLE IF EXISTS t; DROP TABLE IF EXISTS luamig_version; DROP TABLE IF EXISTS luamig_log",
    t = "SELECT count(*) AS n FROM sqlite_master WHERE name = 't'",
    w = "SELECT count(*) AS n FROM pragma_table_info('t') WHERE name = 'w'",
  },
  postgresql = {
    reset = "DROP SCHEMA public CASCADE; CREATE SCHEMA public",
    t = "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = 'public' AND table_name = 't'",
    w = "SELECT count(*) AS n FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 't' AND column_name = 'w'",
  },
}

-- Run the child; its lines as records, and how it ended.
local function sweep(d, mode)
  local url = d.fresh()
  local dir = H.project(url, revisions)
  H.write(dir .. "/child.lua", child)
  local q = queries[d.name]
  local lua = os.getenv("LUA") or "lua5.4"
  -- os.execute, not H.sh: under ASan the interpreter needs the preload.
  local cmd = "cd " .. H.quote(dir) .. " && LUA_CPATH=" .. H.quote(os.getenv("LUAMIG_CPATH") or "build/?.so") ..
              " " .. lua .. " child.lua luamig.lua " .. H.quote(q.reset) .. " " .. H.quote(q.t) .. " " ..
              H.quote(q.w) .. " " .. mode .. " >out.txt 2>err.txt"
  local ok, how, code = os.execute(cmd)
  local records = {}
  for line in (H.read(dir .. "/out.txt") or ""):gmatch("[^\n]+") do
    local n, result, msg, after, cur, t, w = line:match("^(%d+)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$")
    records[#records + 1] = {n = tonumber(n), result = result, msg = msg, after = after,
                             cur = cur, t = t, w = w}
  end
  return records, ok, how, code, H.read(dir .. "/err.txt")
end

for _, d in ipairs(H.dialects) do
  describe("running out of memory on " .. d.name, function()
    it("every allocation of an upgrade failing in turn: an error, a consistent database", function()
      local records, ok, how, code, err = sweep(d, "upgrade")
      assert.are.same({true, "exit", 0}, {ok, how, code}, err)
      assert.is_true(#records > 10)
      assert.are.equal("ok", records[#records].result)
      local unwound, returned = 0, 0
      for i = 1, #records - 1 do
        local r = records[i]
        assert.are.equal(i, r.n)
        assert.are.equal("out_of_memory", r.result, "n = " .. r.n .. ": " .. r.msg)
        assert.matches("out of memory", r.msg)
        -- the env is spent: only close works
        assert.are.equal("out_of_memory", r.after, "n = " .. r.n)
        -- the database is at a revision whose schema it has
        local shape = ({[""] = "00", aaaaaaaaaaa1 = "10", bbbbbbbbbbb2 = "11"})[r.cur]
        assert.are.equal(shape, r.t .. r.w, "n = " .. r.n .. " at " .. r.cur)
        if r.msg:match("failed and was rolled back: .*out of memory") then
          unwound = unwound + 1
        elseif r.msg == "out of memory" then
          returned = returned + 1
        end
      end
      -- both ways are taken: a Lua error through a script, and the return
      -- to the entry
      assert.is_true(unwound > 0)
      assert.is_true(returned > 0)
      assert.are.equal("bbbbbbbbbbb2", records[#records].cur)
      assert.are.equal("11", records[#records].t .. records[#records].w)
    end)

    it("every allocation of luamig.open failing in turn: nil, out of memory", function()
      local records, ok, how, code, err = sweep(d, "open")
      assert.are.same({true, "exit", 0}, {ok, how, code}, err)
      assert.is_true(#records > 3)
      assert.are.equal("ok", records[#records].result)
      for i = 1, #records - 1 do
        assert.are.equal("out_of_memory/out_of_memory", records[i].result, records[i].msg)
        assert.matches("out of memory", records[i].msg)
        assert.are.equal("", records[i].cur)
      end
    end)
  end)
end
