-- helpers.lua - what the specs share: running the built binary, making
-- throwaway projects, fresh databases on the test PostgreSQL server and in
-- SQLite files, and reading them back with psql and sqlite3.
local H = {}

H.bin = assert(os.getenv("LUAMIG_BIN"), "run the specs through make test")
H.pg_url = os.getenv("LUAMIG_TEST_PG_URL")
H.tmp = os.getenv("LUAMIG_TMP") or "/tmp"
H.asan = os.getenv("LUAMIG_ASAN") == "1"
package.cpath = (os.getenv("LUAMIG_CPATH") or "build/?.so") .. ";" .. package.cpath
-- The specs run from the repository root, whose luamig.lua is the demo's
-- configuration: keep "./?.lua" from finding it for require "luamig".
package.path = package.path:gsub("%./%?%.lua;", ""):gsub(";%./%?%.lua", "")

-- busted may load this file afresh for each spec file within one second,
-- so names mix in this load's own table address, and tempdir() makes sure
-- the directory is new.
local counter = 0
local instance = tostring({}):match("0x(%x+)") or tostring(os.clock())
local function unique(prefix)
  counter = counter + 1
  return string.format("%s%d_%s_%d_%d", prefix, os.time() % 100000, instance,
                       math.random(1, 1e6), counter)
end
math.randomseed(os.time(), tonumber(instance, 16) or 0)

function H.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

function H.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

function H.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- Under `make asan` the interpreter runs with the sanitizer runtime
-- preloaded; other programs (psql, sqlite3) must not inherit it (psql can
-- hang in its GSS set-up with it).
H.shell_prefix = H.asan and "unset LD_PRELOAD; " or ""

function H.sh(cmd)
  local ok, _, code = os.execute(H.shell_prefix .. cmd)
  return ok and 0 or code
end

function H.popen(cmd)
  return io.popen(H.shell_prefix .. cmd)
end

-- Run the binary: returns exit code, stdout, stderr.
-- opts: dir (working directory), env (table), stdin (text)
function H.run(args, opts)
  opts = opts or {}
  local out, err = os.tmpname(), os.tmpname()
  local parts = {}
  if opts.dir then parts[#parts + 1] = "cd " .. H.quote(opts.dir) .. " &&" end
  parts[#parts + 1] = "env"
  if H.asan then
    parts[#parts + 1] = "LD_PRELOAD= ASAN_OPTIONS=detect_leaks=1:exitcode=99"
  end
  for k, v in pairs(opts.env or {}) do
    parts[#parts + 1] = k .. "=" .. H.quote(v)
  end
  parts[#parts + 1] = H.quote(H.bin)
  for _, a in ipairs(args) do parts[#parts + 1] = H.quote(a) end
  local cmd = table.concat(parts, " ") .. " >" .. out .. " 2>" .. err
  if opts.stdin then cmd = cmd .. " <" .. H.quote(opts.stdin) else cmd = cmd .. " </dev/null" end
  local code = H.sh(cmd)
  local o, e = H.read(out), H.read(err)
  os.remove(out)
  os.remove(err)
  return code, o, e
end

-- A fresh directory under the run's temporary folder.
function H.tempdir()
  for _ = 1, 100 do
    local dir = H.tmp .. "/" .. unique("p")
    if H.sh("mkdir " .. H.quote(dir) .. " 2>/dev/null") == 0 then return dir end
  end
  error("cannot make a fresh directory under " .. H.tmp)
end

-- The text of a revision script.
-- r: {rev, down (string or list), labels, depends, message, up, down_code,
--     extra (more fields, as Lua source)}
local function lua_list(v)
  if v == nil then return "nil" end
  if type(v) == "string" then return string.format("%q", v) end
  local t = {}
  for i, s in ipairs(v) do t[i] = string.format("%q", s) end
  return "{" .. table.concat(t, ", ") .. "}"
end

function H.script(r)
  return table.concat({
    "-- " .. (r.message or ("revision " .. r.rev)),
    "--",
    "-- Revision ID: " .. r.rev,
    "",
    "return {",
    "  revision = " .. string.format("%q", r.rev) .. ",",
    "  down_revision = " .. lua_list(r.down) .. ",",
    "  branch_labels = " .. lua_list(r.labels) .. ",",
    "  depends_on = " .. lua_list(r.depends) .. ",",
    "  message = " .. string.format("%q", r.message or ("revision " .. r.rev)) .. ",",
    r.extra or "",
    "  upgrade = function(op)",
    r.up or "",
    "  end,",
    "  downgrade = function(op)",
    r.down_code or "",
    "  end,",
    "}",
    "",
  }, "\n")
end

-- A project directory: luamig.lua with the url and a migrations folder
-- holding the given revisions (file names sort in list order).
function H.project(url, revisions, config_extra)
  local dir = H.tempdir()
  H.write(dir .. "/luamig.lua", "return {\n  url = " .. string.format("%q", url) ..
          ",\n  script_location = \"migrations\",\n" .. (config_extra or "") .. "}\n")
  assert(H.sh("mkdir -p " .. H.quote(dir .. "/migrations")) == 0)
  for i, r in ipairs(revisions or {}) do
    H.write(string.format("%s/migrations/%04d_%s.lua", dir, i, r.rev), H.script(r))
  end
  return dir
end

-- Run a query with a command-line client; returns the rows as lines
-- ("a|b" per row) or nil, error.
function H.sqlite_query(path, sql)
  local f = os.tmpname()
  local code = H.sh("sqlite3 -batch " .. H.quote(path) .. " " .. H.quote(sql) ..
                    " >" .. f .. " 2>&1")
  local s = H.read(f)
  os.remove(f)
  if code ~= 0 then return nil, s end
  return s
end

function H.psql(url, sql)
  local f = os.tmpname()
  local code = H.sh("psql -X -q -At -v ON_ERROR_STOP=1 " .. H.quote(url) .. " -c " ..
                    H.quote(sql) .. " >" .. f .. " 2>&1")
  local s = H.read(f)
  os.remove(f)
  if code ~= 0 then return nil, s end
  return s
end

-- A fresh, empty PostgreSQL database on the test server.
function H.pg_fresh()
  assert(H.pg_url, "LUAMIG_TEST_PG_URL is not set")
  local name = unique("t")
  assert(H.psql(H.pg_url, "CREATE DATABASE " .. name))
  return (H.pg_url:gsub("/[^/?]*$", "/" .. name)), name
end

-- Both dialects, for data-driven specs: each has a name, fresh() giving
-- (url, query) where query(sql) returns the rows as text.
H.dialects = {
  {
    name = "sqlite",
    fresh = function()
      local path = H.tempdir() .. "/test.db"
      return "sqlite:///" .. path, function(sql) return H.sqlite_query(path, sql) end, path
    end,
  },
  {
    name = "postgresql",
    fresh = function()
      local url = H.pg_fresh()
      return url, function(sql) return H.psql(url, sql) end
    end,
  },
}

-- Lines of a text, without the trailing newline.
function H.lines(s)
  local t = {}
  for line in (s or ""):gmatch("[^\n]+") do t[#t + 1] = line end
  return t
end


-- ---- processes in the background -------------------------------------------

-- Start the binary in dir in the background, stdout and stderr into
-- <tag>.out and .err in a fresh directory (spec files run side by side);
-- returns its pid and the two file names.
function H.spawn(args, dir, tag, env)
  local base = H.tempdir() .. "/" .. tag
  local out, err = base .. ".out", base .. ".err"
  local parts = {"cd", H.quote(dir), "&& ("}
  if H.asan then parts[#parts + 1] = "LD_PRELOAD= ASAN_OPTIONS=detect_leaks=1:exitcode=99" end
  for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. H.quote(v) end
  parts[#parts + 1] = "exec " .. H.quote(H.bin)
  for _, a in ipairs(args) do parts[#parts + 1] = H.quote(a) end
  parts[#parts + 1] = ">" .. out .. " 2>" .. err .. " </dev/null) & echo $!"
  local f = H.popen("sh -c " .. H.quote(table.concat(parts, " ")))
  local pid = tonumber(f:read("l"))
  f:close()
  return pid, out, err
end

function H.alive(pid)
  return H.sh("kill -0 " .. pid .. " 2>/dev/null") == 0
end

-- Wait up to `seconds` for pid to end; true when it did.
function H.wait_pid(pid, seconds)
  local deadline = os.time() + seconds
  while H.alive(pid) and os.time() <= deadline do H.sh("sleep 0.05") end
  return not H.alive(pid)
end

-- Wait up to `seconds` until the file at path contains the pattern.
function H.wait_for(path, pattern, seconds)
  local deadline = os.time() + seconds
  while os.time() <= deadline do
    local s = H.read(path)
    if s and s:find(pattern) then return true end
    H.sh("sleep 0.02")
  end
  return false
end

-- Wait up to `seconds` until fn() is true; true when it became so.  For
-- what another process finishes on its own time (a server backend ending
-- after its client hung up, a lock taken by a background holder).
function H.wait_until(seconds, fn)
  local deadline = os.time() + seconds
  repeat
    if fn() then return true end
    H.sh("sleep 0.02")
  until os.time() > deadline
  return fn() and true or false
end

return H
