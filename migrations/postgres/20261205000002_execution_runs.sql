-- The execution log keeps one row per pipeline run (every rule and action of one login,
-- refresh or client credentials grant) instead of one per execution: a login with ten rules
-- writes one row and one index entry per index, not ten (issue 23).
create table execution_run (
    id          text primary key, -- the newest entry's id
    tenant_id   text not null references tenant (id) on delete cascade,
    created_at  bigint not null,  -- the newest entry's time
    rule_ids    text not null,    -- ' rul_a rul_b ': what `?rule_id=` filters on
    outcomes    text not null,    -- ' ok denied ': what `?outcome=` filters on
    entries     text not null     -- JSON array of execution records, newest first
);
create index execution_run_tenant_time on execution_run (tenant_id, created_at);

-- The executions logged so far become runs of one entry each.
insert into execution_run (id, tenant_id, created_at, rule_ids, outcomes, entries)
select id, tenant_id, created_at, ' ' || rule_id || ' ', ' ' || outcome || ' ',
       jsonb_build_array(jsonb_build_object(
           'id', id, 'kind', kind, 'rule_id', rule_id, 'rule_name', rule_name,
           'protocol', protocol, 'outcome', outcome, 'duration_us', duration_us, 'fuel', fuel,
           'logs', logs::jsonb, 'created_at', created_at, 'rule_version', rule_version,
           'skipped', skipped <> 0))::text
  from rule_execution;

drop table rule_execution;
