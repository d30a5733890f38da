-- Core schema: tenants and everything the authorization code grant needs.
-- Times are Unix seconds (bigint); ids are text; secrets are stored only as hashes or sealed.

-- A tenant is one isolated issuer: {public_url}/t/{name}.
create table tenant (
    id          text primary key,
    name        text not null unique,
    created_at  bigint not null
);

-- Signing keys; the private half is AES-256-GCM sealed with the master key (aad = kid).
create table signing_key (
    kid          text primary key,
    tenant_id    text not null references tenant (id) on delete cascade,
    alg          text not null,
    private_key  bytea not null,
    public_jwk   text not null,
    active       bigint not null default 1,
    created_at   bigint not null
);
create index signing_key_tenant on signing_key (tenant_id);

-- Applications (OAuth clients). secret_hash is sha256 of the secret; null for public clients.
create table client (
    client_id      text primary key,
    tenant_id      text not null references tenant (id) on delete cascade,
    name           text not null,
    secret_hash    bytea,
    redirect_uris  text not null, -- JSON array of exact callback URLs
    grant_types    text not null, -- JSON array
    metadata       text not null default '{}',
    created_at     bigint not null
);
create index client_tenant on client (tenant_id);

-- APIs (resource servers): the audience of access tokens and the scopes they define.
create table resource_server (
    id          text primary key,
    tenant_id   text not null references tenant (id) on delete cascade,
    identifier  text not null,
    name        text not null,
    scopes      text not null, -- JSON array of {value, description}
    created_at  bigint not null,
    unique (tenant_id, identifier)
);

-- End users of a tenant (the "Username-Password-Authentication" database connection).
create table app_user (
    user_id         text primary key,
    tenant_id       text not null references tenant (id) on delete cascade,
    email           text not null,
    email_verified  bigint not null default 0,
    password_hash   text not null,
    name            text,
    given_name      text,
    family_name     text,
    nickname        text,
    picture         text,
    username        text,
    app_metadata    text not null default '{}',
    user_metadata   text not null default '{}',
    logins_count    bigint not null default 0,
    last_login      bigint,
    created_at      bigint not null,
    updated_at      bigint not null,
    unique (tenant_id, email)
);

-- A pending /authorize request while the browser logs in and consents.
create table login_transaction (
    id_hash       bytea primary key,
    tenant_id     text not null references tenant (id) on delete cascade,
    client_id     text not null,
    request       text not null, -- JSON of the validated authorization request
    browser_hash  bytea not null, -- binds the transaction to the browser that started it
    logged_in_at  bigint,       -- set when the user authenticated during this transaction
    consented_at  bigint,       -- set when the user consented during this transaction
    created_at    bigint not null,
    expires_at    bigint not null
);

-- SSO sessions (cookie holds the id; only its hash is stored).
create table sso_session (
    id_hash     bytea primary key,
    tenant_id   text not null references tenant (id) on delete cascade,
    user_id     text not null references app_user (user_id) on delete cascade,
    auth_time   bigint not null,
    created_at  bigint not null,
    expires_at  bigint not null
);

-- Remembered consents per user, client and audience ('' = no API).
create table consent (
    tenant_id   text not null references tenant (id) on delete cascade,
    user_id     text not null references app_user (user_id) on delete cascade,
    client_id   text not null references client (client_id) on delete cascade,
    audience    text not null,
    scopes      text not null,
    updated_at  bigint not null,
    primary key (tenant_id, user_id, client_id, audience)
);

-- A grant: everything issued from one authorization code (the refresh-token family).
create table token_grant (
    id          text primary key,
    tenant_id   text not null references tenant (id) on delete cascade,
    client_id   text not null,
    user_id     text not null,
    created_at  bigint not null,
    revoked_at  bigint
);

create table authorization_code (
    code_hash       bytea primary key,
    tenant_id       text not null references tenant (id) on delete cascade,
    grant_id        text not null references token_grant (id) on delete cascade,
    client_id       text not null,
    user_id         text not null,
    redirect_uri    text not null,
    scope           text not null,
    audience        text,
    nonce           text,
    code_challenge  text,
    auth_time       bigint not null,
    session_id      text,
    claims          text not null default '{}', -- extra claims for the tokens
    created_at      bigint not null,
    expires_at      bigint not null,
    consumed_at     bigint
);

create table refresh_token (
    token_hash  bytea primary key,
    tenant_id   text not null references tenant (id) on delete cascade,
    grant_id    text not null references token_grant (id) on delete cascade,
    client_id   text not null,
    user_id     text not null,
    scope       text not null,
    audience    text,
    auth_time   bigint not null,
    session_id  text,
    created_at  bigint not null,
    expires_at  bigint not null,
    rotated_at  bigint
);
create index refresh_token_grant on refresh_token (grant_id);

-- Failed login counter per tenant and (username, client address).
create table login_failure (
    tenant_id     text not null references tenant (id) on delete cascade,
    throttle_key  text not null,
    failures      bigint not null,
    window_start  bigint not null,
    primary key (tenant_id, throttle_key)
);
