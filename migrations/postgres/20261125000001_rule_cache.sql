-- Rules on the login path without per-login reads: every change to a tenant's rules or rule
-- settings bumps `rules_generation` in the same transaction, and nodes keep the rule list and
-- settings in memory for as long as the generation they read with the tenant is unchanged.
alter table tenant add column rules_generation bigint not null default 0;

-- Precompiled rule modules (wasmtime `Module::serialize`), shared by every node so that no
-- login waits for a compile. `fingerprint` names the engine that made it (wasmtime version and
-- settings); `mac` is an HMAC under a key derived from the master key: an artifact that does
-- not verify is never loaded (the module bytes are compiled again instead). `used_at` is when
-- a node last loaded it or found it in its cache: a restarting node warms its cache with the
-- most recently used artifacts before it reports ready.
create table rule_artifact (
    sha256       text not null,  -- hex SHA-256 of the wasm module
    fingerprint  text not null,
    mac          bytea not null,
    artifact     bytea not null,
    created_at   bigint not null,
    used_at      bigint not null default 0,
    primary key (sha256, fingerprint)
);
create index rule_artifact_recent on rule_artifact (fingerprint, used_at);
