-- lint_spec.lua - `luamig lint`: each rule fires on a minimal script, stays
-- quiet on its safe form and on a table the same script created, and is
-- acknowledged by allow; --json and --format sarif carry their required
-- fields; the bundled history lints with acknowledged findings only; the
-- lock-safe ops run on both dialects.
local H = require "helpers"
local json = require "dkjson"

local BASE = "a0000000000b"
local base = {
  rev = BASE,
  up = [[
    op.create_table("roles", {{"id", "integer", primary_key = true}, {"name", "string(40)"}})
    op.create_table("persons", {{"id", "integer", primary_key = true},
                                {"name", "string(50)"}, {"email", "string(80)"},
                                {"role_id", "integer"}})
    op.create_table("tags", {{"id", "integer"}, {"label", "text"}})
    op.create_table("audit_log", {{"id", "integer", primary_key = true}, {"what", "text"}})]],
  down_code = [[
    op.drop_table("audit_log") op.drop_table("tags") op.drop_table("persons") op.drop_table("roles")]],
}

local pg_db
local function url_for(dialect)
  if dialect == "sqlite" then return "sqlite:///" .. H.tempdir() .. "/lint.db" end
  if not pg_db then pg_db = H.pg_fresh() end
  return pg_db
end

-- Lint a project of base + one revision (fields of H.script); returns
-- exit code, the findings (decoded --json), stderr.
local function lint(dialect, r, opts)
  opts = opts or {}
  r.rev = r.rev or "b0000000000c"
  r.down = r.down or BASE
  local dir = H.project(url_for(dialect), {base, r}, opts.config)
  if opts.no_downgrade then
    local path = dir .. "/migrations/0002_" .. r.rev .. ".lua"
    local text = H.read(path):gsub("  downgrade = function%(op%)\n.-\n  end,\n", "")
    H.write(path, text)
  end
  local code, out, err = H.run({"lint", "--all", "--json"}, {dir = dir})
  local findings = json.decode(out or "")
  assert(type(findings) == "table", "lint --json: " .. tostring(out) .. err)
  return code, findings, err, dir
end

local function with_code(findings, code)
  local t = {}
  for _, f in ipairs(findings) do if f.code == code then t[#t + 1] = f end end
  return t
end

-- rule cases: trigger (fires), safe (quiet), created (the same change on
-- a table the script made: quiet); pg: PostgreSQL's lock rules only.
local CREATE_T = 'op.create_table("fresh", {{"id", "integer", primary_key = true}, {"x", "text"}, {"ref", "integer"}})\n'
local cases = {
  {code = "drop_table", severity = "error", trigger = 'op.drop_table("tags")',
   created = CREATE_T .. 'op.drop_table("fresh")'},
  {code = "drop_column", severity = "error", trigger = 'op.drop_column("persons", "email")',
   created = CREATE_T .. 'op.drop_column("fresh", "x")'},
  {code = "primary_key_change", severity = "error",
   trigger = 'op.create_primary_key("pk_tags", "tags", {"id"})',
   created = 'op.create_table("fresh", {{"id", "integer"}})\nop.create_primary_key("pk_fresh", "fresh", {"id"})'},
  {code = "protected_table", severity = "error", config = 'protected_tables = {"audit_*"},\n',
   trigger = 'op.add_column("audit_log", {"note", "text"})',
   safe = 'op.add_column("tags", {"note", "text"})',
   created = 'op.create_table("audit_new", {{"id", "integer", primary_key = true}})\nop.add_column("audit_new", {"note", "text"})'},
  {code = "add_required_column", severity = "error",
   trigger = 'op.add_column("persons", {"age", "integer", nullable = false})',
   safe = 'op.add_column("persons", {"age", "integer", nullable = false, server_default = 0})',
   created = CREATE_T .. 'op.add_column("fresh", {"age", "integer", nullable = false})'},
  {code = "set_not_null_without_backfill", severity = "warning",
   trigger = 'op.alter_column("persons", "email", {nullable = false})',
   safe = 'op.execute("UPDATE persons SET email = \'none\' WHERE email IS NULL")\n' ..
          'op.alter_column("persons", "email", {nullable = false})',
   created = CREATE_T .. 'op.alter_column("fresh", "x", {nullable = false})'},
  {code = "column_type_change", severity = "warning", message = "string%(50%) to integer",
   trigger = 'op.alter_column("persons", "name", {type_ = "integer"})',
   safe = 'op.alter_column("persons", "name", {type_ = "text"})',
   created = CREATE_T .. 'op.alter_column("fresh", "x", {type_ = "integer"})'},
  {code = "rename_column", severity = "warning",
   trigger = 'op.alter_column("persons", "name", {new_column_name = "full_name"})',
   created = CREATE_T .. 'op.alter_column("fresh", "x", {new_column_name = "y"})'},
  {code = "rename_table", severity = "warning", trigger = 'op.rename_table("tags", "labels")',
   created = CREATE_T .. 'op.rename_table("fresh", "fresher")'},
  {code = "index_not_concurrent", severity = "warning", pg = true,
   trigger = 'op.create_index("ix_persons_name", "persons", {"name"})',
   safe = 'op.create_index("ix_persons_name", "persons", {"name"}, {concurrently = true})',
   safe_extra = "  transactional = false,",
   created = CREATE_T .. 'op.create_index("ix_fresh_x", "fresh", {"x"})'},
  {code = "concurrent_in_transaction", severity = "error", pg = true,
   trigger = 'op.create_index("ix_persons_name", "persons", {"name"}, {concurrently = true})',
   safe = 'op.create_index("ix_persons_name", "persons", {"name"}, {concurrently = true})',
   safe_extra = "  transactional = false,"},
  {code = "foreign_key_not_valid", severity = "warning", pg = true,
   trigger = 'op.create_foreign_key("fk_p_r", "persons", "roles", {"role_id"}, {"id"})',
   safe = 'op.create_foreign_key("fk_p_r", "persons", "roles", {"role_id"}, {"id"}, {not_valid = true})\n' ..
          'op.validate_constraint("fk_p_r", "persons")',
   created = CREATE_T .. 'op.create_foreign_key("fk_f_r", "fresh", "roles", {"ref"}, {"id"})'},
  {code = "check_not_valid", severity = "warning", pg = true,
   trigger = 'op.create_check_constraint("ck_name", "persons", "length(name) > 0")',
   safe = 'op.create_check_constraint("ck_name", "persons", "length(name) > 0", {not_valid = true})\n' ..
          'op.validate_constraint("ck_name", "persons")',
   created = CREATE_T .. 'op.create_check_constraint("ck_x", "fresh", "length(x) > 0")'},
  {code = "unique_constraint_locks", severity = "warning", pg = true,
   trigger = 'op.create_unique_constraint("uq_email", "persons", {"email"})',
   safe = 'op.create_index("uq_email_ix", "persons", {"email"}, {unique = true, concurrently = true})\n' ..
          'op.create_unique_constraint("uq_email", "persons", {"email"}, {using_index = "uq_email_ix"})',
   safe_extra = "  transactional = false,",
   created = CREATE_T .. 'op.create_unique_constraint("uq_x", "fresh", {"x"})'},
  {code = "foreign_key_without_index", severity = "warning",
   trigger = 'op.create_foreign_key("fk_p_r", "persons", "roles", {"role_id"}, {"id"})',
   safe = 'op.create_foreign_key("fk_p_r", "persons", "roles", {"role_id"}, {"id"})\n' ..
          'op.create_index("ix_persons_role_id", "persons", {"role_id"})',
   created = CREATE_T .. 'op.create_foreign_key("fk_f_r", "fresh", "roles", {"ref"}, {"id"})'},
  {code = "downgrade_fails", severity = "error", trigger = 'op.add_column("tags", {"note", "text"})',
   down_code = 'error("cannot go back")',
   safe = 'op.add_column("tags", {"note", "text"})', safe_down = 'op.drop_column("tags", "note")'},
  {code = "downgrade_not_inverse", severity = "warning", message = "note",
   trigger = 'op.add_column("tags", {"note", "text"})',
   safe = 'op.add_column("tags", {"note", "text"})', safe_down = 'op.drop_column("tags", "note")'},
  {code = "raw_sql", severity = "info", trigger = 'op.execute("CREATE VIEW v_tags AS SELECT id FROM tags")',
   safe = 'op.execute("UPDATE tags SET label = \'x\'")'},
}

for _, dialect in ipairs({"sqlite", "postgresql"}) do
  describe("lint rules (" .. dialect .. ")", function()
    for _, c in ipairs(cases) do
      if dialect == "postgresql" or not c.pg then
        it(c.code .. " fires on a minimal script", function()
          local code, findings = lint(dialect, {up = c.trigger, down_code = c.down_code},
                                      {config = c.config})
          local hits = with_code(findings, c.code)
          assert.is_true(#hits >= 1, c.code .. " did not fire: " .. json.encode(findings))
          local f = hits[1]
          assert.equal(c.severity, f.severity)
          assert.equal("b0000000000c", f.revision)
          assert.is_false(f.acknowledged)
          assert.truthy(f.file:find("0002_b0000000000c.lua", 1, true))
          assert.is_true(f.line >= 13, "line " .. f.line)
          if c.message then assert.truthy(f.message:find(c.message), f.message) end
          if c.severity == "error" then assert.equal(1, code) end
        end)
        it(c.code .. " is acknowledged by allow", function()
          local code, findings = lint(dialect, {up = c.trigger, down_code = c.down_code,
                                                extra = ('  allow = {%q},'):format(c.code)},
                                      {config = c.config})
          local hits = with_code(findings, c.code)
          assert.is_true(#hits >= 1)
          for _, f in ipairs(hits) do assert.is_true(f.acknowledged) end
          -- nothing else failing in this script: exit 0
          local other_error = false
          for _, f in ipairs(findings) do
            if f.severity == "error" and not f.acknowledged then other_error = true end
          end
          assert.equal(other_error and 1 or 0, code)
        end)
        if c.safe then
          it(c.code .. " stays quiet on the safe form", function()
            local _, findings = lint(dialect, {up = c.safe, extra = c.safe_extra,
                                               down_code = c.safe_down}, {config = c.config})
            assert.same({}, with_code(findings, c.code))
          end)
        end
        if c.created then
          it(c.code .. " stays quiet on a table created in the same script", function()
            local _, findings = lint(dialect, {up = c.created}, {config = c.config})
            assert.same({}, with_code(findings, c.code))
          end)
        end
      elseif c.pg then
        it(c.code .. " is PostgreSQL's only: quiet on SQLite", function()
          local _, findings = lint(dialect, {up = c.trigger})
          assert.same({}, with_code(findings, c.code))
        end)
      end
    end

    it("missing_downgrade fires on a script without downgrade", function()
      local code, findings = lint(dialect, {up = 'op.add_column("tags", {"note", "text"})'},
                                  {no_downgrade = true})
      assert.equal(1, #with_code(findings, "missing_downgrade"))
      assert.equal(1, code)
    end)

    it("multiple_heads fires when two revisions share a parent", function()
      local dir = H.project(url_for(dialect), {base,
        {rev = "c0000000000d", down = BASE}, {rev = "d0000000000e", down = BASE}})
      local code, out = H.run({"lint", "--all", "--json"}, {dir = dir})
      local findings = assert(json.decode(out))
      assert.is_true(#with_code(findings, "multiple_heads") >= 1)
      assert.equal(1, code)
    end)

    it("the configuration disables a rule and changes a severity", function()
      local up = 'op.drop_column("persons", "email")\nop.rename_table("tags", "labels")'
      local code, findings = lint(dialect, {up = up}, {config =
        'lint = {disable = {"drop_column"}, severity = {rename_table = "error"}},\n'})
      assert.same({}, with_code(findings, "drop_column"))
      assert.equal("error", with_code(findings, "rename_table")[1].severity)
      assert.equal(1, code)
    end)

    it("large_data_change fires from the database's row estimate", function()
      local r = {rev = "b0000000000c", down = BASE,
                 up = 'op.execute("UPDATE persons SET name = \'x\'")\n' ..
                      'op.alter_column("persons", "role_id", {type_ = "bigint"})'}
      local url = dialect == "sqlite" and url_for("sqlite") or H.pg_fresh()
      local dir = H.project(url, {base, r}, "large_table_rows = 3,\n")
      assert.equal(0, (H.run({"upgrade", BASE}, {dir = dir})))
      -- two rows: under the limit
      local q = dialect == "sqlite" and function(sql) return H.sqlite_query(url:sub(11), sql) end
                or function(sql) return H.psql(url, sql) end
      assert(q("INSERT INTO persons (id, name) VALUES (1, 'a'), (2, 'b')"))
      local _, out = H.run({"lint", "--json"}, {dir = dir})
      assert.same({}, with_code(json.decode(out), "large_data_change"))
      assert(q("INSERT INTO persons (id, name) VALUES (3, 'c'), (4, 'd'), (5, 'e')"))
      local code, out2 = H.run({"lint", "--json"}, {dir = dir})
      local hits = with_code(json.decode(out2), "large_data_change")
      assert.equal(2, #hits)                   -- the UPDATE and the type change
      assert.truthy(hits[1].message:find("5 rows", 1, true), hits[1].message)
      assert.equal(0, code, out2)              -- warnings only
      -- the revision applied: nothing left to lint
      assert.equal(0, (H.run({"upgrade", "head"}, {dir = dir})))
      local _, out3, err3 = H.run({"lint", "--json"}, {dir = dir})
      assert.same({}, json.decode(out3), err3)
      if dialect == "postgresql" then H.psql(H.pg_url, "DROP DATABASE " .. url:match("/([^/?]+)$")) end
    end)
  end)
end

describe("lint and the live database", function()
  for _, d in ipairs(H.dialects) do
    it("knows a table made outside the migrations (" .. d.name .. ")", function()
      local url, query = d.fresh()
      local dir = H.project(url, {base, {rev = "b0000000000c", down = BASE,
                                         up = 'op.drop_column("legacy", "code")'}})
      assert.equal(0, (H.run({"upgrade", BASE}, {dir = dir})))
      assert(query("CREATE TABLE legacy (code integer PRIMARY KEY, note text)"))
      local _, out = H.run({"lint", "--json"}, {dir = dir})
      local findings = assert(json.decode(out))
      assert.equal(1, #with_code(findings, "drop_column"))
      local pk = with_code(findings, "primary_key_change")
      assert.equal(1, #pk, out)
      assert.truthy(pk[1].message:find("legacy.code", 1, true))
      -- --all replays the history only: the table is not known there
      local _, out2 = H.run({"lint", "--all", "--json"}, {dir = dir})
      assert.same({}, with_code(assert(json.decode(out2)), "primary_key_change"))
      if d.name == "postgresql" then H.psql(H.pg_url, "DROP DATABASE " .. url:match("/([^/?]+)$")) end
    end)
  end
end)

describe("lint output", function()
  local dir = H.project("sqlite:///" .. H.tempdir() .. "/o.db", {base,
    {rev = "b0000000000c", down = BASE, up = 'op.drop_column("persons", "email")\n' ..
                                            'op.rename_table("tags", "labels")',
     down_code = 'op.rename_table("labels", "tags")\n' ..
                 'op.add_column("persons", {"email", "string(80)"})'}})

  it("prints FILE:LINE: SEVERITY[CODE]: message and a line of advice", function()
    local code, out, err = H.run({"lint"}, {dir = dir})
    assert.equal(1, code)
    local lines = H.lines(out)
    assert.truthy(lines[1]:match("^migrations/0002_b0000000000c%.lua:13: error%[drop_column%]: " ..
                                 "dropping persons%.email loses its data$"), lines[1])
    assert.truthy(lines[2]:match('^  revision b0000000000c: copy it first, or acknowledge with ' ..
                                 'allow = {"drop_column"}$'), lines[2])
    assert.truthy(lines[3]:match("^migrations/0002_b0000000000c%.lua:14: warning%[rename_table%]"), lines[3])
    assert.truthy(err:find("1 error", 1, true))
    local qcode, qout, qerr = H.run({"lint", "-q"}, {dir = dir})
    assert.equal(1, qcode)
    assert.equal(out, qout)
    assert.equal("", qerr)
  end)

  it("--json lists {code, severity, revision, file, line, message, acknowledged}", function()
    local _, out = H.run({"lint", "--json"}, {dir = dir})
    local findings = assert(json.decode(out))
    assert.equal(2, #findings)
    for _, f in ipairs(findings) do
      for _, k in ipairs({"code", "severity", "revision", "file", "message"}) do
        assert.equal("string", type(f[k]), k)
      end
      assert.equal("number", math.type(f.line) and "number" or type(f.line))
      assert.equal("boolean", type(f.acknowledged))
    end
  end)

  it("--format sarif is SARIF 2.1.0 with rules and located results", function()
    local code, out = H.run({"lint", "--format", "sarif"}, {dir = dir})
    assert.equal(1, code)
    local s = assert(json.decode(out))
    assert.equal("2.1.0", s.version)
    assert.truthy(s["$schema"]:find("sarif", 1, true))
    local run = s.runs[1]
    assert.equal("luamig", run.tool.driver.name)
    local ids = {}
    for _, r in ipairs(run.tool.driver.rules) do ids[r.id] = true end
    for _, c in ipairs({"drop_table", "drop_column", "primary_key_change", "protected_table",
                        "large_data_change", "add_required_column", "set_not_null_without_backfill",
                        "column_type_change", "rename_column", "rename_table", "index_not_concurrent",
                        "concurrent_in_transaction", "foreign_key_not_valid", "check_not_valid",
                        "unique_constraint_locks", "foreign_key_without_index", "missing_downgrade",
                        "downgrade_fails", "downgrade_not_inverse", "raw_sql", "multiple_heads"}) do
      assert.is_true(ids[c], c)
    end
    assert.equal(2, #run.results)
    local r = run.results[1]
    assert.equal("drop_column", r.ruleId)
    assert.equal("error", r.level)
    assert.equal("string", type(r.message.text))
    local loc = r.locations[1].physicalLocation
    assert.equal("migrations/0002_b0000000000c.lua", loc.artifactLocation.uri)
    assert.equal(13, loc.region.startLine)
    assert.equal("warning", run.results[2].level)
  end)

  it("refuses an unknown format, --json with sarif, and an unknown allow code", function()
    assert.equal(2, (H.run({"lint", "--format", "xml"}, {dir = dir})))
    assert.equal(2, (H.run({"lint", "--json", "--format", "sarif"}, {dir = dir})))
    local bad = H.project("sqlite:///" .. H.tempdir() .. "/b.db", {base,
      {rev = "b0000000000c", down = BASE, extra = '  allow = {"drop_colum"},'}})
    local code, _, err = H.run({"lint"}, {dir = bad})
    assert.equal(1, code)
    assert.truthy(err:find("'drop_colum'", 1, true), err)
    local badcfg = H.project("sqlite:///" .. H.tempdir() .. "/c.db", {base},
                             'lint = {disable = {"no_such_rule"}},\n')
    code, _, err = H.run({"lint"}, {dir = badcfg})
    assert.equal(1, code)
    assert.truthy(err:find("no_such_rule", 1, true), err)
  end)

  it("an error in an upgrade stops lint with the script's message", function()
    local d = H.project("sqlite:///" .. H.tempdir() .. "/e.db", {base,
      {rev = "b0000000000c", down = BASE, up = 'error("broken upgrade")'}})
    local code, _, err = H.run({"lint"}, {dir = d})
    assert.equal(1, code)
    assert.truthy(err:find("broken upgrade", 1, true), err)
  end)
end)

describe("the bundled history", function()
  for _, dialect in ipairs({"sqlite", "postgresql"}) do
    it("lints with acknowledged findings only (" .. dialect .. ")", function()
      local url = dialect == "sqlite" and "sqlite:///" .. H.tempdir() .. "/demo.db" or url_for(dialect)
      local code, out, err = H.run({"--url", url, "lint", "--all", "--json"})
      assert.equal(0, code, err)
      local findings = assert(json.decode(out))
      assert.is_true(#with_code(findings, "drop_column") >= 1)
      for _, f in ipairs(findings) do
        assert.is_true(f.acknowledged, f.code .. ": " .. f.message)
      end
    end)
  end
end)

describe("lock-safe ops", function()
  for _, d in ipairs(H.dialects) do
    it("not_valid, validate_constraint and using_index run (" .. d.name .. ")", function()
      local url, query = d.fresh()
      local dir = H.project(url, {base, {rev = "b0000000000c", down = BASE, extra = "  transactional = false,",
        up = [[
          op.execute("INSERT INTO roles (id, name) VALUES (1, 'r')")
          op.execute("INSERT INTO persons (id, name, email, role_id) VALUES (1, 'a', 'a@x', 1)")
          op.create_foreign_key("fk_p_r", "persons", "roles", {"role_id"}, {"id"}, {not_valid = true})
          op.validate_constraint("fk_p_r", "persons")
          op.create_check_constraint("ck_name", "persons", "length(name) > 0", {not_valid = true})
          op.validate_constraint("ck_name", "persons")
          op.create_index("uq_email_ix", "persons", {"email"}, {unique = true, postgresql_concurrently = true})
          op.create_unique_constraint("uq_email", "persons", {"email"}, {using_index = "uq_email_ix"})]],
        down_code = [[
          op.drop_constraint("uq_email", "persons", {type_ = "unique"})
          op.drop_constraint("ck_name", "persons", {type_ = "check"})
          op.drop_constraint("fk_p_r", "persons", {type_ = "foreignkey"})
          op.execute("DELETE FROM persons") op.execute("DELETE FROM roles")]]}})
      local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.equal(0, code, err)
      -- the constraints hold
      assert.is_nil((query("INSERT INTO persons (id, name, email, role_id) VALUES (2, '', 'b@x', 1)")))
      assert.is_nil((query("INSERT INTO persons (id, name, email, role_id) VALUES (3, 'c', 'a@x', 1)")))
      if d.name == "postgresql" then
        assert.is_nil((query("INSERT INTO persons (id, name, email, role_id) VALUES (4, 'd', 'd@x', 9)")))
        local v = query("SELECT conname, convalidated FROM pg_constraint WHERE conname IN " ..
                        "('fk_p_r', 'ck_name', 'uq_email') ORDER BY conname")
        assert.equal("ck_name|t\nfk_p_r|t\nuq_email|t\n", v)
        local _, sql = H.run({"upgrade", BASE .. ":head", "--sql"}, {dir = dir})
        assert.truthy(sql:find('FOREIGN KEY(role_id) REFERENCES roles (id) NOT VALID', 1, true), sql)
        assert.truthy(sql:find('ALTER TABLE persons VALIDATE CONSTRAINT fk_p_r', 1, true), sql)
        assert.truthy(sql:find('ADD CONSTRAINT uq_email UNIQUE USING INDEX uq_email_ix', 1, true), sql)
      end
      assert.equal(0, (H.run({"downgrade", BASE}, {dir = dir})))
    end)
  end
end)

teardown(function()
  if pg_db then H.psql(H.pg_url, "DROP DATABASE " .. pg_db:match("/([^/?]+)$")) end
end)
