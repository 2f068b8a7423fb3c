-- testing_helper_spec.lua - migration tests for the bundled migrations/,
-- written with luamig.testing as a project would write them: a scratch
-- database per test, migrated to a revision, rows inserted, migrated on,
-- then the schema and the rows checked.  Both dialects: a fresh SQLite
-- file, and a database created on the test PostgreSQL server and dropped.
local H = require "helpers"
local testing = require "luamig.testing"

local servers = {
  {name = "sqlite", url = nil},
  {name = "postgresql", url = H.pg_url},
}

-- The repository's own configuration; the scratch database replaces its url.
local config = "luamig.lua"

local function count(db, sql, params)
  local rows = assert(db:query(sql, params))
  return #rows
end

for _, server in ipairs(servers) do
  describe("the bundled migrations on " .. server.name, function()
    it("make email_verified NOT NULL in three phases without losing a row", function()
      local db <close> = assert(testing.scratch{config = config, url = server.url})
      assert.are.equal(server.name, db.dialect)
      assert(db:migrate_to("6f7081920314"))           -- phase 1: the nullable column
      assert.is_true(db:has_column("persons", "email_verified"))
      -- Ada and Ben have assignments; Dee has none.
      assert(db:execute("INSERT INTO persons (name, email) VALUES ($1, $2)",
                        {"Dee Okafor", "dee@example.org"}))
      assert.are.equal(3, count(db, "SELECT id FROM persons WHERE email_verified IS NULL"))

      assert(db:upgrade("708192031425"))              -- phase 2: the backfill
      local rows = assert(db:query("SELECT name, email_verified FROM persons ORDER BY name"))
      assert.are.equal(3, #rows)
      local verified = {}
      for _, r in ipairs(rows) do verified[r.name] = r.email_verified end
      -- SQLite stores booleans as 0/1, PostgreSQL as true/false.
      local yes, no = server.name == "sqlite" and 1 or true, server.name == "sqlite" and 0 or false
      assert.are.same({["Ada Ward"] = yes, ["Ben Osei"] = yes, ["Dee Okafor"] = no}, verified)

      assert(db:upgrade("8192031425b6"))              -- phase 3: NOT NULL
      assert.are.equal("boolean", db:column_type("persons", "email_verified"))
      local ok, err = db:execute("INSERT INTO persons (name, email, email_verified) VALUES ($1, $2, $3)",
                                 {n = 3, "Eve", "eve@example.org", nil})
      assert.is_nil(ok)
      assert.matches("[Nn][Oo][Tt][ -][Nn][Uu][Ll][Ll]", err)
      -- The default fills it when the column is left out.
      assert(db:execute("INSERT INTO persons (name, email) VALUES ($1, $2)", {"Fay", "fay@example.org"}))
      assert.are.equal(0, count(db, "SELECT id FROM persons WHERE email_verified IS NULL"))
      assert.are.equal(4, count(db, "SELECT id FROM persons"))
      -- Assignments survived the SQLite rebuild of persons, keys and all.
      assert.are.equal(2, count(db, "SELECT id FROM assignments"))
      assert.is_true(db:has_fk("assignments", {"person_id"}))

      assert(db:downgrade("6f7081920314"))
      assert.is_true(db:has_column("persons", "email_verified"))
      assert.are.equal(4, count(db, "SELECT id FROM persons WHERE email_verified IS NULL"))
    end)

    it("turn persons.role into a foreign key and keep the orphans for review", function()
      local db <close> = assert(testing.scratch{config = config, url = server.url})
      assert(db:migrate_to("8192031425b6"))
      assert.is_false(db:has_table("roles"))
      assert(db:execute("INSERT INTO persons (name, email, role) VALUES ($1, $2, $3)",
                        {"Gus", "gus@example.org", "fellow"}))
      assert(db:execute("INSERT INTO persons (name, email, role) VALUES ($1, $2, $3)",
                        {"Hal", "hal@example.org", "janitor"}))

      assert(db:upgrade("92031425b6c7"))
      assert.is_true(db:has_table("roles"))
      assert.is_true(db:has_column("persons", "role_id"))
      assert.matches("^int", db:column_type("persons", "role_id"))
      assert.is_true(db:has_fk("persons", {"role_id"}))
      assert.is_false(db:has_fk("persons", {"name"}))
      assert.is_true(db:has_index("persons", "ix_persons_role_id"))
      assert.is_false(db:has_index("persons", "ix_nope"))

      local rows = assert(db:query([[SELECT p.name, r.name AS role_name FROM persons p
                                     LEFT JOIN roles r ON r.id = p.role_id
                                     WHERE p.name IN ($1, $2) ORDER BY p.name]], {"Gus", "Hal"}))
      assert.are.equal(2, #rows)
      assert.are.equal("fellow", rows[1].role_name)
      assert.is_nil(rows[2].role_name)                -- the orphan, left NULL
      assert.are.equal(2, count(db, "SELECT id FROM persons WHERE role_id IS NULL"))  -- Hal and Cy

      -- The key holds: no person may name a role that does not exist.
      local ok = db:execute("INSERT INTO persons (name, email, role_id) VALUES ($1, $2, $3)",
                            {"Ivy", "ivy@example.org", 999})
      if server.name == "postgresql" then assert.is_nil(ok) end

      assert(db:downgrade("8192031425b6"))
      assert.is_false(db:has_table("roles"))
      assert.is_false(db:has_column("persons", "role_id"))
      assert.are.equal("janitor", assert(db:query("SELECT role FROM persons WHERE name = $1", {"Hal"}))[1].role)
    end)
  end)
end

describe("luamig.testing", function()
  it("gives each test a database of its own and removes it on close", function()
    local a = assert(testing.scratch{script_location = "migrations"})
    local b = assert(testing.scratch{script_location = "migrations"})
    assert.are_not.equal(a.url, b.url)
    assert(a:migrate_to("head"))
    assert.are.same({}, assert(b:current()))
    assert.is_false(b:has_table("persons"))
    local path = a.url:match("^sqlite:///(.*)$")
    assert.is_truthy(io.open(path))
    assert.is_true(a:close())
    assert.is_true(a:close())
    assert.is_nil(io.open(path))
    b:close()
  end)

  it("creates a PostgreSQL database on the server and drops it on close", function()
    local name
    do
      local db <close> = assert(testing.scratch{script_location = "migrations", url = H.pg_url})
      name = db.url:match("/([^/?]+)$")
      assert.are.equal(name .. "\n", H.psql(H.pg_url, "SELECT datname FROM pg_database WHERE datname = '" .. name .. "'"))
      assert(db:migrate_to("1a2b3c4d5e6f"))
      assert.is_true(db:has_table("persons"))
      assert.matches("^character varying%(100%)$", db:column_type("persons", "name"))
    end
    assert.are.equal("", H.psql(H.pg_url, "SELECT datname FROM pg_database WHERE datname = '" .. name .. "'"))
  end)

  it("returns nil and a message on failures, and raises on misuse", function()
    local db <close> = assert(testing.scratch{script_location = "migrations"})
    local ok, err = db:migrate_to("nosuchrev")
    assert.is_nil(ok)
    assert.matches("nosuchrev", err)
    ok, err = db:column_type("persons", "name")
    assert.is_nil(ok)
    assert.matches("no column name in table persons", err)
    ok, err = db:query("SELECT * FROM nowhere")
    assert.is_nil(ok)
    assert.matches("nowhere", err)
    local r, e = testing.scratch{url = "nosuch://server", script_location = "migrations"}
    assert.is_nil(r)
    assert.matches("nosuch", e)
    assert.has_error(function() testing.scratch("luamig.lua") end,
                     "luamig.testing.scratch: the options must be a table (got string)")
    assert.has_error(function() testing.scratch{url = 5} end)
    assert.has_error(function() db:has_table(nil) end)
    assert.has_error(function() db:has_fk("persons", 5) end)
  end)

  for _, server in ipairs(servers) do
    it("runs examples/migrations_spec.lua on " .. server.name, function()
      local out = os.tmpname()
      -- os.execute, not H.sh: an instrumented module needs the sanitizer
      -- runtime the interpreter has preloaded.
      local ok, _, status = os.execute("env LUAMIG_TEST_SERVER=" .. H.quote(server.url or "") ..
                        " LUA_CPATH=" .. H.quote((os.getenv("LUAMIG_CPATH") or "build/?.so") .. ";;") ..
                        " " .. H.quote(os.getenv("LUA") or "lua5.4") ..
                        " /usr/bin/busted examples/migrations_spec.lua >" .. out .. " 2>&1")
      local code = ok and 0 or status
      local text = H.read(out)
      os.remove(out)
      assert.are.equal(0, code, text)
      assert.matches("3 successes / 0 failures / 0 errors", text, 1, true)
    end)
  end
end)
