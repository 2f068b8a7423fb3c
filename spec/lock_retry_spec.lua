-- lock_retry_spec.lua - statement_lock_timeout and lock_retries: on
-- PostgreSQL, with another session holding ACCESS EXCLUSIVE on the table a
-- migration alters, the migration gives up after the timeout, is rolled
-- back and retried, then fails naming the blocking session; released
-- between retries, it succeeds.  --sql carries the SET; SQLite has no such
-- setting and runs as before.
local H = require "helpers"

local BASE, NEXT = "a1000000000b", "b1000000000c"
local revisions = {
  {rev = BASE, up = 'op.create_table("persons", {{"id", "integer", primary_key = true}})',
   down_code = 'op.drop_table("persons")'},
  {rev = NEXT, down = BASE, up = 'op.add_column("persons", {"note", "text"})',
   down_code = 'op.drop_column("persons", "note")'},
}
local CONFIG = 'statement_lock_timeout = "300ms",\nlock_retries = 2,\n'

-- Another session: takes ACCESS EXCLUSIVE on persons and keeps it for
-- `seconds`; returns its backend pid once it holds the lock.
local function hold_lock(url, seconds, tag)
  local sql = ("BEGIN; LOCK TABLE persons IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(%d) /* %s */; COMMIT;")
              :format(seconds, tag)
  H.sh("psql -X -q -v ON_ERROR_STOP=1 " .. H.quote(url) .. " -c " .. H.quote(sql) ..
       " >/dev/null 2>&1 &")
  local deadline = os.time() + 10
  while os.time() <= deadline do
    local pid = H.psql(url, ("SELECT l.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid " ..
                             "WHERE l.granted AND l.mode = 'AccessExclusiveLock' AND a.query LIKE '%%%s%%' " ..
                             "AND l.pid <> pg_backend_pid() AND l.relation = 'persons'::regclass"):format(tag))
    if pid and pid:match("%d") then return pid:match("%d+") end
    H.sh("sleep 0.05")
  end
  error("the blocking session did not get its lock")
end

describe("statement_lock_timeout and lock_retries (postgresql)", function()
  local url, dbname, dir
  setup(function()
    url, dbname = H.pg_fresh()
    dir = H.project(url, revisions, CONFIG)
  end)
  teardown(function()
    H.psql(H.pg_url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '" ..
           dbname .. "' AND pid <> pg_backend_pid()")
    H.psql(H.pg_url, "DROP DATABASE IF EXISTS " .. dbname)
  end)

  it("retries, then fails naming the blocking pid and its query", function()
    assert.equal(0, (H.run({"upgrade", BASE}, {dir = dir})))
    local blocker = hold_lock(url, 30, "blocker_one")
    local t0 = os.time()
    local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
    H.psql(url, "SELECT pg_terminate_backend(" .. blocker .. ")")
    assert.equal(1, code)
    assert.truthy(err:find("lock timeout on attempt 1 of 3", 1, true), err)
    assert.truthy(err:find("lock timeout on attempt 2 of 3", 1, true), err)
    assert.is_nil(err:find("attempt 3 of 3", 1, true), err)
    assert.truthy(err:find("gave up waiting for a lock after 3 attempts of 0.3 s each", 1, true), err)
    assert.truthy(err:find("pid " .. blocker, 1, true), err)
    assert.truthy(err:find("LOCK TABLE persons IN ACCESS EXCLUSIVE MODE", 1, true), err)
    assert.truthy(err:find("AccessExclusiveLock on persons", 1, true), err)
    assert.is_true(os.time() - t0 < 20)
    -- rolled back: no column, still at the base revision
    assert.equal("", H.psql(url, "SELECT column_name FROM information_schema.columns " ..
                                 "WHERE table_name = 'persons' AND column_name = 'note'"))
    assert.equal(BASE .. "\n", H.psql(url, "SELECT version_num FROM luamig_version"))
  end)

  it("succeeds when the lock is released between retries", function()
    H.write(dir .. "/luamig.lua", "return {\n  url = " .. string.format("%q", url) ..
            ",\n  script_location = \"migrations\",\n" ..
            'statement_lock_timeout = "300ms",\nlock_retries = 6,\n}\n')
    hold_lock(url, 1, "blocker_two")
    local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
    assert.equal(0, code, err)
    assert.truthy(err:find("lock timeout on attempt 1 of 7", 1, true), err)
    assert.equal("note\n", H.psql(url, "SELECT column_name FROM information_schema.columns " ..
                                       "WHERE table_name = 'persons' AND column_name = 'note'"))
    assert.equal(NEXT .. "\n", H.psql(url, "SELECT version_num FROM luamig_version"))
  end)

  it("without lock_retries the first timeout fails the migration", function()
    assert.equal(0, (H.run({"downgrade", BASE}, {dir = dir})))
    H.write(dir .. "/luamig.lua", "return {\n  url = " .. string.format("%q", url) ..
            ",\n  script_location = \"migrations\",\n" .. 'statement_lock_timeout = 0.3,\n}\n')
    local blocker = hold_lock(url, 30, "blocker_three")
    local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
    H.psql(url, "SELECT pg_terminate_backend(" .. blocker .. ")")
    assert.equal(1, code)
    assert.is_nil(err:find("retrying", 1, true), err)
    assert.truthy(err:find("after 1 attempt of 0.3 s", 1, true), err)
    assert.truthy(err:find("pid " .. blocker, 1, true), err)
  end)

  it("--sql output carries SET lock_timeout when configured, and only then", function()
    H.write(dir .. "/luamig.lua", "return {\n  url = " .. string.format("%q", url) ..
            ",\n  script_location = \"migrations\",\n" .. CONFIG .. "}\n")
    local code, sql = H.run({"upgrade", "base:head", "--sql"}, {dir = dir})
    assert.equal(0, code)
    local _, n = sql:gsub("SET lock_timeout = '300ms';", "")
    assert.equal(1, n, sql)
    assert.truthy(sql:find("SET lock_timeout = '300ms';", 1, true) < sql:find("-- Running upgrade", 1, true))
    local plain = H.project(url, revisions)
    local _, sql2 = H.run({"upgrade", "base:head", "--sql"}, {dir = plain})
    assert.is_nil(sql2:find("lock_timeout", 1, true))
  end)
end)

describe("statement_lock_timeout elsewhere", function()
  it("SQLite has no lock timeout to set: migrations run as before", function()
    local path = H.tempdir() .. "/l.db"
    local dir = H.project("sqlite:///" .. path, revisions, CONFIG)
    local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
    assert.equal(0, code, err)
    assert.equal(NEXT .. "\n", H.sqlite_query(path, "SELECT version_num FROM luamig_version"))
    local _, sql = H.run({"upgrade", "base:head", "--sql"}, {dir = dir})
    assert.is_nil(sql:find("lock_timeout", 1, true))
  end)

  it("a bad setting is refused with a message naming it", function()
    for _, bad in ipairs({'statement_lock_timeout = "soon",', 'lock_retries = -1,', 'lock_retries = "3",',
                          'statement_lock_timeout = "5h",'}) do
      local dir = H.project("sqlite:///" .. H.tempdir() .. "/b.db", revisions, bad .. "\n")
      local code, _, err = H.run({"current"}, {dir = dir})
      assert.equal(1, code)
      assert.truthy(err:find(bad:match("^(%w+)"), 1, true), err)
    end
  end)
end)
