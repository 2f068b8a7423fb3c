-- migrations_spec.lua - testing migrations with busted and luamig.testing.
--
--   busted examples/migrations_spec.lua            (from the repository root)
--   LUAMIG_TEST_SERVER=postgresql://user:pw@localhost/postgres busted examples/migrations_spec.lua
--
-- Each test gets a scratch database: a fresh SQLite file, or with
-- LUAMIG_TEST_SERVER a database created on that PostgreSQL server and
-- dropped when the test ends.  (From a build tree, put build/?.so on
-- LUA_CPATH; an installed luamig needs nothing.)
local testing = require "luamig.testing"

local server = os.getenv("LUAMIG_TEST_SERVER")
if server == "" then server = nil end

local function scratch()
  return assert(testing.scratch{config = "luamig.lua", url = server})
end

describe("migrations/", function()
  it("backfills email_verified before making it NOT NULL", function()
    local db <close> = scratch()
    assert(db:migrate_to("6f7081920314"))
    assert(db:execute("INSERT INTO persons (name, email) VALUES ($1, $2)",
                      {"Dee", "dee@example.org"}))
    assert(db:upgrade("8192031425b6"))
    local rows = assert(db:query("SELECT id FROM persons WHERE email_verified IS NULL"))
    assert.are.equal(0, #rows)
    assert.are.equal("boolean", db:column_type("persons", "email_verified"))
  end)

  it("turns persons.role into a foreign key to roles", function()
    local db <close> = scratch()
    assert(db:migrate_to("8192031425b6"))
    assert(db:execute("INSERT INTO persons (name, email, role) VALUES ($1, $2, $3)",
                      {"Hal", "hal@example.org", "janitor"}))
    assert(db:upgrade("92031425b6c7"))
    assert.is_true(db:has_table("roles"))
    assert.is_true(db:has_fk("persons", {"role_id"}))
    assert.is_true(db:has_index("persons", "ix_persons_role_id"))
    -- An unknown role is kept for review, not lost.
    local rows = assert(db:query("SELECT role_id FROM persons WHERE name = $1", {"Hal"}))
    assert.is_nil(rows[1].role_id)
  end)

  it("downgrades all the way back to an empty database", function()
    local db <close> = scratch()
    assert(db:migrate_to("head"))
    assert(db:downgrade("base"))
    assert.is_false(db:has_table("persons"))
    assert.are.same({}, db:current())
  end)
end)
