-- Conversations (seed 000) and L2 session memory (seed 001).

-- seed 000 l.46: "/conversations | Conversation CRUD/chat/mission bridging |
-- conversationActor, mission actors, grow_conversations, messages".
CREATE TABLE grow_conversations (
  id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id             text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  mission_instance_id text,
  title               text,
  status              text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX grow_conversations_user ON grow_conversations (user_id, updated_at);

-- seed 000 l.94: "needs documented idempotency per turn/message id" -> the
-- client's message id is unique per conversation; seq orders the messages.
CREATE TABLE messages (
  conversation_id uuid NOT NULL REFERENCES grow_conversations (id) ON DELETE CASCADE,
  message_id      text NOT NULL CHECK (message_id <> ''),
  seq             bigint NOT NULL CHECK (seq > 0),
  turn_id         text,
  role            text NOT NULL CHECK (role IN ('user', 'assistant', 'system', 'tool')),
  content         text NOT NULL DEFAULT '',
  metadata        jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (conversation_id, message_id),
  UNIQUE (conversation_id, seq)
);

-- seed 001 l.355: "Three-layer memory ... (commit_memory, read_memory,
-- list_memory). L1 in-actor state, L2 session in Postgres, L3 long-term in the
-- user's Gitea repo." One entry per (user, session, key); commit_memory upserts.
CREATE TABLE session_memory (
  user_id    text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  session_id text NOT NULL CHECK (session_id <> ''),
  key        text NOT NULL CHECK (key <> ''),
  content    text NOT NULL,
  metadata   jsonb NOT NULL DEFAULT '{}'::jsonb,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (user_id, session_id, key)
);
