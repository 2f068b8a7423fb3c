-- index
--
-- Revision ID: a0000000000b
-- Revises: a0000000000a

return {
  revision = "a0000000000b",
  down_revision = "a0000000000a",
  branch_labels = nil,
  depends_on = nil,
  message = "index",

  upgrade = function(op)
    op.create_index("ix_persons_email_lower", "persons", {op.text("lower(email)")}, {unique = true})
    op.create_index("ix_persons_name_active", "persons", {"name"}, {where = "status <> 'gone'"})
  end,

  downgrade = function(op)
    op.drop_index("ix_persons_name_active", "persons")
    op.drop_index("ix_persons_email_lower", "persons")
  end,
}
