-- OpenID Connect RP-Initiated Logout: where each application may send the browser after a
-- logout (JSON array of exact URLs, Auth0's `allowed_logout_urls`).
alter table client add column logout_urls text not null default '[]';
