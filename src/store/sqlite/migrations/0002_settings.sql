-- 0002_settings: installation-wide values every node must agree on (the
-- callback secret). Written once, first writer wins.

CREATE TABLE settings (
  key   TEXT NOT NULL PRIMARY KEY,
  value TEXT NOT NULL
);
