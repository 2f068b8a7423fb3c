-- bad_input_spec.lua - every bad input a user may type or write gets a
-- clear message, the right exit code, no crash and no database change.
-- Each case starts from a database at revision aaaaaaaaaaa1 and compares a
-- snapshot of it (schema, version table, log) before and after.
local H = require "helpers"

local base = {
  {rev = "aaaaaaaaaaa1", message = "create t",
   up = [[op.create_table("t", {{"id", "integer", primary_key = true}, {"v", "text"}})
          op.execute("INSERT INTO t (id, v) VALUES (1, NULL), (2, 'x')")]],
   down_code = [[op.drop_table("t")]]},
}

local function with(...)
  local revs = {base[1]}
  for _, r in ipairs({...}) do revs[#revs + 1] = r end
  return revs
end

local function rev(id, down, up, extra)
  return {rev = id, down = down, up = up, extra = extra}
end

-- Raw files (for scripts that must not be well-formed).
local function raw(name, text)
  return function(dir) H.write(dir .. "/migrations/" .. name, text) end
end

local cases = {
  {"Lua syntax error", with(), {"upgrade", "head"}, 1, {"9999_bad%.lua:2:"},
   setup = raw("9999_bad.lua", "return {\n  revision = = 'x',\n}\n")},
  {"runtime error in upgrade", with(rev("bbbbbbbbbbb2", "aaaaaaaaaaa1", "local t = nil\n return t.x")),
   {"upgrade", "head"}, 1, {"0002_bbbbbbbbbbb2%.lua:%d+:", "attempt to index"}},
  {"script without revision", with(), {"upgrade", "head"}, 1, {"9999_bad%.lua", "no revision"},
   setup = raw("9999_bad.lua", "return {down_revision = 'aaaaaaaaaaa1'}\n")},
  {"script returning a non-table", with(), {"upgrade", "head"}, 1, {"9999_bad%.lua must return a table"},
   setup = raw("9999_bad.lua", "return 'hello'\n")},
  {"duplicate revision id", with(rev("aaaaaaaaaaa1", nil, "")), {"upgrade", "head"}, 1, {"aaaaaaaaaaa1"}},
  {"unknown down_revision", with(rev("bbbbbbbbbbb2", "ffffffffffff", "")), {"upgrade", "head"}, 1,
   {"ffffffffffff", "bbbbbbbbbbb2"}},
  {"a cycle", with(rev("bbbbbbbbbbb2", "ccccccccccc3", ""), rev("ccccccccccc3", "bbbbbbbbbbb2", "")),
   {"upgrade", "head"}, 1, {"cycle"}},
  {"duplicate branch label",
   with({rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", labels = "x"},
        {rev = "ccccccccccc3", down = "aaaaaaaaaaa1", labels = "x"}),
   {"upgrade", "head"}, 1, {"branch name 'x'", "bbbbbbbbbbb2", "ccccccccccc3"}},
  {"upgrade head with several heads",
   with(rev("bbbbbbbbbbb2", "aaaaaaaaaaa1", ""), rev("ccccccccccc3", "aaaaaaaaaaa1", "")),
   {"upgrade", "head"}, 1, {"bbbbbbbbbbb2", "ccccccccccc3", "heads"}},
  {"ambiguous prefix",
   with(rev("abcdef000001", "aaaaaaaaaaa1", ""), rev("abcdef000002", "abcdef000001", "")),
   {"upgrade", "abcdef"}, 1, {"abcdef000001", "abcdef000002"}},
  {"unknown target", with(), {"upgrade", "nosuchrev"}, 1, {"nosuchrev"}},
  {"downgrade +1", with(), {"downgrade", "+1"}, 1, {"%+1"}},
  {"unknown command", with(), {"upgrayedd"}, 2, {"unknown command"}},
  {"unknown flag", with(), {"upgrade", "head", "--fast"}, 2, {"unknown option %-%-fast"}},
  {"malformed URL", with(), {"--url", "sqlite:/x.db", "upgrade", "head"}, 1, {"malformed database URL"}},
  {"bad -x", with(), {"-x", "=v", "upgrade", "head"}, 2, {"bad %-x argument"}},
  {"missing luamig.lua", with(), {"-c", "nope.lua", "upgrade", "head"}, 1, {"nope%.lua not found"}},
  {"broken luamig.lua", with(), {"upgrade", "head"}, 1, {"luamig%.lua:1:"},
   setup = function(dir) H.write(dir .. "/luamig.lua", "return {url = }\n") end},
  {"op call with a number for a table name", with(rev("bbbbbbbbbbb2", "aaaaaaaaaaa1", "op.drop_table(42)")),
   {"upgrade", "head"}, 1, {"0002_bbbbbbbbbbb2%.lua:%d+:", "drop_table", "table name must be a string"}},
  {"op call with an unknown option", with(rev("bbbbbbbbbbb2", "aaaaaaaaaaa1",
     [[op.add_column("t", {"c", "text", nullabel = true})]])),
   {"upgrade", "head"}, 1, {"add_column", "unknown column option 'nullabel'"}},
  {"SQL error", with(rev("bbbbbbbbbbb2", "aaaaaaaaaaa1", [[op.execute("SELEC 1")]])),
   {"upgrade", "head"}, 1, {"SELEC 1", "syntax error"}},
  {"NOT NULL over existing NULLs", with(rev("bbbbbbbbbbb2", "aaaaaaaaaaa1",
     [[op.create_table("u", {{"id", "integer", primary_key = true}})
       op.execute("INSERT INTO u (id) SELECT id FROM t")
       op.execute("UPDATE t SET v = NULL")
       op.add_column("t", {"w", "integer", nullable = false})]])),
   {"upgrade", "head"}, 1, {"bbbbbbbbbbb2", "NOT NULL"}},
  {"foreign key over orphans", with(rev("bbbbbbbbbbb2", "aaaaaaaaaaa1",
     [[op.create_table("child", {{"id", "integer", primary_key = true},
                                 {"t_id", "integer", references = "t.id"}})
       op.execute("INSERT INTO child (id, t_id) VALUES (1, 99)")]])),
   {"upgrade", "head"}, 1, {"bbbbbbbbbbb2", "foreign key"}},
}

local function snapshot(d, url, query, path)
  if d.name == "sqlite" then
    local f = H.popen("sqlite3 " .. H.quote(path) .. " .dump")
    local s = f:read("a")
    f:close()
    return s
  end
  return (query([[SELECT table_name || '.' || column_name || ':' || data_type || ':' || is_nullable
                  FROM information_schema.columns WHERE table_schema = 'public'
                  ORDER BY table_name, column_name]]) or "") ..
         (query("SELECT * FROM luamig_version") or "") ..
         (query("SELECT count(*) FROM luamig_log") or "") ..
         (query("SELECT * FROM t ORDER BY id") or "")
end

for _, d in ipairs(H.dialects) do
  describe("bad input on " .. d.name, function()
    for _, c in ipairs(cases) do
      it(c[1], function()
        local url, query, path = d.fresh()
        local dir = H.project(url, base)
        local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
        assert.are.equal(0, code, err)
        local before = snapshot(d, url, query, path)
        dir = H.project(url, c[2])
        if c.setup then c.setup(dir) end
        code, _, err = H.run(c[3], {dir = dir})
        assert.are.equal(c[4], code, err)
        for _, w in ipairs(c[5]) do
          assert.matches(w, err)
        end
        assert.not_matches("Segmentation", err)
        assert.are.equal(before, snapshot(d, url, query, path), "the database changed")
      end)
    end
  end)
end

describe("bad connections", function()
  it("refused, unknown database, wrong password: exit 1, no password shown", function()
    local dir = H.project("", base)
    local urls = {
      {H.pg_url:gsub("@127%.0%.0%.1:%d+/", "@127.0.0.1:1/"), "127%.0%.0%.1"},
      {H.pg_url:gsub("/[^/]*$", "/no_such_db"), "no_such_db"},
      {H.pg_url:gsub(":secret@", ":wr0ngpass@"), "password authentication failed"},
    }
    for _, u in ipairs(urls) do
      local code, _, err = H.run({"--url", u[1], "upgrade", "head"}, {dir = dir})
      assert.are.equal(1, code, err)
      assert.matches(u[2], err)
      assert.not_matches("secret", err)
      assert.not_matches("wr0ngpass", err)
    end
  end)

  it("SQLite file not writable, or a directory", function()
    local tmp = H.tempdir()
    local dir = H.project("sqlite:///" .. tmp .. "/ro.db", base)
    assert.are.equal(0, (H.run({"upgrade", "head"}, {dir = dir})))
    H.sh("chmod 444 " .. H.quote(tmp .. "/ro.db"))
    dir = H.project("sqlite:///" .. tmp .. "/ro.db",
                    with(rev("bbbbbbbbbbb2", "aaaaaaaaaaa1", [[op.create_table("z", {{"id", "integer", primary_key = true}})]])))
    -- root ignores file modes; only check when they apply
    local writable = H.sh("sh -c 'test -w " .. H.quote(tmp .. "/ro.db") .. "'") == 0
    local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
    if not writable then
      assert.are.equal(1, code)
      assert.matches("not writable", err)
    end
    code, _, err = H.run({"--url", "sqlite:///" .. tmp, "upgrade", "head"}, {dir = dir})
    assert.are.equal(1, code)
    assert.matches("directory", err)
  end)
end)
