-- Add middle_name to persons (a nullable column: safe on any table)
--
-- Revision ID: 5e6f70819203
-- Revises: 4d5e6f708192
-- Create Date: 2026-11-26 09:00:00

return {
  revision = "5e6f70819203",
  down_revision = "4d5e6f708192",
  branch_labels = nil,
  depends_on = nil,
  message = "Add middle_name to persons",

  upgrade = function(op)
    op.add_column("persons", {"middle_name", "string(100)", nullable = true})
  end,

  downgrade = function(op)
    op.drop_column("persons", "middle_name")
  end,
}
