-- The legacy Redis observer (docs/growqr.md "Legacy observer"; seed 000
-- l.125-131, D7): product services that predate Grow Events write
-- `tasks:<taskId>` when they take a task and `responses:<taskId>` when it is
-- done; the response names no user or action. Seed 000 kept the task context
-- in memory, so a restart between the two lost the attribution. Here the
-- context is recorded on first sight and the response is attributed from it.
--   waiting   context known, no response emitted yet
--   orphaned  a response without any context (dead-lettered once); a task
--             that shows up later still attributes it
--   emitted   the response is a recorded Grow Event (event_id)
CREATE TABLE legacy_tasks (
  task_id             text PRIMARY KEY CHECK (task_id <> ''),
  service             text,
  user_id             text,
  action              text,
  mission_instance_id text,
  request_id          text,
  context             jsonb,
  status              text NOT NULL DEFAULT 'waiting' CHECK (status IN ('waiting', 'orphaned', 'emitted')),
  seen_at             timestamptz NOT NULL DEFAULT now(),
  responded_at        timestamptz,
  event_id            text,
  CHECK (status = 'orphaned' OR user_id IS NOT NULL)
);
CREATE INDEX legacy_tasks_open ON legacy_tasks (seen_at) WHERE status <> 'emitted';
