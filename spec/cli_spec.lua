-- cli_spec.lua - the command line: help, usage errors, init, revision,
-- merge, show, --sql, --json, and bad configuration, with exit codes.
local H = require "helpers"
local json = require "dkjson"

local function sqlite_project(revs, extra)
  local dir = H.tempdir()
  local url = "sqlite:///" .. dir .. "/app.db"
  local p = H.project(url, revs, extra)
  return p, p .. "/app.db"
end

local chain = {
  {rev = "aaaaaaaaaaa1", message = "create t", up = [[op.create_table("t", {{"id", "integer", primary_key = true}})]],
   down_code = [[op.drop_table("t")]]},
  {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", message = "add c",
   up = [[op.add_column("t", {"c", "string", server_default = "it's"})]],
   down_code = [[op.drop_column("t", "c")]]},
}

describe("luamig command line", function()
  it("prints help and version with exit 0", function()
    local code, out = H.run({"--help"})
    assert.are.equal(0, code)
    assert.matches("usage: luamig", out)
    for _, cmd in ipairs({"init", "revision", "merge", "upgrade", "downgrade", "stamp",
                          "current", "heads", "branches", "history", "show",
                          "ensure_version", "edit"}) do
      code, out = H.run({cmd, "-h"})
      assert.are.equal(0, code, cmd)
      assert.matches("usage: luamig " .. cmd, out)
    end
    code, out = H.run({"--version"})
    assert.are.equal(0, code)
    assert.matches("^luamig %d+%.%d+%.%d+", out)
  end)

  it("exits 2 on usage errors", function()
    local cases = {
      {{}, "usage"},
      {{"frobnicate"}, "unknown command 'frobnicate'"},
      {{"upgrade"}, "wrong number of arguments"},
      {{"upgrade", "head", "--bogus"}, "unknown option %-%-bogus"},
      {{"current", "--sql"}, "current does not take %-%-sql"},
      {{"-x", "novalue", "heads"}, "bad %-x argument 'novalue'"},
      {{"--url"}, "%-%-url needs a value"},
    }
    local dir = sqlite_project(chain)
    for _, c in ipairs(cases) do
      local code, _, err = H.run(c[1], {dir = dir})
      assert.are.equal(2, code, table.concat(c[1], " "))
      assert.matches(c[2], err)
    end
  end)

  it("init creates luamig.lua and the folder, and refuses to overwrite", function()
    local dir = H.tempdir()
    local code, out = H.run({"init", "versions"}, {dir = dir})
    assert.are.equal(0, code)
    assert.matches("Created", out)
    local cfg = assert(H.read(dir .. "/luamig.lua"))
    assert.matches('script_location = "versions"', cfg)
    assert.are.equal(0, H.sh("test -d " .. H.quote(dir .. "/versions")))
    local code2, _, err = H.run({"init", "versions"}, {dir = dir})
    assert.are.equal(1, code2)
    assert.matches("already exists", err)
    -- the new project works: a revision, then heads
    code = H.run({"revision", "-m", "first"}, {dir = dir})
    assert.are.equal(0, code)
    local _, heads = H.run({"heads"}, {dir = dir})
    assert.matches("^%x+ %(head%)\n$", heads)
  end)

  it("revision writes <rev>_<slug>.lua on top of the head", function()
    local dir = sqlite_project(chain)
    local code, out = H.run({"revision", "-m", "Add middle_name to Person!",
                             "--rev-id", "cccccccccccc"}, {dir = dir})
    assert.are.equal(0, code, out)
    local path = dir .. "/migrations/cccccccccccc_add_middle_name_to_person.lua"
    local text = assert(H.read(path), "file " .. path)
    assert.matches('down_revision = "bbbbbbbbbbb2"', text)
    assert.matches("%-%- Revises: bbbbbbbbbbb2", text)
    local _, heads = H.run({"heads"}, {dir = dir})
    assert.are.equal("cccccccccccc (head)\n", heads)
    -- a duplicate id is refused
    code = H.run({"revision", "-m", "again", "--rev-id", "cccccccccccc"}, {dir = dir})
    assert.are.equal(1, code)
  end)

  it("revision with several heads needs --head; merge joins them", function()
    local revs = {chain[1],
      {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1"},
      {rev = "ccccccccccc3", down = "aaaaaaaaaaa1"}}
    local dir = sqlite_project(revs)
    local code, _, err = H.run({"revision", "-m", "x"}, {dir = dir})
    assert.are.equal(1, code)
    assert.matches("head", err)
    code = H.run({"revision", "-m", "on b", "--head", "bbbbbbbbbbb2", "--rev-id", "ddddddddddd4",
                  "--branch-label", "lab"}, {dir = dir})
    assert.are.equal(0, code)
    local text = H.read(dir .. "/migrations/ddddddddddd4_on_b.lua")
    assert.matches('branch_labels = "lab"', text)
    code = H.run({"merge", "heads", "-m", "merge it", "--rev-id", "eeeeeeeeeee5"}, {dir = dir})
    assert.are.equal(0, code)
    text = H.read(dir .. "/migrations/eeeeeeeeeee5_merge_it.lua")
    assert.matches('down_revision = {"ccccccccccc3", "ddddddddddd4"}', text, nil, true)
    local _, heads = H.run({"heads"}, {dir = dir})
    assert.are.equal("eeeeeeeeeee5 (lab) (head)\n", heads)
    -- depends_on is written as the full id it resolves to
    code = H.run({"revision", "-m", "dep", "--rev-id", "fffffffffff6", "--depends-on", "bbbb"},
                 {dir = dir})
    assert.are.equal(0, code)
    text = H.read(dir .. "/migrations/fffffffffff6_dep.lua")
    assert.matches('depends_on = "bbbbbbbbbbb2"', text)
  end)

  it("show prints one revision in full", function()
    local dir = sqlite_project(chain)
    local code, out = H.run({"show", "bbbb"}, {dir = dir})
    assert.are.equal(0, code)
    assert.matches("Rev: bbbbbbbbbbb2 %(head%)", out)
    assert.matches("Parent: aaaaaaaaaaa1", out)
  end)

  it("--sql writes a complete script and touches no database", function()
    local dir, db = sqlite_project(chain)
    local code, out, err = H.run({"upgrade", "head", "--sql"}, {dir = dir})
    assert.are.equal(0, code, err)
    assert.is_nil(H.read(db), "the database file must not exist")
    assert.matches("^BEGIN;", out)
    assert.matches("CREATE TABLE luamig_version", out)
    assert.matches("%-%- Running upgrade  %-> aaaaaaaaaaa1", out)
    assert.matches("DEFAULT 'it''s'", out)
    assert.matches("INSERT INTO luamig_version %(version_num%) VALUES %('aaaaaaaaaaa1'%);", out)
    assert.matches("UPDATE luamig_version SET version_num = 'bbbbbbbbbbb2' WHERE version_num = 'aaaaaaaaaaa1';", out)
    assert.matches("COMMIT;\n\n$", out)
    -- the script applies cleanly with sqlite3 and leaves the same head
    local path = H.tempdir() .. "/offline.db"
    H.write(path .. ".sql", out)
    assert.are.equal(0, H.sh("sqlite3 " .. H.quote(path) .. " < " .. H.quote(path .. ".sql")))
    assert.are.equal("bbbbbbbbbbb2\n", H.sqlite_query(path, "SELECT version_num FROM luamig_version"))
    -- a range
    code, out = H.run({"downgrade", "bbbbbbbbbbb2:aaaaaaaaaaa1", "--sql"}, {dir = dir})
    assert.are.equal(0, code)
    assert.matches("ALTER TABLE t DROP COLUMN c", out)
    code, _, err = H.run({"downgrade", "base", "--sql"}, {dir = dir})
    assert.are.equal(2, code)
    assert.matches("FROM:TO", err)
  end)

  it("--json output parses", function()
    local dir = sqlite_project(chain)
    assert.are.equal(0, (H.run({"upgrade", "+1"}, {dir = dir})))
    for _, cmd in ipairs({"heads", "history", "current"}) do
      local code, out = H.run({cmd, "--json"}, {dir = dir})
      assert.are.equal(0, code)
      local v = assert(json.decode(out), cmd .. ": " .. out)
      assert.is_table(v[1])
      assert.matches("^%x+$", v[1].revision)
    end
    local _, out = H.run({"current", "--json"}, {dir = dir})
    assert.are.equal("aaaaaaaaaaa1", json.decode(out)[1].revision)
  end)

  it("names the file and line of a broken configuration", function()
    local dir = H.tempdir()
    H.write(dir .. "/luamig.lua", "return {\n  url = ,\n}\n")
    local code, _, err = H.run({"heads"}, {dir = dir})
    assert.are.equal(1, code)
    assert.matches("luamig%.lua:2:", err)
    H.write(dir .. "/luamig.lua", "return 42\n")
    code, _, err = H.run({"heads"}, {dir = dir})
    assert.are.equal(1, code)
    assert.matches("must return a table", err)
    H.write(dir .. "/luamig.lua", "return {urll = 'x'}\n")
    code, _, err = H.run({"heads"}, {dir = dir})
    assert.are.equal(1, code)
    assert.matches("unknown setting 'urll'", err)
    code, _, err = H.run({"-c", dir .. "/missing.lua", "heads"})
    assert.are.equal(1, code)
    assert.matches("not found", err)
  end)

  it("names the file and line of a broken revision script", function()
    local dir = sqlite_project(chain)
    H.write(dir .. "/migrations/0003_bad.lua", "return {\n revision = 'x'\n down_revision = 1 }\n")
    local code, _, err = H.run({"heads"}, {dir = dir})
    assert.are.equal(1, code)
    assert.matches("0003_bad%.lua:3:", err)
    H.write(dir .. "/migrations/0003_bad.lua", "return 'nope'\n")
    code, _, err = H.run({"heads"}, {dir = dir})
    assert.are.equal(1, code)
    assert.matches("0003_bad%.lua must return a table", err)
    H.write(dir .. "/migrations/0003_bad.lua", "return {message = 'no id'}\n")
    code, _, err = H.run({"heads"}, {dir = dir})
    assert.are.equal(1, code)
    assert.matches("0003_bad%.lua: the returned table has no revision", err)
  end)

  it("loading scripts has no effect on the database", function()
    local dir, db = sqlite_project({{rev = "aaaaaaaaaaa1", extra = [[
  os.remove("]] .. "never" .. [[") or nil,
]]}})
    local code = H.run({"heads"}, {dir = dir})
    assert.are.equal(0, code)
    assert.is_nil(H.read(db))
  end)

  it("reports a missing or bad URL without a crash", function()
    local dir = H.project("", chain)
    H.write(dir .. "/luamig.lua", "return {script_location = 'migrations'}\n")
    local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
    assert.are.equal(1, code)
    assert.matches("no database URL", err)
    code, _, err = H.run({"--url", "mysql://u:hunter2@h/db", "upgrade", "head"}, {dir = dir})
    assert.are.equal(1, code)
    assert.matches("unsupported database URL scheme 'mysql'", err)
    assert.not_matches("hunter2", err)
    code, _, err = H.run({"--url", "not a url hunter2", "current"}, {dir = dir})
    assert.are.equal(1, code)
    assert.matches("malformed database URL", err)
    assert.not_matches("hunter2", err)
    code, _, err = H.run({"--url", "sqlite:///" .. H.tempdir(), "current"}, {dir = dir})
    assert.are.equal(1, code)
    assert.matches("directory", err)
  end)

  it("never prints a PostgreSQL password", function()
    local dir = H.project("", chain)
    local bad = H.pg_url:gsub(":secret@", ":wrongpass@")
    local code, _, err = H.run({"--url", bad, "current"}, {dir = dir})
    assert.are.equal(1, code)
    assert.matches("password authentication failed", err)
    assert.not_matches("wrongpass", err)
    assert.matches(":%*%*%*@", err)
    local refused = H.pg_url:gsub("@127%.0%.0%.1:%d+/", "@127.0.0.1:1/")
    code, _, err = H.run({"--url", refused, "current"}, {dir = dir})
    assert.are.equal(1, code)
    assert.not_matches("secret", err)
    local nodb = H.pg_url:gsub("/[^/]*$", "/no_such_db")
    code, _, err = H.run({"--url", nodb, "current"}, {dir = dir})
    assert.are.equal(1, code)
    assert.matches("no_such_db", err)
    assert.not_matches("secret", err)
  end)

  it("the metadata cache follows edits and survives damage", function()
    local dir = sqlite_project(chain)
    local _, out = H.run({"history"}, {dir = dir})
    assert.matches("add c", out)
    local cache = dir .. "/migrations/.luamig-cache"
    assert.is_truthy(H.read(cache), "the cache was written")
    -- an edit of the same size, in place
    local path = dir .. "/migrations/0002_bbbbbbbbbbb2.lua"
    local text = H.read(path)
    local f = assert(io.open(path, "r+b"))
    f:write((text:gsub('add c', 'add x')))
    f:close()
    _, out = H.run({"history"}, {dir = dir})
    assert.matches("add x", out)
    assert.not_matches("add c", out)
    -- a damaged cache is ignored and rewritten
    H.write(cache, "luamig-cache 1\nrubbish")
    local code
    code, out = H.run({"heads"}, {dir = dir})
    assert.are.equal(0, code)
    assert.are.equal("bbbbbbbbbbb2 (head)\n", out)
    H.write(cache, string.rep("\0", 100))
    code, out = H.run({"history"}, {dir = dir})
    assert.are.equal(0, code)
    assert.matches("add x", out)
  end)

  it("edit opens the script in $EDITOR", function()
    local dir = sqlite_project(chain)
    local code = H.run({"edit", "aaaa"}, {dir = dir, env = {EDITOR = "touch"}})
    assert.are.equal(0, code)
    code = H.run({"edit", "aaaa"}, {dir = dir, env = {EDITOR = "false"}})
    assert.are.equal(1, code)
  end)
end)
