-- The Lua module of luamig, built with the project's Makefile:
--   luarocks --lua-version 5.4 make rockspecs/luamig-scm-1.rockspec
-- installs luamig.so (require "luamig", "luamig.core", "luamig.testing")
-- and the luamig.lua that loads it into the rocks tree.
rockspec_format = "3.0"
package = "luamig"
version = "scm-1"
-- luarocks make builds the checkout it runs in; source is what a packed
-- rock would fetch.
source = {
  url = "git+https://example.invalid/luamig.git",
}
description = {
  summary = "Database schema migrations in Lua for PostgreSQL and SQLite",
  detailed = [[
A migration runner with a C core and Lua 5.4 revision scripts; the module
runs migrations from Lua and has a helper for migration tests in busted.
]],
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
external_dependencies = {
  SQLITE = {header = "sqlite3.h"},
}
build = {
  type = "make",
  makefile = "Makefile",
  build_target = "module",
  -- Its own build directory, so a checkout's build/ is left alone.
  build_variables = {
    BUILD = "build/rock",
  },
  install_target = "install-lua",
  install_variables = {
    BUILD = "build/rock",
    LUA_CMOD = "$(LIBDIR)",
    LUA_LMOD = "$(LUADIR)",
  },
}
