-- foreign_key
--
-- Revision ID: a0000000000e
-- Revises: a0000000000d

return {
  revision = "a0000000000e",
  down_revision = "a0000000000d",
  branch_labels = nil,
  depends_on = nil,
  message = "foreign_key",

  upgrade = function(op)
    op.add_column("orgs", {"owner_id", "integer"})
    op.create_foreign_key("fk_orgs_owner", "orgs", "persons", {"owner_id"}, {"id"}, {ondelete = "SET NULL", onupdate = "CASCADE"})
  end,

  downgrade = function(op)
    op.drop_constraint("fk_orgs_owner", "orgs", {type_ = "foreignkey"})
    -- data loss (downgrade): the column orgs.owner_id and its values are dropped
    op.drop_column("orgs", "owner_id")
  end,
}
