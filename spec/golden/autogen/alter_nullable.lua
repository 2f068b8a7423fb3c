-- alter_nullable
--
-- Revision ID: a00000000008
-- Revises: a00000000007

return {
  revision = "a00000000008",
  down_revision = "a00000000007",
  branch_labels = nil,
  depends_on = nil,
  message = "alter_nullable",

  upgrade = function(op)
    op.alter_column("persons", "name", {server_default = "", existing_type = "string(20)"})
    op.alter_column("persons", "name", {nullable = false, existing_type = "string(20)"})
  end,

  downgrade = function(op)
    op.alter_column("persons", "name", {nullable = true, existing_type = "string(20)"})
    op.alter_column("persons", "name", {server_default = false, existing_type = "string(20)"})
  end,
}
