-- alembic_peer.lua - the same revision graph as an Alembic project, and a
-- way to run Alembic's command line on it, so that specs can compare
-- luamig with the real thing.
--
-- A revision is {rev, down (string or list), labels (list), depends (list),
-- message}.  Both projects get one script per revision whose upgrade and
-- downgrade insert (rev, 'up'/'down') into a `trace` table, so the order
-- in which migrations ran can be read back from either database.
--
-- Alembic's start-up costs about half a second, so commands are batched:
-- P.batch runs a list of jobs (Alembic command lines, and SQLite queries
-- between them) in one Python process through Alembic's own CommandLine,
-- each with its own stdout, stderr and exit status.
--
-- Alembic 1.8 reads the versions folder in os.listdir() order, which on
-- most file systems is neither creation nor name order, and its tie-breaks
-- (the order of `heads`, of `history` across independent branches, of
-- upgrade walks) follow that order.  luamig reads scripts in file-name
-- order; the peer sorts Alembic's listing the same way so that both see
-- the scripts in one order.  Nothing else in Alembic is changed.
local H = require "helpers"

local P = {}

-- The Python interpreter the `alembic` command runs with (its shebang), so
-- that the peer uses the installed Alembic and SQLAlchemy.
local function find_alembic()
  local f = H.popen("command -v alembic 2>/dev/null")
  local path = f:read("l")
  f:close()
  if not path or path == "" then
    return nil, "the `alembic` command is not installed (Debian: apt-get install alembic " ..
                "python3-sqlalchemy); the graph specs compare luamig with Alembic and need it"
  end
  local head = H.read(path) or ""
  local python = head:match("^#!%s*(%S+)") or "python3"
  local code = H.sh(H.quote(python) .. " -c 'import alembic, sqlalchemy' >/dev/null 2>&1")
  if code ~= 0 then
    return nil, path .. " is installed but its Python (" .. python ..
                ") cannot import alembic and sqlalchemy"
  end
  return path, python
end

-- Fails (raises) with a clear message when Alembic is missing.
function P.require_alembic()
  if not P.python then
    local path, python = find_alembic()
    assert(path, python)
    P.alembic, P.python = path, python
  end
  return P.python
end

local driver = [=[
import contextlib, io, json, os, sqlite3, sys, time, traceback
sys.dont_write_bytecode = True
from alembic.script.base import Script
_list = Script._list_py_dir.__func__
# Alembic reads the versions folder in os.listdir() order; luamig in
# file-name order.  Sort, so that both see one order.
Script._list_py_dir = classmethod(lambda cls, sd, path: sorted(_list(cls, sd, path)))
from alembic.config import CommandLine, Config

jobs = json.load(open(sys.argv[1]))
results = []
for job in jobs:
    if "reset" in job:
        if os.path.exists(job["db"]):
            os.remove(job["db"])
        con = sqlite3.connect(job["db"])
        con.execute("CREATE TABLE trace (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                    "rev VARCHAR(32) NOT NULL, direction VARCHAR(8) NOT NULL)")
        con.commit()
        con.close()
        results.append({"code": 0, "out": "", "err": ""})
        continue
    if "query" in job:
        try:
            con = sqlite3.connect(job["db"])
            rows = con.execute(job["query"]).fetchall()
            con.close()
            text = "".join("|".join("" if v is None else str(v) for v in r) + "\n" for r in rows)
            results.append({"code": 0, "out": text, "err": ""})
        except Exception as e:
            results.append({"code": 1, "out": "", "err": str(e)})
        continue
    os.chdir(job["dir"])
    out, err = io.StringIO(), io.StringIO()
    code = 0
    started = time.time()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cl = CommandLine(prog="alembic")
            options = cl.parser.parse_args(job["argv"])
            cfg = Config(file_=options.config, ini_section=options.name,
                         cmd_opts=options, stdout=out, output_buffer=out)
            cl.run_cmd(cfg, options)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
            if code < 0:
                code = 256 + code
        except BaseException:
            traceback.print_exc()
            code = 1
    results.append({"code": code, "out": out.getvalue(), "err": err.getvalue(),
                    "seconds": time.time() - started})
json.dump(results, open(sys.argv[2], "w"))
]=]

local env_py = [=[
from logging.config import fileConfig
from sqlalchemy import engine_from_config, pool
from alembic import context

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)


def run_migrations_offline():
    context.configure(url=config.get_main_option("sqlalchemy.url"),
                      target_metadata=None, literal_binds=True,
                      dialect_opts={"paramstyle": "named"},
                      transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    connectable = engine_from_config(config.get_section(config.config_ini_section),
                                     prefix="sqlalchemy.", poolclass=pool.NullPool)
    with connectable.connect() as connection:
        context.configure(connection=connection, target_metadata=None,
                          transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
]=]

local ini = [=[
[alembic]
script_location = %%(here)s/alembic
sqlalchemy.url = %s

[loggers]
keys = root,sqlalchemy,alembic

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARN
handlers = console
qualname =

[logger_sqlalchemy]
level = WARN
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %%(levelname)-5.5s [%%(name)s] %%(message)s
datefmt = %%H:%%M:%%S
]=]

local function py_str(s) return "'" .. s:gsub("\\", "\\\\"):gsub("'", "\\'") .. "'" end

local function py_value(v, tuple)
  if v == nil then return "None" end
  if type(v) == "string" then
    return tuple and "(" .. py_str(v) .. ",)" or py_str(v)
  end
  local t = {}
  for i, s in ipairs(v) do t[i] = py_str(s) end
  if #t == 1 then return "(" .. t[1] .. ",)" end
  return "(" .. table.concat(t, ", ") .. ")"
end

local function trace_sql(rev, dir)
  return string.format("INSERT INTO trace (rev, direction) VALUES ('%s', '%s')", rev, dir)
end
P.trace_sql = trace_sql

-- The Python text of one revision script.
function P.py_script(r)
  local msg = r.message or ("revision " .. r.rev)
  return table.concat({
    '"""' .. msg,
    "",
    "Revision ID: " .. r.rev,
    '"""',
    "from alembic import op",
    "",
    "revision = " .. py_str(r.rev),
    "down_revision = " .. py_value(r.down),
    "branch_labels = " .. py_value(r.labels, true),
    "depends_on = " .. py_value(r.depends),
    "",
    "",
    "def upgrade():",
    '    op.execute("' .. trace_sql(r.rev, "up") .. '")',
    "",
    "",
    "def downgrade():",
    '    op.execute("' .. trace_sql(r.rev, "down") .. '")',
    "",
  }, "\n")
end

-- The same revision as a luamig script (the doc comment matches the
-- Python docstring, so `show` prints the same text).
function P.lua_script(r)
  return H.script({
    rev = r.rev, down = r.down, labels = r.labels, depends = r.depends,
    message = r.message or ("revision " .. r.rev),
    up = "    op.execute(" .. string.format("%q", trace_sql(r.rev, "up")) .. ")",
    down_code = "    op.execute(" .. string.format("%q", trace_sql(r.rev, "down")) .. ")",
  })
end

-- The file name (without extension) of revision i: both projects sort
-- their scripts in list order.
function P.stem(i, r)
  return string.format("%04d_%s", i, r.rev)
end

-- An empty SQLite database with the trace table.
function P.fresh_db(path)
  os.remove(path)
  assert(H.sqlite_query(path, "CREATE TABLE trace (id INTEGER PRIMARY KEY AUTOINCREMENT, " ..
                              "rev VARCHAR(32) NOT NULL, direction VARCHAR(8) NOT NULL)"))
  return path
end

-- Both projects for one graph, in one directory:
--   dir/luamig.lua, dir/migrations/*.lua, dir/luamig.db
--   dir/alembic.ini, dir/alembic/{env.py,script.py.mako,versions/*.py}, dir/alembic.db
-- opts.version_table: luamig's version table (default luamig_version).
-- Returns a table {dir, lm_db, al_db, revs}.
function P.pair(revisions, opts)
  opts = opts or {}
  P.require_alembic()
  local dir = H.tempdir()
  local p = {dir = dir, lm_db = dir .. "/luamig.db", al_db = dir .. "/alembic.db",
             revs = revisions}
  H.write(dir .. "/luamig.lua", "return {\n  url = \"sqlite:///luamig.db\",\n" ..
          "  script_location = \"migrations\",\n" ..
          (opts.version_table and ("  version_table = \"" .. opts.version_table .. "\",\n") or "") ..
          "}\n")
  assert(H.sh("mkdir -p " .. H.quote(dir .. "/migrations") .. " " ..
              H.quote(dir .. "/alembic/versions")) == 0)
  H.write(dir .. "/alembic.ini", string.format(ini, "sqlite:///" .. p.al_db))
  H.write(dir .. "/alembic/env.py", env_py)
  assert(H.sh("cp /usr/lib/python3/dist-packages/alembic/templates/generic/script.py.mako " ..
              H.quote(dir .. "/alembic/script.py.mako") .. " 2>/dev/null || " ..
              "cp \"$(dirname \"$(" .. H.quote(P.python) ..
              " -c 'import alembic; print(alembic.__file__)')\")/templates/generic/script.py.mako\" " ..
              H.quote(dir .. "/alembic/script.py.mako")) == 0)
  for i, r in ipairs(revisions) do
    H.write(dir .. "/migrations/" .. P.stem(i, r) .. ".lua", P.lua_script(r))
    H.write(dir .. "/alembic/versions/" .. P.stem(i, r) .. ".py", P.py_script(r))
  end
  P.reset(p)
  return p
end

-- Fresh empty databases for both.
function P.reset(p)
  P.fresh_db(p.lm_db)
  P.fresh_db(p.al_db)
  os.remove(p.lm_db .. ".luamig-lock")
end

-- Run jobs in one Alembic process.  A job is {"cmd", "arg", ...} (an
-- Alembic command line, run in p.dir), {query = SQL} (on p.al_db) or
-- {reset = true} (p.al_db made fresh).  seed: PYTHONHASHSEED (default 0:
-- Alembic keeps some orders in Python sets, so fix the hash).
-- Returns a list of {code, out, err}.
function P.batch(p, jobs, seed)
  local python = P.require_alembic()
  local list = {}
  for i, j in ipairs(jobs) do
    if j.query then
      list[i] = {query = j.query, db = j.db or p.al_db}
    elseif j.reset then
      list[i] = {reset = true, db = j.db or p.al_db}
    else
      list[i] = {dir = p.dir, argv = j}
    end
  end
  local json = require "dkjson"
  local inp, outp, drv = os.tmpname(), os.tmpname(), os.tmpname()
  H.write(inp, json.encode(list))
  H.write(drv, driver)
  local errf = os.tmpname()
  local code = H.sh("PYTHONHASHSEED=" .. (seed or 0) .. " " .. H.quote(python) .. " " .. H.quote(drv) .. " " .. H.quote(inp) .. " " ..
                    H.quote(outp) .. " 2>" .. errf)
  local res = json.decode(H.read(outp) or "")
  local derr = H.read(errf)
  os.remove(inp); os.remove(outp); os.remove(drv); os.remove(errf)
  assert(code == 0 and type(res) == "table", "the Alembic driver failed: " .. tostring(derr))
  return res
end

-- One Alembic command: code, stdout, stderr.
function P.run(p, argv)
  local r = P.batch(p, {argv})[1]
  return r.code, r.out, r.err
end

-- The `alembic` command itself (a separate process), for a sanity check
-- that the batch driver behaves as the command does.
function P.command(p, argv)
  P.require_alembic()
  local out, err = os.tmpname(), os.tmpname()
  local parts = {"cd", H.quote(p.dir), "&&", H.quote(P.alembic)}
  for _, a in ipairs(argv) do parts[#parts + 1] = H.quote(a) end
  local code = H.sh(table.concat(parts, " ") .. " >" .. out .. " 2>" .. err .. " </dev/null")
  local o, e = H.read(out), H.read(err)
  os.remove(out); os.remove(err)
  return code, o, e
end

-- luamig in the pair's directory: code, stdout, stderr.
function P.luamig(p, argv)
  return H.run(argv, {dir = p.dir, env = {NO_COLOR = "1"}})
end

-- "Running upgrade A -> B" / "Running downgrade A -> B" lines of a log, in
-- order, without the log prefix (Alembic: "INFO  [alembic...] ").
function P.running(text)
  local t = {}
  for line in (text or ""):gmatch("[^\n]+") do
    local s = line:match("(Running [ud][pw]%w*grade .*)$")
    if s then t[#t + 1] = s end
  end
  return t
end

-- The `-- Running upgrade A -> B` comments of an offline script.
function P.sql_running(text)
  local t = {}
  for line in (text or ""):gmatch("[^\n]+") do
    local s = line:match("^%-%- (Running [ud][pw]%w*grade .*)$")
    if s then t[#t + 1] = s end
  end
  return t
end

-- ---- offline SQL, statement by statement ----------------------------------

-- A module has Lua's own assert; the specs' is luassert's.
local check = require "luassert"

-- Statements of an offline script, whitespace collapsed, without luamig's
-- own bookkeeping (version and log tables) and transaction control.
function P.statements(text)
  local out = {}
  for stmt in ((text or "") .. "\n\n"):gmatch("(.-);\n\n") do
    stmt = stmt:gsub("%-%-[^\n]*\n", ""):gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")
    stmt = stmt:gsub("%( ", "("):gsub(" %)", ")")
    if stmt ~= "" and not stmt:find("luamig_", 1, true) and stmt ~= "BEGIN" and stmt ~= "COMMIT" then
      out[#out + 1] = stmt
    end
  end
  return out
end

-- Alembic offline: `py` is the body of a function of `op` (sqlalchemy's
-- names imported); `naming` (Python dict source), when given, becomes the
-- metadata's naming convention.
local offline_driver = [[
import io, sys
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import *
from sqlalchemy.dialects import postgresql
buf = io.StringIO()
nc = eval(sys.argv[2]) if len(sys.argv) > 2 else None
opts = {"as_sql": True, "output_buffer": buf}
if nc: opts["target_metadata"] = MetaData(naming_convention=nc)
ctx = MigrationContext.configure(dialect_name=sys.argv[1], opts=opts)
op = Operations(ctx)
exec(sys.stdin.read())
sys.stdout.write(buf.getvalue())
]]

-- What Alembic writes for `py` on `dialect`: its statements, and the raw text.
function P.alembic_offline(dialect, py, naming)
  local python = P.require_alembic()
  local dir = H.tempdir()
  H.write(dir .. "/driver.py", offline_driver)
  H.write(dir .. "/ops.py", py)
  local f = H.popen(H.quote(python) .. " " .. H.quote(dir .. "/driver.py") .. " " .. dialect ..
                    (naming and (" " .. H.quote(naming)) or "") ..
                    " <" .. H.quote(dir .. "/ops.py") .. " 2>&1")
  local out = f:read("a")
  f:close()
  return P.statements(out), out
end

-- What luamig writes offline for the revision body `up` on url.
function P.luamig_offline(url, up, config)
  local dir = H.project(url, {{rev = "aaaaaaaaaaa1", up = up}}, config)
  local code, out, err = H.run({"upgrade", "head", "--sql"}, {dir = dir})
  check.are.equal(0, code, err)
  return P.statements(out)
end

-- Every statement Alembic writes appears in luamig's script, in order.
function P.assert_writes_like_alembic(ours, theirs, raw)
  check.is_true(#theirs > 0, raw)
  local at = 1
  for _, stmt in ipairs(theirs) do
    local found
    for i = at, #ours do
      if ours[i] == stmt then found = i break end
    end
    assert(found, "Alembic writes\n  " .. stmt .. "\nluamig wrote\n  " .. table.concat(ours, "\n  "))
    at = found + 1
  end
end

return P
