-- Rules: tenant-uploaded wasm modules run in the token pipeline, their settings, and the
-- record of every execution.

create table rule (
    id          text primary key,
    tenant_id   text not null references tenant (id) on delete cascade,
    name        text not null,
    rule_order  bigint not null,
    enabled     bigint not null,
    sha256      text not null,  -- hex SHA-256 of module; nodes cache compiled code by it
    module      bytea not null,  -- the wasm binary (WAT uploads are stored assembled)
    size        bigint not null,
    created_at  bigint not null,
    updated_at  bigint not null,
    unique (tenant_id, name)
);
create index rule_tenant_order on rule (tenant_id, rule_order);

-- Rule settings ("configuration"); values sealed with the master key (aad = tenant id + key).
create table rule_config (
    tenant_id   text not null references tenant (id) on delete cascade,
    config_key  text not null,
    value       bytea not null,
    updated_at  bigint not null,
    primary key (tenant_id, config_key)
);

create table rule_execution (
    id           text primary key,
    tenant_id    text not null references tenant (id) on delete cascade,
    rule_id      text not null,
    rule_name    text not null,
    protocol     text not null,
    outcome      text not null, -- ok | denied | failed:<reason>
    duration_us  bigint not null,
    fuel         bigint not null,
    logs         text not null, -- JSON array of {level, message}
    created_at   bigint not null
);
create index rule_execution_tenant_time on rule_execution (tenant_id, created_at);
