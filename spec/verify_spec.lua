-- verify_spec.lua - `luamig verify`: a history whose downgrades undo their
-- upgrades verifies clean; each way a downgrade can be wrong is found at
-- its revision, with the object named; the scratch database is never the
-- configured one and is gone afterwards.
local H = require "helpers"
local json = require "dkjson"

-- The base every broken case builds on: three tables, a check, a named
-- foreign key, a default.
local base = {
  {rev = "b1", message = "create wards",
   up = [[op.create_table("wards", {
            {"id", "integer", primary_key = true},
            {"name", "string(80)", nullable = false},
            {"code", "string(10)", server_default = "W"},
          }, {constraints = {{"check", "length(code) > 0", name = "ck_wards_code"}}})]],
   down_code = [[op.drop_table("wards")]]},
  {rev = "b2", down = "b1", message = "create beds",
   up = [[op.create_table("beds", {
            {"id", "integer", primary_key = true},
            {"ward_id", "integer", nullable = false},
            {"label", "text"},
          })
          op.create_foreign_key("fk_beds_ward", "beds", "wards", {"ward_id"}, {"id"})]],
   down_code = [[op.drop_table("beds")]]},
  {rev = "b3", down = "b2", message = "create tags",
   up = [[op.create_table("tags", {{"id", "integer", primary_key = true},
                                   {"name", "string(40)"}})
          op.create_index("ix_tags_name", "tags", {"name"})]],
   down_code = [[op.drop_table("tags")]]},
}

-- base, then `bad` as b4, then a correct b5 on top of it.
local function history(bad)
  local revs = {}
  for i, r in ipairs(base) do revs[i] = r end
  bad.rev, bad.down, bad.message = "b4", "b3", bad.message or "the broken one"
  revs[#revs + 1] = bad
  revs[#revs + 1] = {rev = "b5", down = "b4", message = "add tags.slug",
                     up = [[op.add_column("tags", {"slug", "string(20)"})]],
                     down_code = [[op.drop_column("tags", "slug")]]}
  return revs
end

-- Ten revisions on top of the bundled history: every kind of object made
-- and unmade, two fixtures (one through a SQLite rebuild).
local extra = {
  {rev = "e01", down = "031425b6c7d8", message = "create units",
   up = [[op.create_table("units", {
            {"id", "integer", primary_key = true},
            {"name", "string(80)", nullable = false},
            {"code", "string(10)", server_default = "U", comment = "short code"},
          }, {comment = "hospital units"})]],
   down_code = [[op.drop_table("units")]]},
  {rev = "e02", down = "e01", message = "add units.floor",
   extra = [[  fixture = function(op)
    op.execute("INSERT INTO units (name, code) VALUES ('North', 'N'), ('South', 'S')")
  end,]],
   up = [[op.add_column("units", {"floor", "integer"})]],
   down_code = [[op.drop_column("units", "floor")]]},
  {rev = "e03", down = "e02", message = "index units.name",
   up = [[op.create_index("ix_units_name", "units", {"name"})]],
   down_code = [[op.drop_index("ix_units_name", "units")]]},
  {rev = "e04", down = "e03", message = "unique units.code",
   up = [[op.create_unique_constraint("uq_units_code", "units", {"code"})]],
   down_code = [[op.drop_constraint("uq_units_code", "units", {type_ = "unique"})]]},
  {rev = "e05", down = "e04", message = "check units.floor",
   up = [[op.create_check_constraint("ck_units_floor", "units", "floor >= 0")]],
   down_code = [[op.drop_constraint("ck_units_floor", "units", {type_ = "check"})]]},
  {rev = "e06", down = "e05", message = "create rooms",
   up = [[op.create_table("rooms", {
            {"id", "integer", primary_key = true},
            {"unit_id", "integer", nullable = false, references = "units.id",
             ondelete = "CASCADE"},
            {"label", "text"},
          })]],
   down_code = [[op.drop_table("rooms")]]},
  {rev = "e07", down = "e06", message = "default units.floor",
   up = [[op.alter_column("units", "floor", {server_default = "0", existing_type = "integer"})]],
   down_code = [[op.alter_column("units", "floor", {server_default = false, existing_type = "integer"})]]},
  {rev = "e08", down = "e07", message = "rooms.label to string(40)",
   extra = [[  fixture = function(op)
    op.execute("INSERT INTO rooms (unit_id, label) SELECT id, 'room ' || name FROM units")
  end,]],
   up = [[op.alter_column("rooms", "label", {type = "string(40)", existing_type = "text"})]],
   down_code = [[op.alter_column("rooms", "label", {type = "text", existing_type = "string(40)"})]]},
  {rev = "e09", down = "e08", message = "unique index rooms",
   up = [[op.create_index("ix_rooms_unit_label", "rooms", {"unit_id", "label"}, {unique = true})]],
   down_code = [[op.drop_index("ix_rooms_unit_label", "rooms")]]},
  {rev = "e10", down = "e09", message = "units.name nullable",
   up = [[op.alter_column("units", "name", {nullable = true, existing_type = "string(80)"})]],
   down_code = [[op.alter_column("units", "name", {nullable = false, existing_type = "string(80)"})]]},
}

-- A project with the bundled migrations and the ten above.
local function bundled_project(url)
  local dir = H.project(url, {})
  assert(H.sh("cp migrations/*.lua " .. H.quote(dir .. "/migrations/")) == 0)
  for i, r in ipairs(extra) do
    H.write(string.format("%s/migrations/zz%02d_%s.lua", dir, i, r.rev), H.script(r))
  end
  return dir
end

local function verify(dir, args)
  local argv = {"verify"}
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  return H.run(argv, {dir = dir})
end

-- The name pattern of the scratch databases verify makes for the database
-- url names (other spec files run verify on the same server at once).
local function scratch_pattern(url)
  local db = (url or H.pg_url):match("/([^/?]*)[^/]*$"):lower()
                              :gsub("[^a-z0-9_]", "_"):sub(1, 20)
  return ("luamig_verify_" .. db .. "_%"):gsub("_", "\\_")
end

-- The scratch databases verify made for url's database and left behind.
local function pg_scratches(url)
  return assert(H.psql(H.pg_url, "SELECT count(*) FROM pg_database " ..
                       "WHERE datname LIKE '" .. scratch_pattern(url) .. "'"))
end

-- The broken downgrades: each fails at b4 and names the object.
local broken = {
  {what = "a forgotten index",
   up = [[op.create_index("ix_wards_name", "wards", {"name"})]],
   down_code = "",
   says = "index ix_wards_name on wards: added"},
  {what = "a column left behind",
   up = [[op.add_column("wards", {"floor", "integer"})]],
   down_code = "",
   says = "wards.floor: column added"},
  {what = "a default not restored",
   up = [[op.alter_column("wards", "code", {server_default = "X", existing_type = "string(10)"})]],
   down_code = [[op.alter_column("wards", "code", {server_default = false, existing_type = "string(10)"})]],
   says = "wards.code: default 'W' -> none"},
  {what = "a wrong type restored",
   up = [[op.alter_column("wards", "name", {type = "text", existing_type = "string(80)"})]],
   down_code = [[op.alter_column("wards", "name", {type = "string(40)", existing_type = "text"})]],
   says = "wards.name: type string(80) -> string(40)"},
  {what = "a foreign key lost",
   up = [[op.drop_constraint("fk_beds_ward", "beds", {type_ = "foreignkey"})]],
   down_code = "",
   says = "foreign key fk_beds_ward on beds: removed"},
  {what = "an index put back on other columns",
   up = [[op.drop_index("ix_tags_name", "tags")]],
   down_code = [[op.create_index("ix_tags_name", "tags", {"id", "name"})]],
   says = "index ix_tags_name on tags: (name) -> (id, name)"},
  {what = "a check constraint lost",
   up = [[op.drop_constraint("ck_wards_code", "wards", {type_ = "check"})]],
   down_code = "",
   says = "check ck_wards_code on wards: removed"},
  {what = "a fixture's rows lost by a drop and re-add",
   extra = [[  fixture = function(op)
    op.execute("INSERT INTO tags (name) VALUES ('a'), ('b'), ('c')")
  end,]],
   up = [[op.add_column("tags", {"color", "string(20)"})]],
   down_code = [[op.drop_table("tags")
          op.create_table("tags", {{"id", "integer", primary_key = true},
                                   {"name", "string(40)"}})
          op.create_index("ix_tags_name", "tags", {"name"})]],
   says = "rows lost in tags: 3 before the upgrade, 0 after the downgrade"},
}

for _, d in ipairs(H.dialects) do
  describe("verify on " .. d.name, function()
    it("verifies the bundled history and ten more revisions clean, the configured database untouched", function()
      local url, query = d.fresh()
      local dir = bundled_project(url)
      local code, out, err = verify(dir)
      assert.are.equal(0, code, err)
      assert.matches("^verified 20 revisions on " .. d.name .. " in [%d.]+ s\n$", out)
      -- nothing in the configured database: not even the version table
      local tables = d.name == "sqlite"
        and "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
        or "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
      assert.are.equal("0\n", query(tables) or "0\n")
      if d.name == "postgresql" then assert.are.equal("0\n", pg_scratches(url)) end
      code, out, err = verify(dir, {"--json"})
      assert.are.equal(0, code, err)
      local v = assert(json.decode(out), out)
      assert.are.same({true, d.name, 20, 0}, {v.ok, v.dialect, v.revisions_verified, #v.problems})
    end)

    for _, case in ipairs(broken) do
      it("finds " .. case.what .. " at its revision", function()
        local url = d.fresh()
        local dir = H.project(url, history({up = case.up, down_code = case.down_code,
                                            extra = case.extra}))
        local code, out, err = verify(dir)
        assert.are.equal(1, code, out .. err)
        assert.are.equal("", out)
        assert.matches("verify: b4 %(migrations/0004_b4%.lua%)", err)
        assert.truthy(err:find(case.says, 1, true), err)
        assert.falsy(err:find("b5", 1, true), err)
        if d.name == "postgresql" then assert.are.equal("0\n", pg_scratches(url)) end
        code, out = verify(dir, {"--json"})
        assert.are.equal(1, code)
        local v = assert(json.decode(out), out)
        assert.are.same({false, 3, "b4"}, {v.ok, v.revisions_verified, v.problems[1].revision})
      end)
    end

    it("names a downgrade that raises by file and line, and a fixture that fails", function()
      local url = d.fresh()
      local dir = H.project(url, history({up = [[op.add_column("wards", {"floor", "integer"})]],
                                          down_code = [[error("cannot go back")]]}))
      local code, _, err = verify(dir)
      assert.are.equal(1, code)
      assert.matches("migrations/0004_b4%.lua:%d+: cannot go back", err)
      dir = H.project(url, history({up = "", down_code = "",
        extra = [[  fixture = function(op) op.execute("INSERT INTO nowhere VALUES (1)") end,]]}))
      code, _, err = verify(dir)
      assert.are.equal(1, code)
      assert.matches("b4 %(migrations/0004_b4%.lua%): its fixture failed", err)
      assert.matches("nowhere", err)
    end)

    it("reports an upgrade from base that fails", function()
      local url = d.fresh()
      local dir = H.project(url, history({up = [[op.execute("SELECT * FROM nowhere")]],
                                          down_code = ""}))
      local code, _, err = verify(dir)
      assert.are.equal(1, code)
      assert.matches("b4 %(migrations/0004_b4%.lua%): the upgrade from base fails here: .*nowhere", err)
    end)

    it("refuses a scratch database that is not empty, and the configured one", function()
      local url, query = d.fresh()
      assert(query("CREATE TABLE keep (id integer)"))
      local dir = H.project(d.fresh(), base)
      local code, _, err = verify(dir, {"--scratch-url", url})
      assert.are.equal(1, code)
      assert.matches("is not empty %(keep%)", err)
      assert.are.equal("0\n", query("SELECT count(*) FROM keep"))
      local other = d.fresh()
      dir = H.project(other, base)
      code, _, err = verify(dir, {"--scratch-url", other})
      assert.are.equal(2, code)
      assert.matches("verify never touches it", err)
      -- an empty database of one's own is used, and left holding the walk's end
      local scratch = d.fresh()
      code, _, err = verify(dir, {"--scratch-url", scratch})
      assert.are.equal(0, code, err)
    end)
  end)
end

describe("verify's checks of the history", function()
  local function run_on(revs, files)
    local dir = H.project("sqlite:///configured.db", revs)
    for name, text in pairs(files or {}) do H.write(dir .. "/migrations/" .. name, text) end
    local code, out, err = verify(dir)
    return code, out, err, dir
  end

  it("lists several heads", function()
    local code, _, err, dir = run_on({base[1], {rev = "h2", down = "b1"}, {rev = "h3", down = "b1"}})
    assert.are.equal(1, code)
    assert.matches("2 heads: h2, h3", err)
    assert.is_nil(io.open(dir .. "/configured.db"))
  end)

  it("names a revision without a downgrade", function()
    local code, _, err = run_on({base[1]}, {["0002_nd.lua"] = [[
return {revision = "nd", down_revision = "b1",
        upgrade = function(op) op.add_column("wards", {"x", "integer"}) end}
]]})
    assert.are.equal(1, code)
    assert.matches("nd %(migrations/0002_nd%.lua%): no downgrade function", err)
  end)

  it("names a script that fails to load", function()
    local code, _, err = run_on({base[1]}, {["0002_bad.lua"] = "return {revision = \n"})
    assert.are.equal(1, code)
    assert.matches("cannot load .*0002_bad%.lua", err)
  end)

  it("says in --help that it never touches the configured database", function()
    local code, out = H.run({"verify", "--help"})
    assert.are.equal(0, code)
    assert.matches("never touches the configured one", out)
  end)
end)

describe("verify's scratch PostgreSQL database", function()
  it("names the CREATEDB privilege and --scratch-url when the role lacks it", function()
    -- the test server's superuser, over its unix socket (spec/pgserver.sh)
    local sockdir = assert(H.read(H.tmp .. "/pg/sockdir")):gsub("%s+$", "")
    local super = string.format("postgresql:///postgres?host=%s&port=%s&user=postgres",
                                sockdir, H.pg_url:match(":(%d+)/"))
    local role = "nocreate" .. tostring(os.time() % 100000) .. tostring(math.random(1, 1e5))
    assert(H.psql(super, "CREATE ROLE " .. role .. " LOGIN PASSWORD 'pw' NOCREATEDB"))
    local url = H.pg_url:gsub("//[^@]*@", "//" .. role .. ":pw@")
    local dir = H.project(url, base)
    local code, _, err = verify(dir)
    assert.are.equal(1, code)
    assert.matches("role " .. role .. " lacks the CREATEDB privilege", err)
    assert.matches("%-%-scratch%-url", err)
    assert.are.equal("0\n", pg_scratches(url))
  end)

  it("is dropped after SIGINT", function()
    local url = H.pg_fresh()
    local revs = {base[1], {rev = "slow", down = "b1",
                            up = [[op.execute("SELECT pg_sleep(20)")]], down_code = ""}}
    local dir = H.project(url, revs)
    local log = dir .. "/during"
    -- start verify, wait until its scratch database exists, interrupt it
    local script = string.format([[
cd %s && %s %s verify >out 2>err &
pid=$!
for i in $(seq 1 100); do
  n=$(psql -X -At %s -c "SELECT count(*) FROM pg_database WHERE datname LIKE '%s'")
  [ "$n" = 1 ] && break
  sleep 0.1
done
echo "$n" > %s
sleep 0.5
kill -INT $pid
wait $pid
echo $? >> %s
]], H.quote(dir), H.asan and "LD_PRELOAD= ASAN_OPTIONS=detect_leaks=1:exitcode=99" or "",
      H.quote(H.bin), H.quote(H.pg_url), scratch_pattern(url), H.quote(log),
      H.quote(log))
    H.sh("sh -c " .. H.quote(script))
    assert.are.same({"1", "130"}, H.lines(H.read(log)))
    assert.are.equal("0\n", pg_scratches(url))
    assert.matches("interrupted by SIGINT", H.read(dir .. "/err"))
  end)
end)
