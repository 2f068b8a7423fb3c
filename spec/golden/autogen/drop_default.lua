-- drop_default
--
-- Revision ID: a0000000000a
-- Revises: a00000000009

return {
  revision = "a0000000000a",
  down_revision = "a00000000009",
  branch_labels = nil,
  depends_on = nil,
  message = "drop_default",

  upgrade = function(op)
    -- data loss: persons.status is NOT NULL and loses its default: inserts that leave it out now fail
    op.alter_column("persons", "status", {server_default = false, existing_type = "string(20)"})
  end,

  downgrade = function(op)
    op.alter_column("persons", "status", {server_default = "new", existing_type = "string(20)"})
  end,
}
