-- backup_spec.lua - upgrade --backup (and backup = true): a backup taken
-- under the lock before the first migration, that opens (sqlite3) or
-- restores (pg_restore) with the rows as they were, of exactly the tables
-- the migrations touch on PostgreSQL; a backup that cannot be written, or
-- pg_dump missing, and nothing migrates.
local H = require "helpers"

local R1, R2 = "aaaaaaaaaaa1", "bbbbbbbbbbb2"

local revisions = {
  {rev = R1, message = "tables",
   up = [[op.create_table("persons", {{"id", "integer", primary_key = true}, {"role", "text"}})
          op.create_table("untouched", {{"id", "integer", primary_key = true}})
          op.execute("INSERT INTO persons (id, role) VALUES (1, 'a'), (2, 'b'), (3, 'c')")
          op.execute("INSERT INTO untouched (id) VALUES (7)")]],
   down_code = [[op.drop_table("untouched") op.drop_table("persons")]]},
  {rev = R2, down = R1, message = "drop role",
   up = [[op.drop_column("persons", "role")
          op.create_table("fresh", {{"id", "integer", primary_key = true}})]],
   down_code = [[op.drop_table("fresh") op.add_column("persons", {"role", "text"})]]},
}

local function current(dir)
  local _, out = H.run({"current"}, {dir = dir})
  return out:match("(%x+)") or "base"
end

local function ls(dir, pattern)
  local found = {}
  local f = H.popen("ls " .. H.quote(dir))
  for name in f:lines() do
    if name:match(pattern) then found[#found + 1] = name end
  end
  f:close()
  return found
end

describe("upgrade --backup on sqlite", function()
  it("writes <db>.<time>-<rev>.bak with the rows before the upgrade, while another connection reads", function()
    local dir = H.tempdir()
    local db = dir .. "/app.db"
    local proj = H.project("sqlite:///" .. db, revisions)
    assert.are.equal(0, (H.run({"upgrade", R1}, {dir = proj})))
    -- a reader holds a read transaction open meanwhile
    local reader = H.popen("(echo 'BEGIN; SELECT count(*) FROM persons;'; sleep 1; echo 'COMMIT;') | sqlite3 " ..
                           H.quote(db) .. " >/dev/null 2>&1 & echo $!")
    reader:close()
    H.sh("sleep 0.2")
    local code, _, err = H.run({"upgrade", "head", "--backup"}, {dir = proj})
    assert.are.equal(0, code, err)
    local files = ls(dir, "^app%.db%.%d+T%d+Z%-" .. R1 .. "%.bak$")
    assert.are.equal(1, #files)
    assert.matches("backup written to " .. dir .. "/" .. files[1], err, 1, true)
    local bak = dir .. "/" .. files[1]
    assert.are.equal("1|a\n2|b\n3|c\n", H.sqlite_query(bak, "SELECT id, role FROM persons ORDER BY id"))
    assert.are.equal(nil, (H.sqlite_query(bak, "SELECT 1 FROM fresh")))
    assert.are.equal(R1 .. "\n", H.sqlite_query(bak, "SELECT version_num FROM luamig_version"))
    -- the database itself moved on; the backup is in the log
    assert.are.equal(R2, current(proj))
    assert.matches("backup written to", H.sqlite_query(db, "SELECT message FROM luamig_log WHERE direction = 'backup'"), 1, true)
  end)

  it("backup = true in the config backs up to PATH given, and an unwritable path migrates nothing", function()
    local dir = H.tempdir()
    local db = dir .. "/app.db"
    local proj = H.project("sqlite:///" .. db, revisions, "  backup = true,\n")
    assert.are.equal(0, (H.run({"-c", proj .. "/luamig.lua", "upgrade", R1}, {dir = proj})))
    -- an existing file is not overwritten
    H.write(dir .. "/taken.bak", "x")
    local code, _, err = H.run({"upgrade", "head", "--backup=" .. dir .. "/taken.bak"}, {dir = proj})
    assert.are.equal(1, code)
    assert.matches("cannot write the backup " .. dir .. "/taken.bak", err, 1, true)
    assert.matches("nothing was migrated", err, 1, true)
    assert.are.equal("x", H.read(dir .. "/taken.bak"))
    code, _, err = H.run({"upgrade", "head", "--backup", "/nonexistent/dir/x.bak"}, {dir = proj})
    assert.are.equal(1, code)
    assert.matches("cannot write the backup /nonexistent/dir/x.bak", err, 1, true)
    assert.are.equal(R1, current(proj))
    assert.are.equal("1|a\n2|b\n3|c\n", H.sqlite_query(db, "SELECT id, role FROM persons ORDER BY id"))
    -- backup = true: the upgrade backs up without the flag
    code, _, err = H.run({"upgrade", "head"}, {dir = proj})
    assert.are.equal(0, code, err)
    local files = ls(dir, "^app%.db%.%d+T%d+Z%-" .. R1 .. "%.bak$")
    assert.are.equal(1, #files)
    assert.are.equal("3\n", H.sqlite_query(dir .. "/" .. files[1], "SELECT count(role) FROM persons"))
    -- --backup with --sql is a usage error
    assert.are.equal(2, (H.run({"upgrade", "head", "--sql", "--backup"}, {dir = proj})))
  end)
end)

describe("upgrade --backup on postgresql", function()
  it("dumps exactly the tables the migrations touch; pg_restore brings them back", function()
    local url = H.pg_fresh()
    local proj = H.project(url, revisions)
    assert.are.equal(0, (H.run({"upgrade", R1}, {dir = proj})))
    local file = proj .. "/before.bak"
    local code, _, err = H.run({"upgrade", "head", "--backup", file}, {dir = proj})
    assert.are.equal(0, code, err)
    assert.matches("backup written to " .. file, err, 1, true)
    assert.matches("tables the upgrade touches: persons)", err, 1, true)
    assert.are.equal(R2, current(proj))
    local target = H.pg_fresh()
    assert.are.equal(0, H.sh("pg_restore --no-owner -d " .. H.quote(target) .. " " .. H.quote(file) .. " 2>&1"))
    assert.are.equal("persons\n", H.psql(target, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"))
    assert.are.equal("1|a\n2|b\n3|c\n", H.psql(target, "SELECT id, role FROM persons ORDER BY id"))
  end)

  it("gives pg_dump the password in its environment, never on its command line", function()
    local url = H.pg_fresh()
    assert.matches(":secret@", url)   -- the test server's URL carries one
    local proj = H.project(url, revisions)
    assert.are.equal(0, (H.run({"upgrade", R1}, {dir = proj})))
    -- a pg_dump in front of the real one, writing down what it was given
    local bin = H.tempdir()
    local real = assert(H.popen("command -v pg_dump"):read("l"))
    H.write(bin .. "/pg_dump", "#!/bin/sh\n" ..
            "printf '%s\\n' \"$@\" >" .. H.quote(bin .. "/argv") .. "\n" ..
            "printf '%s\\n' \"$PGPASSWORD\" >" .. H.quote(bin .. "/password") .. "\n" ..
            "exec " .. H.quote(real) .. " \"$@\"\n")
    assert.are.equal(0, H.sh("chmod +x " .. H.quote(bin .. "/pg_dump")))
    local file = proj .. "/with-password.bak"
    local code, _, err = H.run({"upgrade", "head", "--backup", file},
                               {dir = proj, env = {PATH = bin .. ":" .. os.getenv("PATH")}})
    assert.are.equal(0, code, err)
    local argv = assert(H.read(bin .. "/argv"))
    assert.is_nil(argv:find("secret", 1, true), argv)
    assert.matches("--dbname=postgresql://luamig@", argv, 1, true)
    assert.are.equal("secret\n", H.read(bin .. "/password"))
    assert.are.equal(R2, current(proj))
    local target = H.pg_fresh()
    assert.are.equal(0, H.sh("pg_restore --no-owner -d " .. H.quote(target) .. " " .. H.quote(file) .. " 2>&1"))
    assert.are.equal("1|a\n2|b\n3|c\n", H.psql(target, "SELECT id, role FROM persons ORDER BY id"))
  end)

  it("fails before migrating when pg_dump is missing or the path is unwritable", function()
    local url = H.pg_fresh()
    local proj = H.project(url, revisions)
    assert.are.equal(0, (H.run({"upgrade", R1}, {dir = proj})))
    local code, _, err = H.run({"upgrade", "head", "--backup"}, {dir = proj, env = {PATH = "/nonexistent"}})
    assert.are.equal(1, code)
    assert.matches("pg_dump is not installed", err, 1, true)
    assert.are.equal(R1, current(proj))
    code, _, err = H.run({"upgrade", "head", "--backup", "/nonexistent/dir/x.bak"}, {dir = proj})
    assert.are.equal(1, code)
    assert.matches("cannot write the backup /nonexistent/dir/x.bak", err, 1, true)
    assert.are.equal(R1, current(proj))
    assert.are.equal("3\n", H.psql(url, "SELECT count(role) FROM persons"))
    -- the default name: <database>.<time>-<rev>.bak in the current directory
    code, _, err = H.run({"upgrade", "head", "--backup"}, {dir = proj})
    assert.are.equal(0, code, err)
    local db = url:match("/([^/?]+)$")
    assert.are.equal(1, #ls(proj, "^" .. db .. "%.%d+T%d+Z%-" .. R1 .. "%.bak$"))
  end)

  it("backs up the whole database when a pending migration runs raw SQL or changes data", function()
    local url = H.pg_fresh()
    local revs = {revisions[1],
      {rev = R2, down = R1, message = "raw",
       up = [[op.execute("UPDATE untouched SET id = 8")]], down_code = ""}}
    local proj = H.project(url, revs)
    assert.are.equal(0, (H.run({"upgrade", R1}, {dir = proj})))
    local file = proj .. "/all.bak"
    local code, _, err = H.run({"upgrade", "head", "--backup", file}, {dir = proj})
    assert.are.equal(0, code, err)
    assert.matches("backing up the whole database", err, 1, true)
    local target = H.pg_fresh()
    assert.are.equal(0, H.sh("pg_restore --no-owner -d " .. H.quote(target) .. " " .. H.quote(file) .. " 2>&1"))
    assert.are.equal("luamig_log\nluamig_version\npersons\nuntouched\n",
                     H.psql(target, "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"))
    assert.are.equal("7\n", H.psql(target, "SELECT id FROM untouched"))
  end)
end)
