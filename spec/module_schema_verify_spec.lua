-- module_schema_verify_spec.lua - m:schema() and m:verify() of the Lua
-- module on both dialects: the same fields as `schema --json` and
-- `verify --json`, nil and a message on expected failures, errors naming
-- the method on misuse; verify never runs on the runner's own database.
local H = require "helpers"
local json = require "dkjson"

local good = {
  {rev = "s1", message = "create wards",
   up = [[op.create_table("wards", {
            {"id", "integer", primary_key = true},
            {"name", "string(80)", nullable = false},
            {"code", "string(10)", server_default = "W"},
          })]],
   down_code = [[op.drop_table("wards")]]},
  {rev = "s2", down = "s1", message = "create beds",
   up = [[op.create_table("beds", {
            {"id", "integer", primary_key = true},
            {"ward_id", "integer", nullable = false, references = "wards.id"},
            {"label", "text"},
          })
          op.create_index("ix_beds_label", "beds", {"label"})]],
   down_code = [[op.drop_table("beds")]]},
}

-- good, then a revision whose downgrade forgets its index.
local function broken()
  local revs = {good[1], good[2]}
  revs[3] = {rev = "s3", down = "s2", message = "index wards.name",
             up = [[op.create_index("ix_wards_name", "wards", {"name"})]],
             down_code = ""}
  return revs
end

-- The parts a user compares: per table its name and per column its name,
-- type and nullability.
local function shape(model)
  local out = {}
  for _, t in ipairs(model.tables) do
    local cols = {}
    for _, c in ipairs(t.columns) do
      cols[#cols + 1] = {c.name, c.type, c.nullable}
    end
    out[#out + 1] = {t.name, cols}
  end
  return out
end

insulate("m:schema() and m:verify()", function()
  local luamig = require "luamig.core"

  for _, d in ipairs(H.dialects) do
    describe("on " .. d.name, function()
      it("m:schema() has what schema --json prints", function()
        local url = d.fresh()
        local dir = H.project(url, good)
        local m <close> = assert(luamig.open{config = dir .. "/luamig.lua"})
        assert.are.same({tables = {}, views = {}}, assert(m:schema()))
        assert(m:upgrade("head"))
        local model = assert(m:schema())
        local code, out, err = H.run({"schema", "--json"}, {dir = dir})
        assert.are.equal(0, code, err)
        local cli = assert(json.decode(out), out)
        assert.are.same(shape(cli), shape(model))
        assert.are.same({"beds", "wards"}, {model.tables[1].name, model.tables[2].name})
        local wards = model.tables[2]
        assert.are.same({"id", "name", "code"},
                        {wards.columns[1].name, wards.columns[2].name, wards.columns[3].name})
        assert.are.equal("string(80)", wards.columns[2].type)
        assert.is_false(wards.columns[2].nullable)
        assert.is_true(wards.columns[3].nullable)
        -- a foreign key and an index come through as the JSON has them
        assert.are.same(cli.tables[1].indexes[1].name, model.tables[1].indexes[1].name)
        assert.are.equal("ix_beds_label", model.tables[1].indexes[1].name)
        local fks = {}
        for _, c in ipairs(model.tables[1].constraints) do
          if c.type == "foreign_key" then fks[#fks + 1] = c end
        end
        assert.are.same({"wards", {"id"}}, {fks[1].ref_table, fks[1].ref_columns})
        assert.are.same(cli.tables[1].constraints, model.tables[1].constraints)

        -- one table, by a name or a list of names
        local one = assert(m:schema("wards"))
        assert.are.same({"wards"}, {one.tables[1].name, one.tables[2]})
        local both = assert(m:schema({"wards", "beds"}))
        assert.are.equal(2, #both.tables)
        local ok, msg = m:schema("nowhere")
        assert.is_nil(ok)
        assert.are.equal("no table nowhere in the database", msg)
        ok, msg = m:schema({"wards", "luamig_version"})
        assert.is_nil(ok)
        assert.matches("luamig_version is luamig.s own table", msg)
        -- the runner goes on working
        assert.are.same({"s2"}, assert(m:current()))
      end)

      it("m:verify() on a good history returns the summary, the runner's database untouched", function()
        local url, query = d.fresh()
        local dir = H.project(url, good)
        local m <close> = assert(luamig.open{config = dir .. "/luamig.lua"})
        -- connected to its own database, which holds one revision
        assert(m:upgrade("s1"))
        local v = assert(m:verify())
        assert.are.same({true, d.name, 2, {}}, {v.ok, v.dialect, v.revisions_verified, v.problems})
        assert.is_number(v.seconds)
        -- its own database is as it was, on the same connection
        assert.are.same({"s1"}, assert(m:current()))
        assert.are.same({"wards"}, {assert(m:schema()).tables[1].name, assert(m:schema()).tables[2]})
        assert.are.equal("0\n", query("SELECT count(*) FROM wards"))
        assert.are.same({"s2"}, assert(m:upgrade("head")))
        -- an empty database of one's own
        local scratch = d.fresh()
        v = assert(m:verify{scratch_url = scratch})
        assert.are.equal(2, v.revisions_verified)
      end)

      it("m:verify() on a broken downgrade returns nil, the problem naming the object, and the report", function()
        local url = d.fresh()
        local dir = H.project(url, broken())
        local m <close> = assert(luamig.open{config = dir .. "/luamig.lua"})
        local ok, msg, v = m:verify()
        assert.is_nil(ok)
        assert.matches("^verify: s3 %(/.-/migrations/0003_s3%.lua%): the downgrade does not give back", msg)
        assert.truthy(msg:find("index ix_wards_name on wards: added", 1, true), msg)
        assert.are.same({false, 2, 1}, {v.ok, v.revisions_verified, #v.problems})
        local p = v.problems[1]
        assert.are.same({"downgrade_mismatch", "s3"}, {p.kind, p.revision})
        assert.matches("/migrations/0003_s3%.lua$", p.path)
        assert.are.same({"index", "added", "wards", "ix_wards_name"},
                        {p.differences[1].object, p.differences[1].change,
                         p.differences[1].table, p.differences[1].name})
        -- the same as the command's report
        local code, out = H.run({"verify", "--json"}, {dir = dir})
        assert.are.equal(1, code)
        local cli = assert(json.decode(out), out)
        assert.are.same({cli.problems[1].kind, cli.problems[1].message, cli.problems[1].differences[1].line},
                        {p.kind, p.message, p.differences[1].line})
        -- the configured database stays out of it: never a scratch
        ok, msg, v = m:verify{scratch_url = url}
        assert.is_nil(ok)
        assert.matches("verify never touches it", msg)
        assert.are.same({false, "scratch"}, {v.ok, v.problems[1].kind})
        -- a scratch database that holds something is refused, untouched
        local full, query = d.fresh()
        assert(query("CREATE TABLE keep (id integer)"))
        ok, msg = m:verify{scratch_url = full}
        assert.is_nil(ok)
        assert.matches("is not empty %(keep%)", msg)
        assert.are.equal("0\n", query("SELECT count(*) FROM keep"))
      end)

      it("m:schema() and m:verify() raise on misuse, naming the method", function()
        local url = d.fresh()
        local dir = H.project(url, good)
        local m = assert(luamig.open{config = dir .. "/luamig.lua"})
        assert.has_error(function() m:schema(42) end,
          "luamig: m:schema(): the tables must be a string or a list of strings (got number)")
        assert.has_error(function() m:schema({"wards", true}) end,
          "luamig: m:schema(): table 2 must be a string (got boolean)")
        assert.has_error(function() m:verify("sqlite://x") end,
          "luamig: m:verify(): the options must be a table (got string)")
        assert.has_error(function() m:verify{scratch_url = {}} end,
          "luamig: m:verify(): scratch_url must be a string (got table)")
        assert.has_error(function() m.schema(42) end,
          "luamig: m:schema() must be called on a runner, as m:schema() (got number)")
        assert.has_error(function() m.verify() end,
          "luamig: m:verify() must be called on a runner, as m:verify() (got no value)")
        m:close()
        assert.has_error(function() m:schema() end, "luamig: m:schema(): the runner is closed")
        assert.has_error(function() m:verify() end, "luamig: m:verify(): the runner is closed")
      end)

      it("m:schema() and m:verify() cannot start from on_event", function()
        local url = d.fresh()
        local dir = H.project(url, good)
        local seen
        local m
        m = assert(luamig.open{config = dir .. "/luamig.lua", on_event = function(e)
          if e.kind == "migration_start" and not seen then
            local ok1, err1 = pcall(m.schema, m)
            local ok2, err2 = pcall(m.verify, m)
            seen = {ok1, err1, ok2, err2}
          end
        end})
        assert(m:upgrade("head"))
        assert.is_false(seen[1])
        assert.matches("m:schema%(%) cannot be called from on_event while m:upgrade%(%) runs", seen[2])
        assert.is_false(seen[3])
        assert.matches("m:verify%(%) cannot be called from on_event", seen[4])
        m:close()
      end)
    end)
  end
end)

-- The C library: what a function hands back comes first (libgit2's
-- convention), and schema and verify are there too.
describe("the C library's lm_schema_json and lm_verify, out-parameters first", function()
  local program = [[
#include <stdio.h>
#include <stdlib.h>
#include "luamig.h"

int main(int argc, char **argv) {
  if (argc != 3) return 2;
  lm_options opts = {.url = argv[1], .script_location = argv[2], .quiet = 1};
  lm_env *env;
  char **applied = NULL, **current = NULL, **heads = NULL, *sql = NULL;
  char *schema = NULL, *report = NULL;
  const char *tables[] = {"wards"};
  int rc = lm_open(&env, &opts);
  if (rc == 0) rc = lm_sql(&sql, env, "upgrade", "base:s1");
  if (rc == 0) rc = lm_upgrade(&applied, env, "s1");
  if (rc == 0) rc = lm_current(&current, env);
  if (rc == 0) rc = lm_heads(&heads, env);
  if (rc == 0) rc = lm_schema_json(&schema, env, tables, 1);
  if (rc == 0) rc = lm_verify(&report, env, NULL);
  if (rc == 0) {
    printf("applied %s\ncurrent %s\nheads %s\nsql %d\n", applied[0],
           current[0], heads[0], sql != NULL);
    printf("schema %s\nreport %.11s\n", schema, report);
    lm_free_list(current);
    rc = lm_current(&current, env);
    if (rc == 0) printf("still %s\n", current[0]);
  }
  if (rc != 0) printf("error %d %s\n", rc, lm_errmsg(env));
  /* a failing verify: its report and its problems */
  if (rc == 0) {
    free(report);
    report = NULL;
    rc = lm_verify(&report, env, argv[1]);
    printf("refused %d %s\n%s\n", rc, lm_errmsg(env), report ? report : "");
  }
  lm_free_list(applied);
  lm_free_list(current);
  lm_free_list(heads);
  free(sql);
  free(schema);
  free(report);
  lm_close(env);
  return 0;
}
]]

  it("builds against the library and reads the schema and verifies", function()
    local build = H.bin:match("^(.*)/[^/]*$")
    local dir = H.project("unused", good)
    H.write(dir .. "/prog.c", program)
    local san = H.asan and " -fsanitize=address,undefined" or ""
    local code = H.sh("cc -std=c11 -Wall -Wextra -Werror" .. san .. " -Isrc " ..
                      H.quote(dir .. "/prog.c") .. " " .. H.quote(build .. "/libluamig.a") ..
                      " -o " .. H.quote(dir .. "/prog") ..
                      " $(pkg-config --libs lua5.4 sqlite3) -ldl -lm -pthread" ..
                      " >" .. H.quote(dir .. "/cc.log") .. " 2>&1")
    assert.are.equal(0, code, H.read(dir .. "/cc.log"))
    local url = "sqlite:///" .. dir .. "/app.db"
    local f = H.popen(H.quote(dir .. "/prog") .. " " .. H.quote(url) .. " " ..
                      H.quote(dir .. "/migrations") .. " 2>&1")
    local out = f:read("a")
    f:close()
    local lines = H.lines(out)
    assert.are.same({"applied s1", "current s1", "heads s2", "sql 1"},
                    {lines[1], lines[2], lines[3], lines[4]}, out)
    local model = assert(json.decode(lines[5]:match("^schema (.*)$")), out)
    assert.are.same({"wards"}, {model.tables[1].name, model.tables[2]})
    assert.are.same({"report {\"ok\": true", "still s1"}, {lines[6], lines[7]}, out)
    assert.matches("^refused %-2 verify: %-%-scratch%-url names the configured database", lines[8])
    assert.matches('"ok": false', out)
  end)
end)
