-- 0013_node_concurrency: how many attempts each node runs at once, 0 for a
-- node that claims nothing (one that serves only the API, or has stopped).
--
-- The nodes that claim share the claims the database works on at once
-- (EngineOptions::claimers): with each node's extra claimers added to the
-- others', claims walked past each other's locked rows instead of finding
-- work (bench/README.md, seventh pass). Rows of older nodes read as 0.
ALTER TABLE nodes ADD COLUMN concurrency integer NOT NULL DEFAULT 0;
