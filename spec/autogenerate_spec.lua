-- autogenerate_spec.lua - `luamig revision --autogenerate` on SQLite and
-- PostgreSQL: from a models file into an empty database, then one kind of
-- change at a time (tables, columns in type, nullability and default,
-- indexes, unique constraints, foreign keys with actions, named checks,
-- comments): the rendered text against a golden file, applied, `check`
-- clean, the downgrade giving back the schema before exactly, and
-- `verify` clean over the whole chain.  Also: the safe renderings, a
-- 50-table round trip with a foreign-key cycle through `schema --models`,
-- a database not at head, nothing to migrate, and bad models files.
local H = require "helpers"

local GOLDEN = "spec/golden/autogen/"
local update = os.getenv("LUAMIG_GOLDEN_UPDATE") == "1"

-- The script as compared: without its Create Date line.
local function comparable(text)
  return (text:gsub("\n%-%- Create Date: [^\n]*", ""))
end

-- The golden text for a kind: <kind>.<dialect>.lua where the dialects
-- write it differently, else <kind>.lua.
local function golden(kind, dialect, actual)
  local own = GOLDEN .. kind .. "." .. dialect .. ".lua"
  local path = H.read(own) and own or GOLDEN .. kind .. ".lua"
  if update and not H.read(path) then H.write(path, actual) end
  return H.read(path), path
end

local function models_file(dir, text)
  H.write(dir .. "/models.lua", "return {\n" .. text .. "\n}\n")
end

-- The files of the migrations folder.
local function scripts(dir)
  local f = H.popen("ls " .. H.quote(dir .. "/migrations"))
  local t = {}
  for l in f:lines() do t[#t + 1] = l end
  f:close()
  return t
end

-- The models of each step; every step names one kind of change.
local base = [[
  orgs = {
    {"id", "integer", primary_key = true},
    {"code", "string(10)", nullable = false, unique = true},
  },
  persons = {
    {"id", "integer", primary_key = true},
    {"email", "string(80)", nullable = false},
    {"name", "string(40)"},
    {"status", "string(20)", nullable = false, server_default = "draft"},
    {"org_id", "integer", references = "orgs.id", ondelete = "CASCADE"},
    indexes = {{"ix_persons_email", {"email"}}},
  },]]

-- Each step: the kind (golden file), a function from the models of the
-- step before to this step's.
local function replace(from, to)
  return function(m)
    local s, n = m:gsub(from:gsub("%p", "%%%0"), (to:gsub("%%", "%%%%")))
    assert(n == 1, "the step's edit does not apply: " .. from)
    return s
  end
end

local steps = {
  {kind = "add_table", edit = function(m) return m .. [[

  tags = {
    {"id", "integer", primary_key = true},
    {"label", "string(30)", nullable = false},
    {"person_id", "integer", references = "persons.id"},
  },]] end},
  {kind = "drop_table", edit = function(m) return (m:gsub("\n+  tags = {.*},$", "")) end},
  {kind = "add_column", edit = replace([[{"name", "string(40)"},]],
    [[{"name", "string(40)"},
    {"nickname", "string(40)"},]])},
  {kind = "drop_column", edit = replace([[
    {"nickname", "string(40)"},]], "")},
  {kind = "alter_type", edit = replace([[{"email", "string(80)", nullable = false},]],
                                       [[{"email", "string(200)", nullable = false},]])},
  {kind = "narrow_type", edit = replace([[{"name", "string(40)"},]], [[{"name", "string(20)"},]])},
  {kind = "alter_nullable", edit = replace([[{"name", "string(20)"},]],
                                           [[{"name", "string(20)", nullable = false, server_default = ""},]])},
  {kind = "alter_default", edit = replace([[server_default = "draft"}]], [[server_default = "new"}]])},
  {kind = "drop_default", edit = replace([[, server_default = "new"}]], [[}]])},
  {kind = "index", edit = replace([[indexes = {{"ix_persons_email", {"email"}}},]], [[indexes = {
      {"ix_persons_email", {"email"}},
      {"ix_persons_email_lower", {op.text("lower(email)")}, unique = true},
      {"ix_persons_name_active", {"name"}, where = "status <> 'gone'"},
    },]])},
  {kind = "drop_index", edit = replace([[
      {"ix_persons_name_active", {"name"}, where = "status <> 'gone'"},]], "")},
  {kind = "unique", edit = replace([[{"org_id", "integer", references = "orgs.id", ondelete = "CASCADE"},]],
    [[{"org_id", "integer", references = "orgs.id", ondelete = "CASCADE"},
    constraints = {{"unique", {"org_id", "email"}, name = "uq_persons_org_email"}},]])},
  {kind = "foreign_key", edit = replace([[{"code", "string(10)", nullable = false, unique = true},]],
    [[{"code", "string(10)", nullable = false, unique = true},
    {"owner_id", "integer"},
    constraints = {{"foreign_key", {"owner_id"}, "persons", {"id"}, name = "fk_orgs_owner",
                    ondelete = "SET NULL", onupdate = "CASCADE"}},]])},
  {kind = "check", edit = replace([[constraints = {{"unique", {"org_id", "email"}, name = "uq_persons_org_email"}},]],
    [[constraints = {{"unique", {"org_id", "email"}, name = "uq_persons_org_email"},
                   {"check", "length(email) > 3", name = "ck_persons_email"}},]])},
  {kind = "required_column", fill = true, edit = replace([[{"status", "string(20)", nullable = false},]],
    [[{"status", "string(20)", nullable = false},
    {"role", "string(20)", nullable = false},]])},
  {kind = "comment", only = "postgresql", edit = function(m)
    m = replace([[{"name", "string(20)", nullable = false, server_default = ""},]],
      [[{"name", "string(20)", nullable = false, server_default = "", comment = "what people call them"},]])(m)
    return replace([[indexes = {
      {"ix_persons_email", {"email"}},]], [[comment = "people",
    indexes = {
      {"ix_persons_email", {"email"}},]])(m)
  end},
}

for _, d in ipairs(H.dialects) do
  if d.name == "postgresql" and not H.pg_url then goto next_dialect end
  describe("revision --autogenerate on " .. d.name, function()
    local url = d.fresh()
    local dir = H.project(url, {}, '  models = "models.lua",\n')
    local function lm(...) return H.run({...}, {dir = dir}) end
    local models = base
    local n = 0

    -- Autogenerate the next revision; its path and text.
    local function autogen(msg)
      n = n + 1
      local rev = string.format("%012x", 0xa00000000000 + n)
      local code, out, err = lm("revision", "--autogenerate", "-m", msg, "--rev-id", rev)
      assert.are.equal(0, code, err)
      assert.matches("Generating", out)
      local path = out:match("Generating (%S+)")
      return rev, H.read(dir .. "/" .. path), dir .. "/" .. path
    end

    it("writes the first migration from the models into the empty database", function()
      models_file(dir, models)
      local _, text = autogen("first")
      local want, path = golden("initial", d.name, comparable(text))
      assert.are.equal(want, comparable(text), "golden " .. path)
      local code, _, err = lm("upgrade", "head")
      assert.are.equal(0, code, err)
      code, _, err = lm("check")
      assert.are.equal(0, code, err)
    end)

    for _, step in ipairs(steps) do
      if step.only and step.only ~= d.name then goto next_step end
      it("writes, applies and reverses: " .. step.kind, function()
        models = step.edit(models)
        models_file(dir, models)
        local code, out = lm("check")
        assert.are.equal(1, code, "check sees the change")
        assert.is_true(#H.lines(out) >= 1)
        local _, before = lm("schema")
        local rev, text, path = autogen(step.kind)
        local want, gpath = golden(step.kind, d.name, comparable(text))
        assert.are.equal(want, comparable(text), "golden " .. gpath)
        if step.fill then
          -- the script refuses to run until a person fills the rows in
          code, _, err = lm("upgrade", "head")
          assert.are.equal(1, code)
          assert.matches("fill in persons.role", err)
          local filled = text:gsub('error%("fill in persons%.role[^\n]*\n',
                                   'op.execute("UPDATE persons SET role = \'member\' WHERE role IS NULL")\n')
          H.write(path, filled)
        end
        local err
        code, _, err = lm("upgrade", "head")
        assert.are.equal(0, code, err)
        code, out, err = lm("check")
        assert.are.equal(0, code, out .. err)
        code, _, err = lm("downgrade", "-1")
        assert.are.equal(0, code, err)
        local _, after_down = lm("schema")
        assert.are.equal(before, after_down, "the downgrade gives the schema back")
        code, _, err = lm("upgrade", rev)
        assert.are.equal(0, code, err)
      end)
      ::next_step::
    end

    it("verifies every revision it wrote", function()
      local code, out, err = lm("verify")
      assert.are.equal(0, code, out .. err)
    end)

    it("says no changes detected and writes no file when the models match", function()
      local before = #scripts(dir)
      local code, out, err = lm("revision", "--autogenerate", "-m", "nothing")
      assert.are.equal(0, code, err)
      assert.are.equal("no changes detected\n", out)
      assert.are.equal(before, #scripts(dir))
    end)

    it("refuses when the database is not at head, naming the command to run", function()
      local code, _, err = lm("downgrade", "-1")
      assert.are.equal(0, code, err)
      local before = #scripts(dir)
      code, _, err = lm("revision", "--autogenerate", "-m", "behind")
      assert.are.equal(1, code)
      assert.matches("not at head", err)
      assert.matches("luamig upgrade head", err)
      assert.are.equal(before, #scripts(dir))
      code, _, err = lm("check")
      assert.are.equal(1, code)
      assert.matches("luamig upgrade head", err)
      assert.are.equal(0, (lm("upgrade", "head")))
    end)
  end)

  describe("a 50-table models file with a foreign-key cycle on " .. d.name, function()
    it("goes models -> autogenerate -> upgrade -> schema --models and compares equal", function()
      local url = d.fresh()
      local dir = H.project(url, {}, '  models = "models.lua",\n')
      local parts = {}
      for i = 0, 49 do
        local cols = {string.format('{"id", "integer", primary_key = true}'),
                      string.format('{"name_%d", "string(%d)", nullable = false, server_default = "n"}', i, 20 + i)}
        if i > 0 then cols[#cols + 1] = string.format('{"prev_id", "integer", references = "t%02d.id"}', i - 1) end
        if i >= 7 then
          cols[#cols + 1] = string.format('{"far_id", "integer", references = "t%02d.id", ondelete = "SET NULL"}', i - 7)
        end
        if i == 0 then cols[#cols + 1] = '{"last_id", "integer", references = "t49.id"}' end
        parts[#parts + 1] = string.format("  t%02d = {\n    %s,\n    indexes = {{\"ix_t%02d_name\", {\"name_%d\"}}},\n  },",
                                          i, table.concat(cols, ",\n    "), i, i)
      end
      models_file(dir, table.concat(parts, "\n"))
      local code, out, err = H.run({"revision", "--autogenerate", "-m", "fifty", "--rev-id", "b00000000001"}, {dir = dir})
      assert.are.equal(0, code, err)
      local text = H.read(dir .. "/" .. out:match("Generating (%S+)"))
      -- t00 references t49, made last: its key is added after both exist
      assert.matches('op.create_foreign_key%("t00_last_id_fkey", "t00", "t49"', text)
      local p1 = text:find('op.create_table%("t01"')
      local p0 = text:find('op.create_table%("t00"')
      assert.is_true(p0 < p1, "referenced tables first")
      code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(0, code, err)
      code, out, err = H.run({"schema", "--models"}, {dir = dir})
      assert.are.equal(0, code, err)
      H.write(dir .. "/pulled.lua", out)
      code, out, err = H.run({"check", "--models", "pulled.lua"}, {dir = dir})
      assert.are.equal(0, code, out .. err)
      code, out, err = H.run({"check"}, {dir = dir})
      assert.are.equal(0, code, out .. err)
      -- the pulled file, against an empty database, writes the same migration
      local dir2 = H.project(d.fresh(), {}, '  models = "models.lua",\n')
      H.write(dir2 .. "/models.lua", H.read(dir .. "/pulled.lua"))
      code, out, err = H.run({"revision", "--autogenerate", "-m", "fifty", "--rev-id", "b00000000001"}, {dir = dir2})
      assert.are.equal(0, code, err)
      assert.are.equal(comparable(text), comparable(H.read(dir2 .. "/" .. out:match("Generating (%S+)"))))
    end)
  end)
  ::next_dialect::
end

for _, d in ipairs(H.dialects) do
  if d.name == "postgresql" and not H.pg_url then goto next_dialect end
  describe("what autogenerate only suggests or lists, on " .. d.name, function()
    it("suggests renames as comments, lists a view as not compared, and guesses nothing", function()
      local url = d.fresh()
      local dir = H.project(url, {{rev = "d00000000001", message = "start", up = [[
        op.create_table("people", {{"id", "integer", primary_key = true}, {"name", "string(40)"}})
        op.create_table("notes", {{"id", "integer", primary_key = true}, {"body", "text"}})
        op.execute("CREATE VIEW named AS SELECT id FROM people WHERE name IS NOT NULL")
      ]], down_code = [[
        op.execute("DROP VIEW named")
        op.drop_table("notes")
        op.drop_table("people")
      ]]}}, '  models = "models.lua",\n')
      assert.are.equal(0, (H.run({"upgrade", "head"}, {dir = dir})))
      models_file(dir, [[
  people = {{"id", "integer", primary_key = true}, {"full_name", "string(40)"}},
  memos = {{"id", "integer", primary_key = true}, {"body", "text"}},]])
      local code, out, err = H.run({"revision", "--autogenerate", "-m", "renames"}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.matches("not compared: named: view removed", err)
      local text = H.read(dir .. "/" .. out:match("Generating (%S+)"))
      assert.is_truthy(text:find('-- rename? people.name went and people.full_name came', 1, true), text)
      assert.is_truthy(text:find('op.alter_column("people", "name", {new_column_name = "full_name"})', 1, true))
      assert.is_truthy(text:find('-- rename? notes went and memos came with the same columns', 1, true))
      assert.is_truthy(text:find('op.rename_table("notes", "memos")', 1, true))
      assert.is_truthy(text:find("--   named: view removed (views are not modelled)", 1, true))
      -- nothing guessed: the script drops and adds, as the models say
      assert.is_truthy(text:find('\n    op.drop_column("people", "name")', 1, true))
      assert.is_truthy(text:find('\n    op.drop_table("notes")', 1, true))
      assert.is_truthy(text:find('allow = {"drop_column", "drop_table"}', 1, true))
    end)
  end)
  ::next_dialect::
end

describe("a 500-table foreign-key chain", function()
  it("is sorted without a depth limit", function()
    local dir = H.project("sqlite:///chain.db", {}, '  models = "models.lua",\n')
    local parts = {}
    -- declared in reverse: each table references the one after it
    for i = 1, 500 do
      local ref = i < 500 and string.format(', {"next_id", "integer", references = "c%03d.id"}', i + 1) or ""
      parts[#parts + 1] = string.format('  c%03d = {{"id", "integer", primary_key = true}%s},', i, ref)
    end
    models_file(dir, table.concat(parts, "\n"))
    local code, out, err = H.run({"revision", "--autogenerate", "-m", "chain"}, {dir = dir})
    assert.are.equal(0, code, err)
    local text = H.read(dir .. "/" .. out:match("Generating (%S+)"))
    assert.is_true(text:find('create_table%("c500"') < text:find('create_table%("c001"'))
    assert.is_nil(text:find("create_foreign_key"), "a chain has no cycle to break")
    code, _, err = H.run({"upgrade", "head"}, {dir = dir})
    assert.are.equal(0, code, err)
    code, out, err = H.run({"check"}, {dir = dir})
    assert.are.equal(0, code, out .. err)
  end)
end)

describe("bad models files", function()
  local cases = {
    {what = "a syntax error", text = 'return {\n  persons = {\n    {"id", "integer" primary_key = true},\n  },\n}\n',
     want = {"models.lua:3:"}},
    {what = "an unknown type", text = 'return {\n  persons = {\n    {"id", "integer", primary_key = true},\n    {"email", "strng"},\n  },\n}\n',
     want = {"models.lua:4:", "table persons", "email", "unknown type 'strng'"}},
    {what = "a foreign key to a missing table", text = 'return {\n  persons = {\n    {"id", "integer", primary_key = true},\n    {"org_id", "integer", references = "orgs.id"},\n  },\n}\n',
     want = {"models.lua:4:", "table persons", "org_id", "orgs"}},
    {what = "a duplicate column", text = 'return {\n  persons = {\n    {"id", "integer", primary_key = true},\n    {"email", "string"},\n    {"email", "text"},\n  },\n}\n',
     want = {"models.lua:4:", "table persons", "duplicate column email"}},
    {what = "a value that is no table", text = 'return {\n  persons = {\n    {"id", "integer", primary_key = true},\n  },\n  orgs = "orgs",\n}\n',
     want = {"models.lua:5:", "table orgs", "not a string"}},
    {what = "a per-dialect type without this dialect", text = 'return {\n  persons = {\n    {"id", "integer", primary_key = true},\n    {"doc", {nosuch = "jsonb"}},\n  },\n}\n',
     want = {"models.lua:4:", "table persons", "doc", "no choice for sqlite"}},
    {what = "a file that returns no table", text = 'return 42\n', want = {"models.lua", "not a number"}},
    {what = "a column spec without a type", text = 'return {\n  persons = {\n    {"id", "integer", primary_key = true},\n    {"email"},\n  },\n}\n',
     want = {"models.lua:4:", "table persons", "email", "no type"}},
  }
  for _, case in ipairs(cases) do
    it("names the file, line and object for " .. case.what .. ", and writes nothing", function()
      local dir = H.project("sqlite:///bad.db", {}, '  models = "models.lua",\n')
      H.write(dir .. "/models.lua", case.text)
      local code, out, err = H.run({"revision", "--autogenerate", "-m", "bad"}, {dir = dir})
      assert.are.equal(1, code, out .. err)
      for _, w in ipairs(case.want) do assert.is_truthy(err:find(w, 1, true), w .. " in: " .. err) end
      assert.are.equal(0, #scripts(dir))
      code, _, err = H.run({"check"}, {dir = dir})
      assert.are.equal(1, code)
      assert.is_truthy(err:find(case.want[1], 1, true), err)
    end)
  end

  it("requires model files beside it, and names the required file's line", function()
    local dir = H.project("sqlite:///req.db", {}, '  models = "models.lua",\n')
    H.write(dir .. "/models.lua", 'return {\n  persons = require "models.persons",\n}\n')
    H.sh("mkdir " .. H.quote(dir .. "/models"))
    H.write(dir .. "/models/persons.lua", 'return {\n  {"id", "integer", primary_key = true},\n  {"age", "intger"},\n}\n')
    local code, _, err = H.run({"check"}, {dir = dir})
    assert.are.equal(1, code)
    assert.matches("models/persons.lua:3:", err)
    assert.matches("table persons, age", err)
    H.write(dir .. "/models/persons.lua", 'return {\n  {"id", "integer", primary_key = true},\n  {"age", "integer"},\n}\n')
    code, _, err = H.run({"revision", "--autogenerate", "-m", "persons"}, {dir = dir})
    assert.are.equal(0, code, err)
  end)

  it("gives op the fragment helpers only", function()
    local dir = H.project("sqlite:///frag.db", {}, '  models = "models.lua",\n')
    H.write(dir .. "/models.lua", 'op.create_table("x", {{"id", "integer"}})\nreturn {}\n')
    local code, _, err = H.run({"check"}, {dir = dir})
    assert.are.equal(1, code)
    assert.matches("models.lua:1:", err)
    assert.matches("create_table", err)
  end)
end)

insulate("the module's m:revision{autogenerate = true}", function()
  local luamig = require "luamig.core"
  it("writes the migration, says when there is nothing to write, and gives codes", function()
    local url = H.dialects[1].fresh()
    local dir = H.project(url, {}, '  models = "models.lua",\n')
    models_file(dir, '  things = {{"id", "integer", primary_key = true}, {"label", "text"}},')
    local m <close> = assert(luamig.open{config = dir .. "/luamig.lua"})
    local r = assert(m:revision{message = "things", autogenerate = true, rev_id = "e00000000001"})
    assert.are.equal("e00000000001", r.revision)
    assert.matches('op.create_table%("things"', H.read(r.path))
    local ok, err, code = m:revision{message = "again", autogenerate = true}
    assert.is_nil(ok)
    assert.matches("not at head", err)
    assert.are.equal("not_at_head", code)
    assert(m:upgrade("head"))
    ok, err = m:revision{message = "again", autogenerate = true}
    assert.is_nil(ok)
    assert.matches("no changes detected", err)
    models_file(dir, '  things = {{"id", "integer", primary_key = true}, {"label", "txet"}},')
    ok, err, code = m:revision{message = "bad", autogenerate = true}
    assert.is_nil(ok)
    assert.matches("models.lua:2: table things, label: unknown type 'txet'", err)
    assert.are.equal("models_error", code)
  end)
end)
