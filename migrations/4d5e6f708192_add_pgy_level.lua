-- Add pgy_level to persons, backfilled from role
--
-- Revision ID: 4d5e6f708192
-- Revises: 3c4d5e6f7081
-- Create Date: 2026-11-25 09:30:00

return {
  revision = "4d5e6f708192",
  down_revision = "3c4d5e6f7081",
  branch_labels = nil,
  depends_on = nil,
  message = "Add pgy_level to persons, backfilled from role",

  upgrade = function(op)
    -- Nullable first: the column exists before any row has a value.
    op.add_column("persons", {"pgy_level", "smallint", nullable = true})
    local n = op.execute("UPDATE persons SET pgy_level = $1 WHERE role = $2",
                         {1, "resident"})
    if not op.offline then
      io.stderr:write(string.format("  backfilled pgy_level for %d persons\n", n))
    end
  end,

  downgrade = function(op)
    op.drop_column("persons", "pgy_level")
  end,
}
