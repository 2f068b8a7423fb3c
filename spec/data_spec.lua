-- data_spec.lua - data migrations on both dialects: op.execute and
-- op.query type round trips, op.bulk_insert, op.backfill (composite keys,
-- skipped rows, errors, rollback, commit_every resuming after a killed
-- run) and what --sql says about them.
local H = require "helpers"

-- Scripts report Lua values by writing them to a file (-x out=PATH):
-- one line per row, "column=type:value", strings in hex.
local SER = [[
    local function ser(v)
      if v == op.null then return "null" end
      if type(v) == "string" then
        return "string:" .. v:gsub(".", function(c) return string.format("%02x", c:byte()) end)
      end
      return (math.type(v) or type(v)) .. ":" .. tostring(v)
    end
    local out = assert(io.open(op.x.out, "a"))
    local function emit(row)
      local t = {}
      for k, v in pairs(row) do t[#t + 1] = k .. "=" .. ser(v) end
      table.sort(t)
      out:write(table.concat(t, " "), "\n")
    end
]]

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function upgrade(dir, out, extra_args)
  local args = {"-x", "out=" .. out}
  for _, a in ipairs(extra_args or {}) do args[#args + 1] = a end
  args[#args + 1] = "upgrade"
  args[#args + 1] = "head"
  return H.run(args, {dir = dir})
end

local PERSONS = [[
    op.create_table("persons", {{"id", "integer", primary_key = true},
                                {"first_name", "string"}, {"last_name", "string"},
                                {"full_name", "string"}})
]]

for _, d in ipairs(H.dialects) do
  local pg = d.name == "postgresql"

  describe("data migrations on " .. d.name, function()
    local url, query, dir, out

    before_each(function()
      url, query = d.fresh()
      out = H.tempdir() .. "/out.txt"
    end)

    local function project(up, extra)
      dir = H.project(url, {{rev = "aaaaaaaaaaa1", up = up, extra = extra}})
    end

    it("round-trips types through op.execute and op.query", function()
      project([[
    op.create_table("types", {{"id", "integer", primary_key = true}, {"i", "bigint"},
      {"f", "float"}, {"b", "boolean"}, {"t", "text"}, {"bin", "binary"},
      {"num", "numeric(30,10)"}})
    local ins = "INSERT INTO types (id, i, f, b, t, bin, num) VALUES ($1, $2, $3, $4, $5, $6, $7)"
    assert(op.execute(ins, {1, math.maxinteger, 1.5, true, "h\u{e9}llo w\u{f6}rld \u{2713} \u{1f389}",
                            "\0\1\2\255\254", "12345678901234567890.0123456789"}) == 1)
    assert(op.execute(ins, {2, math.mininteger, -0.25, false, "", "", "-1.5"}) == 1)
    assert(op.execute(ins, table.pack(3, op.null, nil, op.null, nil, op.null, nil)) == 1)
    assert(op.execute("UPDATE types SET t = t WHERE id >= $1", {2}) == 2)
]] .. SER .. [[
    for row in op.query("SELECT * FROM types ORDER BY id") do emit(row) end
    out:close()
]])
      local code, _, err = upgrade(dir, out)
      assert.are.equal(0, code, err)
      local rows = H.lines(H.read(out))
      local b1, b0 = pg and "boolean:true" or "integer:1", pg and "boolean:false" or "integer:0"
      local num1 = pg and "string:" .. hex("12345678901234567890.0123456789") or "float:1.2345678901235e+19"
      local num2 = pg and "string:" .. hex("-1.5000000000") or "float:-1.5"
      assert.are.same({
        "b=" .. b1 .. " bin=string:000102fffe f=float:1.5 i=integer:9223372036854775807 id=integer:1 " ..
          "num=" .. num1 .. " t=string:" .. hex("h\u{e9}llo w\u{f6}rld \u{2713} \u{1f389}"),
        "b=" .. b0 .. " bin=string: f=float:-0.25 i=integer:-9223372036854775808 id=integer:2 " ..
          "num=" .. num2 .. " t=string:",
        "b=null bin=null f=null i=null id=integer:3 num=null t=null",
      }, rows)
    end)

    it("streams a query larger than one fetch, stops early on break, and takes parameters", function()
      project(PERSONS .. [[
    local i = 0
    op.bulk_insert("persons", function()
      i = i + 1
      if i <= 2500 then return {id = i, first_name = "f" .. i} end
    end)
    local n, sum = 0, 0
    for row in op.query("SELECT id FROM persons WHERE id > $1 ORDER BY id", {500}) do
      n = n + 1
      sum = sum + row.id
    end
    assert(n == 2000 and sum == (501 + 2500) * 2000 // 2, n .. " " .. sum)
    for row in op.query("SELECT id FROM persons ORDER BY id") do
      if row.id == 10 then break end
    end
    local leaked = op.query("SELECT id FROM persons ORDER BY id")
    assert(leaked().id == 1)
    local cnt = 0
    for _ in op.query(op.text("SELECT 1 AS one FROM persons")) do cnt = cnt + 1 end
    assert(cnt == 2500)
]])
      local code, _, err = upgrade(dir, out)
      assert.are.equal(0, code, err)
      assert.are.equal("2500\n", query("SELECT count(*) FROM persons"))
    end)

    it("bulk-inserts lists and generators, escaping what COPY would read", function()
      project([[
    op.create_table("t", {{"id", "integer", primary_key = true}, {"s", "text"},
                          {"bin", "binary"}, {"f", "float"}})
    local weird = "tab\there\nnew line\\back\\\\slash \\N \\. \r end \u{1f600}"
    assert(op.bulk_insert("t", {{id = 1, s = weird, bin = "\0\t\n\\\255"},
                                {id = 2, s = op.null, f = 2.5},
                                {id = 3, s = "\\N"}}) == 3)
    assert(op.bulk_insert("t", {}) == 0)
]] .. SER .. [[
    for row in op.query("SELECT id, s, bin, f FROM t ORDER BY id") do emit(row) end
    out:close()
]])
      local code, _, err = upgrade(dir, out)
      assert.are.equal(0, code, err)
      local rows = H.lines(H.read(out))
      assert.are.equal("bin=string:00090a5cff f=null id=integer:1 s=string:" ..
        hex("tab\there\nnew line\\back\\\\slash \\N \\. \r end \u{1f600}"), rows[1])
      assert.are.equal("bin=null f=float:2.5 id=integer:2 s=null", rows[2])
      assert.are.equal("bin=null f=null id=integer:3 s=string:" .. hex("\\N"), rows[3])
    end)

    it("streams a bulk insert across chunks while its generator uses the connection", function()
      project(PERSONS .. [[
    local i = 0
    local n = op.bulk_insert("persons", function()
      i = i + 1
      if i > 12000 then return nil end
      -- Queries from inside the generator see every row sent before them.
      if i == 7001 or i == 11000 or i == 11001 then
        local seen = op.query("SELECT count(*) AS n FROM persons")()
        assert(seen.n == i - 1, "saw " .. tostring(seen.n) .. " rows before row " .. i)
        op.execute("UPDATE persons SET full_name = $1 WHERE id = $2", {"checked", i - 1})
      end
      return {id = i, first_name = "F" .. i}
    end)
    assert(n == 12000, n)
]])
      local code, _, err = upgrade(dir, out)
      assert.are.equal(0, code, err)
      assert.are.equal("12000|12000\n", query("SELECT count(*), max(id) FROM persons"))
      assert.are.equal("7000\n10999\n11000\n", query("SELECT id FROM persons WHERE full_name = 'checked' ORDER BY id"))
    end)

    it("names the row a bulk insert failed on, chunks into the stream, and keeps nothing", function()
      project(PERSONS .. [[
    local i = 0
    op.bulk_insert("persons", function()
      i = i + 1
      if i > 9000 then return nil end
      return {id = i == 8765 and 17 or i, first_name = "F" .. i}
    end)
]])
      local code, _, err = upgrade(dir, out)
      assert.are.equal(1, code)
      assert.matches("0001_aaaaaaaaaaa1.lua:%d+: bulk insert into persons", err)
      if pg then
        assert.matches("duplicate key", err)
        assert.matches("COPY persons, line 8765", err, 1, true)
      else
        assert.matches("row 8765: ", err, 1, true)
        assert.matches("UNIQUE constraint failed: persons.id", err, 1, true)
      end
      assert.is_nil(query("SELECT count(*) FROM persons"))
    end)

    it("refuses bulk-insert rows naming a column the table lacks", function()
      project(PERSONS .. [[
    op.bulk_insert("persons", {{id = 1, first_name = "a"}, {id = 2, frist_name = "b"}})
]])
      local code, _, err = upgrade(dir, out)
      assert.are.equal(1, code)
      assert.matches("0001_aaaaaaaaaaa1.lua:%d+: [^\n]*frist_name", err)
      assert.is_nil(query("SELECT count(*) FROM persons"))
      -- A generator's columns are its first row's (or opts.columns).
      url, query = d.fresh()
      project(PERSONS .. [[
    local rows = {{id = 1, first_name = "a"}, {id = 2, last_name = "b"}}
    local i = 0
    op.bulk_insert("persons", function() i = i + 1; return rows[i] end)
]])
      code, _, err = upgrade(dir, out)
      assert.are.equal(1, code)
      assert.matches("bulk_insert: row 2 has a value for last_name, which is not among the " ..
                     "columns (first_name, id): give them all in opts.columns", err, 1, true)
    end)

    it("backfills with the function per row, skipping rows it returns nil for", function()
      project(PERSONS .. [[
    local rows = {}
    for i = 1, 2345 do
      rows[i] = {id = i, first_name = "F" .. i, last_name = (i % 10 == 0) and op.null or ("L" .. i)}
    end
    op.bulk_insert("persons", rows)
    local r = op.backfill("persons", {columns = {"first_name", "last_name"}, batch_size = 100},
      function(row)
        if row.last_name == op.null then return nil end
        return {full_name = row.first_name .. " " .. row.last_name}
      end)
    assert(r.read == 2345 and r.updated == 2111 and r.skipped == 234,
           r.read .. " " .. r.updated .. " " .. r.skipped)
]])
      local code, _, err = upgrade(dir, out)
      assert.are.equal(0, code, err)
      assert.matches("backfill persons: 2,345 rows read, 2,111 updated, 234 skipped in", err)
      assert.are.equal("2111\n", query("SELECT count(*) FROM persons WHERE full_name = " ..
                                       "first_name || ' ' || last_name"))
      assert.are.equal("234\n", query("SELECT count(*) FROM persons WHERE full_name IS NULL"))
    end)

    it("backfills over a composite key, in either order, with where and per-row column sets", function()
      project([[
    op.create_table("m", {{"a", "integer", nullable = false}, {"b", "string", nullable = false},
                          {"x", "integer"}, {"y", "string"}, {"z", "binary"}},
                    {constraints = {{"primary_key", {"a", "b"}}}})
    local rows = {}
    for a = 1, 30 do
      for _, b in ipairs({"p", "q", "r\u{e9}", "it's"}) do
        rows[#rows + 1] = {a = a, b = b, x = a}
      end
    end
    op.bulk_insert("m", rows)
    local seen = {}
    local r = op.backfill("m", {key = {"a", "b"}, batch_size = 7, where = "x > 2"}, function(row)
      local k = row.a .. "/" .. row.b
      assert(not seen[k], "row seen twice: " .. k)
      seen[k] = true
      if row.a % 2 == 0 then return {y = row.b .. row.a} end
      return {x = row.x * 100, z = "\0" .. row.b}
    end)
    assert(r.read == 112 and r.updated == 112, r.read .. " " .. r.updated)
    local order = {}
    op.backfill("m", {key = {"a", "b"}, order = "desc", batch_size = 5, columns = {"a"}},
      function(row) order[#order + 1] = row.a .. row.b end)
    assert(order[1] == "30r\u{e9}" and order[#order] == "1it's" and #order == 120, order[1] .. " " .. #order)
]])
      local code, _, err = upgrade(dir, out)
      assert.are.equal(0, code, err)
      assert.are.equal("2|p|2|\n", query("SELECT a, b, x, coalesce(y, '') FROM m WHERE a = 2 AND b = 'p'"))
      assert.are.equal("4|it's|4|it's4\n", query("SELECT a, b, x, y FROM m WHERE a = 4 AND b = 'it''s'"))
      assert.are.equal("3|q|300|\n", query("SELECT a, b, x, coalesce(y, '') FROM m WHERE a = 3 AND b = 'q'"))
      local zlen = pg and "SELECT length(z) FROM m WHERE a = 5 AND b = 'q'"
                      or "SELECT length(CAST(z AS BLOB)) FROM m WHERE a = 5 AND b = 'q'"
      assert.are.equal("2\n", query(zlen))
      assert.are.equal("1|p|1|\n", query("SELECT a, b, x, coalesce(y, '') FROM m WHERE a = 1 AND b = 'p'"))
    end)

    it("counts only the rows it wrote when the function moves rows of its own batch", function()
      project(PERSONS .. [[
    local rows = {}
    for i = 1, 120 do rows[i] = {id = i, first_name = "F" .. i, last_name = "L" .. i} end
    op.bulk_insert("persons", rows)
    local r = op.backfill("persons", {batch_size = 50}, function(row)
      -- Row 10 moves row 5, already read in this batch, past the end.
      if row.id == 10 then op.execute("UPDATE persons SET id = 1005 WHERE id = 5") end
      return {full_name = "N" .. row.id}
    end)
    assert(r.read == 121 and r.updated == 120, r.read .. " " .. r.updated)
]])
      local code, _, err = upgrade(dir, out)
      assert.are.equal(0, code, err)
      assert.are.equal("N1005\n", query("SELECT full_name FROM persons WHERE id = 1005"))
      assert.are.equal("120\n", query("SELECT count(*) FROM persons WHERE full_name = 'N' || id"))
    end)

    it("lets the function see every earlier batch written, and reports a failed write", function()
      project(PERSONS .. [[
    local rows = {}
    for i = 1, 300 do rows[i] = {id = i, first_name = "F" .. i, last_name = "L" .. i} end
    op.bulk_insert("persons", rows)
    op.backfill("persons", {batch_size = 50}, function(row)
      if row.id % 50 == 20 then
        -- Batches before this one are written, this one is not.
        local done
        for r in op.query("SELECT count(*) AS n FROM persons WHERE full_name IS NOT NULL") do
          done = r.n
        end
        assert(done == row.id - 20, "row " .. row.id .. " saw " .. tostring(done))
      end
      return {full_name = "N" .. row.id}
    end)
    -- A query opened before the backfill and read from its function.
    local firsts = op.query("SELECT id, first_name FROM persons ORDER BY id")
    local r = op.backfill("persons", {batch_size = 40}, function(row)
      local f = firsts()
      assert(f.id == row.id, "query row " .. tostring(f.id) .. " with backfill row " .. row.id)
      return {last_name = f.first_name}
    end)
    assert(r.updated == 300 and firsts() == nil)
    op.create_check_constraint("ck_short", "persons", "length(full_name) < 6")
    op.backfill("persons", {batch_size = 50}, function(row)
      return {full_name = row.id == 77 and "much too long" or "S"}
    end)
]])
      local code, _, err = upgrade(dir, out)
      assert.are.equal(1, code)
      assert.matches("backfill persons: [^\n]*ck_short", err)
      assert.not_matches("the function failed", err)
      assert.is_nil(query("SELECT count(*) FROM persons"))
    end)

    it("names the row's key when the function fails, and rolls the migration back", function()
      project(PERSONS .. [[
    local rows = {}
    for i = 1, 500 do rows[i] = {id = i, first_name = "F" .. i, last_name = "L" .. i} end
    op.bulk_insert("persons", rows)
    op.backfill("persons", {batch_size = 50}, function(row)
      if row.id == 321 then error("no name for this one") end
      return {full_name = row.first_name}
    end)
]])
      local code, _, err = upgrade(dir, out)
      assert.are.equal(1, code)
      assert.matches("backfill persons: the function failed on the row with id = 321: " ..
                     "[^\n]*0001_aaaaaaaaaaa1.lua:%d+: no name for this one", err)
      assert.matches("rolled back", err)
      assert.is_nil(query("SELECT count(*) FROM persons"))
      assert.are.equal("", query("SELECT version_num FROM luamig_version"))
    end)

    it("leaves the data untouched when a later step of the migration fails", function()
      dir = H.project(url, {
        {rev = "aaaaaaaaaaa1", up = PERSONS .. [[
    op.bulk_insert("persons", {{id = 1, first_name = "A", last_name = "B"},
                               {id = 2, first_name = "C", last_name = "D"}})]]},
        {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", up = [[
    op.backfill("persons", {}, function(row) return {full_name = "x"} end)
    op.execute("SELECT * FROM no_such_table")]]},
      })
      local code, _, err = upgrade(dir, out)
      assert.are.equal(1, code)
      assert.matches("no_such_table", err)
      assert.are.equal("2|0\n", query("SELECT count(*), count(full_name) FROM persons"))
    end)

    it("checks its arguments", function()
      local cases = {
        {[[op.backfill("persons", {key = 5}, function() end)]], "backfill: key must be a column name"},
        {[[op.backfill("persons", {}, "f")]], "backfill: the third argument must be a function"},
        {[[op.backfill("persons", {batch_size = 0}, function() end)]], "backfill: batch_size must be at least 1"},
        {[[op.backfill("persons", {bogus = 1}, function() end)]], "backfill: unknown option 'bogus'"},
        {[[op.backfill("persons", {order = "up"}, function() end)]], "backfill: order must be"},
        {[[op.backfill("persons", {}, function() return 5 end)]], "must return a table of column = new value"},
        {[[op.backfill("persons", {}, function() return {id = 9} end)]], "cannot change the key column id"},
        {[[op.backfill("persons", {}, function() return {full_name = {}} end)]],
         "backfill: the value for column full_name must be"},
        {[[op.backfill("persons", {}, function() return {nope = 1} end)]], "nope"},
        {[[op.backfill("persons", {commit_every = 10}, function() end)]], "commit_every needs a script with transactional = false"},
        {[[op.query(42)]], "query: the SQL must be a string"},
        {[[op.query("SELECT 1", 7)]], "query: parameters must be a table"},
        {[[op.query("SELECT $1", {{}})]], "query: parameter $1 must be"},
        {[[op.bulk_insert("persons", 3)]], "bulk_insert: rows must be a list of tables"},
        {[[op.bulk_insert("persons", {5})]], "bulk_insert: row 1 must be a table"},
        {[[op.bulk_insert("persons", {{id = 1}, 7})]], "bulk_insert: row 2 must be a table"},
        {[[op.bulk_insert("persons", {{id = function() end}})]], "bulk_insert: the value for column id must be"},
        {[[op.bulk_insert("persons", {{id = 1}}, {columns = 3})]], "bulk_insert: columns must be a list"},
      }
      for _, c in ipairs(cases) do
        url, query = d.fresh()
        project(PERSONS .. [[
    op.execute("INSERT INTO persons (id, first_name) VALUES (1, 'a')")
    ]] .. c[1])
        local code, _, err = upgrade(dir, out)
        assert.are.equal(1, code, c[1])
        assert.matches(c[2], err, 1, true)
        assert.matches("0001_aaaaaaaaaaa1.lua:%d+:", err)
      end
    end)

    it("commits every N rows and resumes after a killed run", function()
      dir = H.project(url, {
        {rev = "aaaaaaaaaaa1", up = PERSONS .. [[
    for i = 1, 1000 do
      op.execute("INSERT INTO persons (id, first_name, last_name) VALUES ($1, $2, '0')", {i, "F" .. i})
    end]]},
        {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", extra = "  transactional = false,", up = [[
    local crash = tonumber(op.x.crash or "")
    op.backfill("persons", {batch_size = 64, commit_every = 100}, function(row)
      if row.id == crash then os.execute("kill -9 $PPID") end   -- killed mid-batch
      return {last_name = tostring(tonumber(row.last_name) + 1)}
    end)]]},
      })
      local code, _, err = upgrade(dir, out, {"-x", "crash=457"})
      assert.are_not.equal(0, code, err)
      -- 400 rows were committed with the position; the rest rolled back.
      assert.are.equal("400\n", query("SELECT count(*) FROM persons WHERE last_name = '1'"))
      assert.are.equal("aaaaaaaaaaa1\n", query("SELECT version_num FROM luamig_version"))
      assert.matches("^bbbbbbbbbbb2|persons|i3:400|400", query(
        "SELECT revision, name, last_key, rows_read FROM luamig_backfill"))
      code, _, err = upgrade(dir, out)
      assert.are.equal(0, code, err)
      assert.matches("resuming after id = 400 %(400 rows read by an earlier run%)", err)
      assert.matches("backfill persons: 600 rows read, 600 updated", err)
      -- Every row was changed exactly once.
      assert.are.equal("1000\n", query("SELECT count(*) FROM persons WHERE last_name = '1'"))
      assert.are.equal("", query("SELECT * FROM luamig_backfill"))
      assert.are.equal("bbbbbbbbbbb2\n", query("SELECT version_num FROM luamig_version"))
    end)

    it("runs a backfill in a transactional = false script as one transaction without commit_every", function()
      dir = H.project(url, {{rev = "aaaaaaaaaaa1", extra = "  transactional = false,", up = PERSONS .. [[
    op.bulk_insert("persons", {{id = 1, first_name = "A"}, {id = 2, first_name = "B"}})
    op.backfill("persons", {}, function(row)
      if row.id == 2 then error("stop") end
      return {full_name = "x"}
    end)]]}})
      local code, _, err = upgrade(dir, out)
      assert.are.equal(1, code)
      assert.matches("id = 2", err)
      -- The table was created outside a transaction; the rows and the
      -- backfill's batch were rolled back together.
      assert.are.equal("0\n", query("SELECT count(*) FROM persons WHERE full_name IS NOT NULL"))
    end)

    it("refuses op.query and op.backfill under --sql, telling how to guard them", function()
      project(PERSONS .. [[
    op.bulk_insert("persons", {{id = 1, first_name = "it's"}})
    if not op.offline then
      for _ in op.query("SELECT 1") do end
    end
    op.backfill("persons", {}, function() end)
]])
      local code, sql, err = H.run({"upgrade", "head", "--sql"}, {dir = dir})
      assert.are.equal(1, code)
      assert.matches("op.backfill cannot run in an offline (--sql) script", err, 1, true)
      assert.matches("if not op.offline then ... end", err, 1, true)
      project(PERSONS .. [[
    op.bulk_insert("persons", {{id = 1, first_name = "it's"}, {id = 2}})
    if not op.offline then
      for _ in op.query("SELECT 1") do end
    end
]])
      code, sql, err = H.run({"upgrade", "head", "--sql"}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.matches("INSERT INTO persons %(first_name, id%) VALUES %('it''s', 1%);", sql)
      assert.matches("INSERT INTO persons %(first_name, id%) VALUES %(NULL, 2%);", sql)
    end)
  end)
end
