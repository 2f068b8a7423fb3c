-- check
--
-- Revision ID: a0000000000f
-- Revises: a0000000000e

return {
  revision = "a0000000000f",
  down_revision = "a0000000000e",
  branch_labels = nil,
  depends_on = nil,
  message = "check",

  upgrade = function(op)
    op.create_check_constraint("ck_persons_email", "persons", "length(email) > 3")
  end,

  downgrade = function(op)
    op.drop_constraint("ck_persons_email", "persons", {type_ = "check"})
  end,
}
