-- Management API: which client may get tokens for which API (client_credentials), and with
-- which scopes. The tenant's own Management API is `audience = 'urn:wardstone:management'`
-- (its URL follows the public URL, which may change).
create table client_grant (
    id          text primary key,
    tenant_id   text not null references tenant (id) on delete cascade,
    client_id   text not null references client (client_id) on delete cascade,
    audience    text not null,
    scopes      text not null, -- JSON array
    created_at  integer not null,
    unique (tenant_id, client_id, audience)
);

create index rule_execution_rule on rule_execution (tenant_id, rule_id, created_at);
create index app_user_tenant_created on app_user (tenant_id, created_at);
