-- dialect_safety_spec.lua - what a database's own settings and types must
-- not change: an offline script means what it says on a PostgreSQL server
-- with standard_conforming_strings off, and a Lua string that is not text
-- reaches a text column as an error naming the parameter, never as
-- something else.
local H = require "helpers"

-- The client runs without the sanitizer runtime (psql can hang with it).
local function psql_file(url, sql)
  local f = os.tmpname()
  H.write(f, sql)
  local out = os.tmpname()
  local code = H.sh("env LD_PRELOAD= psql -X -q -v ON_ERROR_STOP=1 " .. H.quote(url) ..
                    " -f " .. H.quote(f) .. " >" .. out .. " 2>&1")
  local text = H.read(out)
  os.remove(f)
  os.remove(out)
  return code, text
end

-- A fresh database whose sessions start with standard_conforming_strings
-- off, as on servers configured for old applications.
local function nonstandard_db()
  local url, name = H.pg_fresh()
  assert(H.psql(H.pg_url, "ALTER DATABASE " .. name .. " SET standard_conforming_strings = off"))
  assert.are.equal("off\n", H.psql(url, "SHOW standard_conforming_strings"))
  return url
end

local payload = [[\'); DROP TABLE victim; --]]

describe("--sql on PostgreSQL with standard_conforming_strings off", function()
  it("renders a literal with a backslash so that it stays one value", function()
    local url = nonstandard_db()
    assert(H.psql(url, "CREATE TABLE victim (v text)"))
    local dir = H.project(url, {{rev = "aaaaaaaaaaa1",
      up = string.format([[op.execute("INSERT INTO victim (v) VALUES ($1)", {%q})]], payload)}})
    local code, sql, err = H.run({"upgrade", "head", "--sql"}, {dir = dir})
    assert.are.equal(0, code, err)
    local pcode, ptext = psql_file(url, sql)
    assert.are.equal(payload .. "\n", H.psql(url, "SELECT v FROM victim"))
    assert.are.equal(0, pcode, ptext)
    assert.are.equal("aaaaaaaaaaa1\n", H.psql(url, "SELECT version_num FROM luamig_version"))
    assert.matches("^SET standard_conforming_strings = on;\n", sql)
  end)

  it("online too, a default with a backslash is stored as written", function()
    local url = nonstandard_db()
    local dir = H.project(url, {{rev = "aaaaaaaaaaa1",
      up = [[op.create_table("t", {{"id", "integer", primary_key = true},
                                   {"p", "string", server_default = "C:\\dir\\"}})
             op.execute("INSERT INTO t (id) VALUES (1)")]]}})
    local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
    assert.are.equal(0, code, err)
    assert.are.equal("C:\\dir\\\n", H.psql(url, "SELECT p FROM t"))
  end)

  it("stamp --sql and a range starting later begin with the setting too", function()
    local revs = {{rev = "aaaaaaaaaaa1", up = [[op.execute("SELECT 1")]]},
                  {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", up = [[op.execute("SELECT 2")]]}}
    local dir = H.project(H.pg_url, revs)
    for _, argv in ipairs({{"stamp", "bbbbbbbbbbb2", "--sql"},
                           {"upgrade", "aaaaaaaaaaa1:bbbbbbbbbbb2", "--sql"},
                           {"downgrade", "bbbbbbbbbbb2:aaaaaaaaaaa1", "--sql"}}) do
      local code, sql, err = H.run(argv, {dir = dir})
      assert.are.equal(0, code, err)
      assert.matches("^SET standard_conforming_strings = on;\n", sql)
    end
  end)

  it("leaves SQLite scripts as they were", function()
    local dir = H.project("sqlite:///" .. H.tempdir() .. "/x.db",
                          {{rev = "aaaaaaaaaaa1", up = [[op.execute("SELECT 1")]]}})
    local code, sql, err = H.run({"upgrade", "head", "--sql"}, {dir = dir})
    assert.are.equal(0, code, err)
    assert.is_nil(sql:find("standard_conforming_strings", 1, true))
  end)
end)

describe("a Lua string that is not text, on PostgreSQL", function()
  local function project(up)
    local url = H.pg_fresh()
    assert(H.psql(url, "CREATE TABLE t (v text); CREATE TABLE b (v bytea)"))
    return url, H.project(url, {{rev = "aaaaaaaaaaa1", up = up}})
  end

  for _, case in ipairs({{"not UTF-8", [["caf\233"]], "is not valid UTF%-8"},
                         {"a NUL", [["a\0b"]], "holds a NUL byte at offset 1"}}) do
    it("holding " .. case[1] .. " is refused for a text column, naming the parameter", function()
      local url, dir = project("op.execute(\"INSERT INTO t (v) VALUES ('ok')\")\n" ..
                               "op.execute(\"INSERT INTO t (v) VALUES ($1)\", {" .. case[2] .. "})")
      local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(1, code)
      assert.matches("parameter %$1 " .. case[3] .. ", so it is bytes, but the server reads %$1 as text", err)
      assert.matches("migrations/0001_aaaaaaaaaaa1.lua:%d+", err)
      assert.are.equal("0\n", H.psql(url, "SELECT count(*) FROM t"))
      assert.are.equal("0\n", H.psql(url, "SELECT count(*) FROM luamig_version"))
    end)

    it("holding " .. case[1] .. " is stored byte for byte in a bytea column", function()
      local url, dir = project("op.execute(\"INSERT INTO b (v) VALUES ($1)\", {" .. case[2] .. "})\n" ..
                               "op.execute(\"INSERT INTO t (v) VALUES ($1)\", {'plain'})")
      local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(0, code, err)
      local want = case[1] == "a NUL" and "610062" or "636166e9"
      assert.are.equal(want .. "\n", H.psql(url, "SELECT encode(v, 'hex') FROM b"))
      assert.are.equal("plain\n", H.psql(url, "SELECT v FROM t"))
    end)
  end

  it("is refused by op.query where the server reads text, taken where it reads bytea", function()
    local _, dir = project([[
      for row in op.query("SELECT length($1::bytea) AS n", {"caf\233"}) do
        io.stderr:write("bytea length ", row.n, "\n")
      end
      for row in op.query("SELECT $2::text || $1 AS s", {"caf\233", "x"}) do end]])
    local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
    assert.are.equal(1, code)
    assert.matches("bytea length 4\n", err)
    assert.matches("parameter %$1 is not valid UTF%-8, so it is bytes, but the server reads %$1 as text", err)
  end)
end)

describe("a Lua string that is not text, on SQLite", function()
  it("is stored as a BLOB byte for byte, in any column", function()
    local path = H.tempdir() .. "/x.db"
    assert(H.sqlite_query(path, "CREATE TABLE t (v TEXT)"))
    local dir = H.project("sqlite:///" .. path, {{rev = "aaaaaaaaaaa1",
      up = [[op.execute("INSERT INTO t (v) VALUES ($1), ($2)", {"caf\233", "a\0b"})]]}})
    local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
    assert.are.equal(0, code, err)
    assert.are.equal("636166E9|blob\n610062|blob\n", H.sqlite_query(path, "SELECT hex(v), typeof(v) FROM t ORDER BY rowid"))
  end)
end)

-- The progress line of a backfill, as a terminal shows it (script(1)
-- gives the run a pseudo-terminal).
local function run_on_terminal(dir)
  local out = os.tmpname()
  local cmd = (H.asan and "LD_PRELOAD= ASAN_OPTIONS=detect_leaks=1:exitcode=99 " or "") ..
              H.quote(H.bin) .. " upgrade head"
  local code = H.sh("cd " .. H.quote(dir) .. " && NO_COLOR=1 script -qefc " .. H.quote(cmd) ..
                    " /dev/null >" .. out .. " 2>&1 </dev/null")
  local text = H.read(out)
  os.remove(out)
  return code, text
end

for _, d in ipairs(H.dialects) do
  describe("a backfill's progress on " .. d.name, function()
    it("counts against the table as it is, loaded one migration earlier", function()
      local url, query = d.fresh()
      local revs = {
        {rev = "aaaaaaaaaaa1", up = [[
          op.create_table("people", {{"id", "integer", primary_key = true},
                                     {"name", "string(200)"}, {"tag", "string(20)"}})
          local i = 0
          op.bulk_insert("people", function()
            i = i + 1
            if i <= 200000 then return {id = i, name = ("n"):rep(120) .. i} end
          end)]]},
        {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", up = [[
          op.backfill("people", {key = "id", columns = {"id"}, batch_size = 500},
            function(row) return {tag = "t" .. row.id % 7} end)]]},
      }
      local dir = H.project(url, revs)
      local code, text = run_on_terminal(dir)
      assert.are.equal(0, code, text)
      assert.matches("backfill people: [%d,]+ / 200,000 rows %(%d+%%%)", text)
      for total in text:gmatch("/ ([%d,]+) rows") do assert.are.equal("200,000", total) end
      assert.are.equal("200000\n", query("SELECT count(*) FROM people WHERE tag IS NOT NULL"))
    end)
  end)
end
