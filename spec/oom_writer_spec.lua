-- oom_writer_spec.lua - memory running out on a backfill's writer thread
-- (the batch writes run beside the Lua loop) fails the write and rolls the
-- migration back; it never ends the process.  The n-th allocation of the
-- writer thread fails (luamig._test_fail_alloc(n, true) counts the other
-- threads' only), for each n until the upgrade gets through, in an
-- interpreter of its own, so that an exit or a crash shows.
local H = require "helpers"

local rows = 200

local revisions = {
  {rev = "aaaaaaaaaaa1", up = [[
    op.create_table("t", {{"id", "integer", primary_key = true}, {"v", "integer"}})
    local batch = {}
    for i = 1, ]] .. rows .. [[ do batch[#batch + 1] = {id = i} end
    op.bulk_insert("t", batch)]],
   down_code = [[op.drop_table("t")]]},
  {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", up = [[
    op.backfill("t", {batch_size = 10}, function(row) return {v = row.id * 2} end)]]},
}

-- The child: argv config.  One line per n: n|result|message|current|filled.
local child = [[
package.path = package.path:gsub("%./%?%.lua;?", "")   -- not ./luamig.lua
local luamig = require "luamig"
local config = arg[1]
for n = 1, 20000 do
  local m = assert(luamig.open{config = config})
  assert(m:downgrade("base"))
  assert(m:upgrade("aaaaaaaaaaa1"))
  luamig._test_fail_alloc(n, true)
  local ok, msg, code = m:upgrade("head")
  luamig._test_fail_alloc(0)
  m:close()
  local r = assert(luamig.open{config = config})
  local cur = table.concat(assert(r:current()), ",")
  local filled = assert(r:query("SELECT count(*) AS n FROM t WHERE v = id * 2"))[1].n
  r:close()
  local result = ok and "ok" or tostring(code)
  print(table.concat({n, result, (tostring(msg or ""):gsub("[|\n]", " ")), cur, filled}, "|"))
  io.stdout:flush()
  if ok then break end
end
]]

for _, d in ipairs(H.dialects) do
  describe("memory running out while a backfill writes on " .. d.name, function()
    it("fails the migration with out_of_memory and leaves it unapplied, never ending the process", function()
      local url = d.fresh()
      local dir = H.project(url, {revisions[1], {rev = revisions[2].rev, down = revisions[2].down,
                                                  up = revisions[2].up,
                                                  down_code = "op.execute('UPDATE t SET v = NULL')"}})
      H.write(dir .. "/child.lua", child)
      local lua = os.getenv("LUA") or "lua5.4"
      -- os.execute, not H.sh: under ASan the interpreter needs the preload.
      local ok, how, code = os.execute("cd " .. H.quote(dir) .. " && LUA_CPATH=" ..
        H.quote(os.getenv("LUAMIG_CPATH") or "build/?.so") .. " " .. lua ..
        " child.lua luamig.lua >out.txt 2>err.txt")
      local err = H.read(dir .. "/err.txt") or ""
      assert.are.same({true, "exit", 0}, {ok, how, code}, err)
      local records = {}
      for line in (H.read(dir .. "/out.txt") or ""):gmatch("[^\n]+") do
        local n, result, msg, cur, filled = line:match("^(%d+)|([^|]*)|([^|]*)|([^|]*)|([^|]*)$")
        records[#records + 1] = {n = tonumber(n), result = result, msg = msg, cur = cur,
                                 filled = tonumber(filled)}
      end
      assert.is_true(#records > 1)
      local last = records[#records]
      assert.are.equal("ok", last.result)
      assert.are.equal("bbbbbbbbbbb2", last.cur)
      assert.are.equal(rows, last.filled)
      for i = 1, #records - 1 do
        local r = records[i]
        assert.are.equal("out_of_memory", r.result, "n = " .. r.n .. ": " .. r.msg)
        assert.matches("out of memory", r.msg)
        -- the backfill rolled back with its migration
        assert.are.equal("aaaaaaaaaaa1", r.cur, "n = " .. r.n .. ": " .. r.msg)
        assert.are.equal(0, r.filled, "n = " .. r.n)
      end
    end)
  end)
end
