-- A project table shaped like Berth's, with a handful of rows for one org.
CREATE TABLE project (id TEXT PRIMARY KEY, org_id TEXT NOT NULL, name TEXT NOT NULL, slug TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE INDEX project_org_idx ON project (org_id);
INSERT INTO project VALUES
  ('prj_bench000000001', 'org_bench', 'My Project', 'my-project', 1764300000000),
  ('prj_bench000000002', 'org_bench', 'Second', 'second', 1764300000001),
  ('prj_bench000000003', 'org_bench', 'Third', 'third', 1764300000002);
