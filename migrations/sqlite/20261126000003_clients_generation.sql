-- Bumped by every write to the tenant's clients: nodes keep clients in memory and use them only
-- at the generation of the tenant row each request reads (see oauth/registrar.rs).
alter table tenant add column clients_generation integer not null default 0;
