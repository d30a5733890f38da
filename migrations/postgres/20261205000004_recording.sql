-- Recording (SPEC §18): a tenant may keep the inputs of its last N pipeline runs (0: off, the
-- default) so a candidate rule or action can be replayed on them. Inputs are sealed with the
-- master key (associated data: the row id) and deleted with their user.
alter table tenant add column recording_keep bigint not null default 0;

create table recording (
    id          text primary key, -- uuid v7: time-ordered
    tenant_id   text not null references tenant (id) on delete cascade,
    user_id     text references app_user (user_id) on delete cascade, -- null: client credentials
    client_id   text not null,
    protocol    text not null,    -- oidc-basic-profile | oauth2-refresh-token | oauth2-client-credentials
    created_at  bigint not null,
    sealed      bytea not null    -- {"user", "context", "event"} as JSON, sealed
);
create index recording_tenant_time on recording (tenant_id, created_at);
create index recording_user on recording (tenant_id, user_id);
