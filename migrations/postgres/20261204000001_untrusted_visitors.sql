-- Attempts whose password is being checked right now, apart from the failures: a burst of
-- concurrent logins is told "busy", never "too many failed attempts", and un-counted when the
-- check ends (see oauth/authorize/throttle.rs).
alter table login_failure add column pending bigint not null default 0;

-- Where an account signed in before (a hash of the account and the client's address or /64):
-- from such a place the owner's password is still checked while the account's own counter is
-- over its limit, so a stranger who knows an email cannot keep its owner out.
create table login_place (
    tenant_id     text not null references tenant (id) on delete cascade,
    place_hash    text not null,
    last_success  bigint not null,
    primary key (tenant_id, place_hash)
);
create index login_place_age on login_place (last_success);

-- Logout follows post_logout_redirect_uri only for a session that signed in to that client.
create index token_grant_session on token_grant (tenant_id, session_id);
