-- check_spec.lua - `luamig check` on SQLite and PostgreSQL: exit 0 when
-- the models match the database at head, 1 listing the differences one
-- per line (and as JSON); what is not compared is listed, never dropped;
-- include_tables / exclude_tables filter both sides; --models FILE; no
-- models; the database is only read.
local H = require "helpers"
local json = require "dkjson"

local migration = {
  rev = "c00000000001", message = "persons",
  up = [[
    op.create_table("persons", {
      {"id", "integer", primary_key = true},
      {"email", "string(80)", nullable = false, unique = true},
      {"age", "integer", check = "age >= 0"},
    })
    op.create_table("legacy_log", {{"id", "integer", primary_key = true}, {"line", "text"}})
    op.execute("CREATE VIEW adults AS SELECT id, email FROM persons WHERE age >= 18")
  ]],
  down_code = [[
    op.execute("DROP VIEW adults")
    op.drop_table("legacy_log")
    op.drop_table("persons")
  ]],
}

local persons = [[
  persons = {
    {"id", "integer", primary_key = true},
    {"email", "string(80)", nullable = false, unique = true},
    {"age", "integer"%s},
  },
]]

local function write_models(dir, name, extra_tables, age_extra)
  H.write(dir .. "/" .. name, "return {\n" .. persons:format(age_extra or ', check = "age >= 0"') ..
          (extra_tables or "") .. "}\n")
end

local legacy = '  legacy_log = {{"id", "integer", primary_key = true}, {"line", "text"}},\n'

for _, d in ipairs(H.dialects) do
  if d.name == "postgresql" and not H.pg_url then goto continue end
  describe("check on " .. d.name, function()
    local url, _, path = d.fresh()
    local dir = H.project(url, {migration}, '  models = "models.lua",\n')
    assert.are.equal(0, (H.run({"upgrade", "head"}, {dir = dir})))
    local function lm(...) return H.run({...}, {dir = dir}) end

    it("exits 0 when the models match, listing the view as not compared", function()
      write_models(dir, "models.lua", legacy)
      local before = path and H.read(path)
      local code, out, err = lm("check")
      assert.are.equal(0, code, out .. err)
      assert.matches("models match the database", out)
      assert.matches("not compared: adults: view removed %(views are not modelled%)", out)
      if path then assert.are.equal(before, H.read(path), "check only reads") end
    end)

    it("exits 1 listing each difference on a line of its own, and as JSON", function()
      write_models(dir, "models.lua", "", ', nullable = false, check = "age >= 0"},\n    {"nickname", "string(40)"')
      local code, out = lm("check")
      assert.are.equal(1, code)
      local lines = H.lines(out)
      local want = {"persons.age: null -> not null", "persons.nickname: column added",
                    "legacy_log: table removed"}
      for _, w in ipairs(want) do
        local found = false
        for _, l in ipairs(lines) do found = found or l == w end
        assert.is_true(found, w .. " in:\n" .. out)
      end
      code, out = lm("check", "--json")
      assert.are.equal(1, code)
      local doc = assert(json.decode(out))
      assert.is_false(doc.match)
      assert.are.equal(3, #doc.differences)
      local objects = {}
      for _, it in ipairs(doc.differences) do objects[it.line] = it end
      assert.are.equal("column", objects["persons.nickname: column added"].object)
      assert.are.equal("added", objects["persons.nickname: column added"].change)
      assert.is_table(doc.not_compared)
    end)

    it("lists an unnamed CHECK that differs as not compared", function()
      write_models(dir, "models.lua", legacy, ', check = "age >= 1"')
      local code, out = lm("check")
      assert.are.equal(0, code, out)
      assert.matches("not compared: check on persons", out)
    end)

    it("leaves out what exclude_tables names and keeps only what include_tables names", function()
      write_models(dir, "models.lua", "")
      assert.are.equal(1, (lm("check")))
      local cfg = H.read(dir .. "/luamig.lua")
      H.write(dir .. "/luamig.lua", (cfg:gsub("}%s*$", '  exclude_tables = {"legacy_*"},\n}\n')))
      local code, out = lm("check")
      assert.are.equal(0, code, out)
      H.write(dir .. "/luamig.lua", (cfg:gsub("}%s*$", '  include_tables = {"persons"},\n}\n')))
      code, out = lm("check")
      assert.are.equal(0, code, out)
      H.write(dir .. "/luamig.lua", (cfg:gsub("}%s*$", '  exclude_tables = "legacy_log",\n}\n')))
      local err
      code, _, err = lm("check")
      assert.are.equal(1, code)
      assert.matches("exclude_tables must be a list of names", err)
      H.write(dir .. "/luamig.lua", cfg)
    end)

    it("reads --models FILE instead of the configured models", function()
      write_models(dir, "other.lua", legacy)
      write_models(dir, "models.lua", "")
      assert.are.equal(1, (lm("check")))
      local code, out = lm("check", "--models", "other.lua")
      assert.are.equal(0, code, out)
    end)

    it("is clean against the models schema --models writes", function()
      local code, out, err = lm("schema", "--models")
      assert.are.equal(0, code, err)
      H.write(dir .. "/pulled.lua", out)
      code, out, err = lm("check", "--models", "pulled.lua")
      assert.are.equal(0, code, out .. err)
      code, out, err = lm("schema", "--models", "persons")
      assert.are.equal(0, code, err)
      assert.is_nil(out:find("legacy_log", 1, true))
      code, _, err = lm("schema", "--models", "--json")
      assert.are.equal(2, code, err)
    end)
  end)
  ::continue::
end

if H.pg_url then
  describe("check on postgresql, an expression default", function()
    it("lists a default the database rewrote as not compared", function()
      local url = H.pg_fresh()
      local dir = H.project(url, {{rev = "c00000000002", message = "due", up = [[
        op.create_table("tasks", {{"id", "integer", primary_key = true},
          {"due", "timestamptz", server_default = op.text("now() + interval '1 day'")},
          {"price", "numeric(10,2)", server_default = op.text("1.50")}})
      ]], down_code = [[op.drop_table("tasks")]]}}, '  models = "models.lua",\n')
      assert.are.equal(0, (H.run({"upgrade", "head"}, {dir = dir})))
      H.write(dir .. "/models.lua", [[return {
  tasks = {{"id", "integer", primary_key = true},
           {"due", "timestamptz", server_default = op.text("now() + interval '1 day'")},
           {"price", "numeric(10,2)", server_default = op.text("1.50")}},
}
]])
      local code, out = H.run({"check"}, {dir = dir})
      assert.are.equal(0, code, out)
      assert.matches("not compared: tasks.due: default", out)
      -- a number is compared
      H.write(dir .. "/models.lua", (H.read(dir .. "/models.lua"):gsub('"1.50"', '"2.50"')))
      code, out = H.run({"check"}, {dir = dir})
      assert.are.equal(1, code, out)
      assert.matches("tasks.price: default 1.50 %-> 2.50", out)
    end)

    it("compares an index's access method (using = ...)", function()
      local url = H.pg_fresh()
      local dir = H.project(url, {{rev = "c00000000005", message = "hash", up = [[
        op.create_table("codes", {{"id", "integer", primary_key = true}, {"code", "integer"}})
        op.create_index("ix_codes_code", "codes", {"code"}, {using = "hash"})
      ]], down_code = [[op.drop_table("codes")]]}}, '  models = "models.lua",\n')
      assert.are.equal(0, (H.run({"upgrade", "head"}, {dir = dir})))
      local code, out, err = H.run({"schema", "--models"}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.matches('using = "hash"', out)
      H.write(dir .. "/models.lua", out)
      code, out, err = H.run({"check"}, {dir = dir})
      assert.are.equal(0, code, out .. err)
      H.write(dir .. "/models.lua", (H.read(dir .. "/models.lua"):gsub(', using = "hash"', "")))
      code, out = H.run({"check"}, {dir = dir})
      assert.are.equal(1, code, out)
      assert.matches("index ix_codes_code on codes: %(code%) using hash %-> %(code%)", out)
    end)

    it("lists the tables of another schema include_schemas reads as not compared", function()
      local url = H.pg_fresh()
      local dir = H.project(url, {{rev = "c00000000004", message = "two schemas", up = [[
        op.create_table("accounts", {{"id", "integer", primary_key = true}})
        op.execute("CREATE SCHEMA billing")
        op.execute("CREATE TABLE billing.invoices (id integer PRIMARY KEY)")
      ]], down_code = [[
        op.execute("DROP SCHEMA billing CASCADE")
        op.drop_table("accounts")
      ]]}}, '  models = "models.lua",\n  include_schemas = {"public", "billing"},\n')
      assert.are.equal(0, (H.run({"upgrade", "head"}, {dir = dir})))
      H.write(dir .. "/models.lua", 'return {accounts = {{"id", "integer", primary_key = true}}}\n')
      local code, out = H.run({"check"}, {dir = dir})
      assert.are.equal(0, code, out)
      assert.matches("not compared: table billing.invoices", out)
    end)
  end)
end

-- The database's spellings of a type and the models' read alike.
local spellings = {
  sqlite = {sql = "CREATE TABLE spelled (id INTEGER PRIMARY KEY, a INT, b VARCHAR(20), c TIMESTAMP, " ..
                  "d BOOLEAN, e FLOAT, f NUMERIC(10, 2), g CHAR(32), h BLOB)",
            raw = {"INT", "varchar(20)", "TIMESTAMP", "boolean", "FLOAT", "numeric(10,2)", "char(32)", "blob"}},
  postgresql = {sql = "CREATE TABLE spelled (id serial PRIMARY KEY, a int4, b character varying(20), " ..
                      "c timestamp without time zone, d bool, e float8, f decimal(10, 2), g uuid, h bytea)",
                raw = {"int4", "varchar(20)", "timestamp", "bool", "float8", "numeric(10, 2)", "uuid", "bytea"}},
}
local portable = {"integer", "string(20)", "datetime", "boolean", "float", "numeric(10,2)", "uuid", "binary"}

for _, d in ipairs(H.dialects) do
  if d.name == "postgresql" and not H.pg_url then goto next_dialect end
  describe("check on " .. d.name .. ", types spelled the database's way", function()
    it("reads int4 as integer, character varying(20) as string(20), and so on, on both sides", function()
      local url = d.fresh()
      local sp = spellings[d.name]
      local dir = H.project(url, {{rev = "c00000000003", message = "spelled",
        up = "op.execute(" .. string.format("%q", sp.sql) .. ")", down_code = 'op.execute("DROP TABLE spelled")'}},
        '  models = "models.lua",\n')
      assert.are.equal(0, (H.run({"upgrade", "head"}, {dir = dir})))
      for _, types in ipairs({portable, sp.raw}) do
        local cols = {'{"id", "integer", primary_key = true}'}
        for i, t in ipairs(types) do cols[#cols + 1] = string.format('{"%s", "%s"}', ("abcdefgh"):sub(i, i), t) end
        H.write(dir .. "/models.lua", "return {\n  spelled = {" .. table.concat(cols, ", ") .. "},\n}\n")
        local code, out, err = H.run({"check"}, {dir = dir})
        assert.are.equal(0, code, out .. err)
      end
      H.write(dir .. "/models.lua", 'return {spelled = {{"id", "integer", primary_key = true}, {"a", "bigint"}}}\n')
      local code, out = H.run({"check"}, {dir = dir})
      assert.are.equal(1, code)
      assert.matches("spelled.a: type integer %-> bigint", out)
    end)
  end)
  ::next_dialect::
end

describe("check without models", function()
  it("says how to name a models file", function()
    local dir = H.project("sqlite:///none.db", {})
    local code, _, err = H.run({"check"}, {dir = dir})
    assert.are.equal(1, code)
    assert.matches('models = "models.lua"', err)
    assert.matches("%-%-models FILE", err)
    code, _, err = H.run({"check", "--models", "missing.lua"}, {dir = dir})
    assert.are.equal(1, code)
    assert.matches("missing.lua", err)
  end)
end)
