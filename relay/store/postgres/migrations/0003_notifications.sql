-- The notification outbox: what bccguard has to tell security and senders
-- about held mail, queued in the transaction of the event (a hold, a
-- release, ...) and sent by whichever replica claims it, under a lease as
-- deliveries are.
--
-- key makes a notification unique for good (one notice per message, event
-- and channel; one digest per period however many replicas try): an
-- insert whose key is taken does nothing. Final rows are kept a while for
-- that, then purged (done_at).
CREATE TABLE notifications (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key           text NOT NULL UNIQUE,
    channel       text NOT NULL,
    event         text NOT NULL,
    message_id    text NOT NULL,
    payload       json NOT NULL,
    state         text NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts      integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL,
    next_attempt  timestamptz NOT NULL,
    done_at       timestamptz,
    last_error    text NOT NULL DEFAULT '',
    lease_owner   text,
    leased_until  timestamptz,
    lease_session text
) WITH (fillfactor = 85);

-- Due notifications, front first: ClaimNotifications and NextNotificationDue.
CREATE INDEX notifications_due ON notifications (next_attempt, id) WHERE state = 'pending';
-- Final ones by when they became final: PurgeNotifications.
CREATE INDEX notifications_done ON notifications (done_at) WHERE state <> 'pending';
