-- summary.lua - busted output: the plain terminal report, then one line
-- "N passed, N failed" (errors count as failures) for CI to read.
return function(options)
  local busted = require "busted"
  local handler = require "busted.outputHandlers.plainTerminal"(options)
  busted.subscribe({"suite", "end"}, function()
    local failed = handler.failuresCount + handler.errorsCount
    io.write(string.format("\n%d passed, %d failed\n", handler.successesCount, failed))
    io.flush()
    return nil, true
  end)
  return handler
end
