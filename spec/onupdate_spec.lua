-- onupdate_spec.lua - a column spec's onupdate: SQL (op.func.now(),
-- op.text(...)) makes the database set the column on every UPDATE of its
-- row, through a trigger named after the table and column, on both
-- dialects; a string stays the foreign key's ON UPDATE action.  Checked on
-- real databases: rows updated and read back, the triggers (and
-- PostgreSQL's functions) read from the catalogs, SQLite rebuilds, drops,
-- and the --sql script run by the command-line clients.
local H = require "helpers"

local revisions = {
  {rev = "aaaaaaaaaaa1", message = "posts",
   up = [[
    op.create_table("parents", {{"id", "integer", primary_key = true}})
    op.create_table("posts", {
      {"id", "integer", primary_key = true},
      {"title", "string(50)"},
      {"parent_id", "integer", references = "parents.id", onupdate = "CASCADE"},
      {"updated_at", "datetime", server_default = op.func.now(), onupdate = op.func.now()}})
  ]],
   down_code = [[op.drop_table("posts") op.drop_table("parents")]]},
  {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", message = "touched",
   up = [[op.add_column("posts", {"touched", "datetime", onupdate = op.text("CURRENT_TIMESTAMP")})]],
   down_code = [[op.drop_column("posts", "touched")]]},
  {rev = "ccccccccccc3", down = "bbbbbbbbbbb2", message = "longer titles",
   up = [[op.alter_column("posts", "title", {type = "string(200)", nullable = false})]],
   down_code = [[op.alter_column("posts", "title", {type = "string(50)", nullable = true})]]},
  {rev = "ddddddddddd4", down = "ccccccccccc3", message = "no touched",
   up = [[op.drop_column("posts", "touched")]],
   down_code = [[op.add_column("posts", {"touched", "datetime", onupdate = op.text("CURRENT_TIMESTAMP")})]]},
}

local catalog = {
  sqlite = {
    triggers = "SELECT name FROM sqlite_schema WHERE type = 'trigger' ORDER BY 1",
    functions = nil,
    fk_on_update = "SELECT on_update FROM pragma_foreign_key_list('posts')",
  },
  postgresql = {
    triggers = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1",
    functions = "SELECT proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace ORDER BY 1",
    fk_on_update = "SELECT confupdtype FROM pg_constraint WHERE contype = 'f' AND conrelid = 'posts'::regclass",
  },
}

local OLD = "2000-01-01 00:00:00"
local EXPLICIT = "2001-02-03 04:05:06"

for _, d in ipairs(H.dialects) do
  describe("onupdate = SQL on " .. d.name, function()
    local c = catalog[d.name]
    local url, query, dir

    local function run(...)
      local code, out, err = H.run({...}, {dir = dir})
      assert.are.equal(0, code, err)
      return out
    end

    -- A column of row id, as text (seconds only: PostgreSQL has more).
    local function value(col, id)
      return (query(("SELECT %s FROM posts WHERE id = %d"):format(col, id)) or "?"):sub(1, 19)
    end

    -- Row 1 and 2 with `cols` at OLD; then an UPDATE of row 1's title.
    local function touch_row1(cols)
      local sets = {}
      for _, col in ipairs(cols) do sets[#sets + 1] = col .. " = '" .. OLD .. "'" end
      assert(query("DELETE FROM posts"))
      assert(query("INSERT INTO posts (id, title) VALUES (1, 'a'), (2, 'b')"))
      -- setting the column explicitly keeps the value set
      assert(query("UPDATE posts SET " .. table.concat(sets, ", ")))
      for _, col in ipairs(cols) do
        assert.are.equal(OLD, value(col, 1))
        assert.are.equal(OLD, value(col, 2))
      end
      assert(query("UPDATE posts SET title = 'changed' WHERE id = 1"))
    end

    local function assert_touched(cols)
      touch_row1(cols)
      for _, col in ipairs(cols) do
        local v = value(col, 1)
        assert.are_not.equal(OLD, v)
        assert.truthy(v:match("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d$"), v)
        assert.are.equal(OLD, value(col, 2))         -- only the updated row
      end
    end

    before_each(function()
      url, query = d.fresh()
      dir = H.project(url, revisions)
    end)

    it("sets the column on every UPDATE of its row, through a named trigger", function()
      run("upgrade", "aaaaaaaaaaa1")
      assert.are.equal("posts_updated_at_onupdate\n", query(c.triggers))
      if c.functions then assert.are.equal("posts_updated_at_onupdate\n", query(c.functions)) end
      assert_touched({"updated_at"})
      -- an UPDATE that sets the column itself keeps its value
      assert(query("UPDATE posts SET title = 'again', updated_at = '" .. EXPLICIT .. "' WHERE id = 1"))
      assert.are.equal(EXPLICIT, value("updated_at", 1))
      assert.are.equal("again\n", query("SELECT title FROM posts WHERE id = 1"))
    end)

    it("keeps a string as the foreign key's ON UPDATE action", function()
      run("upgrade", "aaaaaaaaaaa1")
      assert.are.equal(d.name == "sqlite" and "CASCADE\n" or "c\n", query(c.fk_on_update))
    end)

    it("works for add_column, survives an alter_column, and goes with its column", function()
      run("upgrade", "bbbbbbbbbbb2")
      assert.are.equal("posts_touched_onupdate\nposts_updated_at_onupdate\n", query(c.triggers))
      assert_touched({"updated_at", "touched"})
      run("upgrade", "ccccccccccc3")           -- a table rebuild on SQLite
      assert.are.equal("posts_touched_onupdate\nposts_updated_at_onupdate\n", query(c.triggers))
      assert_touched({"updated_at", "touched"})
      run("upgrade", "ddddddddddd4")
      assert.are.equal("posts_updated_at_onupdate\n", query(c.triggers))
      if c.functions then assert.are.equal("posts_updated_at_onupdate\n", query(c.functions)) end
      assert_touched({"updated_at"})
      run("downgrade", "ccccccccccc3")
      assert.are.equal("posts_touched_onupdate\nposts_updated_at_onupdate\n", query(c.triggers))
      assert_touched({"updated_at", "touched"})
      run("downgrade", "base")
      assert.are.equal("", query(c.triggers))
      if c.functions then assert.are.equal("", query(c.functions)) end
    end)

    it("follows a renamed column", function()
      H.write(dir .. "/migrations/0005_eeeeeeeeeee5.lua", H.script{
        rev = "eeeeeeeeeee5", down = "ddddddddddd4",
        up = [[op.alter_column("posts", "updated_at", {new_column_name = "modified_at"})]],
        down_code = [[op.alter_column("posts", "modified_at", {new_column_name = "updated_at"})]]})
      H.write(dir .. "/migrations/0006_fffffffffff6.lua", H.script{
        rev = "fffffffffff6", down = "eeeeeeeeeee5",
        up = [[op.drop_column("posts", "modified_at")]],
        down_code = [[op.add_column("posts", {"modified_at", "datetime", onupdate = op.func.now()})]]})
      run("upgrade", "eeeeeeeeeee5")
      assert_touched({"modified_at"})
      run("upgrade", "fffffffffff6")
      assert.are.equal("", query(c.triggers))
      if c.functions then assert.are.equal("", query(c.functions)) end
      assert(query("UPDATE posts SET title = 'fine' WHERE id = 1"))
      run("downgrade", "eeeeeeeeeee5")
      assert_touched({"modified_at"})
    end)

    it("follows a renamed table", function()
      dir = H.project(url, {revisions[1],
        {rev = "eeeeeeeeeee5", down = "aaaaaaaaaaa1", up = [[op.rename_table("posts", "articles")]]},
        {rev = "fffffffffff6", down = "eeeeeeeeeee5", up = [[op.drop_column("articles", "updated_at")]]}})
      run("upgrade", "eeeeeeeeeee5")
      assert(query("INSERT INTO articles (id, title, updated_at) VALUES (1, 'a', '" .. OLD .. "')"))
      assert(query("UPDATE articles SET title = 'b'"))
      assert.are_not.equal(OLD, (query("SELECT updated_at FROM articles") or ""):sub(1, 19))
      local script = run("upgrade", "eeeeeeeeeee5:fffffffffff6", "--sql")
      assert.truthy(script:find(d.name == "sqlite" and "DROP TRIGGER posts_updated_at_onupdate;"
                                or "DROP FUNCTION posts_updated_at_onupdate();", 1, true), script)
      run("upgrade", "fffffffffff6")
      assert.are.equal("", query(c.triggers))
      if c.functions then assert.are.equal("", query(c.functions)) end
      assert(query("UPDATE articles SET title = 'c'"))
    end)

    it("quotes names that need it", function()
      dir = H.project(url, {{rev = "eeeeeeeeeee5", up = [[
          op.create_table("Post Items", {{"id", "integer", primary_key = true}, {"n", "integer"},
            {"Edited At", "datetime", onupdate = op.func.now()}})]]},
        {rev = "fffffffffff6", down = "eeeeeeeeeee5", up = [[
          op.alter_column("Post Items", "n", {type = "bigint"})
          op.drop_column("Post Items", "Edited At")]]}})
      run("upgrade", "eeeeeeeeeee5")
      assert.are.equal("Post Items_Edited At_onupdate\n", query(c.triggers))
      assert(query([[INSERT INTO "Post Items" (id, n, "Edited At") VALUES (1, 1, ']] .. OLD .. "')"))
      assert(query([[UPDATE "Post Items" SET n = 2]]))
      assert.are_not.equal(OLD, (query([[SELECT "Edited At" FROM "Post Items"]]) or ""):sub(1, 19))
      run("upgrade", "fffffffffff6")
      assert.are.equal("", query(c.triggers))
      if c.functions then assert.are.equal("", query(c.functions)) end
    end)

    it("shows the triggers in --sql, and the script works when run", function()
      local script = run("upgrade", "head", "--sql")
      assert.truthy(script:find("CREATE TRIGGER posts_updated_at_onupdate", 1, true), script)
      assert.truthy(script:find("CREATE TRIGGER posts_touched_onupdate", 1, true), script)
      if d.name == "postgresql" then
        assert.truthy(script:find("CREATE FUNCTION posts_updated_at_onupdate() RETURNS trigger", 1, true))
        assert.truthy(script:find("NEW.updated_at := now();", 1, true))
        assert.truthy(script:find("DROP TRIGGER posts_touched_onupdate ON posts;\n\n" ..
                                  "DROP FUNCTION posts_touched_onupdate();\n\n" ..
                                  "ALTER TABLE posts DROP COLUMN touched;", 1, true), script)
      else
        -- the rebuild of ccccccccccc3 writes both triggers again
        local _, n = script:gsub("CREATE TRIGGER posts_touched_onupdate", "")
        assert.are.equal(2, n)
        assert.truthy(script:find("DROP TRIGGER posts_touched_onupdate;\n\n" ..
                                  "ALTER TABLE posts DROP COLUMN touched;", 1, true), script)
      end
      -- run by the database's own client, the script gives working triggers
      local path = H.tempdir() .. "/up.sql"
      H.write(path, script)
      if d.name == "sqlite" then
        local db = url:gsub("^sqlite:///", "")
        assert.are.equal(0, H.sh("sqlite3 -bail " .. H.quote(db) .. " <" .. H.quote(path)))
      else
        assert.are.equal(0, H.sh("psql -X -q -v ON_ERROR_STOP=1 " .. H.quote(url) ..
                                 " -f " .. H.quote(path) .. " >/dev/null"))
      end
      assert.are.equal("posts_updated_at_onupdate\n", query(c.triggers))
      assert_touched({"updated_at"})
      -- a downgrade script drops what the upgrade made
      local down = run("downgrade", "head:base", "--sql")
      if d.name == "postgresql" then
        assert.truthy(down:find("DROP TABLE posts;\n\nDROP FUNCTION posts_updated_at_onupdate();", 1, true), down)
      end
    end)

    it("keeps the triggers in an offline rebuild that starts mid-way", function()
      -- The model replayed from base knows the triggers.
      local script = run("upgrade", "bbbbbbbbbbb2:ddddddddddd4", "--sql")
      if d.name == "sqlite" then
        local rebuild = script:match("CREATE TABLE _lm_new_posts.-\nCOMMIT;")
        assert.truthy(rebuild, script)
        assert.truthy(rebuild:find("CREATE TRIGGER posts_updated_at_onupdate", 1, true), rebuild)
        assert.truthy(rebuild:find("CREATE TRIGGER posts_touched_onupdate", 1, true), rebuild)
      else
        assert.truthy(script:find("DROP FUNCTION posts_touched_onupdate();", 1, true), script)
      end
    end)

    it("goes with its column in a batch, online and in a --sql script", function()
      local revs = {revisions[1], revisions[2],
        {rev = "eeeeeeeeeee5", down = "bbbbbbbbbbb2",
         up = [[op.batch_alter_table("posts", function(b)
                  b.drop_column("touched")
                  b.add_column({"note", "text"})
                end)]]}}
      dir = H.project(url, revs)
      local script = run("upgrade", "head", "--sql")
      run("upgrade", "head")
      assert.are.equal("posts_updated_at_onupdate\n", query(c.triggers))
      if c.functions then assert.are.equal("posts_updated_at_onupdate\n", query(c.functions)) end
      assert_touched({"updated_at"})
      local url2, query2 = d.fresh()
      local path = H.tempdir() .. "/up.sql"
      H.write(path, script)
      if d.name == "sqlite" then
        local db = url2:gsub("^sqlite:///", "")
        assert.are.equal(0, H.sh("sqlite3 -bail " .. H.quote(db) .. " <" .. H.quote(path)))
      else
        assert.are.equal(0, H.sh("psql -X -q -v ON_ERROR_STOP=1 " .. H.quote(url2) ..
                                 " -f " .. H.quote(path) .. " >/dev/null"))
      end
      query = query2
      assert.are.equal("posts_updated_at_onupdate\n", query(c.triggers))
      if c.functions then assert.are.equal("posts_updated_at_onupdate\n", query(c.functions)) end
      assert_touched({"updated_at"})
    end)

    it("keeps create_table's if_not_exists true for its triggers", function()
      local create = [[op.create_table("notes", {{"id", "integer", primary_key = true},
          {"body", "text"}, {"edited_at", "datetime", onupdate = op.func.now()}},
          {if_not_exists = true})]]
      dir = H.project(url, {{rev = "eeeeeeeeeee5", up = create .. "\n" .. create}})
      run("upgrade", "head")
      assert.are.equal("notes_edited_at_onupdate\n", query(c.triggers))
      assert(query("INSERT INTO notes (id, body, edited_at) VALUES (1, 'a', '" .. OLD .. "')"))
      assert(query("UPDATE notes SET body = 'b'"))
      assert.are_not.equal(OLD, (query("SELECT edited_at FROM notes") or ""):sub(1, 19))
    end)

    if d.name == "sqlite" then
      it("refuses a WITHOUT ROWID table, whose rows it could not find", function()
        dir = H.project(url, {{rev = "eeeeeeeeeee5", up = [[
          op.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID")]]},
          {rev = "fffffffffff6", down = "eeeeeeeeeee5",
           up = [[op.add_column("kv", {"at", "datetime", onupdate = op.func.now()})]]}})
        local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
        assert.are.equal(1, code)
        assert.truthy(err:find("add_column kv.at: onupdate needs a trigger that finds the row " ..
                               "by rowid, and kv is a WITHOUT ROWID table", 1, true), err)
        assert.are.equal("", query(c.triggers))
        assert.are.equal("k|v\n", query("SELECT group_concat(name, '|') FROM pragma_table_info('kv')"))
      end)
    end

    it("refuses an onupdate that is neither", function()
      H.write(dir .. "/migrations/0005_eeeeeeeeeee5.lua", H.script{
        rev = "eeeeeeeeeee5", down = "ddddddddddd4",
        up = [[op.add_column("posts", {"n", "integer", onupdate = 5})]]})
      local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(1, code)
      assert.truthy(err:find("add_column: column n: onupdate must be a foreign-key action", 1, true), err)
      assert.truthy(err:find("0005_eeeeeeeeeee5.lua:", 1, true), err)
      H.write(dir .. "/migrations/0005_eeeeeeeeeee5.lua", H.script{
        rev = "eeeeeeeeeee5", down = "ddddddddddd4",
        up = [[op.add_column("posts", {"n", "datetime", onupdate = "now()"})]]})
      code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(1, code)
      assert.truthy(err:find("but the column has no references", 1, true), err)
      assert.truthy(err:find("op.func.now()", 1, true), err)
      -- nothing after the failing revision's predecessor was kept
      assert.truthy(query("SELECT version_num FROM luamig_version"):find("ddddddddddd4", 1, true))
    end)
  end)
end
