-- Auth0 Actions (SPEC §15): an action's draft, its immutable versions, and which deployed
-- actions run, in order, for each trigger. Every change that reaches logins (deploy, bindings,
-- secrets, deletion) bumps tenant.rules_generation, like rules.
create table action (
    id                text primary key,
    tenant_id         text not null references tenant (id) on delete cascade,
    name              text not null,
    trigger_id        text not null,            -- post-login | credentials-exchange
    trigger_version   text not null,            -- Auth0's trigger version, as given (v3, v2)
    runtime           text not null,            -- node18, node22: shown, not used
    code              text not null,            -- the draft
    dependencies      text not null,            -- JSON [{name, version}]
    secrets           blob,                     -- sealed JSON {name: value}
    secret_names      text not null,            -- JSON [{name, updated_at}]: what is shown
    deployed_version  integer,                  -- the live version's number; null: not deployed
    latest_version    integer not null,         -- versions made so far
    created_at        integer not null,
    updated_at        integer not null,
    unique (tenant_id, name)
);

create table action_version (
    id            text primary key,
    tenant_id     text not null references tenant (id) on delete cascade,
    action_id     text not null references action (id) on delete cascade,
    number        integer not null,
    code          text not null,
    sha256        text not null,                -- of the module bytes (the action mark + code)
    dependencies  text not null,
    runtime       text not null,
    created_at    integer not null,
    unique (action_id, number)
);

create table action_binding (
    id            text primary key,
    tenant_id     text not null references tenant (id) on delete cascade,
    trigger_id    text not null,
    position      integer not null,
    action_id     text not null references action (id) on delete cascade,
    display_name  text not null,
    created_at    integer not null,
    unique (tenant_id, trigger_id, position)
);
create index action_binding_action on action_binding (action_id);

-- A post-login run paused by an action's redirect waits in its login transaction (sealed).
alter table login_transaction add column resume blob;

-- The execution log records actions too.
alter table rule_execution add column kind text not null default 'rule';

-- The Management API client always holds every Management API scope: it gains the new ones.
update client_grant
   set scopes = replace(scopes, '"update:tenant_settings"', '"update:tenant_settings","read:actions","create:actions","update:actions","delete:actions"')
 where audience = 'urn:wardstone:management' and scopes not like '%:actions%';
