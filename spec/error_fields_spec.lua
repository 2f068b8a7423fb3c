-- error_fields_spec.lua - a failure in a revision script says where it
-- happened: the module returns nil, message, code and a fourth value
-- {code=, sqlstate=, revision=, file=, line=}; the C library has
-- lm_errinfo().  A failure outside any script has no place.
local H = require "helpers"
local luamig = require "luamig"

local unique_table = {rev = "aaaaaaaaaaa1", message = "t with a unique key",
  up = [[op.create_table("t", {{"id", "integer", primary_key = true}, {"k", "text", unique = true}})]]}

local duplicate = {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", message = "a duplicate key",
  up = [[op.execute("INSERT INTO t (id, k) VALUES (1, 'x')")

    op.execute("INSERT INTO t (id, k) VALUES (2, 'x')")  -- the failing line
    op.execute("INSERT INTO t (id, k) VALUES (3, 'y')")]]}

-- The number of the first line of path holding text.
local function line_of(path, text)
  local n = 0
  for line in io.lines(path) do
    n = n + 1
    if line:find(text, 1, true) then return n end
  end
  error(text .. " not in " .. path)
end

for _, d in ipairs(H.dialects) do
  describe("where a failure happened, on " .. d.name, function()
    it("a failing statement: the revision, the script and its line, and 23505", function()
      local url, query = d.fresh()
      local dir = H.project(url, {unique_table, duplicate})
      local script = dir .. "/migrations/0002_bbbbbbbbbbb2.lua"
      local m = assert(luamig.open{config = dir .. "/luamig.lua"})
      local ok, msg, code, info = m:upgrade("head")
      m:close()
      assert.is_nil(ok)
      assert.matches("bbbbbbbbbbb2", msg)
      assert.are.equal("23505", code)
      assert.are.equal("table", type(info))
      assert.are.equal("23505", info.code)
      assert.are.equal("23505", info.sqlstate)
      assert.are.equal("bbbbbbbbbbb2", info.revision)
      assert.matches("/migrations/0002_bbbbbbbbbbb2%.lua$", info.file)
      assert.are.equal(line_of(script, "the failing line"), info.line)
      -- nothing of the failed revision stays
      assert.are.equal("aaaaaaaaaaa1\n", query("SELECT version_num FROM luamig_version"))
      assert.are.equal("0\n", query("SELECT count(*) FROM t"))
    end)

    it("a Lua error: script_error at the line of the script that led to it", function()
      local url = d.fresh()
      local dir = H.project(url, {unique_table,
        {rev = "ccccccccccc3", down = "aaaaaaaaaaa1",
         up = [[local function check(v)
                  if v > 1 then error("too big: " .. v) end
                end
                check(1)
                check(2)   -- raises]]}})
      local script = dir .. "/migrations/0002_ccccccccccc3.lua"
      local m = assert(luamig.open{config = dir .. "/luamig.lua"})
      local ok, msg, code, info = m:upgrade("head")
      m:close()
      assert.is_nil(ok)
      assert.matches("too big: 2", msg)
      assert.are.equal("script_error", code)
      assert.are.equal("script_error", info.code)
      assert.is_nil(info.sqlstate)
      assert.are.equal("ccccccccccc3", info.revision)
      assert.matches("/migrations/0002_ccccccccccc3%.lua$", info.file)
      -- the innermost frame of the script: the error() in check
      assert.are.equal(line_of(script, "error(\"too big"), info.line)
    end)

    it("a failure outside any script has a code and no place", function()
      local url = d.fresh()
      local dir = H.project(url, {unique_table})
      local m = assert(luamig.open{config = dir .. "/luamig.lua"})
      local ok, _, code, info = m:upgrade("nonexistent")
      assert.is_nil(ok)
      assert.are.equal("unknown_revision", code)
      assert.are.same({code = "unknown_revision"}, info)
      -- and a later success leaves no stale place behind
      assert(m:upgrade("head"))
      local ok2, _, code2, info2 = m:downgrade("nonexistent")
      m:close()
      assert.is_nil(ok2)
      assert.are.equal("unknown_revision", code2)
      assert.is_nil(info2.revision)
      assert.is_nil(info2.file)
      assert.is_nil(info2.line)
    end)
  end)
end

describe("lm_errinfo", function()
  local program = [[
#include <stdio.h>
#include "luamig.h"

static void show(lm_env *env, int rc) {
  const char *rev, *file, *state;
  int line;
  lm_errinfo(&rev, &file, &line, &state, env);
  const char *base = file;
  for (const char *p = file ? file : ""; *p; p++)
    if (*p == '/') base = p + 1;
  printf("rc %d [%s] rev=%s file=%s line=%d sqlstate=%s\n", rc,
         lm_errcode(env), rev ? rev : "-", base ? base : "-", line, state);
}

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
  char **applied;
  show(env, lm_upgrade(&applied, env, "nonexistent"));
  show(env, lm_upgrade(&applied, env, "head"));
  lm_close(env);
  lm_errinfo(NULL, NULL, NULL, NULL, NULL);
  return 0;
}
]]

  it("gives a C program the revision, file, line and SQLSTATE of a failure", function()
    local build = H.bin:match("^(.*)/[^/]*$")
    local dir = H.project("unused", {unique_table, duplicate})
    local line = line_of(dir .. "/migrations/0002_bbbbbbbbbbb2.lua", "the failing line")
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
    assert.are.same({
      "rc -1 [unknown_revision] rev=- file=- line=0 sqlstate=",
      "rc -1 [23505] rev=bbbbbbbbbbb2 file=0002_bbbbbbbbbbb2.lua line=" .. line .. " sqlstate=23505",
    }, H.lines(out))
  end)
end)
