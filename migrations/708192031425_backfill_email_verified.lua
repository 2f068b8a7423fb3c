-- Backfill email_verified, phase 2 of 3
--
-- Persons created before verification existed count as verified when
-- they already have assignments, unverified otherwise.
--
-- Revision ID: 708192031425
-- Revises: 6f7081920314
-- Create Date: 2026-11-26 09:20:00

return {
  revision = "708192031425",
  down_revision = "6f7081920314",
  branch_labels = nil,
  depends_on = nil,
  message = "Backfill email_verified",

  upgrade = function(op)
    local n = op.execute([[UPDATE persons SET email_verified = $1
      WHERE email_verified IS NULL
        AND id IN (SELECT person_id FROM assignments)]], {true})
    local m = op.execute([[UPDATE persons SET email_verified = $1
      WHERE email_verified IS NULL]], {false})
    if not op.offline then
      io.stderr:write(string.format(
        "  email_verified: %d verified, %d unverified\n", n, m))
    end
  end,

  downgrade = function(op)
    op.execute("UPDATE persons SET email_verified = NULL")
  end,
}
