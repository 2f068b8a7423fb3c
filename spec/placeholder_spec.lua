-- placeholder_spec.lua - under --sql, $n placeholders are replaced by their
-- values where the database would see a placeholder, and nowhere else:
-- inside a string, a quoted identifier, a dollar-quoted body or a comment
-- "$1" stays as written.  The script, run with psql / sqlite3, leaves the
-- rows the online run leaves.
local H = require "helpers"

local function apply_script(dialect, url, path, sql)
  local f = os.tmpname()
  H.write(f, sql)
  local cmd = dialect == "sqlite"
    and ("env LD_PRELOAD= sqlite3 -bail " .. H.quote(path) .. " <" .. H.quote(f))
    or ("env LD_PRELOAD= psql -X -q -v ON_ERROR_STOP=1 " .. H.quote(url) .. " -f " .. H.quote(f))
  local out = os.tmpname()
  local code = H.sh(cmd .. " >" .. H.quote(out) .. " 2>&1")
  local text = H.read(out)
  os.remove(f)
  os.remove(out)
  return code, text
end

-- What both tokenizers agree on.
local common = [==[
  op.execute([=[CREATE TABLE t (k text, v text, "$1" text)]=])
  op.execute([=[INSERT INTO t (k, v) VALUES ('string', 'it''s $2 ' || $1)]=], {"x"})
  op.execute([=[INSERT INTO t (k, "$1") VALUES ('ident', $1)]=], {"y"})
  op.execute("INSERT INTO t (k, v) -- $2\n VALUES ('comment', $1 /* $2 */)", {"z"})
  op.execute([=[INSERT INTO t (k, v) VALUES ('ten', $1 || $10 || $2 || $3 || $4 || $5 || $6 || $7 || $8 || $9)]=],
             {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"})
]==]

local cases = {
  postgresql = {
    up = common .. [==[
  op.execute([=[INSERT INTO t (k, v) VALUES ('dollar', $q$ it's $1 $q$ || $1 || $$ $2 $$)]=], {"w"})
  op.execute([=[INSERT INTO t (k, v) VALUES ('escape', E'it\'s $2 ' || $1)]=], {"e"})
  op.execute("INSERT INTO t (k, v) VALUES ('nested', /* a /* $2 */ $2 */ $1)", {"n"})
  op.execute([=[SELECT $1, $q$ it's $1 $q$, '$1']=], {5})
]==],
    expect = {
      [[INSERT INTO t (k, v) VALUES ('string', 'it''s $2 ' || 'x');]],
      [[INSERT INTO t (k, "$1") VALUES ('ident', 'y');]],
      "INSERT INTO t (k, v) -- $2\n VALUES ('comment', 'z' /* $2 */);",
      [[INSERT INTO t (k, v) VALUES ('ten', 'a' || 'j' || 'b' || 'c' || 'd' || 'e' || 'f' || 'g' || 'h' || 'i');]],
      [[INSERT INTO t (k, v) VALUES ('dollar', $q$ it's $1 $q$ || 'w' || $$ $2 $$);]],
      [[INSERT INTO t (k, v) VALUES ('escape', E'it\'s $2 ' || 'e');]],
      [[INSERT INTO t (k, v) VALUES ('nested', /* a /* $2 */ $2 */ 'n');]],
      [[SELECT 5, $q$ it's $1 $q$, '$1';]],
    },
  },
  sqlite = {
    up = common .. [==[
  op.execute("INSERT INTO t (k, [$1]) VALUES ('bracket', $1)", {"b"})
  op.execute("INSERT INTO t (k, `$1`) VALUES ('backtick', $1)", {"q"})
  op.execute([=[INSERT INTO t (k, v) VALUES ('unclosed', 'a /* b' || $1)]=], {"u"})
]==],
    expect = {
      [[INSERT INTO t (k, v) VALUES ('string', 'it''s $2 ' || 'x');]],
      [[INSERT INTO t (k, "$1") VALUES ('ident', 'y');]],
      "INSERT INTO t (k, v) -- $2\n VALUES ('comment', 'z' /* $2 */);",
      [[INSERT INTO t (k, v) VALUES ('ten', 'a' || 'j' || 'b' || 'c' || 'd' || 'e' || 'f' || 'g' || 'h' || 'i');]],
      [[INSERT INTO t (k, [$1]) VALUES ('bracket', 'b');]],
      "INSERT INTO t (k, `$1`) VALUES ('backtick', 'q');",
      [[INSERT INTO t (k, v) VALUES ('unclosed', 'a /* b' || 'u');]],
    },
  },
}

local rows = [[SELECT k, v, "$1" FROM t ORDER BY k]]

for _, d in ipairs(H.dialects) do
  describe("--sql placeholders on " .. d.name, function()
    it("are replaced only where the database sees a placeholder", function()
      local case = cases[d.name]
      local url, query = d.fresh()
      local dir = H.project(url, {{rev = "c00000000001", message = "placeholders",
                                   up = case.up}})
      local code, sql, err = H.run({"upgrade", "head", "--sql"}, {dir = dir})
      assert.are.equal(0, code, err)
      for _, line in ipairs(case.expect) do
        assert.is_truthy(sql:find(line, 1, true), "missing from --sql output: " .. line .. "\n" .. sql)
      end
      -- the script means what the online run does
      local url2, query2, path2 = d.fresh()
      local acode, aout = apply_script(d.name, url2, path2, sql)
      assert.are.equal(0, acode, aout)
      code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(0, code, err)
      local online = assert(query(rows))
      assert.are.equal(online, query2(rows))
      assert.matches("string|it's $2 x|", online, 1, true)
      assert.matches("ident||y", online, 1, true)
      assert.matches("ten|ajbcdefghi|", online, 1, true)
      if d.name == "postgresql" then assert.matches("dollar| it's $1 w $2 |", online, 1, true) end
    end)

    it("stops, naming it, at a placeholder with no value", function()
      local url = d.fresh()
      local dir = H.project(url, {{rev = "c00000000002", message = "short",
                                   up = [[op.execute("SELECT $1, $3", {1, 2})]]}})
      local code, sql, err = H.run({"upgrade", "head", "--sql"}, {dir = dir})
      assert.are.equal(1, code, sql)
      assert.matches("placeholder $3 has no value (2 given)", err, 1, true)
      assert.matches("c00000000002", err, 1, true)
      -- online the statement fails too, and nothing is recorded
      code = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(1, code)
      code, sql = H.run({"current"}, {dir = dir})
      assert.are.equal(0, code)
      assert.not_matches("c00000000002", sql, 1, true)
    end)
  end)
end
