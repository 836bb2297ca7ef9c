-- 0009_uuid_task_ids: task ids are stored as uuid, not text.
--
-- Every task id is a UUID (sked makes them with core::NewUuidV7). As text
-- each took 37 bytes in every index that holds it (the primary key, the
-- claim, list and lease indexes, and task_events' index by task); as uuid it
-- takes 16 and compares as one memcmp. Most of a drain's database time is
-- spent inserting index entries (bench/README.md): a 100 000-job drain
-- replayed in SQL (bench/replay_drain.py) took 2.95-3.15 s with uuid ids
-- against 3.56-3.62 s with text. uuid orders by its bytes, as the lowercase text did under COLLATE
-- "C", so claim order and list pages are unchanged.
--
-- This rewrites the three tables and their indexes, once.
ALTER TABLE tasks ALTER COLUMN id TYPE uuid USING id::uuid;
ALTER TABLE task_events ALTER COLUMN task_id TYPE uuid USING task_id::uuid;
ALTER TABLE webhooks ALTER COLUMN task_id TYPE uuid USING task_id::uuid;
