-- Workflows (seed 000). The seed names Drizzle identifiers (workflowRunModules,
-- workflowEvents, qscoreSnapshots); the SQL names are ours [I].

-- seed 000 l.82: "Workflow definitions/runs/modules/approvals".
CREATE TABLE workflow_definitions (
  id         text PRIMARY KEY CHECK (id <> ''),    -- e.g. 'job-application'
  version    int NOT NULL DEFAULT 1 CHECK (version > 0),
  name       text NOT NULL,
  modules    jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(modules) = 'array'),
  created_at timestamptz NOT NULL DEFAULT now()
);

-- seed 000 l.150: "/run generates timestamp keys" — D10 wants one run per
-- double submit, hence the unique idempotency_key.
CREATE TABLE workflow_runs (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  definition_id       text NOT NULL REFERENCES workflow_definitions (id),
  user_id             text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  mission_instance_id text,
  idempotency_key     text UNIQUE CHECK (idempotency_key <> ''),
  status              text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'running', 'paused', 'waiting_approval',
                                        'completed', 'failed', 'cancelled')),
  input               jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workflow_runs_user ON workflow_runs (user_id, created_at);

-- seed 000 l.151: "Workflow module rows | Has idempotencyKey, retryCount,
-- maxRetries columns"; l.152 "no central retry state machine" -> status (D11).
CREATE TABLE workflow_run_modules (
  id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  run_id          uuid NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
  module_id       text NOT NULL CHECK (module_id <> ''),
  position        int NOT NULL CHECK (position >= 0),
  status          text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'queued', 'running', 'retrying', 'succeeded', 'failed', 'skipped')),
  idempotency_key text UNIQUE CHECK (idempotency_key <> ''),
  command_id      text,   -- returned to every caller of the same key (D9)
  retry_count     int NOT NULL DEFAULT 0 CHECK (retry_count >= 0),
  max_retries     int NOT NULL DEFAULT 3 CHECK (max_retries >= 0),
  next_attempt_at timestamptz,
  last_error      text,
  output          jsonb,
  started_at      timestamptz,
  finished_at     timestamptz,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  UNIQUE (run_id, module_id),
  CHECK (retry_count <= max_retries)
);

-- seed 000 l.134: "approval gate progression".
CREATE TABLE workflow_approvals (
  run_id     uuid NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
  module_id  text NOT NULL,
  status     text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
  decided_by text,
  decided_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (run_id, module_id),
  CHECK ((status = 'pending') = (decided_at IS NULL))
);

-- seed 000 l.91: "workflowRunModules, workflowEvents, qscoreSnapshots via module runner".
CREATE TABLE workflow_events (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id     uuid NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
  module_id  text,
  type       text NOT NULL CHECK (type <> ''),
  payload    jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workflow_events_run ON workflow_events (run_id, id);

-- seed 000 l.157: "onConflictDoNothing for workflow artifacts" -> a unique key
-- so INSERT ... ON CONFLICT DO NOTHING keeps the first artifact.
CREATE TABLE workflow_artifacts (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id       uuid NOT NULL REFERENCES workflow_runs (id) ON DELETE CASCADE,
  module_id    text NOT NULL,
  artifact_key text NOT NULL CHECK (artifact_key <> ''),
  kind         text NOT NULL DEFAULT 'document',
  content      text,
  metadata     jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at   timestamptz NOT NULL DEFAULT now(),
  UNIQUE (run_id, module_id, artifact_key)
);

-- seed 000 l.91 (qscoreSnapshots), l.134 "baseline Q Score" and l.74 "Q Score
-- onboarding". dedupe_key lets a replayed projector insert once (D8).
CREATE TABLE qscore_snapshots (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  run_id     uuid REFERENCES workflow_runs (id) ON DELETE SET NULL,
  source     text NOT NULL CHECK (source IN ('onboarding', 'baseline', 'workflow', 'event')),
  score      double precision NOT NULL,
  components jsonb NOT NULL DEFAULT '{}'::jsonb,
  dedupe_key text UNIQUE,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX qscore_snapshots_user ON qscore_snapshots (user_id, created_at);
