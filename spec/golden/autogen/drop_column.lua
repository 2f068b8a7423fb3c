-- drop_column
--
-- Revision ID: a00000000005
-- Revises: a00000000004

return {
  revision = "a00000000005",
  down_revision = "a00000000004",
  branch_labels = nil,
  depends_on = nil,
  message = "drop_column",

  -- destructive operations this revision makes on purpose (luamig lint)
  allow = {"drop_column"},

  upgrade = function(op)
    -- data loss: the column persons.nickname and its values are dropped
    op.drop_column("persons", "nickname")
  end,

  downgrade = function(op)
    op.add_column("persons", {"nickname", "string(40)"})
  end,
}
