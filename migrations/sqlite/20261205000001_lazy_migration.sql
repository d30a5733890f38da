-- Lazy migration from an old Auth0 tenant (SPEC §16): where an imported user without a
-- password hash is checked at first login. One row per tenant, sealed with the master key
-- (it holds the old tenant's client secret).
create table lazy_migration (
    tenant_id   text primary key references tenant (id) on delete cascade,
    sealed      blob not null,
    created_at  integer not null
);
