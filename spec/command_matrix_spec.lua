-- command_matrix_spec.lua - every command with every flag, with and
-- without --json, -q and --sql, on a database at base, in the middle, at
-- two heads, at the head and dirty: never a signal or a sanitizer report,
-- exit 0, 1 or 2 only, --json output that parses, a quiet -q, and the
-- database unchanged by the commands that only read.
--
-- One project serves every run.  SQLite: each state is prepared once and
-- copied for each invocation.  PostgreSQL: a representative subset, each
-- state a database that the writing commands clone (CREATE DATABASE ...
-- TEMPLATE).  The number of invocations is printed at the end.
local H = require "helpers"
local json = require "dkjson"

local R1, R2, R3 = "aaaaaaaaaaa1", "bbbbbbbbbbb2", "ccccccccccc3"
local R4A, R4B, R5, R6 = "ddddddddddd4", "eeeeeeeeeee4", "fffffffffff5", "99999999999f"

local function tbl(name)
  return ("op.create_table(%q, {{'id', 'integer', primary_key = true}})"):format(name),
         ("op.drop_table(%q)"):format(name)
end
local function rev(id, down, extra)
  local up, down_code = tbl("t_" .. id)
  local r = {rev = id, down = down, up = up, down_code = down_code}
  for k, v in pairs(extra or {}) do r[k] = v end
  return r
end
-- R1 - R2 - R3 < R4A (alpha), R4B (beta) > R5 - R6; R6 runs outside a
-- transaction and fails after its first statement when -x fail=1.
local graph = {
  rev(R1), rev(R2, R1), rev(R3, R2),
  rev(R4A, R3, {labels = {"alpha"}}), rev(R4B, R3, {labels = {"beta"}, depends = {R2}}),
  rev(R5, {R4A, R4B}),
  {rev = R6, down = R5, extra = "  transactional = false,",
   up = [[op.execute("CREATE TABLE t_half (id integer)")
          if op.x.fail then error("failing after a statement, as asked") end]],
   down_code = [[op.execute("DROP TABLE t_half")]]},
}

-- How each state is reached from base.
local states = {
  {name = "base", steps = {}},
  {name = "middle", steps = {{"upgrade", R2}}},
  {name = "two heads", steps = {{"upgrade", R4A}, {"upgrade", R4B}}},
  {name = "head", steps = {{"upgrade", "head"}}},
  {name = "dirty", steps = {{"upgrade", R5}, {"-x", "fail=1", "upgrade", "head"}}, dirty = true},
}

-- Commands and their flag variants; ro: only reads; sql: takes --sql.
local commands = {
  {"upgrade", sql = true, variants = {{"head"}, {"+1"}, {R3}, {"heads"}, {"alpha@head"}, {"head", "--strict"}}},
  {"downgrade", sql = true, variants = {{"-1"}, {"base"}, {R2}, {"beta@-1"}, {"head:base"}, {"-1", "--strict"}}},
  {"stamp", sql = true, variants = {{"head"}, {R2}, {"base"}, {R4A, R4B}, {"heads", "--purge"}}},
  {"current", ro = true, variants = {{}, {"-v"}, {"--check-heads"}}},
  {"heads", ro = true, variants = {{}, {"-v"}, {"--resolve-dependencies"}}},
  {"branches", ro = true, variants = {{}, {"-v"}}},
  {"history", ro = true, variants = {{}, {"-v"}, {"-i"}, {"-r", "base:head"}, {"-r", "current:"},
                                     {"-r-2:current"}, {"-r", R2 .. ":"}}},
  {"show", ro = true, variants = {{"head"}, {"current"}, {R2}, {"alpha"}}},
  {"status", ro = true, variants = {{}, {"--strict"}}},
  {"check", ro = true, variants = {{}, {"--models", "none.lua"}}},
  {"ensure_version", sql = true, variants = {{}}},
  {"lint", ro = true, variants = {{}, {"--all"}, {"--format", "sarif"}, {"base:head"}}},
  {"kept", ro = true, variants = {{}, {R2}}}, {"kept", variants = {{"--purge"}, {"--purge", "--older-than", "30d", R2}}},
}
-- Flags added to each variant.
local function suffixes(cmd)
  local s = {{}, {"--json"}, {"-q"}}
  if cmd.sql then s[#s + 1] = {"--sql"} end
  return s
end

local invocations = 0
local by_exit = {[0] = 0, 0, 0}

local project = H.project("sqlite:///unused.db", graph)

local function argv_text(argv) return table.concat(argv, " ") end

-- Run the binary (as H.run does) and count the run.
local function run(argv, opts)
  invocations = invocations + 1
  local code, out, err = H.run(argv, opts)
  by_exit[code] = (by_exit[code] or 0) + 1
  return code, out, err
end

-- What every run must satisfy; returns a complaint or nil.
local function check(argv, code, out, err)
  local text = argv_text(argv)
  if code ~= 0 and code ~= 1 and code ~= 2 then
    return ("%s: exit %s\n%s"):format(text, tostring(code), err)
  end
  if err:match("AddressSanitizer") or err:match("runtime error") then
    return text .. ": sanitizer report\n" .. err
  end
  local has = {}
  for _, a in ipairs(argv) do has[a] = true end
  if code == 0 and has["--json"] then
    local v, _, e = json.decode(out)
    if v == nil then return text .. ": --json output does not parse (" .. tostring(e) .. "): " .. out end
  end
  if code == 0 and has["-q"] and err ~= "" then return text .. ": -q, yet stderr says: " .. err end
  -- (status says what needs attention on stdout)
  if code ~= 0 and err == "" and out == "" then return text .. ": exit " .. code .. " without a message" end
  return nil
end

local function each_invocation(fn)
  for _, cmd in ipairs(commands) do
    for _, v in ipairs(cmd.variants) do
      for _, s in ipairs(suffixes(cmd)) do
        local argv = {cmd[1]}
        for _, a in ipairs(v) do argv[#argv + 1] = a end
        for _, a in ipairs(s) do argv[#argv + 1] = a end
        -- --sql runs offline: it only reads (the scripts)
        fn(argv, cmd.ro or s[1] == "--sql")
      end
    end
  end
end

describe("every command with every flag on SQLite", function()
  local work = H.tempdir()
  local templates, dumps = {}, {}

  local function dump(path)
    local f = H.popen("sqlite3 -batch " .. H.quote(path) .. " .dump 2>&1")
    local s = f:read("a")
    f:close()
    return s
  end

  setup(function()
    for i, st in ipairs(states) do
      local path = ("%s/state%d.db"):format(work, i)
      for _, step in ipairs(st.steps) do
        local argv = {"--url", "sqlite:///" .. path, "-q"}
        for _, a in ipairs(step) do argv[#argv + 1] = a end
        local code, _, err = run(argv, {dir = project})
        assert.are.equal(st.dirty and step[1] == "-x" and 1 or 0, code, err)
      end
      if #st.steps == 0 then H.write(path, "") end
      templates[i], dumps[i] = path, dump(path)
    end
    -- the premise of the dirty state: status says so
    local code, out = run({"--url", "sqlite:///" .. templates[5], "status"}, {dir = project})
    assert.are.equal(1, code)
    assert.matches("Dirty: upgrade of " .. R6, out)
  end)

  for i, st in ipairs(states) do
    it("at " .. st.name, function()
      local problems = {}
      local copy = ("%s/run%d.db"):format(work, i)
      each_invocation(function(argv, read_only)
        assert(H.sh("cp " .. H.quote(templates[i]) .. " " .. H.quote(copy)) == 0)
        local full = {"--url", "sqlite:///" .. copy}
        for _, a in ipairs(argv) do full[#full + 1] = a end
        local code, out, err = run(full, {dir = project})
        local p = check(argv, code, out, err)
        if not p and read_only and dump(copy) ~= dumps[i] then
          p = argv_text(argv) .. ": a command that only reads changed the database"
        end
        if not p and not read_only and code ~= 0 and not st.dirty then
          -- a refused or failed move leaves the revisions where they were
          local q = "SELECT version_num FROM luamig_version ORDER BY 1"
          if (H.sqlite_query(templates[i], q) or "") ~= (H.sqlite_query(copy, q) or "") then
            p = argv_text(argv) .. ": failed (exit " .. code .. "), yet moved the database\n" .. err
          end
        end
        problems[#problems + 1] = p
      end)
      -- reading commands work in every state
      for _, argv in ipairs({{"current"}, {"heads"}, {"history", "-i"}, {"show", "current"}, {"branches"}}) do
        local full = {"--url", "sqlite:///" .. templates[i]}
        for _, a in ipairs(argv) do full[#full + 1] = a end
        local code, _, err = run(full, {dir = project})
        if code ~= 0 then problems[#problems + 1] = argv_text(argv) .. ": exit " .. code .. ": " .. err end
      end
      assert.are.same({}, problems)
    end)
  end

  it("init, revision, merge and edit, each in a copy of the project", function()
    local problems = {}
    local variants = {
      {"init"}, {"init", "db/versions"}, {"init", "--json"}, {"init", "-q"},
      {"revision", "-m", "x"}, {"revision", "-m", "x", "--json"}, {"revision", "-m", "x", "-q"},
      {"revision", "-m", "x", "--head", R3, "--splice"}, {"revision", "-m", "x", "--head", "base"},
      {"revision", "-m", "x", "--branch-label", "gamma"}, {"revision", "-m", "x", "--depends-on", R2},
      {"revision", "-m", "x", "--rev-id", "123456789abc"}, {"revision", "-m", "x", "--autogenerate"},
      {"revision", "-m", "x", "--sql"},
      {"merge", "heads", "-m", "m"}, {"merge", R4A, R4B, "-m", "m", "--json"}, {"merge", "heads", "-m", "m", "-q"},
      {"merge", "heads", "-m", "m", "--branch-label", "l", "--rev-id", "abcabcabcabc"},
      {"edit", R2}, {"edit", R2, "-q"}, {"edit", R2, "--json"}, {"edit", "alpha"},
    }
    for k, argv in ipairs(variants) do
      local dir = ("%s/copy%d"):format(work, k)
      if argv[1] == "init" then
        assert(H.sh("mkdir " .. H.quote(dir)) == 0)
      else
        assert(H.sh("cp -r " .. H.quote(project) .. " " .. H.quote(dir)) == 0)
      end
      local code, out, err = run(argv, {dir = dir, env = {EDITOR = "true"}})
      problems[#problems + 1] = check(argv, code, out, err)
    end
    -- help for every command
    for _, cmd in ipairs({"init", "revision", "merge", "upgrade", "downgrade", "stamp", "current", "heads",
                          "branches", "history", "show", "status", "ensure_version", "edit"}) do
      local code, out, err = run({cmd, "--help"})
      if code ~= 0 or not out:match("usage: luamig " .. cmd) then
        problems[#problems + 1] = cmd .. " --help: exit " .. code .. " " .. err
      end
    end
    assert.are.same({}, problems)
  end)
end)

describe("a representative subset on PostgreSQL", function()
  local names, urls, dumps = {}, {}, {}
  local function pg_dump(url)
    return (H.psql(url, "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM information_schema.tables " ..
                        "WHERE table_schema = 'public'") or "") ..
           (H.psql(url, "SELECT string_agg(version_num, ',' ORDER BY version_num) FROM luamig_version") or "-") ..
           (H.psql(url, "SELECT string_agg(revision || status, ',' ORDER BY id) FROM luamig_log") or "-")
  end
  local function clone(i)
    local name = names[i] .. "_c" .. invocations
    assert(H.psql(H.pg_url, "CREATE DATABASE " .. name .. " TEMPLATE " .. names[i]))
    return (H.pg_url:gsub("/[^/?]*$", "/" .. name))
  end

  setup(function()
    for i, st in ipairs(states) do
      urls[i], names[i] = H.pg_fresh()
      for _, step in ipairs(st.steps) do
        local argv = {"--url", urls[i], "-q"}
        for _, a in ipairs(step) do argv[#argv + 1] = a end
        local code, _, err = run(argv, {dir = project})
        assert.are.equal(st.dirty and step[1] == "-x" and 1 or 0, code, err)
      end
      dumps[i] = pg_dump(urls[i])
    end
  end)

  for i, st in ipairs(states) do
    it("at " .. st.name, function()
      local problems = {}
      local reads = {{"current", "-v"}, {"current", "--check-heads"}, {"current", "--json"}, {"heads"},
                     {"history", "-i"}, {"history", "-r", "current:", "--json"}, {"show", "current"},
                     {"show", "current", "--json"}, {"status"}, {"status", "--json", "-q"},
                     {"upgrade", "head", "--sql"}}
      for _, argv in ipairs(reads) do
        local full = {"--url", urls[i]}
        for _, a in ipairs(argv) do full[#full + 1] = a end
        local code, out, err = run(full, {dir = project})
        problems[#problems + 1] = check(argv, code, out, err)
      end
      if pg_dump(urls[i]) ~= dumps[i] then problems[#problems + 1] = "a command that only reads changed the database" end
      for _, argv in ipairs({{"upgrade", "head", "--json"}, {"downgrade", "-1", "-q"}, {"stamp", "base", "--json"},
                             {"stamp", R4A, R4B}, {"ensure_version"}}) do
        local full = {"--url", clone(i)}
        for _, a in ipairs(argv) do full[#full + 1] = a end
        local code, out, err = run(full, {dir = project})
        problems[#problems + 1] = check(argv, code, out, err)
      end
      assert.are.same({}, problems)
    end)
  end

end)

describe("the matrix", function()
  it("counts its invocations", function()
    io.stderr:write(("\ncommand_matrix_spec: %d invocations of luamig (exit 0: %d, 1: %d, 2: %d)\n"):format(
      invocations, by_exit[0], by_exit[1], by_exit[2]))
    assert.is_true(invocations > 500)
  end)
end)
