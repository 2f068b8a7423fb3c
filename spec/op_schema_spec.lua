-- op_schema_spec.lua - every schema operation with its options, on SQLite
-- and PostgreSQL: rows inserted before a change are compared after it, the
-- result is read back by introspection, and a downgrade gives back the
-- schema as it was.
local H = require "helpers"

-- The shape of a database, read with the command-line clients, in a form
-- that does not depend on how a CREATE statement was laid out.
local snapshot = {}

function snapshot.sqlite(query)
  local user = "m.type = 'table' AND m.name NOT LIKE 'luamig%' AND m.name NOT LIKE 'sqlite%'"
  local parts = {
    query("SELECT m.name, p.name, p.type, p.\"notnull\", p.dflt_value, p.pk FROM sqlite_schema m, " ..
          "pragma_table_info(m.name) p WHERE " .. user .. " ORDER BY m.name, p.cid"),
    query("SELECT m.name, CASE WHEN il.name LIKE 'sqlite_autoindex%' THEN 'auto' ELSE il.name END, " ..
          "il.\"unique\", il.origin, il.partial, (SELECT group_concat(coalesce(ii.name, '<expr>'), ',') " ..
          "FROM pragma_index_xinfo(il.name) ii WHERE ii.key) FROM sqlite_schema m, pragma_index_list(m.name) il " ..
          "WHERE " .. user .. " ORDER BY 1, 6, 2"),
    query("SELECT m.name, f.\"table\", f.\"from\", f.\"to\", f.on_update, f.on_delete FROM sqlite_schema m, " ..
          "pragma_foreign_key_list(m.name) f WHERE " .. user .. " ORDER BY 1, 2, 3"),
    query("SELECT name, tbl_name, sql FROM sqlite_schema WHERE type = 'trigger' ORDER BY name"),
    -- CHECKs live only in the CREATE TABLE text: count them per table.
    query("SELECT m.name, (length(upper(m.sql)) - length(replace(upper(m.sql), 'CHECK', ''))) / 5 " ..
          "FROM sqlite_schema m WHERE " .. user .. " ORDER BY 1"),
  }
  return table.concat(parts, "--\n")
end

function snapshot.postgresql(query)
  local parts = {
    query("SELECT table_name, column_name, data_type, character_maximum_length, is_nullable, " ..
          "column_default FROM information_schema.columns WHERE table_schema = 'public' " ..
          "AND table_name NOT LIKE 'luamig%' ORDER BY table_name, ordinal_position"),
    query("SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' " ..
          "AND tablename NOT LIKE 'luamig%' ORDER BY 1, 2"),
    query("SELECT conrelid::regclass, conname, pg_get_constraintdef(oid) FROM pg_constraint " ..
          "WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text NOT LIKE 'luamig%' " ..
          "ORDER BY 1, 2"),
    query("SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c " ..
          "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' " ..
          "AND obj_description(c.oid, 'pg_class') IS NOT NULL ORDER BY 1"),
  }
  return table.concat(parts, "--\n")
end

local base = {
  rev = "aaaaaaaaaaa1", message = "parents and kids",
  up = [[
    op.create_table("parents", {{"id", "integer", primary_key = true},
                                {"code", "string(10)", nullable = false}},
      {constraints = {{"unique", {"code"}, name = "uq_parents_code"}}, comment = "the parents"})
    op.create_table("kids", {{"id", "integer", primary_key = true},
                             {"parent_id", "integer"},
                             {"name", "string(50)"},
                             {"score", "integer", server_default = 0}},
      {constraints = {{"check", "score >= 0"}}})
    op.create_table("kids", {{"id", "integer"}}, {if_not_exists = true})
    op.create_index("ix_kids_lower_name", "kids", {op.text("lower(name)")},
                    {where = "name IS NOT NULL"})
    if op.dialect == "sqlite" then
      op.execute("CREATE TRIGGER tr_kids_score AFTER UPDATE OF score ON kids " ..
                 "BEGIN SELECT 1; END")
    end
    op.execute("INSERT INTO parents (id, code) VALUES (1, 'a'), (2, 'b')")
    op.execute("INSERT INTO kids (id, parent_id, name, score) VALUES " ..
               "(1, 1, 'Ann', 5), (2, 2, 'Bob', 7), (3, NULL, NULL, 0)")
  ]],
  down_code = [[op.drop_table("kids") op.drop_table("parents")]],
}

local changes = {
  rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", message = "every change",
  up = [[
    op.alter_column("kids", "name", {type = "string(100)", server_default = "anon",
                                     existing_type = "string(50)", comment = "a name"})
    op.alter_column("kids", "score", {nullable = false, server_default = op.literal(1)})
    op.create_foreign_key("fk_kids_parent", "kids", "parents", {"parent_id"}, {"id"},
                          {ondelete = "CASCADE", onupdate = "NO ACTION"})
    op.create_unique_constraint("uq_kids_name", "kids", {"name"})
    op.create_check_constraint("ck_kids_score", "kids", "score < 100")
    op.create_index("ix_kids_score", "kids", {"score", op.text("score * 2")},
                    {unique = true, if_not_exists = true})
    op.alter_column("kids", "name", {new_column_name = "full_name"})
    op.batch_alter_table("parents", function(b)
      b.add_column({"label", "text"})
      b.alter_column("code", {type = "string(20)"})
    end)
    op.create_table("solo", {{"a", "integer", nullable = false}, {"b", "integer", nullable = false}})
    op.create_primary_key("pk_solo", "solo", {"a", "b"})
    op.rename_table("solo", "pair")
  ]],
  down_code = [[
    op.rename_table("pair", "solo")
    op.drop_table("solo")
    op.batch_alter_table("parents", function(b)
      b.drop_column("label")
      b.alter_column("code", {type = "string(10)"})
    end)
    op.alter_column("kids", "full_name", {new_column_name = "name"})
    op.drop_index("ix_kids_score", "kids")
    op.drop_constraint("ck_kids_score", "kids", {type_ = "check"})
    op.drop_constraint("uq_kids_name", "kids", {type_ = "unique"})
    op.drop_constraint("fk_kids_parent", "kids", {type_ = "foreignkey"})
    op.alter_column("kids", "score", {nullable = true, server_default = 0})
    op.alter_column("kids", "name", {type = "string(50)", server_default = false,
                                     comment = false})
  ]],
}

for _, d in ipairs(H.dialects) do
  describe("schema operations on " .. d.name, function()
    local url, query, dir
    before_each(function()
      url, query = d.fresh()
      dir = H.project(url, {base, changes})
    end)

    it("apply with every option, keep the rows, and downgrade to the same schema", function()
      local code, _, err = H.run({"upgrade", "aaaaaaaaaaa1"}, {dir = dir})
      assert.are.equal(0, code, err)
      local before = snapshot[d.name](query)
      code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.are.equal("1|1|Ann|5\n2|2|Bob|7\n3|||0\n",
                       query("SELECT id, parent_id, full_name, score FROM kids ORDER BY id"))
      local after = snapshot[d.name](query)
      if d.name == "sqlite" then
        assert.matches("kids|parents|parent_id|id|NO ACTION|CASCADE", after, 1, true)
      else
        assert.matches("fk_kids_parent|FOREIGN KEY (parent_id) REFERENCES parents(id) ON DELETE CASCADE",
                       after, 1, true)
      end
      assert.matches("ix_kids_score", after)
      assert.matches("full_name", after)
      assert.matches("label", after)
      assert.not_matches("solo|a|", after, 1, true)
      assert.matches("pair", after)
      -- the constraints hold
      assert.is_nil(query("INSERT INTO kids (id, parent_id, full_name, score) VALUES (9, 1, 'Zed', 100)"))
      assert.is_nil(query("INSERT INTO kids (id, parent_id, full_name, score) VALUES (9, 1, 'Ann', 3)"))
      assert.is_nil(query("INSERT INTO kids (id, full_name, score) VALUES (9, 'Neg', -1)"))
      assert.is_not_nil(query("INSERT INTO kids (id, full_name) VALUES (9, NULL)"))
      assert.are.equal("1\n", query("SELECT score FROM kids WHERE id = 9"))
      query("DELETE FROM kids WHERE id = 9")
      if d.name == "sqlite" then
        assert.matches("tr_kids_score", after)
        assert.are.equal("", query("PRAGMA foreign_key_check"))
      end
      code, _, err = H.run({"downgrade", "aaaaaaaaaaa1"}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.are.equal(before, snapshot[d.name](query))
      assert.are.equal("1|1|Ann|5\n2|2|Bob|7\n3|||0\n",
                       query("SELECT id, parent_id, name, score FROM kids ORDER BY id"))
    end)

    it("quotes identifiers that need it and escapes them", function()
      local evil = 'x"; DROP TABLE y; --'
      dir = H.project(url, {{rev = "ccccccccccc1", message = "evil",
        up = string.format([[
          op.create_table("y", {{"id", "integer", primary_key = true}})
          op.create_table(%q, {{"id", "integer", primary_key = true}, {"Select", "text"}})
          op.add_column(%q, {"it's", "integer"})
          op.create_index("ix evil", %q, {"Select"})
          op.alter_column(%q, "it's", {nullable = false, server_default = 0})
        ]], evil, evil, evil, evil)}})
      local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.are.equal("0\n", query("SELECT count(*) FROM y"))
      local name = d.name == "sqlite"
        and query("SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 'x%'")
        or query("SELECT tablename FROM pg_tables WHERE tablename LIKE 'x%'")
      assert.are.equal(evil .. "\n", name)
    end)

    it("rejects a bad argument naming the operation, the argument and the line", function()
      local cases = {
        {[[op.create_table(42, {{"id", "integer"}})]], "create_table: the table name must be a string"},
        {[[op.add_column("t", {"c", "integer"}, {colour = 1})]], "add_column: unknown option 'colour'"},
        {[[op.drop_constraint("c", "t", {type_ = "bogus"})]], "drop_constraint: unknown type_ 'bogus'"},
        {[[op.alter_column("t", 7, {nullable = true})]], "alter_column: the column name must be a string"},
        {[[op.create_index("ix", "t", {3})]], "create_index: column 1 must be a name"},
        {[[op.create_foreign_key("fk", "t", "u", {"a", "b"}, {"id"})]], "create_foreign_key: 2 local columns but 1 remote"},
        {[[op.batch_alter_table("t", function(b) b.alter_column("c", {nulable = true}) end)]],
         "alter_column: unknown option 'nulable'"},
      }
      for i, c in ipairs(cases) do
        local rev = string.format("ddddddddd%03d", i)
        local pdir = H.project(url, {{rev = rev, message = "bad",
          up = [[op.create_table("t", {{"id", "integer", primary_key = true}, {"c", "integer"}})
]] .. c[1]}})
        local code, _, err = H.run({"upgrade", "head"}, {dir = pdir})
        assert.are.equal(1, code)
        assert.matches(c[2], err, 1, true)
        assert.matches("0001_" .. rev .. ".lua:14:", err, 1, true)
      end
      -- nothing of the failed migrations stayed
      local t = d.name == "sqlite" and query("SELECT count(*) FROM sqlite_schema WHERE name = 't'")
                or query("SELECT count(*) FROM pg_tables WHERE tablename = 't'")
      assert.are.equal("0\n", t)
    end)
  end)
end

describe("PostgreSQL only", function()
  it("runs CREATE INDEX CONCURRENTLY outside a transaction and records the version after", function()
    local url, query = H.dialects[2].fresh()
    local dir = H.project(url, {
      {rev = "eeeeeeeeeee1", message = "t",
       up = [[op.create_table("t", {{"id", "integer", primary_key = true}, {"v", "text"}}, {schema = "public"})]]},
      {rev = "eeeeeeeeeee2", down = "eeeeeeeeeee1", message = "concurrently",
       extra = "  transactional = false,",
       up = [[op.create_index("ix_t_v", "t", {"v"}, {concurrently = true, schema = "public"})]],
       down_code = [[op.drop_index("ix_t_v", "t", {concurrently = true})]]},
    })
    local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
    assert.are.equal(0, code, err)
    assert.matches("CREATE INDEX ix_t_v ON public.t", query("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_t_v'"))
    assert.are.equal("eeeeeeeeeee2\n", query("SELECT version_num FROM luamig_version"))
    code, _, err = H.run({"downgrade", "-1"}, {dir = dir})
    assert.are.equal(0, code, err)
    assert.are.equal("", query("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_t_v'"))
  end)

  it("alters a column's type with USING and sets comments", function()
    local url, query = H.dialects[2].fresh()
    local dir = H.project(url, {
      {rev = "fffffffffff1", message = "t",
       up = [[op.create_table("t", {{"id", "integer", primary_key = true}, {"v", "text"}})
              op.execute("INSERT INTO t (id, v) VALUES (1, '42')")
              op.alter_column("t", "v", {type = "integer", using = "v::integer", comment = "answer"})]]},
    })
    local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
    assert.are.equal(0, code, err)
    assert.are.equal("43\n", query("SELECT v + 1 FROM t"))
    assert.are.equal("answer\n", query("SELECT col_description('t'::regclass, 2)"))
  end)
end)

describe("SQLite rebuilds", function()
  it("work when the connection enforces foreign keys (outside a transaction)", function()
    local url, query = H.dialects[1].fresh()
    local dir = H.project(url, {
      {rev = "abababababa1", message = "tables",
       up = [[op.create_table("p", {{"id", "integer", primary_key = true}, {"n", "text"}})
              op.create_table("c", {{"id", "integer", primary_key = true},
                                    {"p_id", "integer", references = "p.id", ondelete = "CASCADE"}})
              op.execute("INSERT INTO p (id, n) VALUES (1, 'a')")
              op.execute("INSERT INTO c (id, p_id) VALUES (1, 1)")]]},
      {rev = "abababababa2", down = "abababababa1", message = "rebuild parent",
       extra = "  transactional = false,",
       up = [[op.execute("PRAGMA foreign_keys = ON")
              op.alter_column("p", "n", {nullable = false, server_default = "x"})]]},
    })
    local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
    assert.are.equal(0, code, err)
    assert.are.equal("1|1\n", query("SELECT id, p_id FROM c"))
    assert.are.equal("n|1|'x'\n", query("SELECT name, \"notnull\", dflt_value FROM pragma_table_info('p') WHERE name = 'n'"))
  end)

  it("keep an AUTOINCREMENT counter, named and unnamed CHECKs and a WITHOUT ROWID table", function()
    local url, query = H.dialects[1].fresh()
    local dir = H.project(url, {
      {rev = "acacacacaca1", message = "raw tables",
       up = [[op.execute("CREATE TABLE a (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT CHECK (v <> ''), CONSTRAINT ck_a CHECK (length(v) < 9))")
              op.execute("INSERT INTO a (v) VALUES ('x'), ('y'), ('z')")
              op.execute("DELETE FROM a WHERE id = 3")
              op.execute("CREATE TABLE w (k TEXT PRIMARY KEY, v INTEGER) WITHOUT ROWID")
              op.execute("INSERT INTO w VALUES ('a', 1)")]]},
      {rev = "acacacacaca2", down = "acacacacaca1", message = "rebuild them",
       up = [[op.alter_column("a", "v", {nullable = false})
              op.alter_column("w", "v", {type = "bigint"})]]},
    })
    local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
    assert.are.equal(0, code, err)
    assert.are.equal("3\n", query("SELECT seq FROM sqlite_sequence WHERE name = 'a'"))
    assert.is_nil(query("INSERT INTO a (v) VALUES ('')"))
    assert.is_nil(query("INSERT INTO a (v) VALUES ('toolongvalue')"))
    query("INSERT INTO a (v) VALUES ('n')")
    assert.are.equal("4\n", query("SELECT max(id) FROM a"))
    assert.matches("WITHOUT ROWID", query("SELECT sql FROM sqlite_schema WHERE name = 'w'"))
    assert.are.equal("a|1\n", query("SELECT * FROM w"))
  end)
end)
