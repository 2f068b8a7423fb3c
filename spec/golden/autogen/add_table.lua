-- add_table
--
-- Revision ID: a00000000002
-- Revises: a00000000001

return {
  revision = "a00000000002",
  down_revision = "a00000000001",
  branch_labels = nil,
  depends_on = nil,
  message = "add_table",

  upgrade = function(op)
    op.create_table("tags", {
      {"id", "integer", primary_key = true},
      {"label", "string(30)", nullable = false},
      {"person_id", "integer", references = "persons.id"},
    })
  end,

  downgrade = function(op)
    -- data loss (downgrade): the table tags and its rows are dropped
    op.drop_table("tags")
  end,
}
