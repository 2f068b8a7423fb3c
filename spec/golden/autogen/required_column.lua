-- required_column
--
-- Revision ID: a00000000010
-- Revises: a0000000000f

return {
  revision = "a00000000010",
  down_revision = "a0000000000f",
  branch_labels = nil,
  depends_on = nil,
  message = "required_column",

  upgrade = function(op)
    -- persons.role is NOT NULL without a server default: added as nullable,
    -- filled in for the rows there are, then made NOT NULL.
    op.add_column("persons", {"role", "string(20)"})
    -- fill in persons.role here, e.g.:
    --   op.execute("UPDATE persons SET role = ... WHERE role IS NULL")
    error("fill in persons.role for the existing rows, then delete this line")
    op.alter_column("persons", "role", {nullable = false, existing_type = "string(20)"})
  end,

  downgrade = function(op)
    -- data loss (downgrade): the column persons.role and its values are dropped
    op.drop_column("persons", "role")
  end,
}
