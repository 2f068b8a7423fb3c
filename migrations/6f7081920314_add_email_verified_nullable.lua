-- Add email_verified to persons, phase 1 of 3: nullable
--
-- A NOT NULL column cannot be added to a table that has rows without
-- giving every row a value.  Phase 1 adds it nullable, phase 2 backfills
-- it, phase 3 makes it NOT NULL.
--
-- Revision ID: 6f7081920314
-- Revises: 5e6f70819203
-- Create Date: 2026-11-26 09:10:00

return {
  revision = "6f7081920314",
  down_revision = "5e6f70819203",
  branch_labels = nil,
  depends_on = nil,
  message = "Add email_verified to persons (nullable)",

  upgrade = function(op)
    op.add_column("persons", {"email_verified", "boolean", nullable = true})
  end,

  downgrade = function(op)
    op.drop_column("persons", "email_verified")
  end,
}
