-- drop_index
--
-- Revision ID: a0000000000c
-- Revises: a0000000000b

return {
  revision = "a0000000000c",
  down_revision = "a0000000000b",
  branch_labels = nil,
  depends_on = nil,
  message = "drop_index",

  upgrade = function(op)
    op.drop_index("ix_persons_name_active", "persons")
  end,

  downgrade = function(op)
    op.create_index("ix_persons_name_active", "persons", {"name"}, {where = "status <> 'gone'"})
  end,
}
