-- luamig.lua - what `require "luamig"` loads once luamig is installed.
--
-- `make install` puts this file in the Lua directory of share/lua/5.4,
-- which Lua's default package.path searches before ./?.lua, so a
-- project's own luamig.lua (its configuration, in the directory where
-- tests run) does not shadow the module.  The module itself is the C
-- library luamig.so, loaded from where it was installed (so it needs no
-- LUA_CPATH), else found on package.cpath as luamig.core.
local core = package.loaded["luamig.core"]
if core then return core end
local open = package.loadlib("@LUA_CMOD@/luamig.so", "luaopen_luamig_core")
if not open then return require "luamig.core" end
core = open("luamig.core")
package.loaded["luamig.core"] = core
return core
