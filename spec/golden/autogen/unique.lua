-- unique
--
-- Revision ID: a0000000000d
-- Revises: a0000000000c

return {
  revision = "a0000000000d",
  down_revision = "a0000000000c",
  branch_labels = nil,
  depends_on = nil,
  message = "unique",

  upgrade = function(op)
    op.create_unique_constraint("uq_persons_org_email", "persons", {"org_id", "email"})
  end,

  downgrade = function(op)
    op.drop_constraint("uq_persons_org_email", "persons", {type_ = "unique"})
  end,
}
