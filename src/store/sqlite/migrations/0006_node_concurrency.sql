-- 0006_node_concurrency: how many attempts each node runs at once, 0 for a
-- node that claims nothing (one that serves only the API, or has stopped).
-- The nodes that claim share EngineOptions::claimers (the PostgreSQL store's
-- migration 0013 says why); a SQLite store has one node, which keeps them all.
ALTER TABLE nodes ADD COLUMN concurrency INTEGER NOT NULL DEFAULT 0;
