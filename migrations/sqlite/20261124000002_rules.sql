-- Rules: tenant-uploaded wasm modules run in the token pipeline, their settings, and the
-- record of every execution.

create table rule (
    id          text primary key,
    tenant_id   text not null references tenant (id) on delete cascade,
    name        text not null,
    rule_order  integer not null,
    enabled     integer not null,
    sha256      text not null,  -- hex SHA-256 of module; nodes cache compiled code by it
    module      blob not null,  -- the wasm binary (WAT uploads are stored assembled)
    size        integer not null,
    created_at  integer not null,
    updated_at  integer not null,
    unique (tenant_id, name)
);
create index rule_tenant_order on rule (tenant_id, rule_order);

-- Rule settings ("configuration"); values sealed with the master key (aad = tenant id + key).
create table rule_config (
    tenant_id   text not null references tenant (id) on delete cascade,
    config_key  text not null,
    value       blob not null,
    updated_at  integer not null,
    primary key (tenant_id, config_key)
);

create table rule_execution (
    id           text primary key,
    tenant_id    text not null references tenant (id) on delete cascade,
    rule_id      text not null,
    rule_name    text not null,
    protocol     text not null,
    outcome      text not null, -- ok | denied | failed:<reason>
    duration_us  integer not null,
    fuel         integer not null,
    logs         text not null, -- JSON array of {level, message}
    created_at   integer not null
);
create index rule_execution_tenant_time on rule_execution (tenant_id, created_at);
