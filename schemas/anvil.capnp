@0xbbc36396cbeb9aed;
# Every record Anvil persists in RocksDB. User values inside are opaque CBOR
# bytes (base/value/cbor.hpp, Mode::Storage). Fields are only ever added,
# never renumbered: a record written by an older Anvil must stay readable.

$import "/capnp/c++.capnp".namespace("anvil::schema");

# cf "actors": actor id -> ActorRecord. Identity and create-time facts.
struct ActorRecord {
  actorId @0 :Text;
  name @1 :Text;
  key @2 :Text;                 # serialized key (client-protocol.md §2.6)
  namespace @3 :Text;
  runnerNameSelector @4 :Text;
  crashPolicy @5 :Text;
  createTs @6 :Int64;           # ms since epoch
  hasInput @7 :Bool;
  input @8 :Data;               # CBOR (storage mode) of the create input
  generation @9 :UInt32;        # bumped on every start (wake)
  datacenter @10 :Text;
  startTs @11 :Int64;           # ms since epoch of the newest start (0: never started)
  sleepTs @12 :Int64;           # ms since epoch of the newest sleep (0: none since)
  inspectorToken @13 :Text;     # Bearer token of the actor's /inspector/* routes ("": made at its next start)
}

# cf "state": actor id -> StateRecord. Written through the commit pipeline;
# a reply is released only after the batch holding it is synced.
struct StateRecord {
  generation @0 :UInt32;        # the instance generation that wrote it
  state @1 :Data;               # CBOR (storage mode) of the actor state
  initialized @2 :Bool;         # createState + onCreate completed
}

# cf "queue": actor id + u64 BE message id -> QueueRecord. Deleted in the same
# batch as the state change of the turn that processed it (exactly-once effect).
struct QueueRecord {
  id @0 :UInt64;
  name @1 :Text;
  body @2 :Data;                # CBOR (storage mode)
  createdTs @3 :Int64;
}

# cf "schedules": actor id + schedule id -> ScheduleRecord. Deleted in the
# same batch as the state change of the turn that ran it.
struct ScheduleRecord {
  id @0 :Text;
  action @1 :Text;
  args @2 :Data;                # CBOR (storage mode) array
  dueTs @3 :Int64;
  createdTs @4 :Int64;
  intervalMs @5 :Int64;         # > 0: recurring every intervalMs, anchored to dueTs
  name @6 :Text;                # recurring schedules are unique per name
}

# cf "workflow": actor id + history path -> WorkflowRecord. The root record
# (empty path) holds the run's status. Written in the same batch as the
# actor state the recorded step changed.
struct WorkflowRecord {
  path @0 :Text;                # e.g. "job-loop~3/process-job"
  kind @1 :Text;                # run | step | loop | queue | sleep
  status @2 :Text;              # running | completed | failed | waiting
  result @3 :Data;              # CBOR (storage mode)
  attempts @4 :UInt32;
  startedTs @5 :Int64;
  completedTs @6 :Int64;
  error @7 :Text;
  iteration @8 :UInt64;         # loops: the next iteration to run
  wakeTs @9 :Int64;             # sleeps and retries: when to resume
}
