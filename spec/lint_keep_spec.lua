-- lint_keep_spec.lua - a drop that keeps what it removes (keep = true on
-- the op, or keep_dropped in the configuration) is a warning for lint,
-- not an error: its downgrade puts the data back.  keep = false is the
-- plain drop again.
local H = require "helpers"

local function history(drop)
  return {
    {rev = "k1", message = "wards",
     up = [[op.create_table("wards", {{"id", "integer", primary_key = true}, {"floor", "integer"}})
            op.create_table("beds", {{"id", "integer", primary_key = true}})]],
     down_code = [[op.drop_table("beds") op.drop_table("wards")]]},
    {rev = "k2", down = "k1", message = "drops", up = drop,
     down_code = [[op.create_table("beds", {{"id", "integer", primary_key = true}})
                   op.add_column("wards", {"floor", "integer"})]]},
  }
end

local function lint(dir)
  local code, out, err = H.run({"lint", "--all"}, {dir = dir})
  return code, out, err
end

for _, d in ipairs(H.dialects) do
  describe("lint of drops that keep on " .. d.name, function()
    it("warns, and says the downgrade puts the data back, for keep = true", function()
      local dir = H.project(d.fresh(), history([[op.drop_column("wards", "floor", {keep = true})
                                                  op.drop_table("beds", {keep = true})]]))
      local code, out, err = lint(dir)
      assert.are.equal(0, code, out .. err)
      assert.matches("warning%[drop_column%]: dropping wards%.floor loses its data; it is kept", out)
      assert.matches("warning%[drop_table%]: dropping beds loses its rows; it is kept", out)
      assert.is_nil(out:find("error[drop", 1, true))
    end)

    it("warns for keep_dropped = true, and errs again for keep = false", function()
      local dir = H.project(d.fresh(), history([[op.drop_column("wards", "floor")
                                                  op.drop_table("beds", {keep = false})]]),
                            "  keep_dropped = true,\n")
      local code, out, err = lint(dir)
      assert.are.equal(1, code, out .. err)
      assert.matches("warning%[drop_column%]: dropping wards%.floor loses its data; it is kept", out)
      assert.matches("error%[drop_table%]: dropping beds loses its rows\n", out)
    end)

    it("is an error still without keep", function()
      local dir = H.project(d.fresh(), history([[op.drop_column("wards", "floor")
                                                  op.drop_table("beds")]]))
      local code, out = lint(dir)
      assert.are.equal(1, code)
      assert.matches("error%[drop_column%]: dropping wards%.floor loses its data\n", out)
    end)
  end)
end
