-- Make email_verified NOT NULL, phase 3 of 3
--
-- On SQLite this rebuilds persons (SQLite has no ALTER COLUMN); the
-- assignments that reference persons keep their rows and foreign keys.
--
-- Revision ID: 8192031425b6
-- Revises: 708192031425
-- Create Date: 2026-11-26 09:30:00

return {
  revision = "8192031425b6",
  down_revision = "708192031425",
  branch_labels = nil,
  depends_on = nil,
  message = "Make email_verified NOT NULL",

  upgrade = function(op)
    -- server_default = false would drop the default (as in Alembic);
    -- op.literal(false) is the value false.
    op.alter_column("persons", "email_verified",
                    {nullable = false, server_default = op.literal(false),
                     existing_type = "boolean"})
  end,

  downgrade = function(op)
    op.alter_column("persons", "email_verified",
                    {nullable = true, server_default = false,
                     existing_type = "boolean"})
  end,
}
