-- drop_table
--
-- Revision ID: a00000000003
-- Revises: a00000000002

return {
  revision = "a00000000003",
  down_revision = "a00000000002",
  branch_labels = nil,
  depends_on = nil,
  message = "drop_table",

  -- destructive operations this revision makes on purpose (luamig lint)
  allow = {"drop_table"},

  upgrade = function(op)
    -- data loss: the table tags and its rows are dropped
    op.drop_table("tags")
  end,

  downgrade = function(op)
    op.create_table("tags", {
      {"id", "integer", primary_key = true},
      {"label", "string(30)", nullable = false},
      {"person_id", "integer", references = "persons.id"},
    })
  end,
}
