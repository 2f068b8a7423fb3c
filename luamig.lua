-- luamig configuration for the bundled example (make demo).
return {
  url = os.getenv("DATABASE_URL") or "sqlite:///demo.db",
  script_location = "migrations",
  version_table = "luamig_version",
  transaction_per_migration = true,
  lock_timeout = 60,
}
