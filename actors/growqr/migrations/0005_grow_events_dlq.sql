-- Event ingestion, part 2 (docs/growqr.md "Events").

-- seed 000 l.129: "No DLQ stream/table for failed canonical or legacy event
-- processing"; D4: an unparseable message, or one that failed its delivery
-- budget, is written here (with error and attempts) and only then XACKed.
-- (stream, message_id) is unique, so dead-lettering a redelivered message
-- again is a no-op. dlq_stream_id records the copy on the DLQ stream, so a
-- retry after a failed XACK does not XADD it twice. The older
-- `dead_letters` table (0002) is left unused.
CREATE TABLE grow_events_dlq (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  stream           text NOT NULL CHECK (stream <> ''),
  message_id       text NOT NULL CHECK (message_id <> ''),
  raw              text NOT NULL,          -- the entry's `event` field, or all its fields as JSON when absent
  error            text NOT NULL,
  error_code       text,                   -- e.g. 'event.invalid', 'db.query_failed'
  attempts         int NOT NULL DEFAULT 1 CHECK (attempts >= 1),
  dlq_stream_id    text,                   -- entry id on the DLQ stream once XADDed
  created_at       timestamptz NOT NULL DEFAULT now(),
  redriven_at      timestamptz,
  redrive_event_id uuid,
  UNIQUE (stream, message_id)
);
CREATE INDEX grow_events_dlq_created ON grow_events_dlq (created_at);

-- Replay needs the whole normalized event (missionType, requestId, ... are not
-- columns of 0002); mission_type is a column of its own for filtering.
ALTER TABLE grow_events ADD COLUMN event jsonb;
ALTER TABLE grow_events ADD COLUMN mission_type text;
-- The sweep of 'pending' rows never handed to userEventActor (crash between
-- the insert and the hand-off) reads by status and age.
CREATE INDEX grow_events_pending ON grow_events (received_at) WHERE processing_status = 'pending';
