-- A grant is created by its authorization code, so the code's columns live in the grant's row:
-- issuing a code is one INSERT (it was a transaction of two), and pruning a grant prunes its
-- code. Columns added to an existing table cannot be NOT NULL here; every grant row written
-- by the server sets them all.
alter table token_grant add column code_hash bytea;
alter table token_grant add column redirect_uri text;
alter table token_grant add column scope text;
alter table token_grant add column audience text;
alter table token_grant add column nonce text;
alter table token_grant add column code_challenge text;
alter table token_grant add column auth_time bigint;
alter table token_grant add column session_id text;
alter table token_grant add column claims text;
alter table token_grant add column expires_at bigint;
alter table token_grant add column consumed_at bigint;

update token_grant set (code_hash, redirect_uri, scope, audience, nonce, code_challenge, auth_time,
                        session_id, claims, expires_at, consumed_at) =
    (select code_hash, redirect_uri, scope, audience, nonce, code_challenge, auth_time,
            session_id, claims, expires_at, consumed_at
     from authorization_code c where c.grant_id = token_grant.id);

-- Grants without a code (none are written) cannot be redeemed; drop any left.
delete from token_grant where code_hash is null;

create unique index token_grant_code on token_grant (code_hash);
create index token_grant_expiry on token_grant (expires_at);
drop table authorization_code;
