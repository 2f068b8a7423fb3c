-- script_sandbox_spec.lua - what the configuration and revision scripts
-- may do to the process, and what luamig accepts from them: revision ids
-- and labels checked before anything runs (and before `revision --rev-id`
-- writes a file), os.exit refused, SIGINT/SIGTERM stopping Lua code that
-- loops while it loads, a config or script table whose metamethods raise,
-- files in the migrations folder that are not regular files or too big,
-- and a metadata cache that notices an edit whose mtime was put back.
local H = require "helpers"

local function has(s, pattern) return (s or ""):find(pattern) ~= nil end

-- Run the binary with a time bound (a hang ends as exit 137) and, outside
-- the sanitizer build, a memory bound (a read without end ends too).
local function run_bounded(args, dir, seconds)
  local out, err = os.tmpname(), os.tmpname()
  local parts = {"cd", H.quote(dir), "&&"}
  if not H.asan then parts[#parts + 1] = "ulimit -v 2000000 &&" end
  parts[#parts + 1] = "timeout -s KILL " .. (seconds or 20)
  parts[#parts + 1] = "env"
  if H.asan then parts[#parts + 1] = "LD_PRELOAD= ASAN_OPTIONS=detect_leaks=1:exitcode=99" end
  parts[#parts + 1] = H.quote(H.bin)
  for _, a in ipairs(args) do parts[#parts + 1] = H.quote(a) end
  local code = H.sh(table.concat(parts, " ") .. " >" .. out .. " 2>" .. err .. " </dev/null")
  local o, e = H.read(out), H.read(err)
  os.remove(out)
  os.remove(err)
  return code, o, e
end

-- Start the binary in the background: returns a handle with the files its
-- pid, exit code, stdout and stderr go to.
local spawned = 0
local function spawn(args, dir)
  spawned = spawned + 1
  local p = {}
  for _, k in ipairs({"pid", "rc", "out", "err"}) do
    p[k] = string.format("%s/spawn_%d.%s", dir, spawned, k)
  end
  local cmd = {H.quote(H.bin)}
  for _, a in ipairs(args) do cmd[#cmd + 1] = H.quote(a) end
  local env = H.asan and "LD_PRELOAD= ASAN_OPTIONS=detect_leaks=1:exitcode=99 " or ""
  local line = string.format("cd %s && ( env %s%s >%s 2>%s </dev/null & echo $! >%s; wait $!; echo $? >%s ) &",
                             H.quote(dir), env, table.concat(cmd, " "), p.out, p.err, p.pid, p.rc)
  assert.are.equal(0, H.sh(line))
  return p
end

-- Wait until a file exists (or holds a pattern); false after `seconds`.
local function wait_file(path, seconds, pattern)
  local deadline = os.time() + seconds
  repeat
    local s = H.read(path)
    if s and (not pattern or s:find(pattern)) then return s end
    H.sh("sleep 0.05")
  until os.time() > deadline
  return false
end

-- Lua code that runs for `seconds` at most, with a marker file first so
-- the spec knows the loop has started (bounded: before the fix a run
-- ends by itself, and the spec fails instead of hanging).
local function loop_code(marker, seconds, body)
  return string.format([[do
  local f = io.open(%q, "w") f:write("looping") f:close()
  local t0 = os.time()
  local function spin() while os.time() - t0 < %d do end end
  %s
end
]], marker, seconds, body or "spin()")
end

-- Send a signal once the marker appears; return the exit code, stderr and
-- whether the process ended within `within` seconds of the signal.
local function interrupt(p, marker, sig, within)
  assert.truthy(wait_file(marker, 30), "the loop never started")
  H.sh("sleep 0.2")
  local pid = assert(tonumber(assert(wait_file(p.pid, 10))))
  H.sh("kill -" .. sig .. " " .. pid)
  local rc = wait_file(p.rc, within, "%d")
  if not rc then
    H.sh("kill -9 " .. pid .. " 2>/dev/null")
    wait_file(p.rc, 10, "%d")
    return nil, H.read(p.err), false
  end
  return tonumber(rc), H.read(p.err), true
end

local base = {rev = "aaaaaaaaaaa1", message = "victim",
              up = [[op.create_table("victim", {{"id", "integer", primary_key = true}})]],
              down_code = [[op.drop_table("victim")]]}

-- ---- 9.6 revision --rev-id ------------------------------------------------

describe("revision --rev-id", function()
  local bad = {
    {"a-b", "character '%-' not allowed"},
    {"a+b", "character '%+' not allowed"},
    {"r1\nDROP", "character '\\n' not allowed"},
    {"x y", "character ' ' not allowed"},
    {string.rep("a", 33), "33 characters, more than 32"},
  }
  for _, case in ipairs(bad) do
    it("refuses " .. case[1]:gsub("\n", "\\n") .. " before writing anything", function()
      local dir = H.project("sqlite:///" .. H.tempdir() .. "/t.db", {base})
      local code, out, err = H.run({"revision", "-m", "next", "--rev-id", case[1]}, {dir = dir})
      assert.are.equal(2, code, err)
      assert.matches("bad %-%-rev%-id", err)
      assert.matches(case[2], err)
      assert.are.equal("", out)
      -- nothing was written, so every later command still works
      local f = H.popen("ls " .. H.quote(dir .. "/migrations"))
      local files = f:read("a")
      f:close()
      assert.are.equal("0001_aaaaaaaaaaa1.lua\n", files)
      local hcode, heads = H.run({"heads"}, {dir = dir})
      assert.are.equal(0, hcode)
      assert.are.equal("aaaaaaaaaaa1 (head)\n", heads)
    end)
  end

  it("accepts letters, digits and underscores up to 32, and checks --branch-label", function()
    local dir = H.project("sqlite:///" .. H.tempdir() .. "/t.db", {base})
    local id = "Rev_0002_" .. string.rep("z", 23)
    local code, _, err = H.run({"revision", "-m", "next", "--rev-id", id}, {dir = dir})
    assert.are.equal(0, code, err)
    local _, heads = H.run({"heads"}, {dir = dir})
    assert.are.equal(id .. " (head)\n", heads)
    code, _, err = H.run({"revision", "-m", "n", "--rev-id", "r3", "--branch-label", "a\nb"}, {dir = dir})
    assert.are.equal(2, code)
    assert.matches("bad %-%-branch%-label: branch label 'a\\nb'", err)
  end)
end)

-- ---- 17.9 ids and labels from scripts, checked at load time ---------------

for _, d in ipairs(H.dialects) do
  describe("ids from scripts on " .. d.name, function()
    -- The database at aaaaaaaaaaa1 with table victim; a second script as given.
    local function at_base(second)
      local url, query = d.fresh()
      local dir = H.project(url, {base})
      assert.are.equal(0, (H.run({"upgrade", "head"}, {dir = dir})))
      H.write(dir .. "/migrations/0002_bad.lua", second)
      return dir, query
    end

    local function unchanged(query)
      assert.are.equal("aaaaaaaaaaa1\n", query("SELECT version_num FROM luamig_version"))
      assert.are.equal("0\n", query("SELECT count(*) FROM victim"))
      assert.are.equal("1\n", query("SELECT count(*) FROM luamig_log"))
    end

    it("a newline in revision is refused before anything runs, online and in --sql", function()
      local dir, query = at_base([[return {
  revision = "r1\nDROP TABLE victim;\nSELECT 1;", down_revision = "aaaaaaaaaaa1",
  upgrade = function(op) op.create_table("ran", {{"id", "integer", primary_key = true}}) end,
}
]])
      local code, out, err = H.run({"upgrade", "aaaaaaaaaaa1:head", "--sql"}, {dir = dir})
      assert.are.equal(1, code)
      assert.matches("0002_bad%.lua: revision: revision id 'r1\\nDROP TABLE victim;\\nSELECT 1;': character '\\n' not allowed", err)
      assert.is_false(has(out, "DROP TABLE victim"))
      code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(1, code)
      assert.matches("0002_bad%.lua: revision:", err)
      unchanged(query)
      assert.is_nil(query("SELECT 1 FROM ran"))
    end)

    it("a bad id stops the run before any migration, even the ones before it", function()
      for _, id in ipairs({string.rep("c", 33), "c1\nDROP TABLE victim;"}) do
        local url, query = d.fresh()
        local dir = H.project(url, {base})
        H.write(dir .. "/migrations/0002_bad.lua", string.format(
          "return {revision = %q, down_revision = 'aaaaaaaaaaa1', upgrade = function(op) end}\n", id))
        local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
        assert.are.equal(1, code)
        assert.matches("0002_bad%.lua: revision: revision id 'c", err)
        assert.is_nil(query("SELECT 1 FROM victim"))
        local rows = query("SELECT count(*) FROM luamig_version")
        assert.is_true(rows == nil or rows == "0\n", rows)
      end
    end)

    it("an id longer than the version column (32) is refused at load time", function()
      local id = string.rep("b", 33)
      local dir, query = at_base(H.script({rev = id, down = "aaaaaaaaaaa1",
        up = [[op.create_table("ran", {{"id", "integer", primary_key = true}})]]}))
      local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(1, code)
      assert.matches("0002_bad%.lua: revision: revision id '" .. id .. "': 33 characters, more than 32", err)
      unchanged(query)
      assert.is_nil(query("SELECT 1 FROM ran"))
      code, _, err = H.run({"upgrade", "aaaaaaaaaaa1:head", "--sql"}, {dir = dir})
      assert.are.equal(1, code)
      assert.matches("more than 32", err)
    end)
  end)
end

describe("ids and labels from scripts", function()
  local cases = {
    {"down_revision", [[down_revision = "aaaaaaaaaaa1\nDROP TABLE victim;"]], "down_revision: revision id"},
    {"depends_on", [[down_revision = "aaaaaaaaaaa1", depends_on = {"aaaaaaaaaaa1\n;"}]],
     "depends_on %(a revision id or a branch label%): branch label 'aaaaaaaaaaa1\\n;'"},
    {"branch_labels", [[down_revision = "aaaaaaaaaaa1", branch_labels = {"billing\nDROP TABLE victim;"}]],
     "branch_labels: branch label 'billing\\nDROP TABLE victim;'"},
    {"a NUL byte in revision", [[down_revision = "aaaaaaaaaaa1"]], "revision holds a NUL byte",
     id = [["bbbbbbbbbbb2\0;DROP"]]},
    {"a '-' in revision (Alembic's rule)", [[down_revision = "aaaaaaaaaaa1"]],
     "revision: revision id 'bbbb%-bbbbbb2': character '%-' not allowed",
     id = [["bbbb-bbbbbb2"]]},
  }
  for _, case in ipairs(cases) do
    it("refuses a bad " .. case[1] .. ", naming the file and field", function()
      local path = H.tempdir() .. "/t.db"
      local dir = H.project("sqlite:///" .. path, {base})
      H.write(dir .. "/migrations/0002_bad.lua", "return {revision = " .. (case.id or [["bbbbbbbbbbb2"]]) ..
              ", " .. case[2] .. "}\n")
      local code, out, err = H.run({"upgrade", "head", "--sql"}, {dir = dir})
      assert.are.equal(1, code)
      assert.matches("0002_bad%.lua: " .. case[3], err)
      assert.are.equal("", out)
      code = H.run({"heads"}, {dir = dir})
      assert.are.equal(1, code)
    end)
  end

  it("accepts labels with '-' and '.' and ids with underscores", function()
    local dir = H.project("sqlite:///" .. H.tempdir() .. "/t.db", {base,
      {rev = "rev_2", down = "aaaaaaaaaaa1", labels = {"feature-x.y"}, depends = {"aaaaaaaaaaa1"}}})
    local code, out, err = H.run({"heads"}, {dir = dir})
    assert.are.equal(0, code, err)
    assert.are.equal("rev_2 (feature-x.y) (head)\n", out)
  end)
end)

-- ---- 17.7 the sandbox: os.exit and friends --------------------------------

for _, d in ipairs(H.dialects) do
  describe("the script sandbox on " .. d.name, function()
    for _, call in ipairs({"os.exit(0)", "os.exit(true)", "os.exit(1)"}) do
      it(call .. " in upgrade fails the migration, naming the script and line", function()
        local url, query = d.fresh()
        local dir = H.project(url, {base, {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1",
          up = [[op.create_table("ran", {{"id", "integer", primary_key = true}})
                 ]] .. call}})
        local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
        assert.are.equal(1, code)
        assert.matches("0002_bbbbbbbbbbb2%.lua:%d+: os%.exit is not available in luamig", err)
        assert.matches("upgrade bbbbbbbbbbb2 .* failed and was rolled back", err)
        assert.are.equal("aaaaaaaaaaa1\n", query("SELECT version_num FROM luamig_version"))
        assert.is_nil(query("SELECT 1 FROM ran"))
      end)
    end

    it("os.exit at a script's top level or in the configuration is an error too", function()
      local url, query = d.fresh()
      local dir = H.project(url, {base})
      H.write(dir .. "/migrations/0002_exit.lua", "os.exit(0)\nreturn {revision = 'bbbbbbbbbbb2'}\n")
      local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(1, code)
      assert.matches("0002_exit%.lua:1: os%.exit is not available", err)
      assert.is_nil(query("SELECT 1 FROM luamig_version"))
      os.remove(dir .. "/migrations/0002_exit.lua")
      H.write(dir .. "/luamig.lua", "if os.getenv('HOME') then os.exit(true) end\nreturn {url = " ..
              string.format("%q", url) .. "}\n")
      code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(1, code)
      assert.matches("luamig%.lua:1: os%.exit is not available", err)
      assert.is_nil(query("SELECT 1 FROM victim"))
    end)

    it("setting the locale and replacing the hook are refused; the rest of the library works", function()
      local url, query = d.fresh()
      local dir = H.project(url, {base,
        {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1",
         up = [[assert(os.setlocale() and os.setlocale(nil, "numeric"))
                local p = assert(io.popen("echo from-a-child"))
                local line = p:read("l")
                p:close()
                op.execute("INSERT INTO victim (id) VALUES ($1)", {#line})
                os.setlocale("C")]]},
        {rev = "ccccccccccc3", down = "bbbbbbbbbbb2", up = [[debug.sethook()]]}})
      local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(1, code)
      assert.matches("0002_bbbbbbbbbbb2%.lua:%d+: os%.setlocale with a locale is not available", err)
      assert.are.equal("aaaaaaaaaaa1\n", query("SELECT version_num FROM luamig_version"))
      H.write(dir .. "/migrations/0002_bbbbbbbbbbb2.lua", H.script({rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1",
        up = [[local p = assert(io.popen("echo from-a-child"))
               op.execute("INSERT INTO victim (id) VALUES ($1)", {#p:read("l")})
               p:close()]]}))
      code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(1, code)
      assert.matches("0003_ccccccccccc3%.lua:%d+: debug%.sethook is not available", err)
      assert.are.equal("bbbbbbbbbbb2\n", query("SELECT version_num FROM luamig_version"))
      assert.are.equal("12\n", query("SELECT id FROM victim"))
    end)
  end)
end

-- ---- 17.6 SIGINT and SIGTERM while Lua code loads -------------------------

for _, d in ipairs(H.dialects) do
  describe("signals while Lua code loads on " .. d.name, function()
    for _, sig in ipairs({{"INT", 130}, {"TERM", 143}}) do
      it("SIG" .. sig[1] .. " stops a configuration that loops, exit " .. sig[2], function()
        local url, query = d.fresh()
        local dir = H.project(url, {base})
        local marker = dir .. "/config.looping"
        H.write(dir .. "/luamig.lua", loop_code(marker, 40) .. "return {url = " .. string.format("%q", url) .. "}\n")
        local p = spawn({"upgrade", "head"}, dir)
        local code, err, ended = interrupt(p, marker, sig[1], 15)
        assert.is_true(ended, "the configuration kept running after SIG" .. sig[1])
        assert.are.equal(sig[2], code, err)
        assert.matches("cannot load configuration: .*luamig%.lua:%d+: interrupted by SIG" .. sig[1], err)
        assert.is_nil(query("SELECT 1 FROM victim"))
      end)
    end

    it("SIGINT stops a script whose top-level code loops, even inside pcall", function()
      local url, query = d.fresh()
      local dir = H.project(url, {base})
      local marker = dir .. "/script.looping"
      H.write(dir .. "/migrations/0002_loop.lua", loop_code(marker, 40,
        "while os.time() - t0 < 40 do pcall(spin) end") ..
        "return {revision = 'bbbbbbbbbbb2', down_revision = 'aaaaaaaaaaa1'}\n")
      local p = spawn({"upgrade", "head"}, dir)
      local code, err, ended = interrupt(p, marker, "INT", 15)
      assert.is_true(ended, "the script kept running after SIGINT")
      assert.are.equal(130, code, err)
      assert.matches("0002_loop%.lua:%d+: interrupted by SIGINT", err)
      assert.is_nil(query("SELECT 1 FROM victim"))
    end)

    it("SIGTERM stops a coroutine created at load time and run by upgrade", function()
      local url, query = d.fresh()
      local dir = H.project(url, {base})
      local marker = dir .. "/co.looping"
      H.write(dir .. "/migrations/0002_co.lua",
        "local co = coroutine.wrap(function()\n" .. loop_code(marker, 40) .. "end)\n" ..
        "return {revision = 'bbbbbbbbbbb2', down_revision = 'aaaaaaaaaaa1', upgrade = function(op)\n" ..
        "  op.create_table('ran', {{'id', 'integer', primary_key = true}})\n  co()\nend}\n")
      local p = spawn({"upgrade", "head"}, dir)
      local code, err, ended = interrupt(p, marker, "TERM", 15)
      assert.is_true(ended, "the coroutine kept running after SIGTERM")
      assert.are.equal(143, code, err)
      assert.matches("interrupted by SIGTERM", err)
      assert.matches("bbbbbbbbbbb2", err)
      assert.are.equal("aaaaaaaaaaa1\n", query("SELECT version_num FROM luamig_version"))
      assert.is_nil(query("SELECT 1 FROM ran"))
    end)
  end)
end

-- ---- 17.13 configuration and script tables that raise ----------------------

describe("tables whose metamethods raise", function()
  local function project_with_config(text)
    local dir = H.project("sqlite:///" .. H.tempdir() .. "/t.db", {base})
    H.write(dir .. "/luamig.lua", text)
    return dir
  end

  it("a configuration table whose __index raises is an error, not an abort", function()
    local dir = project_with_config([[return setmetatable({url = "sqlite:///x.db"},
  {__index = function(_, k) error("no setting " .. k) end})
]])
    local code, _, err = H.run({"heads"}, {dir = dir})
    assert.are.equal(1, code, err)
    assert.matches("cannot read configuration luamig%.lua: luamig%.lua:2: no setting", err)
    assert.is_false(has(err, "unprotected"))
  end)

  it("a configuration whose __index gives defaults still works", function()
    local dir = project_with_config([[return setmetatable({url = "sqlite:///x.db"},
  {__index = {script_location = "migrations"}})
]])
    local code, out, err = H.run({"heads"}, {dir = dir})
    assert.are.equal(0, code, err)
    assert.are.equal("aaaaaaaaaaa1 (head)\n", out)
  end)

  it("a configuration raising a non-string says what it raised", function()
    for _, v in ipairs({"{}", "42", "nil", "setmetatable({}, {__tostring = function() return 'custom' end})"}) do
      local dir = project_with_config("error(" .. v .. ")\n")
      local code, _, err = H.run({"heads"}, {dir = dir})
      assert.are.equal(1, code, err)
      assert.is_false(has(err, "%(null%)"), err)
      assert.matches("cannot load configuration: %S", err)
    end
    local dir = project_with_config("error({})\n")
    local _, _, err = H.run({"heads"}, {dir = dir})
    assert.matches("error object is a table value", err)
  end)

  it("a script table whose __index or __len raises is an error, not an abort", function()
    for _, text in ipairs({
      [[return setmetatable({}, {__index = function() error("boom") end})]],
      [[return {revision = "bbbbbbbbbbb2", down_revision = setmetatable({}, {__len = function() error({}) end})}]],
    }) do
      local dir = H.project("sqlite:///" .. H.tempdir() .. "/t.db", {base})
      H.write(dir .. "/migrations/0002_meta.lua", text .. "\n")
      local code, _, err = H.run({"heads"}, {dir = dir})
      assert.are.equal(1, code, err)
      assert.matches("cannot load .*0002_meta%.lua", err)
    end
  end)
end)

-- ---- 17.14 files in the migrations folder ----------------------------------

describe("files in the migrations folder", function()
  local function with_file(make)
    local dir = H.project("sqlite:///" .. H.tempdir() .. "/t.db", {base})
    assert.are.equal(0, H.sh(make(dir .. "/migrations/0002_odd.lua")))
    return dir
  end

  local kinds = {
    {"a FIFO", function(p) return "mkfifo " .. H.quote(p) end, "is a FIFO"},
    {"a symlink to /dev/zero", function(p) return "ln -s /dev/zero " .. H.quote(p) end, "is a device"},
    {"a directory", function(p) return "mkdir " .. H.quote(p) end, "is a directory"},
    {"a file over 64 MB", function(p)
      return "printf 'return {}' >" .. H.quote(p) .. " && truncate -s 70000000 " .. H.quote(p)
    end, "is larger than 64 MB"},
  }
  for _, k in ipairs(kinds) do
    it("refuses " .. k[1] .. " with a message naming it, promptly", function()
      local dir = with_file(k[2])
      for _, args in ipairs({{"heads"}, {"upgrade", "head"}}) do
        local code, _, err = run_bounded(args, dir, 20)
        assert.are.equal(1, code, err)
        assert.matches("migrations/0002_odd%.lua " .. k[3], err)
      end
    end)
  end
end)

-- ---- 17.12 the metadata cache and in-place edits ---------------------------

-- Rewrite a file in place (same inode, same length) and put its
-- modification time back, as some editors and tools do.
local function edit_in_place(path, from, to)
  assert(#from == #to)
  local text = H.read(path)
  local at = assert(text:find(from, 1, true), "text to replace not found")
  local ref = path .. ".times"
  assert.are.equal(0, H.sh("touch -r " .. H.quote(path) .. " " .. H.quote(ref)))
  local f = assert(io.open(path, "r+b"))
  f:seek("set", at - 1)
  f:write(to)
  f:close()
  assert.are.equal(0, H.sh("touch -r " .. H.quote(ref) .. " " .. H.quote(path)))
  os.remove(ref)
end

for _, d in ipairs(H.dialects) do
  describe("the metadata cache on " .. d.name, function()
    local revs = {
      {rev = "aaaaaaaaaaa1", up = [[op.create_table("t", {{"id", "integer", primary_key = true}})]]},
      {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", up = [[op.create_table("t_old", {{"id", "integer", primary_key = true}})]]},
    }

    it("an applied script edited in place with its mtime restored shows as drifted", function()
      local url = d.fresh()
      local dir = H.project(url, revs)
      assert.are.equal(0, (H.run({"upgrade", "head"}, {dir = dir})))
      local code, status = H.run({"status"}, {dir = dir})
      assert.are.equal(0, code)
      assert.matches("Drifted scripts: 0", status)
      edit_in_place(dir .. "/migrations/0001_aaaaaaaaaaa1.lua", '"t"', '"u"')
      code, status = H.run({"status"}, {dir = dir})
      assert.are.equal(0, code)
      assert.matches("Drifted scripts: 1", status)
      assert.matches("aaaaaaaaaaa1", status)
    end)

    it("a pending script edited that way runs as it is now", function()
      local url, query = d.fresh()
      local dir = H.project(url, revs)
      assert.are.equal(0, (H.run({"upgrade", "aaaaaaaaaaa1"}, {dir = dir})))
      assert.are.equal(0, (H.run({"heads"}, {dir = dir})))   -- the cache knows both scripts
      edit_in_place(dir .. "/migrations/0002_bbbbbbbbbbb2.lua", '"t_old"', '"t_new"')
      local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.are.equal("bbbbbbbbbbb2\n", query("SELECT version_num FROM luamig_version"))
      assert.are.equal("0\n", query("SELECT count(*) FROM t_new"))
      assert.is_nil(query("SELECT 1 FROM t_old"))
    end)

    it("a cache entry that no longer matches its script fails one run, not every run", function()
      local url, query = d.fresh()
      local dir = H.project(url, revs)
      assert.are.equal(0, (H.run({"upgrade", "aaaaaaaaaaa1"}, {dir = dir})))
      -- a stale entry that still matches the file's status: its checksum is wrong
      local cache_path = dir .. "/migrations/.luamig-cache"
      local cache = assert(H.read(cache_path))
      local f = H.popen("sha256sum " .. H.quote(dir .. "/migrations/0002_bbbbbbbbbbb2.lua"))
      local sum = f:read("a"):match("^(%x+)")
      f:close()
      local at = assert(cache:find(sum, 1, true))
      H.write(cache_path, cache:sub(1, at - 1) .. string.rep("0", 64) .. cache:sub(at + 64))
      local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      if code ~= 0 then
        assert.are.equal(1, code)
        assert.matches("0002_bbbbbbbbbbb2%.lua changed since luamig read it; run the command again", err)
        assert.are.equal("aaaaaaaaaaa1\n", query("SELECT version_num FROM luamig_version"))
        code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      end
      assert.are.equal(0, code, err)
      assert.are.equal("bbbbbbbbbbb2\n", query("SELECT version_num FROM luamig_version"))
      local status
      code, status, err = H.run({"status"}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.matches("Drifted scripts: 0", status)
    end)
  end)
end
