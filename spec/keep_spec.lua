-- keep_spec.lua - kept data: drop_column and drop_table with keep = true
-- (or keep_dropped) keep what they remove, the downgrade of that revision
-- puts it back (values on their rows, indexes and foreign keys), `kept`
-- lists it and `kept --purge` removes what it is asked to, and a kill -9
-- during the keep or the restore leaves a whole revision.
local H = require "helpers"
local json = require "dkjson"

local R1, R2, R3 = "aaaaaaaaaaa1", "bbbbbbbbbbb2", "ccccccccccc3"
local N = 100000

-- What each dialect is asked, in its own SQL.
local sql = {
  sqlite = {
    fill = [[WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < %d)
             INSERT INTO persons (id, name, role, role_id) SELECT i, 'p' || i, 'r' || (i %% 7), 1 + i %% 3 FROM s]],
    index = "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = '%s'",
    fk = [[SELECT count(*) FROM pragma_foreign_key_list('%s') WHERE "from" = '%s' AND "table" = '%s']],
    kept_tables = "SELECT count(*) FROM sqlite_master WHERE name LIKE 'luamig\\_kept\\_%' ESCAPE '\\'",
    column = "SELECT count(*) FROM pragma_table_info('%s') WHERE name = '%s'",
    slow = [[op.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000000) SELECT count(*) FROM c")]],
  },
  postgresql = {
    fill = [[INSERT INTO persons (id, name, role, role_id) SELECT i, 'p' || i, 'r' || (i %% 7), 1 + i %% 3 FROM generate_series(1, %d) i]],
    index = "SELECT count(*) FROM pg_indexes WHERE indexname = '%s'",
    fk = [[SELECT count(*) FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
           WHERE c.contype = 'f' AND c.conrelid = '%s'::regclass AND a.attname = '%s' AND c.confrelid = '%s'::regclass]],
    kept_tables = "SELECT count(*) FROM pg_tables WHERE schemaname = 'luamig_kept'",
    column = "SELECT count(*) FROM information_schema.columns WHERE table_name = '%s' AND column_name = '%s'",
    slow = [[op.execute("SELECT pg_sleep(30)")]],
  },
}

-- roles and persons (role_id references roles, an index on role), with
-- n persons.
local function base(d, n)
  return {rev = R1, message = "persons",
          up = ([[op.create_table("roles", {{"id", "integer", primary_key = true}, {"name", "text"}})
                  op.execute("INSERT INTO roles (id, name) VALUES (1, 'a'), (2, 'b'), (3, 'c')")
                  op.create_table("persons", {{"id", "integer", primary_key = true}, {"name", "text"},
                    {"role", "text"}, {"role_id", "integer", references = "roles.id"}})
                  op.create_index("ix_persons_role", "persons", {"role"})
                  op.execute(%q)]]):format(sql[d].fill:format(n)),
          down_code = [[op.drop_table("persons") op.drop_table("roles")]]}
end

local drop_columns = {
  rev = R2, down = R1, message = "drop role and role_id",
  up = [[op.drop_column("persons", "role", {keep = true})
         op.drop_column("persons", "role_id", {keep = true})]],
  down_code = [[op.add_column("persons", {"role", "text"})
                op.add_column("persons", {"role_id", "integer"})]],
}

local function one(query, q)
  local out = assert(query(q))
  return tonumber(out:match("%-?%d+"))
end

local function current(dir)
  local code, out = H.run({"current"}, {dir = dir})
  assert.are.equal(0, code)
  return out:match("(%x+)") or "base"
end

-- Start the binary in the background; its pid and stderr file.
local function start(args, dir, tag)
  local pid, _, err = H.spawn(args, dir, tag)
  return pid, err
end

for _, d in ipairs(H.dialects) do
  local S = sql[d.name]
  describe("kept data on " .. d.name, function()
    it("drop_column keeps 100,000 values and the downgrade puts each back on its row", function()
      local url, query = d.fresh()
      local dir = H.project(url, {base(d.name, N), drop_columns})
      local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.matches("kept persons.role: 100,000 values", err, 1, true)
      assert.are.equal(0, one(query, S.column:format("persons", "role")))
      -- what is kept, listed
      local c2, out = H.run({"--json", "kept"}, {dir = dir})
      assert.are.equal(0, c2)
      local list = json.decode(out)
      assert.are.equal(2, #list)
      assert.are.equal(R2, list[1].revision)
      assert.are.equal("persons.role", list[1].object)
      assert.are.equal(N, list[1].rows)
      local _, status = H.run({"status"}, {dir = dir})
      assert.matches("Kept: 2 (200,000 rows", status, 1, true)
      -- rows added after the drop
      assert(query("INSERT INTO persons (id, name) VALUES (100001, 'n1'), (100002, 'n2'), (100003, 'n3')"))
      code, _, err = H.run({"downgrade", "-1"}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.matches("restored persons.role: 100,000 values; 3 rows added since the drop have NULL", err, 1, true)
      assert.matches("restored persons.role_id: 100,000 values", err, 1, true)
      assert.are.equal(N, one(query, "SELECT count(*) FROM persons WHERE id <= 100000 AND role = 'r' || (id % 7) AND role_id = 1 + id % 3"))
      assert.are.equal(3, one(query, "SELECT count(*) FROM persons WHERE id > 100000 AND role IS NULL AND role_id IS NULL"))
      assert.are.equal(1, one(query, S.index:format("ix_persons_role")))
      assert.are.equal(1, one(query, S.fk:format("persons", "role_id", "roles")))
      assert.are.equal(0, one(query, S.kept_tables))
      assert.are.equal(0, one(query, "SELECT count(*) FROM luamig_kept"))
      assert.are.equal(R1, current(dir))
    end)

    it("drop_table keeps the table whose rows other tables point at, and the downgrade puts it back", function()
      local url, query = d.fresh()
      local dir = H.project(url, {base(d.name, 10),
        {rev = R2, down = R1, up = [[op.drop_table("roles", {keep = true})]],
         down_code = [[op.create_table("roles", {{"id", "integer", primary_key = true}, {"name", "text"}})]]}})
      local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.matches("kept table roles: 3 rows", err, 1, true)
      assert(not query("SELECT count(*) FROM roles"))
      code, _, err = H.run({"downgrade", R1}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.matches("restored table roles: 3 rows", err, 1, true)
      assert.are.equal("1|a\n2|b\n3|c\n", query("SELECT id, name FROM roles ORDER BY id"))
      assert.are.equal(1, one(query, S.fk:format("persons", "role_id", "roles")))
      assert.are.equal(0, one(query, S.kept_tables))
      assert.are.equal(0, one(query, "SELECT count(*) FROM luamig_kept"))
      -- the foreign key holds again, on the table made again
      if d.name == "sqlite" then
        assert.are.equal("", query("PRAGMA foreign_key_check"))
        assert.matches('REFERENCES "?roles"?', query("SELECT sql FROM sqlite_master WHERE name = 'persons'"))
      else
        assert(not query("INSERT INTO persons (id, role_id) VALUES (999, 42)"))
      end
    end)

    it("a table without a primary key cannot keep a column: nothing changes", function()
      local url, query = d.fresh()
      local dir = H.project(url, {
        {rev = R1, up = [[op.create_table("notes", {{"body", "text"}, {"tag", "text"}})
                          op.execute("INSERT INTO notes VALUES ('x', 'y')")]],
         down_code = [[op.drop_table("notes")]]},
        {rev = R2, down = R1, up = [[op.drop_column("notes", "tag", {keep = true})]],
         down_code = [[op.add_column("notes", {"tag", "text"})]]}})
      local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(1, code)
      assert.matches("drop_column notes.tag: cannot keep the column's values: notes has no primary key", err, 1, true)
      assert.matches("keep = false", err, 1, true)
      assert.are.equal(1, one(query, S.column:format("notes", "tag")))
      assert.are.equal(R1, current(dir))
    end)

    it("keep_dropped = true keeps without keep on the op; keep = false does not", function()
      local url, query = d.fresh()
      local dir = H.project(url, {base(d.name, 5),
        {rev = R2, down = R1, up = [[op.drop_column("persons", "role")
                                     op.drop_column("persons", "name", {keep = false})]],
         down_code = [[op.add_column("persons", {"role", "text"}) op.add_column("persons", {"name", "text"})]]}},
        "  keep_dropped = true,\n")
      local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(0, code, err)
      local _, out = H.run({"--json", "kept"}, {dir = dir})
      local list = json.decode(out)
      assert.are.equal(1, #list)
      assert.are.equal("persons.role", list[1].object)
      code, _, err = H.run({"downgrade", R1}, {dir = dir})
      assert.are.equal(0, code, err)
      assert.are.equal(5, one(query, "SELECT count(*) FROM persons WHERE role IS NOT NULL"))
      assert.are.equal(0, one(query, "SELECT count(*) FROM persons WHERE name IS NOT NULL"))
    end)

    it("kept --purge removes only what it is asked to, and logs it", function()
      local url, query = d.fresh()
      local dir = H.project(url, {base(d.name, 4),
        {rev = R2, down = R1, up = [[op.drop_column("persons", "role", {keep = true})]],
         down_code = [[op.add_column("persons", {"role", "text"})]]},
        {rev = R3, down = R2, up = [[op.drop_column("persons", "name", {keep = true})]],
         down_code = [[op.add_column("persons", {"name", "text"})]]}})
      assert.are.equal(0, (H.run({"upgrade", "head"}, {dir = dir})))
      local code, out = H.run({"kept"}, {dir = dir})
      assert.are.equal(0, code)
      assert.matches(R2 .. "%s+persons%.role%s+4", out)
      assert.matches(R3 .. "%s+persons%.name%s+4", out)
      -- nothing is 30 days old
      code, out = H.run({"--json", "kept", "--purge", "--older-than", "30d"}, {dir = dir})
      assert.are.equal(0, code)
      assert.are.equal(0, #json.decode(out).purged)
      code, out = H.run({"kept", "--purge", R2:sub(1, 6)}, {dir = dir})
      assert.are.equal(0, code)
      assert.matches("purged the kept persons.role (4 rows", out, 1, true)
      code, out = H.run({"--json", "kept"}, {dir = dir})
      local list = json.decode(out)
      assert.are.equal(1, #list)
      assert.are.equal(R3, list[1].revision)
      assert.are.equal(1, one(query, S.kept_tables))
      assert.are.equal(1, one(query, "SELECT count(*) FROM luamig_log WHERE direction = 'purge' AND revision = '" .. R2 .. "'"))
      -- a bad age is a usage error
      assert.are.equal(2, (H.run({"kept", "--purge", "--older-than", "soon"}, {dir = dir})))
      -- the downgrade of R3 still restores; that of R2 finds nothing kept
      code, _, out = H.run({"downgrade", R1}, {dir = dir})
      assert.are.equal(0, code, out)
      assert.matches("restored persons.name: 4 values", out, 1, true)
      assert.not_matches("restored persons.role", out, 1, true)
      assert.are.equal(4, one(query, "SELECT count(*) FROM persons WHERE role IS NULL"))
      assert.are.equal(0, one(query, S.kept_tables))
    end)

    it("kill -9 during the keep or the restore leaves a whole revision, nothing kept twice", function()
      local url, query = d.fresh()
      local slow_rev = {rev = R2, down = R1, message = "slow",
        up = [[op.drop_column("persons", "role", {keep = true})
               if op.x.slow then ]] .. S.slow .. [[ end]],
        down_code = [[op.add_column("persons", {"role", "text"})
                      if op.x.slow then ]] .. S.slow .. [[ end]]}
      local dir = H.project(url, {base(d.name, 1000), slow_rev})
      -- killed after the keep, before the commit
      local pid, err = start({"-x", "slow=1", "upgrade", "head"}, dir, "keep_kill_up_" .. d.name)
      assert(H.wait_for(err, "kept persons.role", 20), H.read(err))
      H.sh("kill -9 " .. pid)
      assert(H.wait_pid(pid, 10))
      assert.are.equal(R1, current(dir))
      assert.are.equal(1, one(query, S.column:format("persons", "role")))
      assert.are.equal(0, one(query, S.kept_tables))
      -- run again: kept once
      local code, _, e2 = H.run({"upgrade", "head"}, {dir = dir})
      assert.are.equal(0, code, e2)
      assert.are.equal(1, one(query, "SELECT count(*) FROM luamig_kept"))
      assert.are.equal(1, one(query, S.kept_tables))
      -- killed after the restore, before the commit
      pid, err = start({"-x", "slow=1", "downgrade", R1}, dir, "keep_kill_down_" .. d.name)
      assert(H.wait_for(err, "restored persons.role", 20), H.read(err))
      H.sh("kill -9 " .. pid)
      assert(H.wait_pid(pid, 10))
      assert.are.equal(R2, current(dir))
      assert.are.equal(0, one(query, S.column:format("persons", "role")))
      assert.are.equal(1, one(query, "SELECT count(*) FROM luamig_kept"))
      code, _, e2 = H.run({"downgrade", R1}, {dir = dir})
      assert.are.equal(0, code, e2)
      assert.matches("restored persons.role: 1,000 values", e2, 1, true)
      assert.are.equal(1000, one(query, "SELECT count(*) FROM persons WHERE role = 'r' || (id % 7)"))
      assert.are.equal(0, one(query, S.kept_tables))
      assert.are.equal(0, one(query, "SELECT count(*) FROM luamig_kept"))
    end)
  end)
end
