-- offline_sql_spec.lua - --sql renders every operation: the script of a
-- history, applied with psql / sqlite3 to a fresh database, gives the
-- schema that running the history online gives; a range that starts
-- later replays the revisions before it; and where luamig cannot know a
-- table's shape it stops with a message naming the table and the revision.
local H = require "helpers"

-- Columns, indexes, foreign keys and constraints, as the clients read them.
local function shape(dialect, query)
  if dialect == "sqlite" then
    local user = "m.type = 'table' AND m.name NOT LIKE 'luamig%' AND m.name NOT LIKE 'sqlite%'"
    return (query("SELECT m.name, p.name, p.type, p.\"notnull\", p.dflt_value, p.pk FROM sqlite_schema m, " ..
                  "pragma_table_info(m.name) p WHERE " .. user .. " ORDER BY m.name, p.cid") or "") ..
           (query("SELECT m.name, il.\"unique\", il.origin, il.partial, (SELECT group_concat(coalesce(ii.name, " ..
                  "'<expr>')) FROM pragma_index_xinfo(il.name) ii WHERE ii.key) FROM sqlite_schema m, " ..
                  "pragma_index_list(m.name) il WHERE " .. user .. " ORDER BY 1, 5, 2, 3") or "") ..
           (query("SELECT m.name, f.* FROM sqlite_schema m, pragma_foreign_key_list(m.name) f WHERE " ..
                  user .. " ORDER BY 1, 2, 3") or "") ..
           (query("SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' ORDER BY 1") or "")
  end
  return (query("SELECT table_name, column_name, data_type, character_maximum_length, is_nullable, " ..
                "column_default FROM information_schema.columns WHERE table_schema = 'public' " ..
                "AND table_name NOT LIKE 'luamig%' ORDER BY 1, ordinal_position") or "") ..
         (query("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename NOT LIKE 'luamig%' " ..
                "ORDER BY 1") or "") ..
         (query("SELECT conrelid::regclass, conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE " ..
                "connamespace = 'public'::regnamespace AND conrelid::regclass::text NOT LIKE 'luamig%' " ..
                "ORDER BY 1, 2") or "")
end

local history = {
  {rev = "a00000000001", message = "tables",
   up = [[op.create_table("teams", {{"id", "integer", primary_key = true},
                                    {"name", "string(40)", nullable = false, unique = true}})
          op.create_table("players", {{"id", "integer", primary_key = true},
                                      {"team", "string(40)"},
                                      {"rating", "integer", server_default = 0}},
                          {constraints = {{"check", "rating >= 0", name = "ck_rating"}}})
          op.create_index("ix_players_team", "players", {"team"}, {where = "team IS NOT NULL"})
          op.execute("INSERT INTO teams (name) VALUES ($1), ($2)", {"Red", "Blue's"})]],
   down_code = [[op.drop_table("players") op.drop_table("teams")]]},
  {rev = "a00000000002", down = "a00000000001", message = "team to a foreign key",
   up = [[op.add_column("players", {"team_id", "integer"})
          op.execute("UPDATE players SET team_id = (SELECT id FROM teams WHERE teams.name = players.team)")
          op.create_foreign_key("fk_players_team", "players", "teams", {"team_id"}, {"id"})
          op.alter_column("players", "rating", {nullable = false, type = "bigint"})
          op.batch_alter_table("players", function(b)
            b.drop_index("ix_players_team")
            b.drop_column("team")
            b.create_unique_constraint("uq_players_team", {"team_id"})
          end)]],
   down_code = [[op.batch_alter_table("players", function(b)
            b.drop_constraint("uq_players_team", {type_ = "unique"})
            b.add_column({"team", "string(40)"})
            b.create_index("ix_players_team", {"team"}, {where = "team IS NOT NULL"})
          end)
          op.alter_column("players", "rating", {nullable = true, type = "integer"})
          op.drop_constraint("fk_players_team", "players", {type_ = "foreignkey"})
          op.drop_column("players", "team_id")]]},
}

-- The clients run without the sanitizer runtime that `make asan` preloads
-- (psql can deadlock with it).
local function apply_script(dialect, url, path, sql)
  local f = os.tmpname()
  H.write(f, sql)
  local cmd = dialect == "sqlite"
    and ("env LD_PRELOAD= sqlite3 -bail " .. H.quote(path) .. " <" .. H.quote(f))
    or ("env LD_PRELOAD= psql -X -q -v ON_ERROR_STOP=1 " .. H.quote(url) .. " -f " .. H.quote(f))
  local code = H.sh(cmd .. " >/dev/null 2>&1")
  os.remove(f)
  return code
end

for _, d in ipairs(H.dialects) do
  describe("--sql on " .. d.name, function()
    it("writes the schema that running the history online gives", function()
      local url, query = d.fresh()
      local dir = H.project(url, history)
      local code, sql, err = H.run({"upgrade", "head", "--sql"}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.matches("Blue''s", sql, 1, true)     -- parameters as escaped literals
      local url2, query2, path2 = d.fresh()
      assert.are.equal(0, apply_script(d.name, url2, path2, sql))
      assert.are.equal(0, (H.run({"upgrade", "head"}, {dir = dir})))
      assert.are.equal(shape(d.name, query), shape(d.name, query2))
      -- and the downgrade script undoes it as the online downgrade does
      code, sql, err = H.run({"downgrade", "head:a00000000001", "--sql"}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.are.equal(0, apply_script(d.name, url2, path2, sql))
      assert.are.equal(0, (H.run({"downgrade", "a00000000001"}, {dir = dir})))
      assert.are.equal(shape(d.name, query), shape(d.name, query2))
    end)

    it("replays the revisions before a range that does not start at base", function()
      local url, query = d.fresh()
      local dir = H.project(url, history)
      assert.are.equal(0, (H.run({"upgrade", "a00000000001"}, {dir = dir})))
      local code, sql, err = H.run({"upgrade", "a00000000001:head", "--sql"}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.not_matches("CREATE TABLE teams", sql, 1, true)
      local url2, query2, path2 = d.fresh()
      H.run({"upgrade", "a00000000001"}, {dir = H.project(url2, history)})
      assert.are.equal(0, apply_script(d.name, url2, path2, sql))
      assert.are.equal(0, (H.run({"upgrade", "head"}, {dir = dir})))
      assert.are.equal(shape(d.name, query), shape(d.name, query2))
    end)
  end)
end

describe("--sql on sqlite", function()
  it("stops, naming the table and the revision, when raw SQL changed the table", function()
    local url = H.dialects[1].fresh()
    local dir = H.project(url, {
      {rev = "b00000000001", message = "t",
       up = [[op.create_table("t", {{"id", "integer", primary_key = true}, {"v", "text"}})]]},
      {rev = "b00000000002", down = "b00000000001", message = "raw",
       up = [[op.execute("ALTER TABLE t ADD COLUMN w INTEGER")]]},
      {rev = "b00000000003", down = "b00000000002", message = "rebuild",
       up = [[op.alter_column("t", "v", {nullable = false})]]},
    })
    local code, _, err = H.run({"upgrade", "head", "--sql"}, {dir = dir})
    assert.are.equal(1, code)
    assert.matches("table t", err, 1, true)
    assert.matches("revision b00000000002 changed the table", err, 1, true)
    assert.matches("b00000000003", err, 1, true)
  end)

  it("follows tables, indexes and triggers created with raw SQL", function()
    local url, query = H.dialects[1].fresh()
    local dir = H.project(url, {
      {rev = "c00000000001", message = "raw",
       up = [[op.execute("CREATE TABLE r (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT CHECK (v <> ''))")
              op.execute("CREATE INDEX ix_r_v ON r (lower(v)); CREATE TRIGGER tr_r AFTER INSERT ON r BEGIN SELECT 1; SELECT 2; END")]]},
      {rev = "c00000000002", down = "c00000000001", message = "rebuild",
       up = [[op.alter_column("r", "v", {nullable = false, server_default = "x"})]]},
    })
    local code, sql, err = H.run({"upgrade", "head", "--sql"}, {dir = dir})
    assert.are.equal(0, code, err)
    local url2, query2, path2 = H.dialects[1].fresh()
    assert.are.equal(0, apply_script("sqlite", url2, path2, sql))
    assert.are.equal(0, (H.run({"upgrade", "head"}, {dir = dir})))
    assert.are.equal(shape("sqlite", query), shape("sqlite", query2))
    assert.matches("tr_r", shape("sqlite", query2), 1, true)
  end)
end)
