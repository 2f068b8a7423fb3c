-- op_more_spec.lua - the parts of Alembic's op API luamig adds: each
-- operation's --sql text compared with the statements the installed
-- Alembic writes for it, then the migration applied to real databases of
-- both dialects and the result read back from their catalogs.
local H = require "helpers"
local P = require "alembic_peer"

local statements, alembic = P.statements, P.alembic_offline
local luamig_sql, assert_same_statements = P.luamig_offline, P.assert_writes_like_alembic

local function migrate(d, revisions, config)
  local url, query = d.fresh()
  local dir = H.project(url, revisions, config)
  local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
  return code, err, query, dir
end

local naming_lua = [[
  naming_convention = {ix = "ix_%(column_0_label)s", uq = "uq_%(table_name)s_%(column_0_name)s",
                       ck = "ck_%(table_name)s_%(constraint_name)s",
                       fk = "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
                       pk = "pk_%(table_name)s"},
]]
local naming_py = [[{"ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_name)s",
 "ck": "ck_%(table_name)s_%(constraint_name)s",
 "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s", "pk": "pk_%(table_name)s"}]]

describe("naming_convention", function()
  local up = [[
    op.create_table("p", {{"id", "integer", primary_key = true}, {"a", "integer"}},
                    {constraints = {{"check", "a > 0", name = "pos"}}})
    op.create_table("t", {{"id", "integer", primary_key = true}, {"e", "string", unique = true, index = true},
                          {"u", "integer", unique = true}, {"p", "integer", references = "p.id"}, {"a", "integer"}})
    op.create_check_constraint("positive", "t", "a > 1")
    op.create_unique_constraint(nil, "t", {"a", "u"})
    op.create_index(nil, "t", {"a"})
    op.create_check_constraint(op.f("ck_final"), "t", "a > 2")
    op.add_column("t", {"z", "integer", references = "p.id"})
  ]]

  it("names what Alembic names, as Alembic does", function()
    local theirs, raw = alembic("postgresql", [[
op.create_table("p", Column("id", Integer, primary_key=True), Column("a", Integer), CheckConstraint("a > 0", name="pos"))
op.create_table("t", Column("id", Integer, primary_key=True), Column("e", String, unique=True, index=True),
                Column("u", Integer, unique=True), Column("p", Integer, ForeignKey("p.id")), Column("a", Integer))
op.create_check_constraint("positive", "t", "a > 1")
op.create_unique_constraint(None, "t", ["a", "u"])
op.create_index(None, "t", ["a"])
op.create_check_constraint(op.f("ck_final"), "t", "a > 2")
op.add_column("t", Column("z", Integer, ForeignKey("p.id")))
]], naming_py)
    assert_same_statements(luamig_sql("postgresql://offline/db", up, naming_lua), theirs, raw)
  end)

  for _, d in ipairs(H.dialects) do
    it("gives the names on " .. d.name .. ", and drops by them", function()
      local code, err, query = migrate(d, {
        {rev = "aaaaaaaaaaa1", up = up},
        {rev = "aaaaaaaaaaa2", down = "aaaaaaaaaaa1", up = [[
          op.drop_constraint("positive", "t", {type_ = "check"})
          op.drop_constraint("uq_t_a", "t", {type_ = "unique"})]]},
      }, naming_lua)
      assert.are.equal(0, code, err)
      if d.name == "sqlite" then
        local sql = query("SELECT sql FROM sqlite_schema WHERE tbl_name = 't' ORDER BY type DESC, name")
        for _, name in ipairs({"pk_t", "uq_t_u", "fk_t_p_p", "ck_final", "fk_t_z_p", "ix_t_e", "ix_t_a"}) do
          assert.matches(name, sql, 1, true)
        end
        assert.matches("CONSTRAINT ck_p_pos CHECK", query("SELECT sql FROM sqlite_schema WHERE name = 'p'"), 1, true)
        assert.is_nil(sql:find("ck_t_positive", 1, true))
        assert.is_nil(sql:find("uq_t_a", 1, true))
      else
        assert.are.equal("ck_final\nfk_t_p_p\nfk_t_z_p\npk_t\nuq_t_u\n",
          query("SELECT conname FROM pg_constraint WHERE conrelid = 't'::regclass ORDER BY 1"))
        assert.are.equal("ck_p_pos\npk_p\n", query("SELECT conname FROM pg_constraint WHERE conrelid = 'p'::regclass ORDER BY 1"))
        assert.are.equal("ix_t_a\nix_t_e\npk_t\nuq_t_u\n",
          query("SELECT indexname FROM pg_indexes WHERE tablename = 't' ORDER BY 1"))
      end
    end)
  end

  it("refuses an unnamed CHECK when the template needs %(constraint_name)s", function()
    local code, err, query = migrate(H.dialects[1], {{rev = "aaaaaaaaaaa1", up = [[
      op.create_table("t", {{"a", "integer"}}, {constraints = {{"check", "a > 0"}}})]]}}, naming_lua)
    assert.are.equal(1, code)
    assert.matches("create_table: naming_convention.ck uses %(constraint_name)s, so the constraint on t needs a name", err, 1, true)
    assert.are.equal("", query("SELECT name FROM sqlite_schema WHERE name = 't'"))
  end)

  it("refuses an unknown token and an unknown kind, naming them", function()
    local code, err = migrate(H.dialects[1], {{rev = "aaaaaaaaaaa1", up = [[
      op.create_table("t", {{"a", "integer", unique = true}})]]}}, [[naming_convention = {uq = "uq_%(colour)s"},]])
    assert.are.equal(1, code)
    assert.matches("naming_convention.uq: %(colour)s is not a token", err, 1, true)
    code, err = migrate(H.dialects[1], {}, [[naming_convention = {xx = "a"},]])
    assert.are.equal(1, code)
    assert.matches("naming_convention: unknown kind 'xx'", err, 1, true)
  end)
end)

describe("column CHECK and computed columns", function()
  local up = [[
    op.create_table("t", {{"price", "integer"}, {"qty", "integer"},
                          {"total", "integer", computed = "price * qty"},
                          {"t2", "integer", computed = op.text("price * 2"), persisted = true},
                          {"age", "integer", check = "age >= 0"},
                          {"a2", "integer", check = {"a2 >= 0", name = "ck_a2"}}})
    op.add_column("t", {"c", "integer", computed = "price + 1"})
  ]]
  local py = [[
op.create_table("t", Column("price", Integer), Column("qty", Integer),
                Column("total", Integer, Computed("price * qty")),
                Column("t2", Integer, Computed("price * 2", persisted=True)),
                Column("age", Integer, CheckConstraint("age >= 0")),
                Column("a2", Integer, CheckConstraint("a2 >= 0", name="ck_a2")))
op.add_column("t", Column("c", Integer, Computed("price + 1")))
]]
  local urls = {sqlite = "sqlite:///offline.db", postgresql = "postgresql://offline/db"}

  for _, d in ipairs(H.dialects) do
    it("write what Alembic writes on " .. d.name, function()
      local theirs, raw = alembic(d.name, py)
      assert_same_statements(luamig_sql(urls[d.name], up), theirs, raw)
    end)

    it("compute and check on " .. d.name .. ", through a rebuild too", function()
      local code, err, query = migrate(d, {
        {rev = "aaaaaaaaaaa1", up = up},
        {rev = "aaaaaaaaaaa2", down = "aaaaaaaaaaa1", up = [[
          op.execute("INSERT INTO t (price, qty, age, a2) VALUES (3, 4, 1, 2)")
          op.add_column("t", {"d", "integer", computed = "price + 2", persisted = true})
          op.alter_column("t", "qty", {nullable = false})]]},
      })
      assert.are.equal(0, code, err)
      assert.are.equal("12|6|4|5\n", query("SELECT total, t2, c, d FROM t"))
      assert.is_nil((query("INSERT INTO t (price, qty, age) VALUES (1, 1, -1)")))
      assert.is_nil((query("INSERT INTO t (price, qty, a2) VALUES (1, 1, -1)")))
      assert.is_nil((query("INSERT INTO t (price, qty, total) VALUES (1, 1, 5)")))
      assert.are.equal("1\n", query("SELECT count(*) FROM t"))
      if d.name == "postgresql" then
        assert.are.equal("ck_a2\nt_age_check\n", query("SELECT conname FROM pg_constraint WHERE contype = 'c' AND conrelid = 't'::regclass ORDER BY 1"))
      end
    end)

    it("refuse altering a column to computed on " .. d.name, function()
      local code, err = migrate(d, {{rev = "aaaaaaaaaaa1", up = [[
        op.create_table("t", {{"a", "integer"}})
        op.alter_column("t", "a", {computed = "1"})]]}})
      assert.are.equal(1, code)
      assert.matches("alter_column: adding or removing computed (GENERATED ALWAYS AS) on an existing column is not supported", err, 1, true)
    end)
  end

  it("refuses persisted = false on PostgreSQL and writes VIRTUAL on SQLite", function()
    local code, err = migrate(H.dialects[2], {{rev = "aaaaaaaaaaa1", up = [[
      op.create_table("u", {{"v", "integer", computed = "1", persisted = false}})]]}})
    assert.are.equal(1, code)
    assert.matches("column v: persisted = false (VIRTUAL): the postgresql dialect computes columns STORED only", err, 1, true)
    local theirs, raw = alembic("sqlite", [[op.create_table("u", Column("v", Integer, Computed("1", persisted=False)))]])
    assert_same_statements(luamig_sql("sqlite:///x.db", [[op.create_table("u", {{"v", "integer", computed = "1", persisted = false}})]]), theirs, raw)
  end)
end)

describe("identity options", function()
  it("write what Alembic writes on PostgreSQL", function()
    local theirs, raw = alembic("postgresql", [[
op.create_table("t", Column("id", Integer, Identity(always=True, start=2, increment=3, minvalue=1, maxvalue=100, cycle=True, cache=5)))
op.add_column("t", Column("x", Integer, Identity()))
op.alter_column("t", "x", server_default=Identity(start=4, always=True), existing_server_default=Identity(start=3))
op.alter_column("t", "x", server_default=None, existing_server_default=Identity())
]])
    assert_same_statements(luamig_sql("postgresql://offline/db", [[
      op.create_table("t", {{"id", "integer", identity = {always = true, start = 2, increment = 3, minvalue = 1,
                                                          maxvalue = 100, cycle = true, cache = 5}}})
      op.add_column("t", {"x", "integer", identity = true})
      op.alter_column("t", "x", {identity = {start = 4, always = true}, existing_identity = {start = 3}})
      op.alter_column("t", "x", {identity = false})]]), theirs, raw)
  end)

  it("add, change and drop identity on PostgreSQL", function()
    local code, err, query = migrate(H.dialects[2], {{rev = "aaaaaaaaaaa1", up = [[
      op.create_table("t", {{"id", "integer", identity = {always = true, start = 10, increment = 5}}, {"n", "integer", nullable = false}})
      op.execute("INSERT INTO t (n) VALUES (1), (2)")
      op.alter_column("t", "n", {identity = {start = 100}})
      op.execute("INSERT INTO t DEFAULT VALUES")
      op.alter_column("t", "n", {identity = {always = true, increment = 10}, existing_identity = {start = 100}})
      op.execute("INSERT INTO t DEFAULT VALUES")]]}})
    assert.are.equal(0, code, err)
    assert.are.equal("10|1\n15|2\n20|100\n25|110\n", query("SELECT id, n FROM t ORDER BY id"))
    assert.are.equal("id|a\nn|a\n", query("SELECT attname, attidentity FROM pg_attribute WHERE attrelid = 't'::regclass AND attnum > 0 ORDER BY 1"))
    code, err, query = migrate(H.dialects[2], {{rev = "aaaaaaaaaaa1", up = [[
      op.create_table("t", {{"id", "integer", identity = true}})
      op.alter_column("t", "id", {identity = false})]]}})
    assert.are.equal(0, code, err)
    assert.are.equal("\n", query("SELECT attidentity FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'id'"))
  end)

  it("are refused on SQLite, naming the column", function()
    local code, err = migrate(H.dialects[1], {{rev = "aaaaaaaaaaa1", up = [[
      op.create_table("t", {{"id", "integer", primary_key = true, identity = {start = 5}}})]]}})
    assert.are.equal(1, code)
    assert.matches("t.id: identity options: SQLite has no identity columns", err, 1, true)
    code, err = migrate(H.dialects[1], {{rev = "aaaaaaaaaaa1", up = [[
      op.create_table("t", {{"id", "integer", primary_key = true, identity = true}, {"n", "integer"}})
      op.alter_column("t", "n", {identity = true})]]}})
    assert.are.equal(1, code)
    assert.matches("alter_column t.n: SQLite has no identity columns", err, 1, true)
  end)

  it("refuses an unknown identity option", function()
    local code, err = migrate(H.dialects[2], {{rev = "aaaaaaaaaaa1", up = [[
      op.create_table("t", {{"id", "integer", identity = {begin = 5}}})]]}})
    assert.are.equal(1, code)
    assert.matches("create_table: unknown identity option 'begin'", err, 1, true)
  end)
end)

describe("index include and using, foreign key match, table comments", function()
  local up = [[
    op.create_index("i", "t", {"a"}, {postgresql_using = "gin", postgresql_include = {"b", "c"}, postgresql_where = op.text("a > 1")})
    op.create_foreign_key("fk", "t", "p", {"a"}, {"id"}, {match = "FULL", ondelete = "CASCADE", deferrable = true, initially = "DEFERRED"})
    op.create_table_comment("t", "hello 'x'")
    op.drop_table_comment("t", {existing_comment = "x"})
  ]]

  it("write what Alembic writes on PostgreSQL", function()
    local theirs, raw = alembic("postgresql", [[
op.create_index("i", "t", ["a"], postgresql_using="gin", postgresql_include=["b", "c"], postgresql_where=text("a > 1"))
op.create_foreign_key("fk", "t", "p", ["a"], ["id"], match="FULL", ondelete="CASCADE", deferrable=True, initially="DEFERRED")
op.create_table_comment("t", "hello 'x'")
op.drop_table_comment("t", existing_comment="x")
]])
    assert_same_statements(luamig_sql("postgresql://offline/db", up), theirs, raw)
  end)

  it("apply on PostgreSQL", function()
    local code, err, query = migrate(H.dialects[2], {{rev = "aaaaaaaaaaa1", up = [[
      op.create_table("p", {{"id", "integer", primary_key = true}})
      op.create_table("t", {{"a", "integer"}, {"b", "integer"}, {"c", "integer"}, {"tags", "jsonb"}})
      op.create_index("ix_t_a", "t", {"a"}, {include = {"b", "c"}, where = "a > 1"})
      op.create_index("ix_t_tags", "t", {"tags"}, {using = "gin"})
      op.create_foreign_key("fk", "t", "p", {"a"}, {"id"}, {match = "FULL"})
      op.create_table_comment("t", "hello 'x'")]]}})
    assert.are.equal(0, code, err)
    assert.are.equal("CREATE INDEX ix_t_a ON public.t USING btree (a) INCLUDE (b, c) WHERE (a > 1)\n" ..
                     "CREATE INDEX ix_t_tags ON public.t USING gin (tags)\n",
      query("SELECT indexdef FROM pg_indexes WHERE tablename = 't' ORDER BY 1"))
    assert.are.equal("f\n", query("SELECT confmatchtype FROM pg_constraint WHERE conname = 'fk'"))
    assert.are.equal("hello 'x'\n", query("SELECT obj_description('t'::regclass, 'pg_class')"))
  end)

  it("on SQLite: MATCH is kept, PostgreSQL's options are not used, the rest refused", function()
    local code, err, query = migrate(H.dialects[1], {{rev = "aaaaaaaaaaa1", up = [[
      op.create_table("p", {{"id", "integer", primary_key = true}})
      op.create_table("t", {{"a", "integer"}, {"b", "integer"}})
      op.create_index("ix_t_a", "t", {"a"}, {postgresql_using = "gin", postgresql_include = {"b"}})
      op.create_foreign_key("fk", "t", "p", {"a"}, {"id"}, {match = "FULL"})]]}})
    assert.are.equal(0, code, err)
    assert.are.equal("CREATE INDEX ix_t_a ON t (a)\n", query("SELECT sql FROM sqlite_schema WHERE name = 'ix_t_a'"))
    assert.matches("REFERENCES p (id) MATCH FULL", query("SELECT sql FROM sqlite_schema WHERE name = 't'"), 1, true)
    for _, case in ipairs({
      {[[op.create_index("ix_t_b", "t", {"b"}, {include = {"a"}})]], "create_index ix_t_b: SQLite has no INCLUDE"},
      {[[op.create_index("ix_t_b", "t", {"b"}, {using = "gin"})]], "create_index ix_t_b: SQLite has no index methods (USING)"},
      {[[op.create_table_comment("t", "x")]], "create_table_comment t: SQLite keeps no comments"},
      {[[op.drop_table_comment("t")]], "drop_table_comment t: SQLite keeps no comments"},
    }) do
      local c2, e2 = migrate(H.dialects[1], {{rev = "aaaaaaaaaaa1", up = [[
        op.create_table("t", {{"a", "integer"}, {"b", "integer"}})]] .. case[1]}})
      assert.are.equal(1, c2)
      assert.matches(case[2], e2, 1, true)
    end
  end)
end)

describe("create_exclude_constraint", function()
  it("writes what Alembic writes on PostgreSQL", function()
    local theirs, raw = alembic("postgresql", [[
op.create_exclude_constraint("ex", "t", ("col", "="), ("period", "&&"), using="gist", where="col > 0")
]])
    assert_same_statements(luamig_sql("postgresql://offline/db", [[
      op.create_exclude_constraint("ex", "t", {{"col", "="}, {"period", "&&"}}, {using = "gist", where = "col > 0"})]]),
      theirs, raw)
  end)

  it("keeps overlapping ranges out on PostgreSQL, expressions too, and drops by name", function()
    local code, err, query = migrate(H.dialects[2], {
      {rev = "aaaaaaaaaaa1", up = [[
        op.create_table("booking", {{"a", "datetime"}, {"b", "datetime"}, {"during", "tsrange"}})
        op.create_exclude_constraint("no_overlap", "booking", {{op.text("tsrange(a, b)"), "&&"}})
        op.batch_alter_table("booking", function(batch)
          batch.create_exclude_constraint("no_overlap2", {{"during", "&&"}}, {where = "a IS NOT NULL"})
        end)
        op.execute("INSERT INTO booking (a, b) VALUES ('2026-01-01 10:00', '2026-01-01 11:00')")]]},
    })
    assert.are.equal(0, code, err)
    assert.is_nil((query("INSERT INTO booking (a, b) VALUES ('2026-01-01 10:30', '2026-01-01 12:00')")))
    assert.truthy(query("INSERT INTO booking (a, b) VALUES ('2026-01-01 11:00', '2026-01-01 12:00')"))
    assert.are.equal("no_overlap|x\nno_overlap2|x\n", query("SELECT conname, contype FROM pg_constraint WHERE conrelid = 'booking'::regclass ORDER BY 1"))
    assert.matches("EXCLUDE USING gist (during WITH &&) WHERE ((a IS NOT NULL))",
      query("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'no_overlap2'"), 1, true)
  end)

  it("is refused on SQLite", function()
    local code, err = migrate(H.dialects[1], {{rev = "aaaaaaaaaaa1", up = [[
      op.create_table("t", {{"a", "integer"}})
      op.create_exclude_constraint("ex", "t", {{"a", "="}})]]}})
    assert.are.equal(1, code)
    assert.matches("create_exclude_constraint ex: SQLite has no exclusion constraints", err, 1, true)
  end)
end)

describe("insert_before / insert_after in a batch", function()
  it("place columns in a SQLite rebuild, rows kept", function()
    local code, err, query = migrate(H.dialects[1], {{rev = "aaaaaaaaaaa1", up = [[
      op.create_table("t", {{"a", "integer"}, {"c", "integer"}})
      op.execute("INSERT INTO t (a, c) VALUES (1, 3)")
      op.batch_alter_table("t", function(batch)
        batch.alter_column("c", {new_column_name = "cc"})
        batch.add_column({"b", "integer"}, {insert_before = "cc"})
        batch.add_column({"z", "integer"}, {insert_after = "a"})
        batch.add_column({"first", "integer"}, {insert_before = "a"})
      end)]]}})
    assert.are.equal(0, code, err)
    assert.are.equal("first,a,z,b,cc\n", query("SELECT group_concat(name) FROM pragma_table_info('t')"))
    assert.are.equal("|1|||3\n", query("SELECT * FROM t"))
  end)

  it("refuse a column that is not there", function()
    local code, err = migrate(H.dialects[1], {{rev = "aaaaaaaaaaa1", up = [[
      op.create_table("t", {{"a", "integer"}})
      op.batch_alter_table("t", function(batch) batch.add_column({"b", "integer"}, {insert_after = "nope"}) end)]]}})
    assert.are.equal(1, code)
    assert.matches("add_column b: insert_after names no column nope", err, 1, true)
  end)

  it("are refused on PostgreSQL, which adds at the end", function()
    local code, err, query = migrate(H.dialects[2], {{rev = "aaaaaaaaaaa1", up = [[
      op.create_table("t", {{"a", "integer"}})
      op.batch_alter_table("t", function(batch) batch.add_column({"b", "integer"}, {insert_before = "a"}) end)]]}})
    assert.are.equal(1, code)
    assert.matches("batch_alter_table t: add_column b: PostgreSQL adds a column at the end", err, 1, true)
    assert.are.equal("", query("SELECT relname FROM pg_class WHERE relname = 't'"))
  end)
end)

describe("user-defined ops (ops = \"ops.lua\")", function()
  local ops_file = [[
return {
  add_timestamps = function(op, table_name, opts)
    op.add_column(table_name, {"created_at", "datetime", server_default = op.func.now(), nullable = false}, opts)
    op.add_column(table_name, {"updated_at", "datetime", onupdate = op.func.now()}, opts)
    return "done"
  end,
}
]]
  local revs = {{rev = "aaaaaaaaaaa1", up = [[
    op.create_table("t", {{"id", "integer", primary_key = true}})
    assert(op.add_timestamps("t") == "done")]],
    down_code = [[op.drop_table("t")]]}}

  for _, d in ipairs(H.dialects) do
    it("are op functions built from the ops, online and offline, on " .. d.name, function()
      local url, query = d.fresh()
      local dir = H.project(url, revs, [[  ops = "ops.lua",]] .. "\n")
      H.write(dir .. "/ops.lua", ops_file)
      local code, out, err = H.run({"upgrade", "head", "--sql"}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.matches("created_at " .. (d.name == "sqlite" and "DATETIME" or "TIMESTAMP"), out, 1, true)
      assert.matches("updated_at", out, 1, true)
      code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(0, code, err)
      local cols = d.name == "sqlite" and "SELECT group_concat(name) FROM pragma_table_info('t')"
                   or "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 't'"
      assert.are.equal("id,created_at,updated_at\n", query(cols))
    end)
  end

  it("refuses a name an op has, a value that is not a function, and a missing file", function()
    local url = H.dialects[1].fresh()
    for _, case in ipairs({
      {[[return {add_column = function() end}]], "ops: " , "ops.lua: add_column is an op already"},
      {[[return {x2 = 5}]], "ops: ", "ops.lua: x2 must be a function, not a number"},
      {[[return 5]], "ops: ", "must return a table of functions, not a number"},
    }) do
      local dir = H.project(url, revs, [[  ops = "ops.lua",]] .. "\n")
      H.write(dir .. "/ops.lua", case[1])
      local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(1, code)
      assert.matches(case[2], err, 1, true)
      assert.matches(case[3], err, 1, true)
    end
    local dir = H.project(url, revs, [[  ops = "missing.lua",]] .. "\n")
    local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
    assert.are.equal(1, code)
    assert.matches("missing.lua", err, 1, true)
  end)
end)

describe("enum types", function()
  local status = [[{enum = {"draft", "sent"}, name = "status_t"}]]
  local status3 = [[{enum = {"draft", "sent", "gone"}, name = "status_t"}]]

  it("create the type with the table on PostgreSQL, as Alembic writes it", function()
    local theirs, raw = alembic("postgresql", [[
op.create_table("t", Column("id", Integer, primary_key=True), Column("status", Enum("draft", "sent", name="status_t")))
]])
    assert_same_statements(luamig_sql("postgresql://offline/db", [[
      op.create_table("t", {{"id", "integer", primary_key = true}, {"status", ]] .. status .. [[}})]]), theirs, raw)
  end)

  it("are created, shared, extended and dropped with their last table on PostgreSQL", function()
    local revs = {
      {rev = "aaaaaaaaaaa1", up = [[
        op.create_table("t", {{"id", "integer", primary_key = true}, {"status", ]] .. status .. [[}})
        op.create_table("u", {{"s", ]] .. status .. [[}, {"k", "string"}})
        op.execute("INSERT INTO t (id, status) VALUES (1, 'sent')")]]},
      {rev = "aaaaaaaaaaa2", down = "aaaaaaaaaaa1", up = [[
        op.alter_column("t", "status", {type = ]] .. status3 .. [[})
        op.execute("INSERT INTO u (k) VALUES ('x')")
        op.alter_column("u", "k", {type = {enum = {"x", "y"}, name = "kind_t"}})]]},
      {rev = "aaaaaaaaaaa3", down = "aaaaaaaaaaa2", up = [[op.drop_table("t")]]},
      {rev = "aaaaaaaaaaa4", down = "aaaaaaaaaaa3", up = [[op.drop_table("u")]]},
    }
    local url, query = H.dialects[2].fresh()
    local dir = H.project(url, revs)
    -- the offline script runs as it is, through psql
    local code, out, err = H.run({"upgrade", "aaaaaaaaaaa2", "--sql"}, {dir = dir})
    assert.are.equal(0, code, err)
    assert.matches("CREATE TYPE status_t AS ENUM ('draft', 'sent');", out, 1, true)
    assert.are.equal(1, select(2, out:gsub("CREATE TYPE status_t", "")))
    assert.matches("ALTER TYPE status_t ADD VALUE 'gone' AFTER 'sent';", out, 1, true)
    code, _, err = H.run({"upgrade", "aaaaaaaaaaa2"}, {dir = dir})
    assert.are.equal(0, code, err)
    assert.are.equal("draft\nsent\ngone\n", query("SELECT unnest(enum_range(NULL::status_t))"))
    assert.are.equal("x\n", query("SELECT k FROM u"))
    assert.are.equal("kind_t\n", query("SELECT format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = 'u'::regclass AND attname = 'k'"))
    assert.is_nil((query("INSERT INTO t (id, status) VALUES (2, 'nope')")))
    code, _, err = H.run({"upgrade", "aaaaaaaaaaa3"}, {dir = dir})
    assert.are.equal(0, code, err)
    assert.are.equal("kind_t\nstatus_t\n", query("SELECT typname FROM pg_type WHERE typtype = 'e' ORDER BY 1"))
    code, _, err = H.run({"upgrade", "head"}, {dir = dir})
    assert.are.equal(0, code, err)
    assert.are.equal("", query("SELECT typname FROM pg_type WHERE typtype = 'e'"))
    -- offline, the model knows the same
    code, out, err = H.run({"upgrade", "base:head", "--sql"}, {dir = dir})
    assert.are.equal(0, code, err)
    assert.matches("DROP TABLE u;%s+DROP TYPE status_t;%s+DROP TYPE kind_t;", out)
    assert.is_nil(out:match("DROP TABLE t;%s+DROP TYPE"))
  end)

  it("refuses taking a value away on PostgreSQL", function()
    local code, err = migrate(H.dialects[2], {{rev = "aaaaaaaaaaa1", up = [[
      op.create_table("t", {{"status", ]] .. status3 .. [[}})
      op.alter_column("t", "status", {type = ]] .. status .. [[})]]}})
    assert.are.equal(1, code)
    assert.matches("enum status_t has the value 'gone' that the new list lacks", err, 1, true)
  end)

  it("are VARCHAR with a CHECK on SQLite, extended through a rebuild", function()
    local code, err, query = migrate(H.dialects[1], {
      {rev = "aaaaaaaaaaa1", up = [[
        op.create_table("t", {{"id", "integer", primary_key = true}, {"status", ]] .. status .. [[}})
        op.execute("INSERT INTO t (id, status) VALUES (1, 'sent')")]]},
      {rev = "aaaaaaaaaaa2", down = "aaaaaaaaaaa1", up = [[
        op.alter_column("t", "status", {type = ]] .. status3 .. [[})]]},
    })
    assert.are.equal(0, code, err)
    local sql = query("SELECT sql FROM sqlite_schema WHERE name = 't'")
    assert.matches("status VARCHAR(5) CHECK (status IN ('draft', 'sent', 'gone'))", sql, 1, true)
    assert.is_nil(sql:find("IN ('draft', 'sent'))", 1, true))
    assert.truthy(query("INSERT INTO t (id, status) VALUES (2, 'gone')"))
    assert.is_nil((query("INSERT INTO t (id, status) VALUES (3, 'nope')")))
    assert.are.equal("1|sent\n2|gone\n", query("SELECT * FROM t ORDER BY id"))
  end)

  it("need a name", function()
    local code, err = migrate(H.dialects[1], {{rev = "aaaaaaaaaaa1", up = [[
      op.create_table("t", {{"status", {enum = {"a"}}}})]]}})
    assert.are.equal(1, code)
    assert.matches("an enum type needs name = ", err, 1, true)
  end)
end)
