-- add_column
--
-- Revision ID: a00000000004
-- Revises: a00000000003

return {
  revision = "a00000000004",
  down_revision = "a00000000003",
  branch_labels = nil,
  depends_on = nil,
  message = "add_column",

  upgrade = function(op)
    op.add_column("persons", {"nickname", "string(40)"})
  end,

  downgrade = function(op)
    -- data loss (downgrade): the column persons.nickname and its values are dropped
    op.drop_column("persons", "nickname")
  end,
}
