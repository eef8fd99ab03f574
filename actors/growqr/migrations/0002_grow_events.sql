-- Grow Event ingestion, missions, dead letters and projections (seed 000).

-- seed 000 l.125: "recordGrowEvent uses dedupeKey and a unique index on
-- grow_events.dedupe_key"; l.131: "grow_events.processing_status in ('failed',
-- 'unresolved')". pending/processed, attempts and last_error are ours [I] (replay, D6).
-- user_id has no foreign key on purpose: an event is recorded before anything
-- else happens to it (the Redis consumer acknowledges only after this insert),
-- and the user may not be mirrored yet; such events end 'unresolved'.
CREATE TABLE grow_events (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  dedupe_key          text NOT NULL UNIQUE CHECK (dedupe_key <> ''),
  user_id             text,
  type                text NOT NULL CHECK (type <> ''),
  source              text NOT NULL DEFAULT 'api',   -- e.g. 'api', 'redis:<stream>', a service id
  mission_instance_id text,
  payload             jsonb NOT NULL DEFAULT '{}'::jsonb,
  processing_status   text NOT NULL DEFAULT 'pending'
                      CHECK (processing_status IN ('pending', 'processed', 'failed', 'unresolved')),
  attempts            int NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  last_error          text,
  occurred_at         timestamptz,
  received_at         timestamptz NOT NULL DEFAULT now(),
  processed_at        timestamptz
);
CREATE INDEX grow_events_replay ON grow_events (processing_status, received_at)
  WHERE processing_status IN ('failed', 'unresolved');
CREATE INDEX grow_events_user ON grow_events (user_id, received_at);

-- seed 000 l.129: "No DLQ stream/table for failed canonical or legacy event
-- processing." A message is written here (with error and attempts) before it
-- is acknowledged (D4); (source, message_id) makes a redelivery a no-op.
CREATE TABLE dead_letters (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  source      text NOT NULL CHECK (source <> ''),       -- e.g. 'redis:grow-events'
  message_id  text NOT NULL CHECK (message_id <> ''),   -- e.g. the stream entry id
  payload     jsonb,
  raw         text,                                      -- when the payload did not parse
  error       text NOT NULL,
  attempts    int NOT NULL DEFAULT 1 CHECK (attempts >= 1),
  created_at  timestamptz NOT NULL DEFAULT now(),
  replayed_at timestamptz,
  UNIQUE (source, message_id)
);

-- seed 000 l.131: "Legacy task context is in-memory only, so response events
-- can lose user/action context after a backend restart" (D7).
CREATE TABLE legacy_task_contexts (
  task_id    text PRIMARY KEY CHECK (task_id <> ''),
  user_id    text NOT NULL,
  action     text NOT NULL,
  context    jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- seed 000 l.99: "growActor ... grow_active_missions, mission state"; unique
-- (user, mission instance) is ours [I].
CREATE TABLE grow_active_missions (
  user_id             text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  mission_instance_id text NOT NULL CHECK (mission_instance_id <> ''),
  mission_type        text NOT NULL CHECK (mission_type <> ''),
  status              text NOT NULL DEFAULT 'active'
                      CHECK (status IN ('active', 'paused', 'completed', 'abandoned')),
  stage               text,
  state               jsonb NOT NULL DEFAULT '{}'::jsonb,
  started_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, mission_instance_id)
);

-- seed 000 l.122-123: "service session and Q Score projections ... update
-- projection tables"; l.126 "Projector surfaces exist for session tracking, Q
-- Score, and LLM-derived insights". One read-model row per (user, projector, key).
CREATE TABLE projections (
  user_id         text NOT NULL,
  projector       text NOT NULL CHECK (projector <> ''),  -- e.g. 'service_session', 'insight'
  key             text NOT NULL,
  value           jsonb NOT NULL DEFAULT '{}'::jsonb,
  source_event_id uuid REFERENCES grow_events (id) ON DELETE SET NULL,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, projector, key)
);

-- seed 000 l.170: "Projector failures need durable retry/replay semantics";
-- D8: replay completes "without a duplicate projection". A projector records
-- each event it applied in the same transaction as its effect.
CREATE TABLE projection_applied (
  event_id   uuid NOT NULL REFERENCES grow_events (id) ON DELETE CASCADE,
  projector  text NOT NULL CHECK (projector <> ''),
  applied_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (event_id, projector)
);
