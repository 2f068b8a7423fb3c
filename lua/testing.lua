-- luamig.testing - migration tests: a scratch database per test, migrated
-- to a revision, filled with rows, migrated on, and asked about its schema.
--
--   local testing = require "luamig.testing"
--   local db <close> = assert(testing.scratch{config = "luamig.lua"})
--   db:migrate_to("4d5e6f708192")
--   db:execute("INSERT INTO persons (name, email) VALUES ($1, $2)", {"A", "a@x"})
--   db:upgrade("head")
--   assert(db:has_column("persons", "role_id"))
--
-- The scratch database is a fresh SQLite file in the temporary directory,
-- or, when url names a PostgreSQL server, a database created there and
-- dropped by db:close().  Methods return nil, message, code on failure (as
-- the module's do, its code passed through); the schema questions return
-- booleans or the type.
--
-- The schema questions read the database's own catalogs; the queries for
-- each dialect are in the `catalog` table below, keyed by the dialect's
-- name as the runner reports it (m:dialect(), what op.dialect shows).
local luamig = require "luamig.core"

local testing = {}

local catalog = {
  sqlite = {
    has_table = [[SELECT 1 FROM sqlite_master
                  WHERE type = 'table' AND name = $1]],
    column_type = [[SELECT type FROM pragma_table_info($1) WHERE name = $2]],
    has_index = [[SELECT 1 FROM sqlite_master
                  WHERE type = 'index' AND tbl_name = $1 AND name = $2]],
    -- One row per column of each foreign key, in key order.
    fk_columns = [[SELECT id, "from" AS col FROM pragma_foreign_key_list($1)
                   ORDER BY id, seq]],
  },
  postgresql = {
    has_table = [[SELECT 1 FROM information_schema.tables
                  WHERE table_schema = current_schema()
                    AND table_name = $1::text]],
    column_type = [[SELECT format_type(a.atttypid, a.atttypmod) AS type
                    FROM pg_catalog.pg_attribute a
                    WHERE a.attrelid = to_regclass($1::text)
                      AND a.attname = $2::text
                      AND a.attnum > 0 AND NOT a.attisdropped]],
    has_index = [[SELECT 1 FROM pg_catalog.pg_indexes
                  WHERE schemaname = current_schema()
                    AND tablename = $1::text AND indexname = $2::text]],
    fk_columns = [[SELECT c.oid::bigint AS id, a.attname AS col
                   FROM pg_catalog.pg_constraint c
                   CROSS JOIN LATERAL unnest(c.conkey) WITH ORDINALITY
                     AS k(attnum, ord)
                   JOIN pg_catalog.pg_attribute a
                     ON a.attrelid = c.conrelid AND a.attnum = k.attnum
                   WHERE c.contype = 'f' AND c.conrelid = to_regclass($1::text)
                   ORDER BY c.oid, k.ord]],
    create_database = "CREATE DATABASE %s",
    drop_database = "DROP DATABASE IF EXISTS %s",
  },
}

local Scratch = {}
Scratch.__index = Scratch

local function check_string(method, what, v)
  if type(v) ~= "string" then
    error(string.format("luamig.testing: db:%s(): %s must be a string (got %s)",
                        method, what, type(v)), 3)
  end
end

local function unique_name()
  local addr = tostring({}):match("0x(%x+)") or ""
  return string.format("luamig_test_%d_%s_%d", os.time(), addr:sub(-6),
                       math.random(0, 999999))
end

-- A URL for the scratch database: a file, or a new database on the server.
local function scratch_url(opts)
  local url = opts.url
  if url == nil or url:match("^sqlite:") then
    local path = os.tmpname()   -- an empty file: SQLite takes it as a new database
    return "sqlite:///" .. path, {path = path}
  end
  -- A server: create the database there, through a runner of its own.
  local admin, err, code = luamig.open{url = url, config = opts.config,
                                       script_location = opts.script_location}
  if not admin then return nil, err, code end
  local dialect, derr, dcode = admin:dialect()
  if not dialect then
    admin:close()
    return nil, derr, dcode
  end
  local q = catalog[dialect]
  if not (q and q.create_database) then
    admin:close()
    return nil, "luamig.testing: cannot make a scratch database for " ..
                tostring(dialect) .. " URLs; give a server's URL or none"
  end
  local name = unique_name()
  local ok, cerr, ccode = admin:execute(q.create_database:format(name))
  if not ok then
    admin:close()
    return nil, cerr, ccode
  end
  -- The same URL with the database name replaced (before any ?query).
  local base, query = url:match("^([^?]*)(.*)$")
  local rest = base:match("^%a[%w+.-]*://(.*)$") or ""
  local new
  if rest:find("/") then new = base:gsub("/[^/]*$", "/" .. name) .. query
  else new = base .. "/" .. name .. query end
  return new, {admin = admin, name = name, drop = q.drop_database}
end

-- testing.scratch{config = FILE | script_location = DIR, url = SERVER,
-- version_table = NAME, x = {...}}: a fresh database and a runner on it.
function testing.scratch(opts)
  if type(opts) ~= "table" then
    error("luamig.testing.scratch: the options must be a table (got " ..
          type(opts) .. ")", 2)
  end
  for _, k in ipairs({"config", "url", "script_location", "version_table"}) do
    if opts[k] ~= nil and type(opts[k]) ~= "string" then
      error("luamig.testing.scratch: " .. k .. " must be a string (got " ..
            type(opts[k]) .. ")", 2)
    end
  end
  local url, owned, ucode = scratch_url(opts)
  if not url then return nil, owned, ucode end
  local m, err, code = luamig.open{config = opts.config, url = url,
                                   script_location = opts.script_location,
                                   version_table = opts.version_table,
                                   x = opts.x, on_event = opts.on_event}
  local db = setmetatable({url = url, runner = m, owned = owned}, Scratch)
  if not m then
    db:close()
    return nil, err, code
  end
  db.dialect = m:dialect()
  return db
end

-- Migrate the fresh database up to rev ("head", an id, a label).
function Scratch:migrate_to(rev)
  check_string("migrate_to", "the revision", rev)
  return self.runner:upgrade(rev)
end

function Scratch:upgrade(target)
  check_string("upgrade", "the target", target)
  return self.runner:upgrade(target)
end

function Scratch:downgrade(target)
  check_string("downgrade", "the target", target)
  return self.runner:downgrade(target)
end

function Scratch:current()
  return self.runner:current()
end

-- SQL with $1, $2 ... parameters: the rows changed, or the rows.
function Scratch:execute(sql, params)
  return self.runner:execute(sql, params)
end

function Scratch:query(sql, params)
  return self.runner:query(sql, params)
end

local function ask(self, key, params)
  local q = catalog[self.dialect]
  if not q then
    error("luamig.testing: no catalog queries for dialect " ..
          tostring(self.dialect), 3)
  end
  return self.runner:query(q[key], params)
end

function Scratch:has_table(t)
  check_string("has_table", "the table", t)
  local rows, err, code = ask(self, "has_table", {t})
  if not rows then return nil, err, code end
  return #rows > 0
end

function Scratch:has_column(t, c)
  check_string("has_column", "the table", t)
  check_string("has_column", "the column", c)
  local rows, err, code = ask(self, "column_type", {t, c})
  if not rows then return nil, err, code end
  return #rows > 0
end

-- The column's type as the database declares it, in lower case
-- ("varchar(100)" on SQLite, "character varying(100)" on PostgreSQL), or
-- nil, message when there is no such column.
function Scratch:column_type(t, c)
  check_string("column_type", "the table", t)
  check_string("column_type", "the column", c)
  local rows, err, code = ask(self, "column_type", {t, c})
  if not rows then return nil, err, code end
  if not rows[1] then return nil, "no column " .. c .. " in table " .. t end
  return (rows[1].type or ""):lower()
end

function Scratch:has_index(t, name)
  check_string("has_index", "the table", t)
  check_string("has_index", "the index", name)
  local rows, err, code = ask(self, "has_index", {t, name})
  if not rows then return nil, err, code end
  return #rows > 0
end

-- Has table t a foreign key over exactly these columns (in this order)?
function Scratch:has_fk(t, cols)
  check_string("has_fk", "the table", t)
  if type(cols) == "string" then cols = {cols} end
  if type(cols) ~= "table" then
    error("luamig.testing: db:has_fk(): the columns must be a list of " ..
          "strings (got " .. type(cols) .. ")", 2)
  end
  local rows, err, code = ask(self, "fk_columns", {t})
  if not rows then return nil, err, code end
  local keys, order = {}, {}
  for _, row in ipairs(rows) do
    local id = tostring(row.id)
    if not keys[id] then
      keys[id] = {}
      order[#order + 1] = id
    end
    table.insert(keys[id], row.col)
  end
  local want = table.concat(cols, "\0")
  for _, id in ipairs(order) do
    if table.concat(keys[id], "\0") == want then return true end
  end
  return false
end

-- Close the runner and remove the scratch database.
function Scratch:close()
  if self.closed then return true end
  self.closed = true
  if self.runner then self.runner:close() end
  local owned = self.owned or {}
  local ok, err, code = true, nil, nil
  if owned.path then
    os.remove(owned.path)
    for _, suffix in ipairs({"-journal", "-wal", "-shm", ".luamig-lock"}) do
      os.remove(owned.path .. suffix)
    end
  end
  if owned.admin then
    ok, err, code = owned.admin:execute(owned.drop:format(owned.name))
    owned.admin:close()
  end
  if not ok then return nil, err, code end
  return true
end

Scratch.__close = Scratch.close
Scratch.__gc = Scratch.close

testing.catalog = catalog

return testing
