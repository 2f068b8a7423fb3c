-- Create rotations
--
-- Revision ID: 2b3c4d5e6f70
-- Revises: 1a2b3c4d5e6f
-- Create Date: 2026-11-25 09:10:00

return {
  revision = "2b3c4d5e6f70",
  down_revision = "1a2b3c4d5e6f",
  branch_labels = nil,
  depends_on = nil,
  message = "Create rotations",

  upgrade = function(op)
    op.create_table("rotations", {
      {"id", "integer", primary_key = true},
      {"name", "string(100)", nullable = false, unique = true},
      {"service", "string(50)", nullable = false, index = true},
      {"weeks", "integer", nullable = false, server_default = 4},
    })
    -- Reference data ships with the schema that needs it.
    for _, r in ipairs({{"Night float", "medicine", 2},
                        {"ICU", "critical care", 4},
                        {"Clinic", "ambulatory", 4}}) do
      op.execute("INSERT INTO rotations (name, service, weeks) VALUES ($1, $2, $3)", r)
    end
  end,

  downgrade = function(op)
    op.drop_table("rotations")
  end,
}
