-- schema_spec.lua - `luamig schema`: the live schema read back from the
-- database on SQLite and PostgreSQL, in one portable form.  The same
-- migrations print the same schema on both; a database built by raw SQL
-- reads as the model one would write by hand; luamig's own tables are left
-- out; bad input fails with a message that names it.
local H = require "helpers"
local json = require "dkjson"

-- One revision using every portable column type and every kind of
-- constraint and index.
local every_kind = {
  rev = "aaaaaaaaaaa1", message = "every kind",
  up = [[
    op.create_table("orgs", {{"id", "integer", primary_key = true},
                             {"code", "string(10)", nullable = false, unique = true},
                             {"name", "string"}})
    op.create_table("items", {
      {"id", "integer", primary_key = true},
      {"org_id", "integer", references = "orgs.id", ondelete = "CASCADE"},
      {"big", "bigint", nullable = false, server_default = 0},
      {"small", "smallint"},
      {"title", "string(80)", nullable = false, server_default = "draft"},
      {"body", "text"},
      {"flag", "boolean", nullable = false, server_default = true},
      {"ratio", "float"},
      {"price", "numeric(10,2)", server_default = op.text("1.5")},
      {"day", "date"},
      {"at", "datetime", server_default = op.func.now()},
      {"at_tz", "timestamptz"},
      {"clock", "time"},
      {"doc", "json"},
      {"uid", "uuid"},
      {"raw", "binary"},
      {"slug", "string(40)", index = true},
      {"email", "string(120)", unique = true},
    }, {constraints = {{"check", "big >= 0", name = "ck_items_big"},
                       {"unique", {"title", "day"}, name = "uq_items_title_day"}}})
    op.create_index("ix_items_lower_email", "items", {op.text("lower(email)")},
                    {where = "flag"})
    op.create_index("ix_items_org_day", "items", {"org_id", "day"}, {unique = true})
    op.create_table("links", {{"a", "integer", primary_key = true},
                              {"b", "integer", primary_key = true},
                              {"item_id", "integer", nullable = false}})
    op.create_foreign_key("fk_links_item", "links", "items", {"item_id"}, {"id"},
                          {ondelete = "SET NULL", deferrable = true, initially = "DEFERRED"})
    op.create_check_constraint("ck_links_ab", "links", "a <> b")
  ]],
  down_code = [[
    op.drop_table("links")
    op.drop_table("items")
    op.drop_table("orgs")
  ]],
}

-- What `luamig schema` prints for it; `at_tz` is the one line the
-- dialects differ in (SQLite has no time-zone type: DATETIME).
local function expected_every_kind(at_tz)
  return table.concat({
    "table items",
    "  column id integer not null serial",
    "  column org_id integer null",
    "  column big bigint not null default 0",
    "  column small smallint null",
    "  column title string(80) not null default 'draft'",
    "  column body text null",
    "  column flag boolean not null default true",
    "  column ratio float null",
    "  column price numeric(10,2) null default 1.5",
    "  column day date null",
    "  column at datetime null default now()",
    "  column at_tz " .. at_tz .. " null",
    "  column clock time null",
    "  column doc json null",
    "  column uid uuid null",
    "  column raw binary null",
    "  column slug string(40) null",
    "  column email string(120) null",
    "  primary key (id)",
    "  unique (email)",
    "  unique uq_items_title_day (title, day)",
    "  check ck_items_big (big >= 0)",
    "  index ix_items_lower_email (lower(email)) where flag",
    "  index ix_items_slug (slug)",
    "  unique index ix_items_org_day (org_id, day)",
    "  foreign key (org_id) references orgs (id) on delete CASCADE",
    "",
    "table links",
    "  column a integer not null",
    "  column b integer not null",
    "  column item_id integer not null",
    "  primary key (a, b)",
    "  check ck_links_ab (a <> b)",
    "  foreign key fk_links_item (item_id) references items (id) on delete SET NULL"
      .. " deferrable initially DEFERRED",
    "",
    "table orgs",
    "  column id integer not null serial",
    "  column code string(10) not null",
    "  column name string null",
    "  primary key (id)",
    "  unique (code)",
    "",
  }, "\n")
end

-- The native type each portable one is given, as the clients show them.
local native = {
  postgresql = {
    integer = "integer", bigint = "bigint", smallint = "smallint",
    ["string(80)"] = "character varying(80)", ["string(40)"] = "character varying(40)",
    ["string(120)"] = "character varying(120)", ["string(10)"] = "character varying(10)",
    string = "character varying", text = "text", boolean = "boolean",
    float = "double precision", ["numeric(10,2)"] = "numeric(10,2)", date = "date",
    datetime = "timestamp without time zone", timestamptz = "timestamp with time zone",
    time = "time without time zone", json = "json", uuid = "uuid", binary = "bytea",
  },
  sqlite = {
    integer = "INTEGER", bigint = "BIGINT", smallint = "SMALLINT",
    ["string(80)"] = "VARCHAR(80)", ["string(40)"] = "VARCHAR(40)",
    ["string(120)"] = "VARCHAR(120)", ["string(10)"] = "VARCHAR(10)",
    string = "VARCHAR", text = "TEXT", boolean = "BOOLEAN", float = "FLOAT",
    ["numeric(10,2)"] = "NUMERIC(10, 2)", date = "DATE", datetime = "DATETIME",
    time = "TIME", json = "JSON", uuid = "CHAR(32)", binary = "BLOB",
  },
}

-- Columns of `luamig schema` output: name -> {type, nullable}.
local function columns_of(out, tbl)
  local cols, inside = {}, false
  for line in (out or ""):gmatch("[^\n]*") do
    if line:match("^table ") then inside = line == "table " .. tbl end
    local name, ty, null = line:match("^  column (%S+) (%S+) (n?o?t? ?null)")
    if inside and name then cols[name] = {type = ty, nullable = null == "null"} end
  end
  return cols
end

local function schema(dir, args)
  local argv = {"schema"}
  for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
  return H.run(argv, {dir = dir})
end

describe("luamig schema", function()
  describe("the same migrations on both dialects", function()
    local outs = {}
    for _, d in ipairs(H.dialects) do
      it("prints every column type and constraint kind (" .. d.name .. ")", function()
        local url = d.fresh()
        local dir = H.project(url, {every_kind})
        local code, _, err = H.run({"upgrade", "head"}, {dir = dir})
        assert.are.equal(0, code, err)
        local out
        code, out, err = schema(dir)
        assert.are.equal(0, code, err)
        assert.are.equal("", err)
        assert.are.equal(expected_every_kind(d.name == "sqlite" and "datetime"
                                             or "timestamptz"), out)
        outs[d.name] = out
        -- The output is stable: a second look prints the same.
        local _, again = schema(dir)
        assert.are.equal(out, again)
      end)
    end

    it("is identical between SQLite and PostgreSQL but for what SQLite lacks", function()
      assert.is_not_nil(outs.sqlite)
      assert.is_not_nil(outs.postgresql)
      local a = outs.sqlite:gsub("column at_tz %S+", "column at_tz _")
      local b = outs.postgresql:gsub("column at_tz %S+", "column at_tz _")
      assert.are.equal(a, b)
    end)

    it("agrees with what psql's \\d shows", function()
      local url = H.pg_fresh()
      local dir = H.project(url, {every_kind})
      assert.are.equal(0, (H.run({"upgrade", "head"}, {dir = dir})))
      local _, out = schema(dir)
      for _, tbl in ipairs({"items", "links", "orgs"}) do
        local f = H.popen("psql -X -q " .. H.quote(url) .. " -c " .. H.quote("\\d " .. tbl))
        local d = f:read("a")
        f:close()
        local cols = columns_of(out, tbl)
        local n = 0
        for line in d:gmatch("[^\n]+") do
          local name, ty, nullable = line:match("^ (%S+)%s+| ([^|]-)%s+|[^|]*| ([^|]-)%s*|")
          if name and name ~= "Column" then
            n = n + 1
            local c = cols[name]
            assert.is_not_nil(c, tbl .. "." .. name .. " missing from luamig schema")
            assert.are.equal(ty, native.postgresql[c.type], tbl .. "." .. name)
            assert.are.equal(nullable == "not null", not c.nullable, tbl .. "." .. name)
          end
        end
        local m = 0
        for _ in pairs(cols) do m = m + 1 end
        assert.are.equal(n, m, tbl)
        assert.is_true(n > 0)
      end
      -- \d's index and constraint lists name what the schema shows.
      local f = H.popen("psql -X -q " .. H.quote(url) .. " -c '\\d items'")
      local d = f:read("a")
      f:close()
      assert.matches('"ix_items_lower_email" btree %(lower%(email::text%)%) WHERE flag', d)
      assert.matches('"ix_items_org_day" UNIQUE, btree %(org_id, day%)', d)
      assert.matches('"ck_items_big" CHECK %(big >= 0%)', d)
      assert.matches("FOREIGN KEY %(org_id%) REFERENCES orgs%(id%) ON DELETE CASCADE", d)
    end)

    it("agrees with what sqlite3's .schema shows", function()
      local url, _, path = H.dialects[1].fresh()
      local dir = H.project(url, {every_kind})
      assert.are.equal(0, (H.run({"upgrade", "head"}, {dir = dir})))
      local _, out = schema(dir)
      local f = H.popen("sqlite3 " .. H.quote(path) .. " .schema")
      local text = f:read("a")
      f:close()
      for _, tbl in ipairs({"items", "links", "orgs"}) do
        local cols = columns_of(out, tbl)
        local n = 0
        -- (a rebuilt table's statement says IF NOT EXISTS "name")
        local create = text:match("CREATE TABLE " .. tbl .. " (%b())")
                       or text:match('CREATE TABLE IF NOT EXISTS "' .. tbl .. '" (%b())')
        assert.is_not_nil(create, tbl)
        for name, c in pairs(cols) do
          n = n + 1
          local want = native.sqlite[c.type] or "DATETIME"
          local decl = create:match("[(\n\t ,]" .. name .. " ([^\n]+)")
          assert.is_not_nil(decl, tbl .. "." .. name)
          assert.are.equal(want, decl:sub(1, #want), tbl .. "." .. name .. ": " .. decl)
          assert.are.equal(not c.nullable, decl:find("NOT NULL", 1, true) ~= nil
                           or (create:find("PRIMARY KEY %(" .. name) ~= nil)
                           or (create:find("PRIMARY KEY %(a, b%)") ~= nil and (name == "a" or name == "b")),
                           tbl .. "." .. name)
        end
        assert.is_true(n > 0)
      end
      assert.matches("CREATE INDEX ix_items_lower_email ON items %(lower%(email%)%) WHERE flag", text)
      assert.matches("CREATE UNIQUE INDEX ix_items_org_day ON items %(org_id, day%)", text)
    end)

    it("--json gives the model", function()
      for _, d in ipairs(H.dialects) do
        local url = d.fresh()
        local dir = H.project(url, {every_kind})
        assert.are.equal(0, (H.run({"upgrade", "head"}, {dir = dir})))
        local code, out, err = schema(dir, {"--json", "links"})
        assert.are.equal(0, code, err)
        local m = assert(json.decode(out), out)
        assert.are.equal(1, #m.tables)
        local t = m.tables[1]
        assert.are.equal("links", t.name)
        assert.are.same({"a", "b", "item_id"},
                        {t.columns[1].name, t.columns[2].name, t.columns[3].name})
        assert.are.equal("integer", t.columns[3].type)
        assert.is_false(t.columns[3].nullable)
        local fk
        for _, c in ipairs(t.constraints) do
          if c.type == "foreign_key" then fk = c end
        end
        assert.are.same({type = "foreign_key", name = "fk_links_item", columns = {"item_id"},
                         ref_table = "items", ref_columns = {"id"}, ondelete = "SET NULL",
                         deferrable = true, initially = "DEFERRED"}, fk)
      end
    end)
  end)

  describe("a database built by raw SQL", function()
    it("reads back as the model written by hand (postgresql)", function()
      local url = H.pg_fresh()
      assert(H.psql(url, [[
        CREATE TABLE "Accounts" ("AccountId" serial PRIMARY KEY,
          "Name" text NOT NULL DEFAULT 'x'::text,
          kind varchar(20) DEFAULT 'basic'::character varying,
          n integer DEFAULT -1, created timestamp DEFAULT (CURRENT_TIMESTAMP));
        COMMENT ON TABLE "Accounts" IS 'who pays';
        COMMENT ON COLUMN "Accounts"."Name" IS 'shown name';
        CREATE TABLE events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
          seq integer GENERATED BY DEFAULT AS IDENTITY,
          account_id integer NOT NULL, payload jsonb,
          CONSTRAINT fk_events_account FOREIGN KEY (account_id)
            REFERENCES "Accounts" ("AccountId") ON DELETE CASCADE ON UPDATE RESTRICT
            DEFERRABLE INITIALLY DEFERRED,
          CONSTRAINT ck_seq CHECK (seq > 0));
        CREATE INDEX ix_events_key ON events (lower(payload->>'k'));
        CREATE UNIQUE INDEX ix_events_partial ON events (account_id, seq) WHERE seq IS NOT NULL;
        CREATE INDEX ix_events_payload ON events USING gin (payload);
        CREATE VIEW recent AS SELECT * FROM events;
      ]]))
      local dir = H.project(url, {})
      local code, out, err = schema(dir)
      assert.are.equal(0, code, err)
      assert.are.equal(table.concat({
        "table Accounts",
        "  comment 'who pays'",
        "  column AccountId integer not null serial",
        "  column Name text not null default 'x' comment 'shown name'",
        "  column kind string(20) null default 'basic'",
        "  column n integer null default -1",
        "  column created datetime null default now()",
        "  primary key (AccountId)",
        "",
        "table events",
        "  column id bigint not null identity always",
        "  column seq integer not null identity",
        "  column account_id integer not null",
        "  column payload jsonb null",
        "  primary key (id)",
        "  check ck_seq (seq > 0)",
        "  index ix_events_key (lower(payload ->> 'k'))",
        "  index ix_events_payload (payload) using gin",
        "  unique index ix_events_partial (account_id, seq) where seq IS NOT NULL",
        "  foreign key fk_events_account (account_id) references Accounts (AccountId)"
          .. " on delete CASCADE on update RESTRICT deferrable initially DEFERRED",
        "",
        "view recent",
        "",
      }, "\n"), out)
      -- The model itself: the default as a value, the expression as one.
      code, out = schema(dir, {"--json"})
      assert.are.equal(0, code)
      local m = assert(json.decode(out, 1, json.null))
      assert.are.equal("'x'", m.tables[1].columns[2].default)
      assert.are.equal("serial", m.tables[1].columns[1].serial)
      local ix = {}
      for _, i in ipairs(m.tables[2].indexes) do ix[i.name] = i end
      assert.are.same({{expression = "lower(payload ->> 'k')"}}, ix.ix_events_key.columns)
      assert.are.equal("gin", ix.ix_events_payload.method)
      assert.are.equal(json.null, ix.ix_events_key.method)
      assert.are.equal("seq IS NOT NULL", ix.ix_events_partial.where)
      assert.are.same({{schema = json.null, name = "recent"}}, m.views)
      -- Table names are compared as PostgreSQL compares them: exactly.
      code, out = schema(dir, {"Accounts"})
      assert.are.equal(0, code)
      assert.matches("^table Accounts\n", out)
      code, _, err = schema(dir, {"accounts"})
      assert.are.equal(1, code)
      assert.matches("no table accounts", err)
    end)

    it("reads back as the model written by hand (sqlite)", function()
      local url, _, path = H.dialects[1].fresh()
      assert(H.sqlite_query(path, [[
        CREATE TABLE "Accounts" ("AccountId" INTEGER PRIMARY KEY AUTOINCREMENT,
          "Name" TEXT NOT NULL DEFAULT 'x', kind VARCHAR(20) DEFAULT ('basic'),
          n INTEGER DEFAULT -1, created DATETIME DEFAULT (CURRENT_TIMESTAMP));
        CREATE TABLE events (id INTEGER NOT NULL, account_id INTEGER NOT NULL,
          status TEXT CHECK (status IN ('a', 'b')),
          PRIMARY KEY (id),
          CONSTRAINT fk_events_account FOREIGN KEY (account_id)
            REFERENCES "Accounts" ("AccountId") ON DELETE CASCADE ON UPDATE RESTRICT
            DEFERRABLE INITIALLY DEFERRED);
        CREATE INDEX ix_events_status ON events (lower(status));
        CREATE UNIQUE INDEX ix_events_partial ON events (account_id, status DESC)
          WHERE status IS NOT NULL;
        CREATE VIEW recent AS SELECT * FROM events;
      ]]))
      local dir = H.project(url, {})
      local code, out, err = schema(dir)
      assert.are.equal(0, code, err)
      assert.are.equal(table.concat({
        "table Accounts",
        "  column AccountId integer not null serial",
        "  column Name text not null default 'x'",
        "  column kind string(20) null default 'basic'",
        "  column n integer null default -1",
        "  column created datetime null default now()",
        "  primary key (AccountId)",
        "",
        "table events",
        "  column id integer not null serial",
        "  column account_id integer not null",
        "  column status text null",
        "  primary key (id)",
        "  check (status IN ('a', 'b'))",
        "  index ix_events_status (lower(status))",
        "  unique index ix_events_partial (account_id, status) where status IS NOT NULL",
        "  foreign key fk_events_account (account_id) references Accounts (AccountId)"
          .. " on delete CASCADE on update RESTRICT deferrable initially DEFERRED",
        "",
        "view recent",
        "",
      }, "\n"), out)
      -- SQLite compares names ignoring case: so does the table argument.
      code, out = schema(dir, {"accounts"})
      assert.are.equal(0, code)
      assert.matches("^table Accounts\n", out)
    end)
  end)

  it("reads conditions without PostgreSQL's casts and doubled parentheses", function()
    local url = H.pg_fresh()
    assert(H.psql(url, "CREATE TABLE c (s text CHECK (s IN ('a', 'b')), " ..
                       "v varchar(5) CHECK (v IN ('a', 'b')), " ..
                       "r integer CHECK (ROW(r, r) IS NOT NULL)); " ..
                       "CREATE INDEX ix_c_v ON c (upper(v)) WHERE (v)::text <> 'x'::text"))
    local code, out, err = schema(H.project(url, {}))
    assert.are.equal(0, code, err)
    assert.are.equal(table.concat({
      "table c",
      "  column s text null",
      "  column v string(5) null",
      "  column r integer null",
      "  check (ROW(r, r) IS NOT NULL)",
      "  check (s = ANY (ARRAY['a', 'b']))",
      "  check (v = ANY (ARRAY['a', 'b']))",
      "  index ix_c_v (upper(v)) where v <> 'x'",
      "",
    }, "\n"), out)
  end)

  for _, d in ipairs(H.dialects) do
    it("shows a computed column's expression the same way (" .. d.name .. ")", function()
      local url, query = d.fresh()
      assert(query("CREATE TABLE g (a integer, b integer GENERATED ALWAYS AS (a * 2) STORED)"))
      local code, out, err = schema(H.project(url, {}))
      assert.are.equal(0, code, err)
      assert.are.equal("table g\n  column a integer null\n" ..
                       "  column b integer null generated (a * 2)\n", out)
    end)
  end

  it("names the primary key a bare REFERENCES points at (sqlite)", function()
    local url, _, path = H.dialects[1].fresh()
    assert(H.sqlite_query(path, "CREATE TABLE p (id INTEGER PRIMARY KEY); " ..
                                "CREATE TABLE c (pid INTEGER REFERENCES p)"))
    local code, out, err = schema(H.project(url, {}), {"c"})
    assert.are.equal(0, code, err)
    assert.are.equal("table c\n  column pid integer null\n" ..
                     "  foreign key (pid) references p (id)\n", out)
  end)

  describe("luamig's own tables", function()
    for _, d in ipairs(H.dialects) do
      it("are left out (" .. d.name .. ")", function()
        local url, query = d.fresh()
        local dir = H.project(url, {every_kind}, 'version_table = "my_versions",\n')
        assert.are.equal(0, (H.run({"upgrade", "head"}, {dir = dir})))
        assert(query("CREATE TABLE luamig_backfill (revision TEXT, name TEXT)"))
        assert(query("CREATE TABLE luamig_kept_1 (x INTEGER)"))
        -- they are there ...
        assert.matches("1", query("SELECT count(*) FROM my_versions"))
        assert(query("SELECT count(*) FROM luamig_log"))
        local code, out, err = schema(dir)
        assert.are.equal(0, code, err)
        -- ... and not shown
        assert.is_nil(out:find("my_versions", 1, true))
        assert.is_nil(out:find("luamig_", 1, true))
        assert.matches("table items\n", out)
        code, _, err = schema(dir, {"my_versions"})
        assert.are.equal(1, code)
        assert.matches("my_versions is luamig's own table", err)
      end)
    end
  end)

  describe("include_schemas", function()
    it("reads the schemas named, each table under its schema (postgresql)", function()
      local url = H.pg_fresh()
      assert(H.psql(url, "CREATE SCHEMA billing; CREATE TABLE billing.invoices " ..
                         "(id serial PRIMARY KEY, total numeric(12,2) NOT NULL); " ..
                         "CREATE TABLE plain (id integer)"))
      local dir = H.project(url, {}, 'include_schemas = {"billing", "public"},\n')
      local code, out, err = schema(dir)
      assert.are.equal(0, code, err)
      assert.are.equal(table.concat({
        "table plain",
        "  column id integer null",
        "",
        "table billing.invoices",
        "  column id integer not null serial",
        "  column total numeric(12,2) not null",
        "  primary key (id)",
        "",
      }, "\n"), out)
      code, out = schema(dir, {"billing.invoices"})
      assert.are.equal(0, code)
      assert.matches("^table billing.invoices\n", out)
    end)

    it("must be a list of names", function()
      local url = H.dialects[1].fresh()
      local dir = H.project(url, {}, 'include_schemas = "public",\n')
      local code, out, err = schema(dir)
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.matches("include_schemas must be a list of schema names", err)
      dir = H.project(url, {}, 'include_schemas = {"main", 3},\n')
      code, _, err = schema(dir)
      assert.are.equal(1, code)
      assert.matches("include_schemas%[2%] must be a schema name, not a number", err)
    end)
  end)

  describe("bad input", function()
    for _, d in ipairs(H.dialects) do
      it("an unknown table or a view fails with exit 1 and a message (" .. d.name .. ")",
         function()
        local url, query = d.fresh()
        local dir = H.project(url, {every_kind})
        assert.are.equal(0, (H.run({"upgrade", "head"}, {dir = dir})))
        assert(query("CREATE VIEW item_titles AS SELECT title FROM items"))
        local code, out, err = schema(dir, {"items", "nosuch"})
        assert.are.equal(1, code)
        assert.are.equal("", out)
        assert.matches("no table nosuch in the database", err)
        code, out, err = schema(dir, {"item_titles"})
        assert.are.equal(1, code)
        assert.are.equal("", out)
        assert.matches("item_titles is a view", err)
        -- the known ones alone are fine
        code, out = schema(dir, {"orgs"})
        assert.are.equal(0, code)
        assert.matches("^table orgs\n", out)
        assert.is_nil(out:find("table items", 1, true))
      end)
    end

    it("an unknown option is a usage error", function()
      local dir = H.project(H.dialects[1].fresh(), {})
      local code, _, err = schema(dir, {"--bogus"})
      assert.are.equal(2, code)
      assert.matches("bogus", err)
    end)

    it("a database that cannot be reached fails with exit 1", function()
      local dir = H.project("postgresql://luamig:wrong@127.0.0.1:1/nowhere", {})
      local code, out, err = schema(dir)
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.is_true(#err > 0)
    end)
  end)
end)
