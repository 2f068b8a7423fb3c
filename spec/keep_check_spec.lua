-- keep_check_spec.lua - a kept column's CHECK constraints, named or not,
-- come back with it when the downgrade adds the column again (SQLite
-- drops them with the column; PostgreSQL too).
local H = require "helpers"

local function history(check)
  return {
    {rev = "c1", message = "p",
     up = [[op.create_table("p", {{"id", "integer", primary_key = true}, {"age", "integer"}},
                            {constraints = {]] .. check .. [[}})
            op.execute("INSERT INTO p (id, age) VALUES (1, 5), (2, 7)")]],
     down_code = [[op.drop_table("p")]]},
    {rev = "c2", down = "c1", message = "age goes",
     up = [[op.drop_column("p", "age", {keep = true})]],
     down_code = [[op.add_column("p", {"age", "integer"})]]},
  }
end

for _, d in ipairs(H.dialects) do
  describe("kept data and CHECKs on " .. d.name, function()
    for _, case in ipairs({{"named", '{"check", "age >= 0", name = "ck_p_age"}'},
                           {"unnamed", '{"check", "age >= 0"}'}}) do
      it("puts a " .. case[1] .. " CHECK back with the column", function()
        local url, query = d.fresh()
        local dir = H.project(url, history(case[2]))
        local function lm(...) return H.run({...}, {dir = dir}) end
        assert.are.equal(0, (lm("upgrade", "head")))
        local code, _, err = lm("downgrade", "-1")
        assert.are.equal(0, code, err)
        assert.matches("restored p.age: 2 values", err, 1, true)
        assert.are.equal("1|5\n2|7\n", query("SELECT id, age FROM p ORDER BY id"))
        -- the CHECK holds again
        assert.is_nil(query("INSERT INTO p (id, age) VALUES (3, -1)"))
        assert(query("INSERT INTO p (id, age) VALUES (4, 1)"))
        -- and a second round trip makes no second one
        assert.are.equal(0, (lm("upgrade", "head")))
        assert.are.equal(0, (lm("downgrade", "-1")))
        local checks = d.name == "sqlite"
          and query("SELECT (length(sql) - length(replace(sql, 'CHECK', ''))) / 5 FROM sqlite_master WHERE name = 'p'")
          or query("SELECT count(*) FROM pg_constraint WHERE conrelid = 'p'::regclass AND contype = 'c'")
        assert.are.equal("1\n", checks)
        code, _, err = lm("verify")
        assert.are.equal(0, code, err)
      end)
    end
  end)
end
