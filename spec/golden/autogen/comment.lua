-- comment
--
-- Revision ID: a00000000011
-- Revises: a00000000010

return {
  revision = "a00000000011",
  down_revision = "a00000000010",
  branch_labels = nil,
  depends_on = nil,
  message = "comment",

  upgrade = function(op)
    op.create_table_comment("persons", "people")
    op.alter_column("persons", "name", {comment = "what people call them"})
  end,

  downgrade = function(op)
    op.alter_column("persons", "name", {comment = false})
    op.drop_table_comment("persons")
  end,
}
