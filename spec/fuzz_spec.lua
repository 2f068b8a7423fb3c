-- fuzz_spec.lua - a short libFuzzer run of each target (URL parser,
-- identifier quoting, target parser); `make fuzz` runs them for longer.
local H = require "helpers"

local dir = os.getenv("LUAMIG_FUZZ_DIR") or "build/fuzz"
local seconds = tonumber(os.getenv("LUAMIG_FUZZ_SECONDS") or "10")

describe("fuzzing", function()
  for _, name in ipairs({"url", "ident", "target"}) do
    it(name .. " survives " .. seconds .. " s of random input", function()
      local bin = dir .. "/fuzz_" .. name
      assert.is_truthy(H.read(bin), bin .. " is missing: build it with make fuzzers")
      local corpus = H.tempdir()
      local log = corpus .. "/log"
      -- the fuzzer binary is instrumented on its own: no preloaded runtime
      local code = H.sh(string.format(
        "env LD_PRELOAD= %s -max_total_time=%d -timeout=10 -rss_limit_mb=1024 -artifact_prefix=%s/ %s %s >%s 2>&1",
        H.quote(bin), seconds, H.quote(corpus), H.quote(corpus),
        H.quote("spec/fuzz/corpus/" .. name), H.quote(log)))
      local text = H.read(log) or ""
      assert.are.equal(0, code, text:sub(-3000))
      assert.matches("Done %d+ runs", text)
    end)
  end
end)
