-- bccguard's queue, quarantine and audit log on PostgreSQL.
--
-- Every time is a timestamptz (microseconds); every ID is made by bccguard.
-- Records that are read whole and never queried inside (message records,
-- recipients, resolutions) are json: stored exactly as written, which
-- jsonb would not do (it rejects \u0000 escapes that a hostile header can
-- produce), and cheaper to insert.

-- A message, stored once whatever its number of deliveries. record is the
-- store.Message as JSON; the columns beside it are what queries need.
CREATE TABLE messages (
    id          text PRIMARY KEY,
    received_at timestamptz NOT NULL,
    size        bigint NOT NULL,
    -- chunks is the number of body rows (seq 0 .. chunks-1).
    chunks      integer NOT NULL,
    -- deliveries is how many deliveries were created: 0 for a message kept
    -- without any (a hold until it is released). A message with
    -- deliveries, none of them pending, is collected.
    deliveries  integer NOT NULL,
    record      json NOT NULL
);

-- The raw message in chunks of 256 KiB (see body.go for why chunks of
-- bytea rather than large objects). EXTERNAL: out of line in TOAST without
-- compression; mail is mostly base64 and already compressed attachments,
-- where pglz costs CPU on every write for little gain.
CREATE TABLE message_chunks (
    message_id text NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    seq        integer NOT NULL,
    data       bytea NOT NULL,
    PRIMARY KEY (message_id, seq)
);
ALTER TABLE message_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

-- A delivery's ID is "<message_id>.<seq>". Claim only changes the lease
-- columns, which no index covers, so a claim is a HOT update when the page
-- has room (hence the fillfactor).
CREATE TABLE deliveries (
    message_id   text NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    seq          integer NOT NULL,
    recipients   json NOT NULL,
    rewrite      text NOT NULL,
    state        text NOT NULL CHECK (state IN ('queued', 'deferred', 'delivered', 'bounced', 'expired')),
    attempts     integer NOT NULL DEFAULT 0,
    created_at   timestamptz NOT NULL,
    next_attempt timestamptz NOT NULL,
    last_error   text NOT NULL DEFAULT '',
    -- The lease: who works on the delivery and until when. A lease whose
    -- time has passed no longer excludes other claimants. lease_session
    -- is the store instance that claimed it, which frees its leases when
    -- it is closed.
    lease_owner   text,
    leased_until  timestamptz,
    lease_session text,
    PRIMARY KEY (message_id, seq)
) WITH (fillfactor = 85);

-- Due deliveries, front of the queue first: Claim and NextDue.
CREATE INDEX deliveries_due ON deliveries (next_attempt, message_id, seq)
    WHERE state IN ('queued', 'deferred');
-- Pending deliveries by age: Stats.Oldest and List of pending deliveries.
CREATE INDEX deliveries_pending_age ON deliveries (created_at, message_id, seq)
    WHERE state IN ('queued', 'deferred');

-- The review record of a quarantined message. It has its own copy of the
-- message record because it outlives the message: a released message is
-- collected once its deliveries are final, a discarded one at once.
CREATE TABLE holds (
    id          text PRIMARY KEY,
    received_at timestamptz NOT NULL,
    state       text NOT NULL CHECK (state IN ('held', 'released', 'deleted', 'expired')),
    rule        text NOT NULL,
    sender      text NOT NULL, -- lower case, for the case-insensitive filter
    client_ip   text NOT NULL,
    client_user text NOT NULL,
    message     json NOT NULL,
    resolution  json
);
CREATE INDEX holds_received ON holds (received_at, id);
CREATE INDEX holds_held ON holds (rule, received_at) WHERE state = 'held';

-- One approval per reviewer and hold; seq keeps the order they came in.
CREATE TABLE hold_approvals (
    hold_id text NOT NULL REFERENCES holds (id) ON DELETE CASCADE,
    actor   text NOT NULL,
    at      timestamptz NOT NULL,
    rewrite text NOT NULL,
    seq     bigint GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (hold_id, actor)
);

-- The audit log. IDs come from the sequence under a transaction-level
-- advisory lock, so they increase in commit order.
CREATE TABLE audit_log (
    id      bigint PRIMARY KEY,
    at      timestamptz NOT NULL,
    actor   text NOT NULL,
    action  text NOT NULL,
    target  text NOT NULL,
    outcome text NOT NULL,
    detail  text NOT NULL
);
CREATE SEQUENCE audit_log_id_seq AS bigint OWNED BY audit_log.id;
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_target ON audit_log (target, id);

-- Ping writes here: /readyz fails when the database cannot commit.
CREATE TABLE heartbeat (
    id integer PRIMARY KEY CHECK (id = 1),
    at timestamptz NOT NULL,
    by text NOT NULL
);
INSERT INTO heartbeat (id, at, by) VALUES (1, now(), 'migration 1');
