-- error_codes_spec.lua - a failure carries a code a program can read: the
-- module and luamig.testing return nil, message, code; the C library has
-- lm_errcode().  The code is the SQLSTATE when the database gave one (the
-- same on SQLite for constraint violations), else a luamig code.
local H = require "helpers"
local luamig = require "luamig"
local testing = require "luamig.testing"

local unique_table = {rev = "aaaaaaaaaaa1", message = "t with a unique key",
  up = [[op.create_table("t", {{"id", "integer", primary_key = true}, {"k", "text", unique = true}})]]}

local duplicate = {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", message = "a duplicate key",
  up = [[op.execute("INSERT INTO t (id, k) VALUES (1, 'x')")
         op.execute("INSERT INTO t (id, k) VALUES (2, 'x')")]]}

-- A statement that runs for about three seconds on each dialect.
local function slow(dialect)
  if dialect == "postgresql" then return [[op.execute("SELECT pg_sleep(3)")]] end
  return [[op.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000000) SELECT count(*) FROM c")]]
end

for _, d in ipairs(H.dialects) do
  describe("error codes on " .. d.name, function()
    it("a unique violation in a migration's op.execute is 23505", function()
      local url, query = d.fresh()
      local dir = H.project(url, {unique_table, duplicate})
      local m = assert(luamig.open{config = dir .. "/luamig.lua"})
      local ok, msg, code = m:upgrade("head")
      m:close()
      assert.is_nil(ok)
      assert.matches("bbbbbbbbbbb2", msg)
      assert.are.equal("23505", code)
      assert.are.equal("aaaaaaaaaaa1\n", query("SELECT version_num FROM luamig_version"))
    end)

    it("a unique violation in a backfill's batch write is 23505", function()
      local url, query = d.fresh()
      local dir = H.project(url, {unique_table,
        {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1",
         up = [[op.execute("INSERT INTO t (id, k) VALUES (1, 'a'), (2, 'b'), (3, 'c')")
                op.backfill("t", {batch_size = 2}, function(row) return {k = "same"} end)]]}})
      local m = assert(luamig.open{config = dir .. "/luamig.lua"})
      local ok, msg, code = m:upgrade("head")
      m:close()
      assert.is_nil(ok)
      assert.matches("backfill t", msg)
      assert.are.equal("23505", code)
      assert.are.equal("aaaaaaaaaaa1\n", query("SELECT version_num FROM luamig_version"))
    end)

    it("a Lua error in a script is script_error, also after a caught database error", function()
      local url = d.fresh()
      local dir = H.project(url, {unique_table,
        {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1",
         up = [[op.execute("INSERT INTO t (id, k) VALUES (1, 'x')")
                pcall(op.execute, "INSERT INTO t (id, k) VALUES (2, 'x')")
                error("boom")]]}})
      local m = assert(luamig.open{config = dir .. "/luamig.lua"})
      local ok, msg, code = m:upgrade("head")
      m:close()
      assert.is_nil(ok)
      assert.matches("boom", msg)
      assert.are.equal("script_error", code)
    end)

    it("luamig.testing's db:execute passes 23505 through", function()
      local db <close> = assert(testing.scratch{
        script_location = H.project("unused", {unique_table}) .. "/migrations",
        url = d.name == "postgresql" and H.pg_url or nil})
      assert(db:migrate_to("head"))
      assert.are.equal(1, db:execute("INSERT INTO t (id, k) VALUES (1, 'x')"))
      local ok, msg, code = db:execute("INSERT INTO t (id, k) VALUES (2, 'x')")
      assert.is_nil(ok)
      assert.is_string(msg)
      assert.are.equal("23505", code)
      local rows, _, qcode = db:query("SELECT nope FROM t")
      assert.is_nil(rows)
      assert.is_not.equal("23505", qcode)   -- no stale code from before
      local bad, _, mcode = db:migrate_to("nonexistent")
      assert.is_nil(bad)
      assert.are.equal("unknown_revision", mcode)
    end)

    it("a run lock not obtained in time is lock_timeout", function()
      local url = d.fresh()
      local dir = H.project(url, {{rev = "aaaaaaaaaaa1",
        up = [[op.create_table("t", {{"id", "integer", primary_key = true}})
               io.stderr:write("started\n")
               ]] .. slow(d.name)}}, "  lock_timeout = 0.3,\n")
      local err = dir .. "/cli.err"
      local f = H.popen("cd " .. H.quote(dir) .. " && (" .. (H.asan and "LD_PRELOAD= " or "") ..
                        "exec " .. H.quote(H.bin) .. " upgrade head >/dev/null 2>" .. err .. ") & echo $!")
      local pid = f:read("l")
      f:close()
      local deadline = os.time() + 20
      while not (H.read(err) or ""):find("started") and os.time() < deadline do H.sh("sleep 0.05") end
      local m = assert(luamig.open{config = dir .. "/luamig.lua"})
      local ok, msg, code = m:upgrade("head")
      m:close()
      H.sh("kill -TERM " .. pid)
      H.sh("while kill -0 " .. pid .. " 2>/dev/null; do sleep 0.05; done")
      assert.is_nil(ok)
      assert.matches("holds the lock", msg)
      assert.are.equal("lock_timeout", code)
    end)

    it("an upgrade refused on a dirty database is dirty", function()
      local url = d.fresh()
      local dir = H.project(url, {unique_table,
        {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", extra = "  transactional = false,\n",
         up = [[op.execute("INSERT INTO t (id, k) VALUES (1, 'x')")
                error("boom")]]}})
      local m = assert(luamig.open{config = dir .. "/luamig.lua"})
      local ok, msg, code = m:upgrade("head")
      assert.is_nil(ok)
      assert.matches("marked dirty", msg)
      assert.are.equal("script_error", code)
      ok, msg, code = m:upgrade("head")
      assert.is_nil(ok)
      assert.matches("the database is dirty", msg)
      assert.are.equal("dirty", code)
      ok, msg, code = m:downgrade("base")
      m:close()
      assert.is_nil(ok)
      assert.are.equal("dirty", code)
    end)

    it("upgrade head with two heads is multiple_heads", function()
      local url = d.fresh()
      local dir = H.project(url, {unique_table,
        {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1"},
        {rev = "ccccccccccc3", down = "aaaaaaaaaaa1"}})
      local m = assert(luamig.open{config = dir .. "/luamig.lua"})
      local ok, msg, code = m:upgrade("head")
      assert.is_nil(ok)
      assert.matches("multiple heads", msg)
      assert.are.equal("multiple_heads", code)
      -- a later failure of another kind does not keep the old code
      ok, msg, code = m:upgrade("nonexistent")
      assert.is_nil(ok)
      assert.are.equal("unknown_revision", code)
      -- a read-only method says it too
      local shown, _, scode = m:show("nonexistent")
      m:close()
      assert.is_nil(shown)
      assert.are.equal("unknown_revision", scode)
    end)
  end)
end

describe("lm_errcode", function()
  local program = [[
#include <stdio.h>
#include "luamig.h"

int main(int argc, char **argv) {
  (void)argc;
  lm_options o = {0};
  o.url = argv[1];
  o.script_location = argv[2];
  o.quiet = 1;
  lm_env *env;
  if (lm_open(&env, &o) != 0) {
    printf("open failed: %s\n", lm_errmsg(env));
    return 1;
  }
  printf("fresh [%s]\n", lm_errcode(env));
  char **applied;
  int rc = lm_upgrade(&applied, env, "nonexistent");
  printf("rc %d [%s]\n", rc, lm_errcode(env));
  rc = lm_upgrade(&applied, env, "head");
  printf("rc %d [%s]\n", rc, lm_errcode(env));
  lm_close(env);
  printf("closed [%s]\n", lm_errcode(NULL));
  return 0;
}
]]

  it("gives the code of the last failure to a C program", function()
    local build = H.bin:match("^(.*)/[^/]*$")
    local dir = H.project("unused", {unique_table, duplicate})
    H.write(dir .. "/prog.c", program)
    local san = H.asan and " -fsanitize=address,undefined" or ""
    local code = H.sh("cc -std=c11 -Wall -Wextra -Werror" .. san .. " -Isrc " ..
                      H.quote(dir .. "/prog.c") .. " " .. H.quote(build .. "/libluamig.a") ..
                      " -o " .. H.quote(dir .. "/prog") ..
                      " $(pkg-config --libs lua5.4 sqlite3) -ldl -lm -pthread" ..
                      " >" .. H.quote(dir .. "/cc.log") .. " 2>&1")
    assert.are.equal(0, code, H.read(dir .. "/cc.log"))
    local f = H.popen(H.quote(dir .. "/prog") .. " " .. H.quote("sqlite:///" .. dir .. "/app.db") ..
                      " " .. H.quote(dir .. "/migrations") .. " 2>&1")
    local out = f:read("a")
    f:close()
    assert.are.same({"fresh []", "rc -1 [unknown_revision]", "rc -1 [23505]", "closed []"},
                    H.lines(out))
  end)
end)
