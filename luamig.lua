-- luamig configuration for the bundled example (make demo).  It is not
-- the Lua module: an installed luamig finds its module first (README, "The
-- Lua module"); from this build tree, require "luamig.core".
return {
  url = os.getenv("DATABASE_URL") or "sqlite:///demo.db",
  script_location = "migrations",
  version_table = "luamig_version",
  transaction_per_migration = true,
  lock_timeout = 60,
}
