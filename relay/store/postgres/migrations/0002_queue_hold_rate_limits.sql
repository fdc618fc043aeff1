-- Queue administration and rate limits.

-- A delivery an operator put on hold (bccguard queue hold) is in state
-- held: not claimable (the due index and Claim cover queued and deferred
-- only) and not aging towards the queue lifetime. held_since is when the
-- current hold began; held_for_us the microseconds it was held before.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_state_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_state_check
    CHECK (state IN ('queued', 'deferred', 'held', 'delivered', 'bounced', 'expired'));
ALTER TABLE deliveries ADD COLUMN held_since timestamptz;
ALTER TABLE deliveries ADD COLUMN held_for_us bigint NOT NULL DEFAULT 0;
-- Held deliveries by age: Stats and List of held deliveries.
CREATE INDEX deliveries_held ON deliveries (created_at, message_id, seq)
    WHERE state = 'held';

-- Rate limit counts, shared by every replica: one row per scope (a limit
-- and the value of its key, with the window in the name) and slot of
-- 1/60 of the window. expires_at is when the slot has left its window;
-- rows past it are deleted from time to time.
CREATE TABLE rate_counts (
    scope      text NOT NULL,
    slot       bigint NOT NULL,
    messages   bigint NOT NULL,
    recipients bigint NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (scope, slot)
);
CREATE INDEX rate_counts_expires ON rate_counts (expires_at);

-- bccguard_rate_take checks and adds one mail transaction's counts to
-- several scopes at once, all or nothing, in one round trip. Each scope is
-- serialised by a transaction advisory lock (class 0x62636703, "bcg" 3;
-- the two-key form, apart from the single-key space; the second key
-- hashes the schema and the scope), taken in the order of the keys so two
-- calls sharing scopes never deadlock. The scopes of one call are
-- distinct. For scope
-- i: count the slots from firsts[i] on; if a bound (max_*[i] > 0) would
-- be exceeded, nothing is added anywhere. It returns one row per scope:
-- its counts (after the additions when ok), whether it was over, and
-- whether everything was added.
CREATE FUNCTION bccguard_rate_take(
    scopes text[], slots bigint[], firsts bigint[], expires timestamptz[],
    msgs bigint[], rcpts bigint[], max_msgs bigint[], max_rcpts bigint[])
RETURNS TABLE (messages bigint, recipients bigint, over boolean, taken boolean)
LANGUAGE plpgsql AS $$
DECLARE
    n  int := coalesce(array_length(scopes, 1), 0);
    m  bigint[] := array_fill(0::bigint, ARRAY[n]);
    r  bigint[] := array_fill(0::bigint, ARRAY[n]);
    ov boolean[] := array_fill(false, ARRAY[n]);
    ok boolean := true;
    cm bigint;
    cr bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(1650681603, k)
    FROM (SELECT DISTINCT hashtext(coalesce(current_schema(), '') || '/' || s) AS k
          FROM unnest(scopes) AS s ORDER BY 1) AS keys;
    FOR i IN 1..n LOOP
        SELECT coalesce(sum(c.messages), 0), coalesce(sum(c.recipients), 0) INTO cm, cr
        FROM rate_counts c WHERE c.scope = scopes[i] AND c.slot >= firsts[i];
        m[i] := cm;
        r[i] := cr;
        IF (max_msgs[i] > 0 AND m[i] + msgs[i] > max_msgs[i])
           OR (max_rcpts[i] > 0 AND r[i] + rcpts[i] > max_rcpts[i]) THEN
            ov[i] := true;
            ok := false;
        END IF;
    END LOOP;
    IF ok THEN
        FOR i IN 1..n LOOP
            CONTINUE WHEN msgs[i] = 0 AND rcpts[i] = 0;
            INSERT INTO rate_counts AS c (scope, slot, messages, recipients, expires_at)
            VALUES (scopes[i], slots[i], msgs[i], rcpts[i], expires[i])
            ON CONFLICT (scope, slot) DO UPDATE
                SET messages = c.messages + EXCLUDED.messages, recipients = c.recipients + EXCLUDED.recipients;
        END LOOP;
        FOR i IN 1..n LOOP
            m[i] := m[i] + msgs[i];
            r[i] := r[i] + rcpts[i];
        END LOOP;
    END IF;
    RETURN QUERY SELECT m[i], r[i], ov[i], ok FROM generate_series(1, n) AS i;
END
$$;
