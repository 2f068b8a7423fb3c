-- module_review_spec.lua - m:check() and m:lint() of the Lua module on
-- both dialects: the fields of `check --json` and `lint --json` as Lua
-- tables, the same answers as the command line, nil, a message and a code
-- on expected failures, errors naming the method on misuse.
local H = require "helpers"
local json = require "dkjson"

local revisions = {
  {rev = "r1", message = "wards",
   up = [[op.create_table("wards", {
            {"id", "integer", primary_key = true},
            {"name", "string(80)", nullable = false},
            {"floor", "integer"},
          })]],
   down_code = [[op.drop_table("wards")]]},
  {rev = "r2", down = "r1", message = "floor goes",
   up = [[op.drop_column("wards", "floor")]],
   down_code = [[op.add_column("wards", {"floor", "integer"})]]},
}

local models_with_floor = [[
return {
  wards = {
    {"id", "integer", primary_key = true},
    {"name", "string(80)", nullable = false},
    {"floor", "integer"},
  },
}
]]

local models_without_floor = models_with_floor:gsub('    {"floor", "integer"},\n', "")

insulate("the module's review methods", function()
  local luamig = require "luamig.core"

  for _, d in ipairs(H.dialects) do
    describe("on " .. d.name, function()
      it("m:check() answers as check --json does, for a match and a difference", function()
        local url = d.fresh()
        local dir = H.project(url, revisions, '  models = "models.lua",\n')
        H.write(dir .. "/models.lua", models_without_floor)
        local m <close> = assert(luamig.open{config = dir .. "/luamig.lua"})
        assert(m:upgrade("head"))
        local same = assert(m:check())
        assert.is_true(same.match)
        assert.are.same({}, same.differences)
        local _, cli_out = H.run({"check", "--json"}, {dir = dir})
        assert.are.same(json.decode(cli_out), same)

        H.write(dir .. "/models.lua", models_with_floor)
        local differ = assert(m:check())
        assert.is_false(differ.match)
        assert.are.equal(1, #differ.differences)
        local code, cli_out2 = H.run({"check", "--json"}, {dir = dir})
        assert.are.equal(1, code)
        assert.are.same(json.decode(cli_out2), differ)
        -- models = FILE names another file
        H.write(dir .. "/other.lua", models_without_floor)
        assert.is_true(assert(m:check{models = dir .. "/other.lua"}).match)
      end)

      it("m:check() fails with a message and a code when the models do not load", function()
        local url = d.fresh()
        local dir = H.project(url, revisions, '  models = "models.lua",\n')
        H.write(dir .. "/models.lua", "return {wards = {{\"id\", \"intger\"}}}\n")
        local m <close> = assert(luamig.open{config = dir .. "/luamig.lua"})
        assert(m:upgrade("head"))
        local ok, msg, code = m:check()
        assert.is_nil(ok)
        assert.matches("models%.lua:1", msg)
        assert.matches("intger", msg)
        assert.is_string(code)
        -- the runner still works
        assert.are.same({"r2"}, assert(m:current()))
      end)

      it("m:lint() lists the findings lint --json lists, acknowledged or not", function()
        local url = d.fresh()
        local dir = H.project(url, revisions)
        local m <close> = assert(luamig.open{config = dir .. "/luamig.lua"})
        local findings = assert(m:lint{all = true})
        local drop
        for _, f in ipairs(findings) do
          if f.code == "drop_column" then drop = f end
        end
        assert.is_table(drop, "no drop_column finding")
        assert.are.equal("error", drop.severity)
        assert.are.equal("r2", drop.revision)
        assert.is_false(drop.acknowledged)
        assert.is_number(drop.line)
        assert.matches("wards%.floor", drop.message)
        -- the same findings as the command line's, whose script paths
        -- are relative to where it ran
        local _, cli_out = H.run({"lint", "--all", "--json"}, {dir = dir})
        local cli = json.decode(cli_out)
        assert.are.equal(#cli, #findings)
        for i, f in ipairs(findings) do
          assert.are.equal(dir .. "/" .. cli[i].file, f.file)
          f.file = cli[i].file
        end
        assert.are.same(cli, findings)
        -- a range: the first revision alone has no drop
        for _, f in ipairs(assert(m:lint{range = "base:r1"})) do
          assert.are_not.equal("drop_column", f.code)
        end
      end)

      it("m:lint() sees a script's allow list", function()
        local url = d.fresh()
        local revs = {revisions[1], {rev = "r2", down = "r1", message = "floor goes",
          extra = '  allow = {"drop_column"},\n',
          up = revisions[2].up, down_code = revisions[2].down_code}}
        local dir = H.project(url, revs)
        local m <close> = assert(luamig.open{config = dir .. "/luamig.lua"})
        local seen = false
        for _, f in ipairs(assert(m:lint{all = true})) do
          if f.code == "drop_column" then
            seen = true
            assert.is_true(f.acknowledged)
          end
        end
        assert.is_true(seen)
      end)

      it("m:lint() and m:check() name themselves on misuse", function()
        local url = d.fresh()
        local dir = H.project(url, revisions)
        local m <close> = assert(luamig.open{config = dir .. "/luamig.lua"})
        assert.has_error(function() m:lint(5) end,
                         "luamig: m:lint(): the options must be a table (got number)")
        assert.has_error(function() m:check("models.lua") end,
                         "luamig: m:check(): the options must be a table (got string)")
        local ok, msg = m:lint{range = "nosuch:head"}
        assert.is_nil(ok)
        assert.matches("nosuch", msg)
      end)
    end)
  end
end)
