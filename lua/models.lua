-- models.lua - models files (DESIGN section 4, "Models"): loading one in
-- its own environment, finding where a table or column is written (for
-- error messages), and writing one from a schema model (`luamig schema
-- --models`).  The specs are the op API's; the C side (src/models.c) reads
-- them with the op parsers.  Embedded into the binary.

local models = {}

-- ---- loading ----------------------------------------------------------------

local function read_file(path)
  local f, err = io.open(path, "rb")
  if not f then error("cannot read models file " .. err, 0) end
  local text = f:read("a")
  f:close()
  return text
end

-- Load the models file at path with `op` (the fragment helpers) in its
-- environment.  A model may require other model files beside it
-- (require "models.persons" reads <dir>/models/persons.lua), each loaded
-- once, in an environment of its own.  Returns {models = the returned
-- table, files = {{path, text}...}}; a syntax or runtime error is raised
-- as "file:line: message".
function models.load(path, op)
  local dir = path:match("^(.*)/[^/]*$") or "."
  local files, loaded = {}, {}
  local function run(file)
    local text = read_file(file)
    files[#files + 1] = {path = file, text = text}
    local env = setmetatable({op = op}, {__index = _G})
    env.require = function(name)
      if type(name) ~= "string" then
        error("require: a module name must be a string", 2)
      end
      if loaded[name] ~= nil then return loaded[name] end
      local beside = dir .. "/" .. name:gsub("%.", "/") .. ".lua"
      local f = io.open(beside, "rb")
      if not f then return require(name) end
      f:close()
      loaded[name] = true      -- a cycle of requires sees true, not a loop
      local value = run(beside)
      if value == nil then value = true end
      loaded[name] = value
      return value
    end
    local chunk, err = load(text, "@" .. file, "t", env)
    if not chunk then error(err, 0) end
    return chunk()
  end
  local value = run(path)
  return {models = value, files = files}
end

-- ---- where things are written -----------------------------------------------

local function plain(s) return (s:gsub("%p", "%%%0")) end

-- The first line number at or after `from` where any pattern matches.
local function find_line(text, patterns, from)
  local n = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    if n >= (from or 1) then
      for _, p in ipairs(patterns) do
        if line:find(p) then return n end
      end
    end
  end
end

-- "file:line" where the model of `tbl` (and, when given, its column or
-- index `part`) is written, as near as the text shows; the file alone
-- when it cannot tell.
function models.locate(loaded, tbl, part)
  local files = loaded.files
  local tpats = {"^%s*" .. plain(tbl) .. "%s*=", "[{,;]%s*" .. plain(tbl) .. "%s*=",
                 "%[%s*[\"']" .. plain(tbl) .. "[\"']%s*%]"}
  local ppats = part and {"[\"']" .. plain(part) .. "[\"']"} or nil
  for _, f in ipairs(files) do
    local tl = find_line(f.text, tpats)
    if tl then
      if not ppats then return f.path .. ":" .. tl end
      local pl = find_line(f.text, ppats, tl)
      if pl then return f.path .. ":" .. pl end
      -- one file per table: the part is in the file the table requires
      for _, g in ipairs(files) do
        if g ~= f then
          local gl = find_line(g.text, ppats)
          if gl then return g.path .. ":" .. gl end
        end
      end
      return f.path .. ":" .. tl
    end
  end
  return files[1] and files[1].path or "models"
end

-- ---- writing ----------------------------------------------------------------

local function str(s) return (string.format("%q", s):gsub("\\\n", "\\n")) end
models.str = str

local keywords = {}
for w in ([[and break do else elseif end false for function goto if in
  local nil not or repeat return then true until while]]):gmatch("%a+") do
  keywords[w] = true
end

-- A table key: bare where Lua allows it.
function models.key(name)
  if name:match("^[%a_][%w_]*$") and not keywords[name] then return name end
  return "[" .. str(name) .. "]"
end

-- A default (from src/models.c: {kind, value}) as Lua source.
function models.default(d)
  if d.kind == "string" then return str(d.value) end
  if d.kind == "int" or d.kind == "float" then return tostring(d.value) end
  if d.kind == "bool" then return tostring(d.value) end
  if d.kind == "func" then return "op.func." .. d.value .. "()" end
  return "op.text(" .. str(d.value) .. ")"
end

local function list(names)
  local t = {}
  for i, n in ipairs(names) do t[i] = str(n) end
  return "{" .. table.concat(t, ", ") .. "}"
end
models.list = list

-- A column spec: {"name", "type", options}.  opts.primary_key: the column
-- is (part of) the primary key written inline; opts.unique, opts.references
-- likewise.
function models.column(c, opts)
  opts = opts or {}
  local parts = {str(c.name), str(c.type)}
  if opts.primary_key then
    parts[#parts + 1] = "primary_key = true"
    if c.autoincrement ~= nil then
      parts[#parts + 1] = "autoincrement = " .. (type(c.autoincrement) == "string"
        and str(c.autoincrement) or tostring(c.autoincrement))
    end
  elseif not c.nullable then
    parts[#parts + 1] = "nullable = false"
  end
  if opts.unique then parts[#parts + 1] = "unique = true" end
  if opts.references then
    local fk = opts.references
    parts[#parts + 1] = "references = " .. str((fk.ref_schema and fk.ref_schema .. "." or "") ..
                                               fk.ref_table .. "." .. fk.ref_columns[1])
    if fk.ondelete then parts[#parts + 1] = "ondelete = " .. str(fk.ondelete) end
    if fk.onupdate then parts[#parts + 1] = "onupdate = " .. str(fk.onupdate) end
  end
  if c.default then parts[#parts + 1] = "server_default = " .. models.default(c.default) end
  if c.comment then parts[#parts + 1] = "comment = " .. str(c.comment) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

-- A constraint spec: {"kind", ...}.
function models.constraint(k)
  local parts
  if k.kind == "check" then
    parts = {str("check"), str(k.condition)}
  elseif k.kind == "foreign_key" then
    parts = {str("foreign_key"), list(k.columns), str(k.ref_table), list(k.ref_columns)}
  else
    parts = {str(k.kind), list(k.columns)}
  end
  if k.name then parts[#parts + 1] = "name = " .. str(k.name) end
  if k.kind == "foreign_key" then
    if k.ref_schema then parts[#parts + 1] = "schema = " .. str(k.ref_schema) end
    if k.ondelete then parts[#parts + 1] = "ondelete = " .. str(k.ondelete) end
    if k.onupdate then parts[#parts + 1] = "onupdate = " .. str(k.onupdate) end
    if k.deferrable then parts[#parts + 1] = "deferrable = true" end
    if k.initially then parts[#parts + 1] = "initially = " .. str(k.initially) end
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end

-- An index's columns: names, or op.text(expression).
function models.index_columns(ix)
  local t = {}
  for i, c in ipairs(ix.columns) do
    t[i] = c.expr and ("op.text(" .. str(c.text) .. ")") or str(c.text)
  end
  return "{" .. table.concat(t, ", ") .. "}"
end

-- An index spec: {"ix_name", {cols}, unique = ..., where = ..., using = ...}.
function models.index(ix)
  local parts = {str(ix.name), models.index_columns(ix)}
  if ix.unique then parts[#parts + 1] = "unique = true" end
  if ix.where then parts[#parts + 1] = "where = " .. str(ix.where) end
  if ix.method then parts[#parts + 1] = "using = " .. str(ix.method) end
  return "{" .. table.concat(parts, ", ") .. "}"
end

-- How a table's parts are written: the primary key, lone unnamed unique
-- and foreign keys inline on their column; everything else in the
-- constraints list.  skip (optional): constraints to leave out.
function models.layout(t, skip)
  local inline_pk, inline_unique, inline_fk = {}, {}, {}
  local constraints = {}
  for _, k in ipairs(t.constraints) do
    if skip and skip[k] then
      -- left out (added later)
    elseif k.kind == "primary_key" and not k.name then
      for _, c in ipairs(k.columns) do inline_pk[c] = true end
    elseif k.kind == "unique" and not k.name and #k.columns == 1 and
           not inline_unique[k.columns[1]] then
      inline_unique[k.columns[1]] = true
    elseif k.kind == "foreign_key" and not k.name and #k.columns == 1 and
           not k.deferrable and not k.initially and not inline_fk[k.columns[1]] then
      inline_fk[k.columns[1]] = k
    else
      constraints[#constraints + 1] = k
    end
  end
  local columns = {}
  for i, c in ipairs(t.columns) do
    columns[i] = models.column(c, {primary_key = inline_pk[c.name],
                                   unique = inline_unique[c.name],
                                   references = inline_fk[c.name]})
  end
  local cons = {}
  for i, k in ipairs(constraints) do cons[i] = models.constraint(k) end
  return columns, cons
end

-- The models file for a schema (from src/models.c: {tables = {...}}).
function models.render(schema)
  local out = {
    "-- Models: the schema the code expects, one entry per table, in the op",
    "-- API's column, constraint and index specs (written by `luamig schema",
    "-- --models`).  `luamig check` compares them with the database and",
    "-- `luamig revision --autogenerate` writes the migration between them.",
    "return {",
  }
  for _, t in ipairs(schema.tables) do
    out[#out + 1] = "  " .. models.key(t.name) .. " = {"
    local columns, cons = models.layout(t)
    for _, c in ipairs(columns) do out[#out + 1] = "    " .. c .. "," end
    if #cons > 0 then
      out[#out + 1] = "    constraints = {"
      for _, k in ipairs(cons) do out[#out + 1] = "      " .. k .. "," end
      out[#out + 1] = "    },"
    end
    if #t.indexes > 0 then
      out[#out + 1] = "    indexes = {"
      for _, ix in ipairs(t.indexes) do out[#out + 1] = "      " .. models.index(ix) .. "," end
      out[#out + 1] = "    },"
    end
    if t.comment then out[#out + 1] = "    comment = " .. str(t.comment) .. "," end
    out[#out + 1] = "  },"
  end
  out[#out + 1] = "}"
  out[#out + 1] = ""
  return table.concat(out, "\n")
end

return models
