-- Scheduled campaigns (issue 16): the audience is walked zone by zone in user id order
-- (keyset pages), and each slot's fan-out records how far it got, so a crash resumes it.

CREATE INDEX profiles_zone ON profiles
    (tenant_id, (body->'attributes'->>'timezone'), user_id COLLATE "C");

CREATE TABLE schedule_slots (
    tenant_id   text NOT NULL,
    cursor_id   text NOT NULL,             -- campaign @ local date and time @ zone group
    campaign_id text NOT NULL,
    at          double precision NOT NULL, -- the slot's instant
    after_user  text,                      -- the last user settled (code point order)
    done        boolean NOT NULL DEFAULT false,
    updated_at  double precision NOT NULL,
    PRIMARY KEY (tenant_id, cursor_id)
);
CREATE INDEX schedule_slots_at ON schedule_slots (tenant_id, at);
