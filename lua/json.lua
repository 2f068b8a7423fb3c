-- luamig.json: reads the JSON luamig itself writes (schema --json,
-- verify --json) into Lua tables, for the Lua module.  Objects become
-- tables keyed by name, arrays sequences; null is nil, so a field that is
-- null is absent.  decode(text) returns the value, or raises naming the
-- offset where the text stops being JSON.

local M = {}

local escapes = {
  ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n",
  r = "\r", t = "\t",
}

local function fail(_, pos, what)
  error(string.format("luamig.json: %s at offset %d", what, pos), 0)
end

local function skip(text, pos)
  return text:find("[^ \t\r\n]", pos) or #text + 1
end

local value

local function string_at(text, pos)
  local parts, i = {}, pos + 1
  while true do
    local j = text:find('["\\]', i)
    if not j then fail(text, pos, "unterminated string") end
    parts[#parts + 1] = text:sub(i, j - 1)
    if text:sub(j, j) == '"' then return table.concat(parts), j + 1 end
    local c = text:sub(j + 1, j + 1)
    if c == "u" then
      local hex = text:match("^%x%x%x%x", j + 2)
      if not hex then fail(text, j, "bad \\u escape") end
      local code = tonumber(hex, 16)
      i = j + 6
      local low = code >= 0xD800 and code < 0xDC00
          and text:match("^\\u(%x%x%x%x)", i)
      if low then
        code = 0x10000 + (code - 0xD800) * 0x400 + (tonumber(low, 16) - 0xDC00)
        i = i + 6
      end
      parts[#parts + 1] = utf8.char(code)
    elseif escapes[c] then
      parts[#parts + 1] = escapes[c]
      i = j + 2
    else
      fail(text, j, "bad escape")
    end
  end
end

local function array_at(text, pos)
  local out, n = {}, 0
  pos = skip(text, pos + 1)
  if text:sub(pos, pos) == "]" then return out, pos + 1 end
  while true do
    local v
    v, pos = value(text, pos)
    n = n + 1
    out[n] = v
    pos = skip(text, pos)
    local c = text:sub(pos, pos)
    if c == "]" then return out, pos + 1 end
    if c ~= "," then fail(text, pos, "',' or ']' expected") end
    pos = pos + 1
  end
end

local function object_at(text, pos)
  local out = {}
  pos = skip(text, pos + 1)
  if text:sub(pos, pos) == "}" then return out, pos + 1 end
  while true do
    if text:sub(pos, pos) ~= '"' then fail(text, pos, "a name expected") end
    local key
    key, pos = string_at(text, pos)
    pos = skip(text, pos)
    if text:sub(pos, pos) ~= ":" then fail(text, pos, "':' expected") end
    out[key], pos = value(text, pos + 1)
    pos = skip(text, pos)
    local c = text:sub(pos, pos)
    if c == "}" then return out, pos + 1 end
    if c ~= "," then fail(text, pos, "',' or '}' expected") end
    pos = skip(text, pos + 1)
  end
end

local literals = {["true"] = true, ["false"] = false}

function value(text, pos)
  pos = skip(text, pos)
  local c = text:sub(pos, pos)
  if c == "{" then return object_at(text, pos) end
  if c == "[" then return array_at(text, pos) end
  if c == '"' then return string_at(text, pos) end
  local word = text:match("^%a+", pos)
  if word == "null" then return nil, pos + 4 end
  if word and literals[word] ~= nil then
    return literals[word], pos + #word
  end
  local num = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
  -- tonumber keeps "3" an integer and "0.250" a float
  if num and tonumber(num) then return tonumber(num), pos + #num end
  fail(text, pos, "a value expected")
end

function M.decode(text)
  local v, pos = value(text, 1)
  pos = skip(text, pos)
  if pos <= #text then fail(text, pos, "text after the value") end
  return v
end

return M
