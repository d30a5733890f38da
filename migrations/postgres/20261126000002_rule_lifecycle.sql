-- Rule versions: every module change is an immutable version; `rule.module` is the current one.
alter table rule add column version bigint not null default 1;
-- `deny` (fail closed) or `skip` (a failure is logged and the pipeline goes on without it).
alter table rule add column on_failure text not null default 'deny';
create table rule_version (
    tenant_id   text not null,
    rule_id     text not null references rule (id) on delete cascade,
    version     bigint not null,
    sha256      text not null,
    module      bytea not null,
    size        bigint not null,
    created_at  bigint not null,
    primary key (rule_id, version)
);
insert into rule_version (tenant_id, rule_id, version, sha256, module, size, created_at)
    select tenant_id, id, 1, sha256, module, size, updated_at from rule;
alter table rule_execution add column rule_version bigint not null default 0;
alter table rule_execution add column skipped bigint not null default 0;
-- Hosts rules may call through wardstone.http_fetch: JSON array of "host" or "host:port".
alter table tenant add column allowed_hosts text not null default '[]';

-- The Management API client always holds every Management API scope: it gains the new ones.
update client_grant
   set scopes = replace(scopes, '"update:signing_keys"', '"update:signing_keys","read:tenant_settings","update:tenant_settings"')
 where audience = 'urn:wardstone:management' and scopes not like '%tenant_settings%';
