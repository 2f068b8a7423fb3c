-- Create persons
--
-- Revision ID: 1a2b3c4d5e6f
-- Revises:
-- Create Date: 2026-11-25 09:00:00

return {
  revision = "1a2b3c4d5e6f",
  down_revision = nil,
  branch_labels = nil,
  depends_on = nil,
  message = "Create persons",

  upgrade = function(op)
    op.create_table("persons", {
      {"id", "integer", primary_key = true},
      {"name", "string(100)", nullable = false},
      {"email", "string(255)", nullable = false, unique = true},
      {"role", "string(20)", nullable = false, server_default = "resident"},
      {"created_at", "datetime", server_default = op.func.now()},
    })
  end,

  downgrade = function(op)
    op.drop_table("persons")
  end,
}
