-- Signing keys have a place in the rotation: next (published, not yet signing), current (signs),
-- previous (published, verifies), retired (neither), revoked (refused at once). At most one key
-- per tenant holds each of the first three places.
alter table signing_key add column status text not null default 'current';
alter table signing_key add column revoked_at integer;
update signing_key set status = case when active = 1 then 'current' else 'retired' end;
alter table signing_key drop column active;
create unique index signing_key_one_current on signing_key (tenant_id) where status = 'current';
create unique index signing_key_one_next on signing_key (tenant_id) where status = 'next';
create unique index signing_key_one_previous on signing_key (tenant_id) where status = 'previous';

-- The tenant's algorithm for new keys, and a generation bumped with every key change: every
-- request reads the tenant row, so every node sees a rotation at its next request.
alter table tenant add column signing_alg text not null default 'RS256';
alter table tenant add column keys_generation integer not null default 0;

-- Roles (Auth0 shapes): named sets of API permissions assigned to users.
create table role (
    id          text primary key,
    tenant_id   text not null references tenant (id) on delete cascade,
    name        text not null,
    description text not null default '',
    created_at  integer not null,
    unique (tenant_id, name)
);
create table role_permission (
    tenant_id                  text not null,
    role_id                    text not null references role (id) on delete cascade,
    resource_server_identifier text not null,
    permission_name            text not null,
    created_at                 integer not null,
    primary key (role_id, resource_server_identifier, permission_name)
);
create index role_permission_api on role_permission (tenant_id, resource_server_identifier);
create table user_role (
    tenant_id  text not null,
    user_id    text not null references app_user (user_id) on delete cascade,
    role_id    text not null references role (id) on delete cascade,
    created_at integer not null,
    primary key (tenant_id, user_id, role_id)
);
create index user_role_role on user_role (role_id);

-- RBAC per API.
alter table resource_server add column enforce_policies integer not null default 0;
alter table resource_server add column token_dialect text not null default 'access_token';

-- Auth0 client fields Wardstone stores (docs/management-api.md lists what each does).
alter table client add column app_type text;
alter table client add column is_first_party integer not null default 1;
alter table client add column description text not null default '';
alter table client add column logo_uri text;
alter table client add column id_token_lifetime integer;

-- The Management API client always holds every Management API scope (no path narrows it):
-- it gains the new ones.
update client_grant
   set scopes = replace(scopes, '"read:logs"', '"read:logs","read:roles","create:roles","update:roles","delete:roles","read:signing_keys","create:signing_keys","update:signing_keys"')
 where audience = 'urn:wardstone:management' and scopes not like '%read:roles%';
