-- Usage per tenant and day (SPEC §18): every node adds its counts, so the figures are the same
-- whichever node answers. `day` is days since 1970-01-01 (UTC); `metric` is `logins`,
-- `grant:<grant_type>`, `rule_executions`, `action_executions`, `failures`, `denials`, `fuel`.
create table tenant_usage (
    tenant_id  text not null references tenant (id) on delete cascade,
    day        bigint not null,
    metric     text not null,
    value      bigint not null,
    primary key (tenant_id, day, metric)
);

-- The Management API client always holds every Management API scope: it gains read:stats.
update client_grant
   set scopes = replace(scopes, '"delete:actions"', '"delete:actions","read:stats"')
 where audience = 'urn:wardstone:management' and scopes not like '%read:stats%';
