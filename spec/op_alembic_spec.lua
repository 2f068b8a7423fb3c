-- op_alembic_spec.lua - where luamig's SQL differed from Alembic's: the
-- same operation given to Alembic (the installed one, offline) and to
-- luamig (upgrade --sql) must write the same statements, and the migration
-- must then apply to a real database, whose catalog is read back.  Also:
-- every option an op accepts is honoured or refused with a message naming
-- it, never dropped.
local H = require "helpers"
local P = require "alembic_peer"

local statements, alembic = P.statements, P.alembic_offline
local luamig_sql, assert_writes_like_alembic = P.luamig_offline, P.assert_writes_like_alembic

-- Run `up` online on a fresh database; returns code, stderr, query.
local function migrate(d, up, revisions)
  local url, query = d.fresh()
  local revs = revisions or {{rev = "aaaaaaaaaaa1", up = up}}
  local dir = H.project(url, revs)
  local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
  return code, err, query, url
end

local pg = H.dialects[2]
local sqlite = H.dialects[1]

describe("schema-qualified references", function()
  local setup = [[
    op.execute("CREATE SCHEMA remote")
    op.execute("CREATE SCHEMA foo")
    op.create_table("t2", {{"c2", "integer", primary_key = true}}, {schema = "remote"})
    op.create_table("t1", {{"id", "integer", primary_key = true}})
    op.create_table("t1", {{"id", "integer", primary_key = true}, {"c2", "integer", unique = true}}, {schema = "foo"})
  ]]
  local up = [[
    op.add_column("t1", {"c1", "integer", nullable = true, references = "remote.t2.c2"})
    op.add_column("t1", {"c1", "integer", references = "foo.t1.c2"}, {schema = "foo"})
    op.create_table("t3", {{"id", "integer", primary_key = true},
                           {"c", "integer", references = "remote.t2.c2"}})
    op.create_table("t4", {{"id", "integer", primary_key = true},
                           {"parent", "integer", references = "remote.t4.id"}}, {schema = "remote"})
  ]]

  it("write schema, table and column on PostgreSQL as Alembic does", function()
    local theirs, raw = alembic("postgresql", [[
op.add_column("t1", Column("c1", Integer, ForeignKey("remote.t2.c2"), nullable=True))
op.add_column("t1", Column("c1", Integer, ForeignKey("foo.t1.c2")), schema="foo")
op.create_table("t3", Column("id", Integer, primary_key=True), Column("c", Integer, ForeignKey("remote.t2.c2")))
op.create_table("t4", Column("id", Integer, primary_key=True), Column("parent", Integer, ForeignKey("remote.t4.id")), schema="remote")
]])
    assert_writes_like_alembic(luamig_sql("postgresql://offline/db", up), theirs, raw)
  end)

  it("apply on PostgreSQL: the keys point at the schema's tables", function()
    local code, err, query = migrate(pg, nil, {
      {rev = "aaaaaaaaaaa1", up = setup},
      {rev = "aaaaaaaaaaa2", down = "aaaaaaaaaaa1", up = up}})
    assert.are.equal(0, code, err)
    assert.are.equal("foo.t1|foo.t1\nremote.t4|remote.t4\nt1|remote.t2\nt3|remote.t2\n",
      query("SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint WHERE contype = 'f' ORDER BY 1"))
  end)

  it("apply on SQLite within one database and are refused across databases", function()
    local code, err, query = migrate(sqlite, [[
      op.create_table("p", {{"id", "integer", primary_key = true}})
      op.create_table("c", {{"id", "integer", primary_key = true}, {"p", "integer", references = "main.p.id"}}, {schema = "main"})
      op.add_column("c", {"q", "integer", references = "p.id"})
    ]])
    assert.are.equal(0, code, err)
    assert.are.equal("p|p|id\np|q|id\n", query("SELECT \"table\", \"from\", \"to\" FROM pragma_foreign_key_list('c') ORDER BY 2"))
    code, err, query = migrate(sqlite, [[
      op.create_table("c", {{"id", "integer", primary_key = true}, {"p", "integer", references = "other.p.id"}})
    ]])
    assert.are.equal(1, code)
    assert.matches("references a table in schema other, but SQLite can only reference a table in the same database", err, 1, true)
    assert.are.equal("", query("SELECT name FROM sqlite_schema WHERE name = 'c'"))
  end)
end)

describe("a lone integer primary key added by add_column", function()
  it("is SERIAL NOT NULL on PostgreSQL as Alembic writes it", function()
    local theirs, raw = alembic("postgresql", [[op.add_column("t1", Column("q", Integer, primary_key=True))]])
    local ours = luamig_sql("postgresql://offline/db", [[op.add_column("t1", {"q", "integer", primary_key = true})]])
    assert_writes_like_alembic(ours, theirs, raw)
    -- and the primary key Alembic drops is kept
    assert.are.equal("ALTER TABLE t1 ADD PRIMARY KEY (q)", ours[#ours])
  end)

  for _, d in ipairs(H.dialects) do
    it("fills the rows a table has on " .. d.name, function()
      local code, err, query = migrate(d, [[
        op.create_table("t1", {{"x", "string"}})
        op.execute("INSERT INTO t1 (x) VALUES ('a'), ('b')")
        op.add_column("t1", {"q", "integer", primary_key = true})
      ]])
      assert.are.equal(0, code, err)
      assert.are.equal("a|1\nb|2\n", query("SELECT x, q FROM t1 ORDER BY q"))
      if d.name == "postgresql" then
        assert.are.equal("t1_pkey|p\n", query("SELECT conname, contype FROM pg_constraint WHERE conrelid = 't1'::regclass"))
      else
        assert.are.equal("q|1\n", query("SELECT name, pk FROM pragma_table_info('t1') WHERE pk > 0"))
      end
    end)
  end
end)

describe("autoincrement = \"identity\" in add_column", function()
  it("writes GENERATED BY DEFAULT AS IDENTITY on PostgreSQL as Alembic does", function()
    local theirs, raw = alembic("postgresql", [[op.add_column("t1", Column("some_column", Integer, Identity()))]])
    assert_writes_like_alembic(luamig_sql("postgresql://offline/db",
      [[op.add_column("t1", {"some_column", "integer", autoincrement = "identity"})]]), theirs, raw)
  end)

  it("makes an identity column on PostgreSQL", function()
    local code, err, query = migrate(pg, [[
      op.create_table("t1", {{"x", "string"}})
      op.execute("INSERT INTO t1 (x) VALUES ('a')")
      op.add_column("t1", {"some_column", "integer", autoincrement = "identity"})
      op.execute("INSERT INTO t1 (x) VALUES ('b')")
    ]])
    assert.are.equal(0, code, err)
    assert.are.equal("d\n", query("SELECT attidentity FROM pg_attribute WHERE attrelid = 't1'::regclass AND attname = 'some_column'"))
    assert.are.equal("a|1\nb|2\n", query("SELECT x, some_column FROM t1 ORDER BY 2"))
  end)

  it("is refused on SQLite, which has none", function()
    local code, err, query = migrate(sqlite, [[
      op.create_table("t1", {{"x", "string"}})
      op.add_column("t1", {"some_column", "integer", autoincrement = "identity"})
    ]])
    assert.are.equal(1, code)
    assert.matches("t1.some_column: autoincrement = \"identity\": SQLite autoincrements only", err, 1, true)
    assert.are.equal("", query("SELECT name FROM sqlite_schema WHERE name = 't1'"))
  end)
end)

for _, d in ipairs(H.dialects) do
  describe("on " .. d.name, function()
    it("bulk_insert refuses one row where a list of rows belongs", function()
      local theirs, raw = alembic(d.name, [[
t = table("t", column("id", Integer))
op.bulk_insert(t, {"id": 5})
]])
      assert.matches("List expected", raw, 1, true)
      assert.are.same({}, theirs)
      local code, err, query = migrate(d, [[
        op.create_table("t", {{"id", "integer"}})
        op.bulk_insert("t", {id = 5})
      ]])
      assert.are.equal(1, code)
      assert.matches("bulk_insert: rows must be a list of rows, not one row (it has the key 'id')", err, 1, true)
      assert.matches("0001_aaaaaaaaaaa1.lua:", err, 1, true)
      assert.is_nil((query("SELECT count(*) FROM t")))
    end)

    it("a batch renames a column and adds a CHECK and an index naming the new name", function()
      local code, err, query = migrate(d, [[
        op.create_table("t", {{"id", "integer", primary_key = true}, {"email", "string"}})
        op.execute("INSERT INTO t (id, email) VALUES (1, 'a@b')")
        op.batch_alter_table("t", function(batch)
          batch.alter_column("email", {new_column_name = "emol"})
          batch.create_check_constraint("ck", "emol LIKE '%@%' AND 'emol' <> emol")
          batch.create_index("ix_t_emol", {op.text("lower(\"emol\")")}, {where = "emol IS NOT NULL"})
        end)
      ]])
      assert.are.equal(0, code, err)
      assert.are.equal("1|a@b\n", query("SELECT id, emol FROM t"))
      local bad = query("INSERT INTO t (id, emol) VALUES (2, 'nope')")
      assert.is_nil(bad)
      assert.are.equal("1\n", query("SELECT count(*) FROM t"))
      if d.name == "sqlite" then
        local sql = query("SELECT sql FROM sqlite_schema WHERE name IN ('t', 'ix_t_emol') ORDER BY type DESC")
        assert.matches("CONSTRAINT ck CHECK (emol LIKE '%@%' AND 'emol' <> emol)", sql, 1, true)
        assert.matches("ON t (lower(emol)) WHERE emol IS NOT NULL", sql, 1, true)
      else
        assert.matches("emol", query("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'ck'"))
        assert.matches("lower%(%(emol%)::text%)", query("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_t_emol'"))
      end
    end)
  end)
end

-- (a condition without '%': Alembic's offline script doubles it)
it("a batch rename then CHECK writes what Alembic writes on PostgreSQL", function()
  local theirs, raw = alembic("postgresql", [[
with op.batch_alter_table("t") as batch:
    batch.alter_column("email", new_column_name="emol")
    batch.create_check_constraint("ck", "length(emol) > 3")
]])
  assert_writes_like_alembic(luamig_sql("postgresql://offline/db", [[
    op.batch_alter_table("t", function(batch)
      batch.alter_column("email", {new_column_name = "emol"})
      batch.create_check_constraint("ck", "length(emol) > 3")
    end)]]), theirs, raw)
end)

-- Item 6: an option is honoured or refused, never dropped.
local table_setup = [[
  op.create_table("t", {{"id", "integer", primary_key = true}, {"v", "integer"}})
  op.create_table("p", {{"id", "integer", primary_key = true}})
]]

local unknown = {
  {"create_table", [[op.create_table("x", {{"id", "integer"}}, {bogus = 1})]]},
  {"drop_table", [[op.drop_table("t", {bogus = 1})]]},
  {"rename_table", [[op.rename_table("t", "u", {bogus = 1})]]},
  {"add_column", [[op.add_column("t", {"w", "integer"}, {bogus = 1})]]},
  {"drop_column", [[op.drop_column("t", "v", {bogus = 1})]]},
  {"alter_column", [[op.alter_column("t", "v", {bogus = 1})]]},
  {"create_index", [[op.create_index("ix", "t", {"v"}, {bogus = 1})]]},
  {"drop_index", [[op.drop_index("ix", "t", {bogus = 1})]]},
  {"create_unique_constraint", [[op.create_unique_constraint("uq", "t", {"v"}, {bogus = 1})]]},
  {"create_check_constraint", [[op.create_check_constraint("ck", "t", "v > 0", {bogus = 1})]]},
  {"create_primary_key", [[op.create_primary_key("pk", "t", {"v"}, {bogus = 1})]]},
  {"create_foreign_key", [[op.create_foreign_key("fk", "t", "p", {"v"}, {"id"}, {bogus = 1})]]},
  {"drop_constraint", [[op.drop_constraint("ck", "t", {bogus = 1})]]},
  {"batch_alter_table", [[op.batch_alter_table("t", {bogus = 1}, function(b) end)]]},
  {"bulk_insert", [[op.bulk_insert("t", {{id = 1}}, {bogus = 1})]]},
  {"add_column", [[op.batch_alter_table("t", function(b) b.add_column({"w", "integer"}, {bogus = 1}) end)]]},
  {"alter_column", [[op.batch_alter_table("t", function(b) b.alter_column("v", {bogus = 1}) end)]]},
}

local column_refused = {
  {"ondelete without references", [[op.add_column("t", {"w", "integer", ondelete = "CASCADE"})]],
   "column w: ondelete = \"CASCADE\" is a foreign key's ON DELETE action, but the column has no references"},
  {"autoincrement on a plain column", [[op.add_column("t", {"w", "integer", autoincrement = true})]],
   "column w: autoincrement = true needs an integer primary key column"},
  {"autoincrement on a text key", [[op.create_table("x", {{"k", "text", primary_key = true, autoincrement = true}})]],
   "column k: autoincrement = true needs an integer primary key column"},
  {"an unknown column option", [[op.add_column("t", {"w", "integer", bogus = 1})]],
   "unknown column option 'bogus'"},
  {"an unknown constraint option", [[op.create_table("x", {{"id", "integer"}}, {constraints = {{"unique", {"id"}, bogus = 1}}})]],
   "unknown constraint option 'bogus'"},
}

local dialect_refused = {
  sqlite = {
    {"concurrently", [[op.create_index("ix", "t", {"v"}, {concurrently = true})]],
     "create_index ix: SQLite has no CONCURRENTLY"},
    {"concurrently", [[op.drop_index("ix", "t", {concurrently = true})]],
     "drop_index ix: SQLite has no CONCURRENTLY"},
    {"using", [[op.alter_column("t", "v", {type = "text", using = "v || ''"})]],
     "alter_column t.v: using is PostgreSQL's"},
    {"a composite autoincrement", [[op.create_table("x", {{"a", "integer", primary_key = true, autoincrement = true},
                                                         {"b", "integer", primary_key = true}})]],
     "x.a: autoincrement = true: SQLite autoincrements only a table's one INTEGER PRIMARY KEY"},
  },
  postgresql = {
    {"recreate", [[op.batch_alter_table("t", {recreate = "always"}, function(b) b.drop_column("v") end)]],
     "batch_alter_table t: recreate = \"always\" rebuilds a table on SQLite only"},
  },
}

for _, d in ipairs(H.dialects) do
  describe("options on " .. d.name, function()
    for _, case in ipairs(unknown) do
      it(case[1] .. " refuses an unknown option, naming it", function()
        local code, err = migrate(d, table_setup .. case[2])
        assert.are.equal(1, code, err)
        assert.matches(case[1] .. ": unknown option 'bogus'", err, 1, true)
      end)
    end

    local refused = {}
    for _, c in ipairs(column_refused) do refused[#refused + 1] = c end
    for _, c in ipairs(dialect_refused[d.name]) do refused[#refused + 1] = c end
    for _, case in ipairs(refused) do
      it("refuses " .. case[1] .. " and keeps the table as it was", function()
        local code, err, query = migrate(d, nil, {
          {rev = "aaaaaaaaaaa1", up = table_setup},
          {rev = "aaaaaaaaaaa2", down = "aaaaaaaaaaa1", up = case[2]}})
        assert.are.equal(1, code, err)
        assert.matches(case[3], err, 1, true)
        assert.matches("0002_aaaaaaaaaaa2.lua:", err, 1, true)
        local cols = d.name == "sqlite" and "SELECT group_concat(name) FROM pragma_table_info('t')"
                     or "SELECT string_agg(column_name, ',' ORDER BY ordinal_position) FROM information_schema.columns WHERE table_name = 't'"
        assert.are.equal("id,v\n", query(cols))
      end)
    end

    it("applies a per-dialect option on its dialect only", function()
      local code, err, query = migrate(d, table_setup .. [[
        op.create_index("ix_pg", "t", {"v"}, {postgresql_where = "v > 1"})
        op.create_index("ix_lite", "t", {"id"}, {sqlite_where = "id > 2"})
      ]])
      assert.are.equal(0, code, err)
      if d.name == "sqlite" then
        assert.are.equal("CREATE INDEX ix_lite ON t (id) WHERE id > 2\nCREATE INDEX ix_pg ON t (v)\n",
          query("SELECT sql FROM sqlite_schema WHERE type = 'index' AND name LIKE 'ix_%' ORDER BY name"))
      else
        assert.are.equal("CREATE INDEX ix_lite ON public.t USING btree (id)\nCREATE INDEX ix_pg ON public.t USING btree (v) WHERE (v > 1)\n",
          query("SELECT indexdef FROM pg_indexes WHERE indexname LIKE 'ix_%' ORDER BY indexname"))
      end
    end)
  end)
end
