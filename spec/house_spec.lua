-- house_spec.lua - rules of the code's layout that a change could quietly
-- break: SQL is written behind the dialect seam (dialects/), never in a
-- string literal of the core (src/), and the core asks no executor which
-- one it is (executor.h: one struct of functions, one file each).
local H = require "helpers"

local keywords = {"SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP",
                  "ALTER"}

-- Text for people that names an SQL keyword without being SQL: the file
-- (nil: any, the text being unmistakable) and a piece of the line.
local prose = {
  {"src/cli.c", "(CREATE "},                    -- help text of --scratch-url
  {nil, "UPDATE action"},                       -- onupdate without references
  {nil, "every UPDATE"},
  {nil, "DELETE action"},                       -- ondelete without references
  {"src/schema_diff.c", "\" ON DELETE %s\""},   -- a difference, described
  {"src/schema_diff.c", "\" ON UPDATE %s\""},
  {"src/lint_rules.c", "\"UPDATE)\""},         -- lint's findings and advice
  {"src/lint_rules.c", "\"an UPDATE\" : \"a DELETE\""},
  {"src/lint_rules.c", "backfill or UPDATE of it"},
}

local function is_prose(file, line)
  for _, p in ipairs(prose) do
    if (not p[1] or p[1] == file) and line:find(p[2], 1, true) then
      return true
    end
  end
  return false
end

-- The string literals of one line of C (escapes kept as written).
local function literals(line)
  local out, i = {}, 1
  while true do
    local s = line:find('"', i, true)
    if not s then break end
    local j, buf = s + 1, {}
    while j <= #line do
      local c = line:sub(j, j)
      if c == "\\" then
        buf[#buf + 1] = line:sub(j, j + 1)
        j = j + 2
      elseif c == '"' then
        break
      else
        buf[#buf + 1] = c
        j = j + 1
      end
    end
    out[#out + 1] = table.concat(buf)
    i = j + 1
  end
  return out
end

-- A line that is a comment, or inside one ("/*", " * ...", "//").
local function is_comment(line)
  return line:match("^%s*/%*") or line:match("^%s*%*") or
         line:match("^%s*//")
end

-- Every SQL keyword found in a string literal outside comments, as
-- "file:line: text".
local function sql_in_literals(root)
  local found = {}
  local ls = H.popen("ls " .. H.quote(root) .. "/src/*.c")
  for path in ls:lines() do
    local file = "src/" .. path:match("([^/]+)$")
    local n = 0
    for line in io.lines(path) do
      n = n + 1
      if not is_comment(line) and not is_prose(file, line) then
        for _, lit in ipairs(literals(line)) do
          for _, kw in ipairs(keywords) do
            if lit:find("%f[%w_]" .. kw .. "%f[^%w_]") then
              found[#found + 1] = file .. ":" .. n .. ": " .. line
            end
          end
        end
      end
    end
  end
  ls:close()
  return found
end

local root = os.getenv("LUAMIG_HOUSE_ROOT") or "."

describe("the core", function()
  it("writes no SQL: the statements it runs come from dialects/", function()
    local found = sql_in_literals(root)
    assert.are.same({}, found)
  end)

  it("does not branch on which executor runs", function()
    local hits = {}
    local grep = H.popen("grep -n 'env->mode\\b\\|LM_EXEC_ONLINE\\|LM_EXEC_OFFLINE' " ..
                         H.quote(root) .. "/src/*.c " .. H.quote(root) ..
                         "/src/*.h")
    for l in grep:lines() do hits[#hits + 1] = l end
    grep:close()
    assert.are.same({}, hits)
  end)

  it("names no dialect: no string of the core is a dialect's name", function()
    local hits = {}
    local ls = H.popen("ls " .. H.quote(root) .. "/src/*.c")
    for path in ls:lines() do
      local n = 0
      for line in io.lines(path) do
        n = n + 1
        if not is_comment(line) then
          for _, lit in ipairs(literals(line)) do
            -- (as code spells them; prose says PostgreSQL, SQLite)
            if lit == "postgresql" or lit == "postgres" or lit == "sqlite" or lit == "sqlite3" then
              hits[#hits + 1] = path:match("[^/]+$") .. ":" .. n .. ": " .. line
            end
          end
        end
      end
    end
    ls:close()
    assert.are.same({}, hits)
  end)

  it("the rule's own check finds SQL where there is some", function()
    -- The check above must be able to fail: it finds a statement in a
    -- file written the way the core used to write them.
    local dir = H.tmp .. "/house_" .. tostring(os.time()) .. "_" ..
                tostring(math.random(1, 1e6))
    assert.are.equal(0, H.sh("mkdir -p " .. H.quote(dir .. "/src")))
    H.write(dir .. "/src/x.c", table.concat({
      "/* SELECT in a comment is fine */",
      " * and so is UPDATE inside one",
      'static const char *ok = "a message";',
      '  lm_buf_puts(&sql, "DELETE FROM ");',
    }, "\n") .. "\n")
    local found = sql_in_literals(dir)
    H.sh("rm -rf " .. H.quote(dir))
    assert.are.same({'src/x.c:4:   lm_buf_puts(&sql, "DELETE FROM ");'}, found)
  end)
end)
