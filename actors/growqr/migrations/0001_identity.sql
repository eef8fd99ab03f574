-- GrowQR identity and per-user runtime registry (seed 001, the "DB / PG / AWS RDS"
-- box: "Tables: users, user_stacks, actors, repos, opencode_sessions, events").
-- Column sets beyond the table names are ours [I], kept to what the seeds describe.

-- seed 001 l.320: "JWT is verified on every request; users are mirrored into
-- Postgres on first sight." The id is the Clerk user id.
CREATE TABLE users (
  id           text PRIMARY KEY CHECK (id <> ''),
  email        text,
  display_name text,
  profile      jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now()
);

-- seed 001 l.348: "Per-user OpenCode container spawned via dockerode on first
-- sign-in"; l.362: "Per-user Gitea container". One stack per user.
CREATE TABLE user_stacks (
  user_id       text PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
  status        text NOT NULL DEFAULT 'provisioning'
                CHECK (status IN ('provisioning', 'running', 'stopped', 'failed')),
  opencode_url  text,
  gitea_url     text,
  last_error    text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

-- seed 001 l.5: "persistent actor registry"; seed 000 l.34: "/actors ... actors
-- table". One row per (user, actor type, key) — e.g. the user's growAgent.
CREATE TABLE actors (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name       text NOT NULL CHECK (name <> ''),
  key        text NOT NULL DEFAULT '',
  actor_id   text,                      -- the engine's actor id once created
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (user_id, name, key)
);

-- seed 001 l.362: "bootstraps a private growqr-memory repo. Long-term memory
-- commits land here as plain markdown."
CREATE TABLE repos (
  id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name       text NOT NULL CHECK (name <> ''),
  clone_url  text,
  created_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (user_id, name)
);

-- seed 001 l.348: OpenCode "Hosts sub-agent sessions"; seed 000 l.70:
-- "/opencode ... Directly provisions stack and opens sessions." The id is
-- OpenCode's session id.
CREATE TABLE opencode_sessions (
  id         text PRIMARY KEY CHECK (id <> ''),
  user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  actor_id   uuid REFERENCES actors (id) ON DELETE SET NULL,  -- the subAgent that owns it
  title      text,
  status     text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'idle', 'closed')),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- seed 001 l.176: "chat / event stream", l.341: "durable state mirrors into
-- Postgres": the runtime events an agent re-broadcasts, kept for the UI's log.
CREATE TABLE events (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  actor_id   uuid REFERENCES actors (id) ON DELETE SET NULL,
  type       text NOT NULL CHECK (type <> ''),
  payload    jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_user_created ON events (user_id, created_at);
