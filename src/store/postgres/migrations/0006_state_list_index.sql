-- 0006_state_list_index: GET /v1/tasks?state=failed (or cancelled) in run_at
-- order. With only tasks_list_idx (run_at, id), such a list walks the whole
-- history and keeps the few rows in that state: the rarer failures are, the
-- longer a page takes. The other states need no index of their own here:
-- scheduled has tasks_claim_idx (run_at, id), running and provisioning are
-- few, and succeeded is most rows. Partial, so the claim and a success (the
-- hot path) write no entry in it: an index on every state cost 12% of drain
-- throughput.
CREATE INDEX tasks_ended_badly_idx ON tasks (state, run_at, id)
  WHERE state IN ('failed', 'cancelled') AND deleted_at IS NULL;
