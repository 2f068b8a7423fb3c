-- embed_install_spec.lua - what `make install` puts in place works from
-- there: the binary, the Lua module, pkg-config, the C library with
-- examples/embed.c, the man page and the bash completion; `make uninstall`
-- takes it all away; the rockspec builds and installs the module.
local H = require "helpers"

local build = H.bin:match("^(.*)/[^/]*$")
local prefix_rel = "/usr/local"

-- Run a shell command (with the sanitizer runtime kept when the program
-- needs it: a program linked with the instrumented libluamig.so).
local function run(cmd, keep_preload)
  local out = os.tmpname()
  local ok, _, code = os.execute((keep_preload and "" or H.shell_prefix) ..
                                 cmd .. " >" .. out .. " 2>&1")
  local text = H.read(out)
  os.remove(out)
  return ok and 0 or code, text
end

local function files_under(root)
  local f = H.popen("cd " .. H.quote(root) .. " && find . -type f -o -type l | sort")
  local list = {}
  for line in f:lines() do list[#list + 1] = line:sub(2) end
  f:close()
  return list
end

local chain = {
  {rev = "aaaaaaaaaaa1", message = "create t",
   up = [[op.create_table("t", {{"id", "integer", primary_key = true}})]],
   down_code = [[op.drop_table("t")]]},
  {rev = "bbbbbbbbbbb2", down = "aaaaaaaaaaa1", message = "add c",
   labels = {"feature"},
   up = [[op.add_column("t", {"c", "text"})]],
   down_code = [[op.drop_column("t", "c")]]},
}

describe("make install", function()
  local root, prefix
  setup(function()
    root = H.tempdir()
    prefix = root .. prefix_rel
    local code, out = run("make -s -o all install BUILD=" .. H.quote(build) ..
                          " DESTDIR=" .. H.quote(root) .. " PREFIX=" .. prefix_rel)
    assert.are.equal(0, code, out)
  end)

  it("installs the binary, libraries, header, pkg-config file, module, man page and completion", function()
    assert.are.same({
      "/usr/local/bin/luamig",
      "/usr/local/include/luamig.h",
      "/usr/local/lib/libluamig.a",
      "/usr/local/lib/libluamig.so",
      "/usr/local/lib/pkgconfig/luamig.pc",
      "/usr/local/lib/x86_64-linux-gnu/lua/5.4/luamig.so",
      "/usr/local/share/bash-completion/completions/luamig",
      "/usr/local/share/lua/5.4/luamig.lua",
      "/usr/local/share/lua/5.4/luamig/testing.lua",
      "/usr/local/share/man/man1/luamig.1",
    }, files_under(root))
  end)

  it("installs a binary that runs and names its libraries' versions", function()
    local code, out = run((H.asan and "LD_PRELOAD= " or "") ..
                          H.quote(prefix .. "/bin/luamig") .. " --version")
    assert.are.equal(0, code, out)
    assert.matches("^luamig %d+%.%d+%.%d+ %(SQLite 3%.%d+%.%d+, libpq %d+%.%d+, Lua 5%.4%.%d+%)\n$", out)
  end)

  it("installs a module that loads from the installed path, in a project with its own luamig.lua", function()
    local dir = H.project("sqlite:///app.db", chain)
    H.write(dir .. "/program.lua", [[
      local luamig = require "luamig"
      local testing = require "luamig.testing"
      local m = assert(luamig.open{})
      print(table.concat(assert(m:upgrade("head")), ","))
      m:close()
      print(type(testing.scratch))
    ]])
    local share = prefix .. "/share/lua/5.4"
    local code, out = run("cd " .. H.quote(dir) ..
      " && env -u LUA_INIT -u LUA_INIT_5_4 -u LUA_PATH_5_4 -u LUA_CPATH_5_4" ..
      " LUA_PATH=" .. H.quote(share .. "/?.lua;./?.lua") ..
      " LUA_CPATH=" .. H.quote(prefix .. "/lib/x86_64-linux-gnu/lua/5.4/?.so") ..
      " lua5.4 program.lua", true)
    assert.are.equal(0, code, out)
    assert.are.equal("aaaaaaaaaaa1,bbbbbbbbbbb2\nfunction\n", out)

    -- luamig.testing alone, before luamig.
    H.write(dir .. "/alone.lua", [[print(type(require("luamig.testing").scratch))]])
    code, out = run("cd " .. H.quote(dir) .. " && env -u LUA_INIT LUA_PATH=" ..
      H.quote(share .. "/?.lua") .. " LUA_CPATH=" ..
      H.quote(prefix .. "/lib/x86_64-linux-gnu/lua/5.4/?.so") .. " lua5.4 alone.lua", true)
    assert.are.equal(0, code, out)
    assert.are.equal("function\n", out)
  end)

  describe("the C library", function()
    local pc
    setup(function()
      pc = "PKG_CONFIG_PATH=" .. H.quote(prefix .. "/lib/pkgconfig") ..
           " pkg-config --define-variable=prefix=" .. H.quote(prefix)
    end)

    it("is found by pkg-config", function()
      local code, out = run(pc .. " --modversion luamig")
      assert.are.equal(0, code, out)
      local header = H.read("src/luamig.h")
      assert.are.equal(header:match('#define LUAMIG_VERSION "([^"]+)"') .. "\n", out)
      code, out = run(pc .. " --cflags --libs luamig")
      assert.are.equal(0, code, out)
      assert.matches("%-I" .. prefix:gsub("%p", "%%%0") .. "/include", out)
      assert.matches("%-lluamig", out)
    end)

    for _, d in ipairs(H.dialects) do
      it("builds examples/embed.c, which migrates a database on " .. d.name, function()
        local dir = H.project("unused", chain)
        local exe = dir .. "/embed"
        local code, out = run("cc -std=c11 -Wall -Wextra -Werror examples/embed.c $(" .. pc ..
                              " --cflags --libs luamig) -o " .. H.quote(exe))
        assert.are.equal(0, code, out)
        local url, query = d.fresh()
        code, out = run("LD_LIBRARY_PATH=" .. H.quote(prefix .. "/lib") .. " " ..
                        H.quote(exe) .. " " .. H.quote(url) .. " " ..
                        H.quote(dir .. "/migrations"), true)
        assert.are.equal(0, code, out)
        assert.matches("start aaaaaaaaaaa1\ndone aaaaaaaaaaa1\n", out, 1, true)
        assert.matches("applied 2\ncurrent bbbbbbbbbbb2\n", out, 1, true)
        assert.are.equal("bbbbbbbbbbb2\n", query("SELECT version_num FROM luamig_version"))
        -- A bad URL: exit 1 with luamig's message.
        code, out = run("LD_LIBRARY_PATH=" .. H.quote(prefix .. "/lib") .. " " ..
                        H.quote(exe) .. " nosuch://x " .. H.quote(dir .. "/migrations"), true)
        assert.are.equal(1, code, out)
        assert.matches("embed: .*nosuch", out)
      end)
    end

    it("and the module export only their public functions", function()
      local function exported(path)
        local f = H.popen("nm -D --defined-only " .. H.quote(path))
        local names = {}
        for line in f:lines() do
          local kind, name = line:match("^%x* ?(%a) (%S+)$")
          if name and kind:match("[TDBR]") and not name:match("^_") then
            names[#names + 1] = name
          end
        end
        f:close()
        table.sort(names)
        return names
      end
      local declared = {}
      for name in H.read("src/luamig.h"):gmatch("\nLUAMIG_API [^;(]-%*?([%w_]+)%(") do
        declared[#declared + 1] = name
      end
      table.sort(declared)
      assert.is_true(#declared >= 10)
      assert.are.same(declared, exported(prefix .. "/lib/libluamig.so"))
      assert.are.same({"luaopen_luamig", "luaopen_luamig_core", "luaopen_luamig_testing"},
                      exported(prefix .. "/lib/x86_64-linux-gnu/lua/5.4/luamig.so"))
    end)
  end)

  it("installs a man page that renders without warnings and names every command and option", function()
    local page = prefix .. "/share/man/man1/luamig.1"
    local code, out = run("groff -ww -man -z " .. H.quote(page))
    assert.are.equal(0, code, out)
    assert.are.equal("", out)
    code, out = run("MANWIDTH=100 man -l " .. H.quote(page))
    assert.are.equal(0, code, out)
    for _, section in ipairs({"SYNOPSIS", "COMMANDS", "TARGETS", "EXIT STATUS", "FILES", "ENVIRONMENT"}) do
      assert.matches(section, out, 1, true)
    end
    local source = H.read(page):gsub("\\%-", "-"):gsub("\\f[BIRP]", "")
    local _, help = H.run({"--help"})
    local commands = 0
    for command in ("\n" .. help:match("commands:\n(.-)\n\n")):gmatch("\n  (%S+)") do
      commands = commands + 1
      assert.matches("\n%.BI? \"?" .. command:gsub("%p", "%%%0") .. "[ \"\n]", source)
    end
    assert.is_true(commands >= 14)
    for option in help:gmatch("[%s%[](%-%-?%a[%w-]*)") do
      assert.matches(option, source, 1, true)
    end
    for _, var in ipairs({"LUAMIG_CONFIG", "LUAMIG_URL", "EDITOR", "NO_COLOR"}) do
      assert.matches(var, source, 1, true)
    end
  end)

  it("installs a bash completion for commands, options, revision ids and labels", function()
    local dir = H.project("unused", chain)
    local script = dir .. "/complete.sh"
    H.write(script, [[
      source "$1"
      complete -p luamig
      try() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=(); _luamig; echo "${COMPREPLY[*]}"; }
      try luamig upg
      try luamig upgrade aaa
      try luamig downgrade fea
      try luamig history --js
      try luamig -c luamig.lua show bbb
    ]])
    local code, out = run("cd " .. H.quote(dir) .. " && bash " .. H.quote(script) .. " " ..
                          H.quote(prefix .. "/share/bash-completion/completions/luamig"))
    assert.are.equal(0, code, out)
    assert.are.same({"complete -F _luamig luamig", "upgrade", "aaaaaaaaaaa1", "feature",
                     "--json", "bbbbbbbbbbb2"}, H.lines(out))
  end)

  it("is undone by make uninstall", function()
    local code, out = run("make -s uninstall DESTDIR=" .. H.quote(root) ..
                          " PREFIX=" .. prefix_rel)
    assert.are.equal(0, code, out)
    assert.are.same({}, files_under(root))
  end)
end)

describe("the rockspec", function()
  it("builds the module from a clean checkout with luarocks make and installs it in a tree", function()
    local src, tree = H.tempdir(), H.tempdir()
    local code, out = run("git ls-files -z | xargs -0 cp --parents -t " .. H.quote(src))
    assert.are.equal(0, code, out)
    code, out = run("cd " .. H.quote(src) .. " && luarocks --lua-version 5.4 make --tree " ..
                    H.quote(tree) .. " rockspecs/luamig-scm-1.rockspec")
    assert.are.equal(0, code, out)
    local dir = H.project("sqlite:///app.db", chain)
    H.write(dir .. "/program.lua", [[
      local m = assert(require("luamig").open{})
      print(table.concat(assert(m:upgrade("head")), ","))
      m:close()
    ]])
    code, out = run("cd " .. H.quote(dir) .. " && eval \"$(luarocks --lua-version 5.4 --tree " ..
                    H.quote(tree) .. " path)\" && lua5.4 program.lua", true)
    assert.are.equal(0, code, out)
    assert.are.equal("aaaaaaaaaaa1,bbbbbbbbbbb2\n", out)
  end)
end)
