-- templates.lua - the files luamig writes: a new revision script and the
-- configuration `luamig init` creates.  Embedded into the binary.

local templates = {}

-- A Lua literal for a string, nil, or a list of strings.
local function literal(v)
  if v == nil then return "nil" end
  if type(v) == "table" then
    if #v == 0 then return "nil" end
    if #v == 1 then return string.format("%q", v[1]) end
    local parts = {}
    for i, s in ipairs(v) do parts[i] = string.format("%q", s) end
    return "{" .. table.concat(parts, ", ") .. "}"
  end
  return string.format("%q", v)
end

-- Alembic's file-name slug: the message's words, lower case, joined by
-- underscores, cut at a word boundary near 40 characters.
function templates.slug(message, limit)
  limit = limit or 40
  local words = {}
  for w in (message or ""):gmatch("[%w_]+") do words[#words + 1] = w:lower() end
  local slug = table.concat(words, "_")
  if #slug > limit then
    -- as Alembic: cut, drop the last partial word, keep the underscore
    local cut = slug:sub(1, limit)
    slug = (cut:match("^(.*)_") or cut) .. "_"
  end
  return slug
end

-- ctx: revision, down_revision (list), branch_labels (list), depends_on
-- (list), message, create_date
function templates.revision(ctx)
  local revises = #ctx.down_revision > 0 and table.concat(ctx.down_revision, ", ") or ""
  local lines = {
    "-- " .. (ctx.message or ""):gsub("\n", "\n-- "),
    "--",
    "-- Revision ID: " .. ctx.revision,
    "-- Revises: " .. revises,
    "-- Create Date: " .. ctx.create_date,
    "",
    "return {",
    "  revision = " .. literal(ctx.revision) .. ",",
    "  down_revision = " .. literal(ctx.down_revision) .. ",",
    "  branch_labels = " .. literal(ctx.branch_labels) .. ",",
    "  depends_on = " .. literal(ctx.depends_on) .. ",",
    "  message = " .. literal(ctx.message or "") .. ",",
    "",
    "  upgrade = function(op)",
    "  end,",
    "",
    "  downgrade = function(op)",
    "  end,",
    "}",
    "",
  }
  return table.concat(lines, "\n")
end

function templates.config(ctx)
  return table.concat({
    "-- luamig configuration: a Lua chunk that returns a table.",
    "return {",
    "  url = os.getenv(\"DATABASE_URL\") or \"sqlite:///app.db\",",
    "  script_location = " .. string.format("%q", ctx.script_location) .. ",",
    "  version_table = \"luamig_version\",   -- \"alembic_version\" adopts an Alembic database",
    "  transaction_per_migration = true,   -- false: one transaction for the whole run",
    "  lock_timeout = 60,                  -- seconds to wait for another runner",
    "}",
    "",
  }, "\n")
end

return templates
