-- autogen_unnamed_spec.lua - constraints made without a name (unique =
-- true, references = ...) are dropped by autogenerate under the names
-- PostgreSQL gives them (<t>_<cols>_key, <t>_<cols>_fkey), and those names
-- find them on SQLite too, where they have none.
local H = require "helpers"

local base = {rev = "a00000000001", message = "p and q",
  up = [[op.create_table("q", {{"id", "integer", primary_key = true}})
         op.create_table("p", {{"id", "integer", primary_key = true},
                               {"email", "string(80)", unique = true},
                               {"q_id", "integer", references = "q.id"}})]],
  down_code = [[op.drop_table("p") op.drop_table("q")]]}

local models = [[
return {
  q = {{"id", "integer", primary_key = true}},
  p = {{"id", "integer", primary_key = true}, {"email", "string(80)"}, {"q_id", "integer"}},
}
]]

for _, d in ipairs(H.dialects) do
  describe("autogenerate of unnamed constraints on " .. d.name, function()
    it("drops them under their conventional names, and the downgrade puts them back", function()
      local url, query = d.fresh()
      local dir = H.project(url, {base}, '  models = "models.lua",\n')
      H.write(dir .. "/models.lua", models)
      local function lm(...) return H.run({...}, {dir = dir}) end
      assert.are.equal(0, (lm("upgrade", "head")))
      local code, out, err = lm("revision", "--autogenerate", "-m", "drop keys")
      assert.are.equal(0, code, out .. err)
      local path = assert((out .. err):match("Generating (%S+)"), out .. err)
      local script = assert(H.read(dir .. "/" .. path))
      assert.matches('op.drop_constraint%("p_email_key", "p", {type_ = "unique"}%)', script)
      assert.matches('op.drop_constraint%("p_q_id_fkey", "p", {type_ = "foreignkey"}%)', script)
      code, out, err = lm("upgrade", "head")
      assert.are.equal(0, code, out .. err)
      code, out, err = lm("check")
      assert.are.equal(0, code, out .. err)
      code, out, err = lm("verify")
      assert.are.equal(0, code, out .. err)
      code, out, err = lm("downgrade", "-1")
      assert.are.equal(0, code, out .. err)
      -- the keys are there again: a second row with the same email, or
      -- one pointing at no q, is refused
      assert(query("INSERT INTO q (id) VALUES (1)"))
      assert(query("INSERT INTO p (id, email, q_id) VALUES (1, 'x', 1)"))
      assert.is_nil(query("INSERT INTO p (id, email, q_id) VALUES (2, 'x', 1)"))
      if d.name == "postgresql" then   -- (SQLite enforces keys per connection, when asked)
        assert.is_nil(query("INSERT INTO p (id, email, q_id) VALUES (3, 'y', 9)"))
      else
        assert.are.equal("1\n", query("SELECT count(*) FROM pragma_foreign_key_list('p')"))
      end
    end)
  end)
end
