-- luamig/testing.lua - what `require "luamig.testing"` loads once luamig
-- is installed: the helper is compiled into luamig.so, which registers
-- it in package.preload when it loads.
require "luamig"
return package.preload["luamig.testing"]("luamig.testing")
