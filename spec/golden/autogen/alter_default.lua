-- alter_default
--
-- Revision ID: a00000000009
-- Revises: a00000000008

return {
  revision = "a00000000009",
  down_revision = "a00000000008",
  branch_labels = nil,
  depends_on = nil,
  message = "alter_default",

  upgrade = function(op)
    op.alter_column("persons", "status", {server_default = "new", existing_type = "string(20)"})
  end,

  downgrade = function(op)
    op.alter_column("persons", "status", {server_default = "draft", existing_type = "string(20)"})
  end,
}
