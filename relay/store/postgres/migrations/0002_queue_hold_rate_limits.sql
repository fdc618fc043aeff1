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
-- calls sharing scopes never deadlock; the counting statement that follows
-- takes its snapshot once the locks are held, so it sees every count
-- committed before. The scopes of one call are distinct. For scope i: the
-- slots from firsts[i] on are counted; if a bound (max_*[i] > 0) would be
-- exceeded, nothing is added anywhere. One row per scope comes back: its
-- counts (after the additions when taken), whether it was over, and
-- whether everything was added. Set-based, two statements whatever the
-- number of scopes.
CREATE FUNCTION bccguard_rate_take(
    scopes text[], slots bigint[], firsts bigint[], expires timestamptz[],
    msgs bigint[], rcpts bigint[], max_msgs bigint[], max_rcpts bigint[])
RETURNS TABLE (messages bigint, recipients bigint, over boolean, taken boolean)
LANGUAGE plpgsql AS $$
BEGIN
    -- A count is not a message: its commit need not wait for the WAL
    -- flush. A database crash may lose the last moment's counts; MAIL FROM
    -- does not wait for a disk.
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM pg_advisory_xact_lock(1650681603, k)
    FROM (SELECT DISTINCT hashtext(coalesce(current_schema(), '') || '/' || s) AS k
          FROM unnest(scopes) AS s ORDER BY 1) AS keys;
    RETURN QUERY
    WITH req AS (
        SELECT * FROM unnest(scopes, slots, firsts, expires, msgs, rcpts, max_msgs, max_rcpts)
            WITH ORDINALITY AS q(scope, slot, first, expires, add_m, add_r, max_m, max_r, i)
    ), cur AS (
        SELECT req.*, coalesce(sum(c.messages), 0)::bigint AS cm, coalesce(sum(c.recipients), 0)::bigint AS cr
        FROM req LEFT JOIN rate_counts c ON c.scope = req.scope AND c.slot >= req.first
        GROUP BY req.scope, req.slot, req.first, req.expires, req.add_m, req.add_r, req.max_m, req.max_r, req.i
    ), chk AS (
        SELECT cur.*, (cur.max_m > 0 AND cur.cm + cur.add_m > cur.max_m) OR (cur.max_r > 0 AND cur.cr + cur.add_r > cur.max_r) AS ov
        FROM cur
    ), verdict AS (
        SELECT NOT coalesce(bool_or(chk.ov), false) AS ok FROM chk
    ), ins AS (
        INSERT INTO rate_counts AS c (scope, slot, messages, recipients, expires_at)
        SELECT chk.scope, chk.slot, chk.add_m, chk.add_r, chk.expires FROM chk, verdict
        WHERE verdict.ok AND (chk.add_m <> 0 OR chk.add_r <> 0)
        ON CONFLICT (scope, slot) DO UPDATE
            SET messages = c.messages + EXCLUDED.messages, recipients = c.recipients + EXCLUDED.recipients
    )
    SELECT CASE WHEN verdict.ok THEN chk.cm + chk.add_m ELSE chk.cm END,
           CASE WHEN verdict.ok THEN chk.cr + chk.add_r ELSE chk.cr END,
           chk.ov, verdict.ok
    FROM chk, verdict ORDER BY chk.i;
END
$$;
