-- narrow_type
--
-- Revision ID: a00000000007
-- Revises: a00000000006

return {
  revision = "a00000000007",
  down_revision = "a00000000006",
  branch_labels = nil,
  depends_on = nil,
  message = "narrow_type",

  -- destructive operations this revision makes on purpose (luamig lint)
  allow = {"column_type_change"},

  upgrade = function(op)
    -- data loss: persons.name narrows from string(40) to string(20): values that do not fit are cut or refused
    op.alter_column("persons", "name", {type = "string(20)", existing_type = "string(40)"})
  end,

  downgrade = function(op)
    op.alter_column("persons", "name", {type = "string(40)", existing_type = "string(20)"})
  end,
}
