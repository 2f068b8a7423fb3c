-- Drop the deprecated persons.role column
--
-- role_id replaced it in 92031425b6c7.  The downgrade brings the column
-- back and fills it from roles, so no information is lost either way
-- (orphans come back as the default role).
--
-- Revision ID: 031425b6c7d8
-- Revises: 92031425b6c7
-- Create Date: 2026-11-26 09:50:00

return {
  revision = "031425b6c7d8",
  down_revision = "92031425b6c7",
  branch_labels = nil,
  depends_on = nil,
  message = "Drop the deprecated persons.role",
  allow = {"drop_column"},

  upgrade = function(op)
    op.drop_column("persons", "role")
  end,

  downgrade = function(op)
    op.add_column("persons", {"role", "string(20)", nullable = false,
                              server_default = "resident"})
    op.execute([[UPDATE persons SET role =
      (SELECT roles.name FROM roles WHERE roles.id = persons.role_id)
      WHERE role_id IS NOT NULL]])
  end,
}
