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

-- Is a code point a word character as Python's \w sees it?  ASCII
-- letters, digits and "_", and beyond ASCII everything but the common
-- punctuation and symbol blocks (an approximation of Unicode categories).
local function is_word(cp)
  if cp < 128 then
    local c = string.char(cp)
    return c:match("[%w_]") ~= nil
  end
  if cp < 0xC0 then return cp == 0xAA or cp == 0xB5 or cp == 0xBA end
  if cp == 0xD7 or cp == 0xF7 then return false end
  if (cp >= 0x2000 and cp <= 0x2BFF) or (cp >= 0x3000 and cp <= 0x303F) or
     (cp >= 0xFE30 and cp <= 0xFE4F) or (cp >= 0xFF00 and cp <= 0xFF0F) then
    return false
  end
  return true
end

-- Lower-case a code point as str.lower does for ASCII and Latin-1.
local function lower(cp)
  if (cp >= 65 and cp <= 90) or (cp >= 0xC0 and cp <= 0xDE and cp ~= 0xD7) then
    return cp + 32
  end
  return cp
end

-- Alembic's file-name slug: the message's words (\w+), lower case, joined
-- by underscores; past 40 characters cut at a word boundary, keeping the
-- underscore.
function templates.slug(message, limit)
  limit = limit or 40
  local words, word = {}, {}
  local function flush()
    if #word > 0 then words[#words + 1] = utf8.char(table.unpack(word)) end
    word = {}
  end
  message = message or ""
  if not utf8.len(message) then message = message:gsub("[\128-\255]", " ") end
  for _, cp in utf8.codes(message) do
    if is_word(cp) then word[#word + 1] = lower(cp) else flush() end
  end
  flush()
  local slug = table.concat(words, "_")
  if utf8.len(slug) > limit then
    local cut = slug:sub(1, utf8.offset(slug, limit + 1) - 1)
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
