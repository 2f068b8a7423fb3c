-- alter_type
--
-- Revision ID: a00000000006
-- Revises: a00000000005

return {
  revision = "a00000000006",
  down_revision = "a00000000005",
  branch_labels = nil,
  depends_on = nil,
  message = "alter_type",

  upgrade = function(op)
    op.alter_column("persons", "email", {type = "string(200)", existing_type = "string(80)"})
  end,

  downgrade = function(op)
    -- data loss (downgrade): persons.email narrows from string(200) to string(80): values that do not fit are cut or refused
    op.alter_column("persons", "email", {type = "string(80)", existing_type = "string(200)"})
  end,
}
