-- luamig.lua - what `require "luamig"` loads once luamig is installed.
--
-- `make install` puts this file in $(PREFIX)/share/lua/5.4, which Lua's
-- default package.path searches before ./?.lua, so a project's own
-- luamig.lua (its configuration, in the directory where tests run) does
-- not shadow the module.  The module itself is the C library luamig.so,
-- loaded here under its other name, luamig.core.
return require "luamig.core"
