-- Holding under hostile traffic.

-- A blocked user cannot log in, and their tokens stop working (Auth0's `blocked`).
alter table app_user add column blocked bigint not null default 0;

-- Login transactions are bounded per browser: the oldest beyond the limit are dropped.
create index login_transaction_browser on login_transaction (browser_hash, created_at);

-- Login attempts are counted before the password is checked; old windows are pruned.
create index login_failure_window on login_failure (window_start);

-- Access-token lifetime per API (seconds), as Auth0's `token_lifetime`.
alter table resource_server add column token_lifetime bigint not null default 3600;

-- A rotated refresh token remembers its successor: a retry of a rotation whose answer was
-- lost (within the grace period) replaces the successor instead of revoking the family.
alter table refresh_token add column successor_hash bytea;
