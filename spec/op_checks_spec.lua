-- op_checks_spec.lua - op arguments that C would silently change are
-- refused with a message that names them: a NUL byte inside a name (a C
-- string ends there), and portable types whose arguments are out of range.
-- Each refused migration leaves the database without the table it named.
local H = require "helpers"

local function tables(d, query)
  if d.name == "sqlite" then
    return query("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'luamig%' ORDER BY 1")
  end
  return query("SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace " ..
               "AND relkind = 'r' AND relname NOT LIKE 'luamig%' ORDER BY 1")
end

-- Run one migration `up` on a fresh database: code, stderr, tables after.
local function migrate(d, up)
  local url, query = d.fresh()
  local dir = H.project(url, {{rev = "aaaaaaaaaaa1", up = up}})
  local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
  return code, err, tables(d, query), query
end

for _, d in ipairs(H.dialects) do
  describe("op argument checks on " .. d.name, function()
    local refused = {
      {"a table name", [[op.create_table("x\0y", {{"id", "integer"}})]],
       "create_table: the table name must not contain a NUL byte"},
      {"a column name", [[op.create_table("x", {{"i\0d", "integer"}})]],
       "create_table: the column name must not contain a NUL byte"},
      {"a referenced table", [[op.create_table("x", {{"id", "integer", references = "p\0q.id"}})]],
       "create_table: references must not contain a NUL byte"},
      {"a constraint's columns", [[op.create_table("x", {{"id", "integer"}},
          {constraints = {{"unique", {"i\0d"}}}})]],
       "create_table: constraint columns must not contain a NUL byte"},
      {"an index column", [[op.create_table("x", {{"id", "integer"}})
          op.create_index("ix_x", "x", {"i\0d"})]],
       "create_index: a column must not contain a NUL byte"},
      {"an added column", [[op.create_table("x", {{"id", "integer"}})
          op.add_column("x", {"n\0o", "text"})]],
       "add_column: the column name must not contain a NUL byte"},
      {"a type", [[op.create_table("x", {{"id", "integer\0junk"}})]],
       "create_table: the type must not contain a NUL byte"},
      {"a default", [[op.create_table("x", {{"id", "text", server_default = "a\0b"}})]],
       "create_table: a default must not contain a NUL byte"},
      {"SQL", [[op.create_table("x", {{"id", "integer"}}) op.execute("DROP TABLE x\0junk")]],
       "execute: the SQL must not contain a NUL byte"},
      {"numeric(-5, 300)", [[op.create_table("x", {{"n", "numeric(-5, 300)"}})]],
       "create_table: type numeric(-5, 300): numeric(p, s) needs a precision p from 1 to 1000 and a scale s from 0 to p"},
      {"numeric(1001)", [[op.create_table("x", {{"n", "numeric(1001)"}})]],
       "numeric(p, s) needs a precision p from 1 to 1000"},
      {"numeric(0, 0)", [[op.create_table("x", {{"n", "numeric(0, 0)"}})]],
       "needs a precision p from 1 to 1000"},
      {"numeric(10, 11)", [[op.create_table("x", {{"n", "numeric(10, 11)"}})]],
       "a scale s from 0 to p"},
      {"numeric(10, -1)", [[op.create_table("x", {{"n", "numeric(10, -1)"}})]],
       "a scale s from 0 to p"},
      {"an altered type", [[op.create_table("x", {{"n", "integer"}})
          op.alter_column("x", "n", {type = "numeric(2000, 1)"})]],
       "alter_column: type numeric(2000, 1): numeric(p, s) needs a precision p"},
      {"string(0)", [[op.create_table("x", {{"s", "string(0)"}})]],
       "create_table: type string(0): string(n) needs a length n of at least 1"},
    }
    for _, case in ipairs(refused) do
      it("refuses " .. case[1], function()
        local code, err, after = migrate(d, case[2])
        assert.are.equal(1, code)
        assert.truthy(err:find(case[3], 1, true), err)
        assert.truthy(err:find("0001_aaaaaaaaaaa1.lua:", 1, true), err)
        assert.are.equal("", after)
      end)
    end

    it("keeps numeric types in range", function()
      local code, err, after, query = migrate(d, [[
        op.create_table("x", {{"a", "numeric(10, 2)"}, {"b", "numeric(1000, 0)"},
                              {"c", "numeric(1)"}, {"d", "numeric(7, 7)"}})]])
      assert.are.equal(0, code, err)
      assert.are.equal("x\n", after)
      local types
      if d.name == "sqlite" then
        types = query("SELECT group_concat(type, ',') FROM pragma_table_info('x')")
        assert.are.equal("NUMERIC(10, 2),NUMERIC(1000, 0),NUMERIC(1),NUMERIC(7, 7)\n", types)
      else
        types = query("SELECT string_agg(format_type(atttypid, atttypmod), ',' ORDER BY attnum) " ..
                      "FROM pg_attribute WHERE attrelid = 'x'::regclass AND attnum > 0")
        assert.are.equal("numeric(10,2),numeric(1000,0),numeric(1,0),numeric(7,7)\n", types)
      end
    end)
  end)
end
