-- Create assignments
--
-- Revision ID: 3c4d5e6f7081
-- Revises: 2b3c4d5e6f70
-- Create Date: 2026-11-25 09:20:00

return {
  revision = "3c4d5e6f7081",
  down_revision = "2b3c4d5e6f70",
  branch_labels = nil,
  depends_on = nil,
  message = "Create assignments",

  upgrade = function(op)
    op.create_table("assignments", {
      {"id", "integer", primary_key = true},
      {"person_id", "integer", nullable = false,
       references = "persons.id", ondelete = "CASCADE", index = true},
      {"rotation_id", "integer", nullable = false, references = "rotations.id"},
      {"starts_on", "date", nullable = false},
      {"ends_on", "date", nullable = false},
    }, {constraints = {{"check", "ends_on >= starts_on", name = "ck_assignments_dates"}}})
    op.execute([[INSERT INTO persons (name, email) VALUES
      ('Ada Ward', 'ada@example.org'), ('Ben Osei', 'ben@example.org')]])
    op.execute([[INSERT INTO assignments (person_id, rotation_id, starts_on, ends_on)
      SELECT p.id, r.id, '2026-07-01', '2026-07-28'
      FROM persons p, rotations r WHERE r.name = 'ICU']])
  end,

  downgrade = function(op)
    op.drop_table("assignments")
    -- the two people the upgrade added, so that upgrading again works
    op.execute([[DELETE FROM persons
      WHERE email IN ('ada@example.org', 'ben@example.org')]])
  end,
}
