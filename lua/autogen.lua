-- autogen.lua - the revision `luamig revision --autogenerate` writes: the
-- changes src/autogen.c lists (in the order a migration makes them) as op
-- calls, one per change, grouped per table, each with its inverse; the
-- downgrade runs the inverses in reverse order.  Written the way a person
-- would: a NOT NULL column without a default on a table that has rows is
-- added in three steps with a fill-in step that stops the script until it
-- is written; what loses data says so (`-- data loss:`) and is listed in
-- the script's `allow`; renames are suggested, never guessed.  Embedded
-- into the binary.

local models = require "luamig.models"
local templates = require "luamig.templates"
local str, list = models.str, models.list

local autogen = {}

-- The name a constraint has (the database's own for an unnamed one, as
-- PostgreSQL names them), which drop_constraint needs.
local function constraint_name(ch, k)
  if k.name then return k.name end
  local cols = table.concat(k.columns, "_")
  if k.kind == "primary_key" then return ch.table .. "_pkey" end
  if k.kind == "unique" then return ch.table .. "_" .. cols .. "_key" end
  if k.kind == "foreign_key" then return ch.table .. "_" .. cols .. "_fkey" end
  return ch.table .. "_check"
end

local type_words = {primary_key = "primary", unique = "unique", check = "check",
                    foreign_key = "foreignkey"}

local function drop_constraint(ch, k)
  return ("op.drop_constraint(%s, %s, {type_ = %s})"):format(
    str(constraint_name(ch, k)), str(ch.table), str(type_words[k.kind]))
end

local function create_constraint(ch, k)
  local name, t = str(constraint_name(ch, k)), str(ch.table)
  if k.kind == "primary_key" then
    return ("op.create_primary_key(%s, %s, %s)"):format(name, t, list(k.columns))
  elseif k.kind == "unique" then
    return ("op.create_unique_constraint(%s, %s, %s)"):format(name, t, list(k.columns))
  elseif k.kind == "check" then
    return ("op.create_check_constraint(%s, %s, %s)"):format(name, t, str(k.condition))
  end
  local opts = {}
  if k.ondelete then opts[#opts + 1] = "ondelete = " .. str(k.ondelete) end
  if k.onupdate then opts[#opts + 1] = "onupdate = " .. str(k.onupdate) end
  if k.deferrable then opts[#opts + 1] = "deferrable = true" end
  if k.initially then opts[#opts + 1] = "initially = " .. str(k.initially) end
  if k.ref_schema then opts[#opts + 1] = "referent_schema = " .. str(k.ref_schema) end
  return ("op.create_foreign_key(%s, %s, %s, %s, %s%s)"):format(
    name, t, str(k.ref_table), list(k.columns), list(k.ref_columns),
    #opts > 0 and ", {" .. table.concat(opts, ", ") .. "}" or "")
end

local function create_index(ch, ix)
  local opts = {}
  if ix.unique then opts[#opts + 1] = "unique = true" end
  if ix.where then opts[#opts + 1] = "where = " .. str(ix.where) end
  if ix.method then opts[#opts + 1] = "using = " .. str(ix.method) end
  return ("op.create_index(%s, %s, %s%s)"):format(
    str(ix.name), str(ch.table), models.index_columns(ix),
    #opts > 0 and ", {" .. table.concat(opts, ", ") .. "}" or "")
end

local function drop_index(ch, ix)
  return ("op.drop_index(%s, %s)"):format(str(ix.name), str(ch.table))
end

-- create_table for a table's definition, the deferred foreign keys left
-- out (they are added once the tables they reference exist).
local function create_table(ch, d)
  local skip = {}
  for _, k in ipairs(d.constraints) do
    if k.deferred then skip[k] = true end
  end
  local columns, cons = models.layout(d, skip)
  local out = {"op.create_table(" .. str(ch.table) .. ", {"}
  for _, c in ipairs(columns) do out[#out + 1] = "  " .. c .. "," end
  if #cons == 0 and not d.comment then
    out[#out + 1] = "})"
    return out
  end
  out[#out + 1] = "}, {"
  if #cons > 0 then
    out[#out + 1] = "  constraints = {"
    for _, k in ipairs(cons) do out[#out + 1] = "    " .. k .. "," end
    out[#out + 1] = "  },"
  end
  if d.comment then out[#out + 1] = "  comment = " .. str(d.comment) .. "," end
  out[#out + 1] = "})"
  return out
end

-- Does a change of type from a to b (portable type texts) keep every
-- value?  Anything not known to widen is taken to narrow.
local function widens(a, b)
  if a:lower() == b:lower() then return true end
  local rank = {smallint = 1, integer = 2, bigint = 3}
  if rank[a] and rank[b] then return rank[b] >= rank[a] end
  local na, nb = a:match("^string%((%d+)%)$"), b:match("^string%((%d+)%)$")
  if (a == "string" or na) and (b == "string" or b == "text") then return true end
  if na and nb then return tonumber(nb) >= tonumber(na) end
  local pa, sa = a:match("^numeric%((%d+),(%d+)%)$")
  local pb, sb = b:match("^numeric%((%d+),(%d+)%)$")
  if pa and pb then
    return tonumber(pb) - tonumber(sb) >= tonumber(pa) - tonumber(sa) and
           tonumber(sb) >= tonumber(sa)
  end
  if (rank[a] or pa) and b == "numeric" then return true end
  if a == "date" and (b == "datetime" or b == "timestamptz") then return true end
  if a == "datetime" and b == "timestamptz" then return true end
  return false
end

local function alter(ch, column, opts)
  return ("op.alter_column(%s, %s, {%s})"):format(str(ch.table), str(column),
                                                   table.concat(opts, ", "))
end

local function default_or_false(c)
  return c.default and models.default(c.default) or "false"
end

-- Each kind of change: its upgrade lines, downgrade lines, and the lint
-- code it acknowledges (if any).
local render = {}

function render.create_table(ch)
  return create_table(ch, ch.definition),
         {"-- data loss (downgrade): the table " .. ch.table .. " and its rows are dropped",
          "op.drop_table(" .. str(ch.table) .. ")"}
end

function render.drop_table(ch)
  local down = create_table(ch, ch.definition)
  for _, ix in ipairs(ch.definition.indexes) do down[#down + 1] = create_index(ch, ix) end
  return {"-- data loss: the table " .. ch.table .. " and its rows are dropped",
          "op.drop_table(" .. str(ch.table) .. ")"}, down, "drop_table"
end

function render.add_column(ch)
  local c, t = ch.column, ch.table
  local add = "op.add_column(" .. str(t) .. ", " .. models.column(c) .. ")"
  local drop = {"-- data loss (downgrade): the column " .. t .. "." .. c.name .. " and its values are dropped",
                "op.drop_column(" .. str(t) .. ", " .. str(c.name) .. ")"}
  if not ch.three_phase then return {add}, drop end
  local nullable = {}
  for k, v in pairs(c) do nullable[k] = v end
  nullable.nullable = true
  local full = t .. "." .. c.name
  return {
    "-- " .. full .. " is NOT NULL without a server default: added as nullable,",
    "-- filled in for the rows there are, then made NOT NULL.",
    "op.add_column(" .. str(t) .. ", " .. models.column(nullable) .. ")",
    "-- fill in " .. full .. " here, e.g.:",
    ("--   op.execute(%s)"):format(str(("UPDATE %s SET %s = ... WHERE %s IS NULL"):format(t, c.name, c.name))),
    ("error(%s)"):format(str("fill in " .. full .. " for the existing rows, then delete this line")),
    alter(ch, c.name, {"nullable = false", "existing_type = " .. str(c.type)}),
  }, drop
end

function render.drop_column(ch)
  local c, t = ch.column, ch.table
  return {"-- data loss: the column " .. t .. "." .. c.name .. " and its values are dropped",
          "op.drop_column(" .. str(t) .. ", " .. str(c.name) .. ")"},
         {"op.add_column(" .. str(t) .. ", " .. models.column(c) .. ")"}, "drop_column"
end

function render.alter_column(ch)
  local from, to, name = ch.from, ch.to, ch.from.name
  local full = ch.table .. "." .. name
  local existing = "existing_type = " .. str(from.type)
  if ch.attribute == "type" then
    local up = {alter(ch, name, {"type = " .. str(to.type), existing})}
    local down = {alter(ch, name, {"type = " .. str(from.type), "existing_type = " .. str(to.type)})}
    if not widens(to.type, from.type) then
      table.insert(down, 1, "-- data loss (downgrade): " .. full .. " narrows from " .. to.type ..
                   " to " .. from.type .. ": values that do not fit are cut or refused")
    end
    if not widens(from.type, to.type) then
      table.insert(up, 1, "-- data loss: " .. full .. " narrows from " .. from.type ..
                   " to " .. to.type .. ": values that do not fit are cut or refused")
      return up, down, "column_type_change"
    end
    return up, down
  elseif ch.attribute == "nullable" then
    return {alter(ch, name, {"nullable = " .. tostring(to.nullable), existing})},
           {alter(ch, name, {"nullable = " .. tostring(from.nullable), existing})}
  elseif ch.attribute == "default" then
    local up = {alter(ch, name, {"server_default = " .. default_or_false(to), existing})}
    local down = {alter(ch, name, {"server_default = " .. default_or_false(from), existing})}
    if from.default and not to.default and not to.nullable then
      table.insert(up, 1, "-- data loss: " .. full .. " is NOT NULL and loses its default: " ..
                   "inserts that leave it out now fail")
    end
    return up, down
  elseif ch.attribute == "comment" then
    return {alter(ch, name, {"comment = " .. (to.comment and str(to.comment) or "false")})},
           {alter(ch, name, {"comment = " .. (from.comment and str(from.comment) or "false")})}
  end
  return {"-- " .. full .. ": " .. ch.attribute .. " differs; change it by hand"}, {}
end

function render.add_constraint(ch)
  return {create_constraint(ch, ch.constraint)}, {drop_constraint(ch, ch.constraint)}
end

function render.drop_constraint(ch)
  local k = ch.constraint
  return {drop_constraint(ch, k)}, {create_constraint(ch, k)},
         k.kind == "primary_key" and "primary_key_change" or nil
end

function render.create_index(ch)
  return {create_index(ch, ch.index)}, {drop_index(ch, ch.index)}
end

function render.drop_index(ch)
  return {drop_index(ch, ch.index)}, {create_index(ch, ch.index)}
end

function render.table_comment(ch)
  local function set(c)
    if c then return "op.create_table_comment(" .. str(ch.table) .. ", " .. str(c) .. ")" end
    return "op.drop_table_comment(" .. str(ch.table) .. ")"
  end
  return {set(ch.to)}, {set(ch.from)}
end

-- ---- renames, suggested -----------------------------------------------------

local function shape(d)
  local t = {}
  for i, c in ipairs(d.columns) do t[i] = c.name .. " " .. c.type end
  return table.concat(t, ", ")
end

-- Comments on a table that came while one of the same shape went, and on
-- a column that came while one of the same type went in its table.
local function rename_notes(changes)
  local notes = {}
  local gone_tables, gone_columns = {}, {}
  for _, ch in ipairs(changes) do
    if ch.kind == "drop_table" then
      gone_tables[#gone_tables + 1] = ch
    elseif ch.kind == "drop_column" then
      gone_columns[#gone_columns + 1] = ch
    end
  end
  for _, ch in ipairs(changes) do
    if ch.kind == "create_table" then
      for _, g in ipairs(gone_tables) do
        if shape(g.definition) == shape(ch.definition) then
          notes[ch] = {("-- rename? %s went and %s came with the same columns: if it is"):format(g.table, ch.table),
                       ("-- a rename, use op.rename_table(%s, %s) instead of the create and the drop"):format(
                         str(g.table), str(ch.table))}
        end
      end
    elseif ch.kind == "add_column" then
      for _, g in ipairs(gone_columns) do
        if g.table == ch.table and g.column.type == ch.column.type then
          notes[ch] = {("-- rename? %s.%s went and %s.%s came, both %s: if it is a rename, use"):format(
                         g.table, g.column.name, ch.table, ch.column.name, ch.column.type),
                       ("-- op.alter_column(%s, %s, {new_column_name = %s}) instead of the add and the drop"):format(
                         str(g.table), str(g.column.name), str(ch.column.name))}
        end
      end
    end
  end
  return notes
end

-- ---- the script -------------------------------------------------------------

-- Lines grouped per table (a blank line between groups), indented.
local function body(entries)
  local out, last = {}, nil
  for _, e in ipairs(entries) do
    if last ~= nil and e.table ~= last then out[#out + 1] = "" end
    last = e.table
    for _, l in ipairs(e.lines) do out[#out + 1] = l == "" and "" or "    " .. l end
  end
  return out
end

-- ctx: what templates.revision takes, and changes (from src/autogen.c) and
-- not_compared (lines).
function autogen.revision(ctx)
  local ups, downs, allow, seen = {}, {}, {}, {}
  local notes = rename_notes(ctx.changes)
  for _, ch in ipairs(ctx.changes) do
    local r = render[ch.kind]
    local up, down, code = r(ch)
    if notes[ch] then
      for i = #notes[ch], 1, -1 do table.insert(up, 1, notes[ch][i]) end
    end
    ups[#ups + 1] = {table = ch.table, lines = up}
    table.insert(downs, 1, {table = ch.table, lines = down})
    if code and not seen[code] then
      seen[code] = true
      allow[#allow + 1] = code
    end
  end
  local up = {"  upgrade = function(op)"}
  if #ctx.not_compared > 0 then
    up[#up + 1] = "    -- not compared (check these by hand):"
    for _, l in ipairs(ctx.not_compared) do up[#up + 1] = "    --   " .. l end
    up[#up + 1] = ""
  end
  for _, l in ipairs(body(ups)) do up[#up + 1] = l end
  up[#up + 1] = "  end,"
  local down = {"  downgrade = function(op)"}
  for _, l in ipairs(body(downs)) do down[#down + 1] = l end
  down[#down + 1] = "  end,"
  local text = templates.revision(ctx)
  local head = ""
  if #allow > 0 then
    table.sort(allow)
    head = "  -- destructive operations this revision makes on purpose (luamig lint)\n" ..
           "  allow = " .. list(allow) .. ",\n\n"
  end
  text = text:gsub("  upgrade = function%(op%)\n  end,", function()
    return head .. table.concat(up, "\n")
  end, 1)
  text = text:gsub("  downgrade = function%(op%)\n  end,", function()
    return table.concat(down, "\n")
  end, 1)
  return text
end

return autogen
