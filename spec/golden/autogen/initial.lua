-- first
--
-- Revision ID: a00000000001
-- Revises: 

return {
  revision = "a00000000001",
  down_revision = nil,
  branch_labels = nil,
  depends_on = nil,
  message = "first",

  upgrade = function(op)
    op.create_table("orgs", {
      {"id", "integer", primary_key = true},
      {"code", "string(10)", nullable = false, unique = true},
    })

    op.create_table("persons", {
      {"id", "integer", primary_key = true},
      {"email", "string(80)", nullable = false},
      {"name", "string(40)"},
      {"status", "string(20)", nullable = false, server_default = "draft"},
      {"org_id", "integer", references = "orgs.id", ondelete = "CASCADE"},
    })
    op.create_index("ix_persons_email", "persons", {"email"})
  end,

  downgrade = function(op)
    op.drop_index("ix_persons_email", "persons")
    -- data loss (downgrade): the table persons and its rows are dropped
    op.drop_table("persons")

    -- data loss (downgrade): the table orgs and its rows are dropped
    op.drop_table("orgs")
  end,
}
