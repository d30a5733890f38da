//! Users from Auth0: the bulk-import JSON array or the export job's NDJSON, read as a stream
//! (never the whole file in memory), twice — once to check every line, once to write — so a bad
//! line stops the import before anything is written, and the write is one transaction.
//!
//! Imported password hashes are stored as they are and verified at the user's first login,
//! where they are replaced by argon2id (`passwords::Passwords::check`); nothing is hashed here.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use super::stream::for_each_object;
use crate::crypto::random_bytes;
use crate::domain::{Email, Profile, Tenant};
use crate::passwords::{HashKind, check_imported_hash};
use crate::service::{Admin, AdminError};
use crate::store::{IMPORT_BATCH, ImportedUser};

/// Longest profile text kept.
const MAX_TEXT: usize = 2048;
/// Largest metadata object, as the Management API allows.
const MAX_METADATA: usize = 16 * 1024;

/// What the users' part of an import did.
#[derive(Debug, Clone, Serialize)]
pub struct UsersReport {
    pub file: String,
    pub read: usize,
    /// Users created (a dry run: that would be created, at most).
    pub created: usize,
    /// Users already in the tenant (same id or email), left as they are.
    pub unchanged: usize,
    /// Users not imported, with the reason, at most 20 listed (`skipped_total` counts all).
    pub skipped: Vec<String>,
    /// All users not imported.
    pub skipped_total: usize,
    /// Users with an imported password hash, by algorithm.
    pub password_hashes: BTreeMap<String, usize>,
    /// Users without a password here: checked against the old tenant at their first login
    /// when lazy migration is set, otherwise they need a password reset.
    pub without_password: usize,
    /// Whether the tenant migrates lazily (set by this import or before).
    pub lazy_migration: bool,
    /// Seconds the write took.
    pub seconds: f64,
    /// A dry run: `created` counts the users that would be created at most (those already in
    /// the tenant are left as they are).
    pub dry_run: bool,
}

impl UsersReport {
    /// One line for people.
    pub fn line(&self) -> String {
        let hashes: Vec<String> = self
            .password_hashes
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        let mut line = format!(
            "users ({}): {} read, {} {}, {} unchanged, {} skipped; password hashes: {}; without a password: {}{}",
            self.file,
            self.read,
            self.created,
            if self.dry_run {
                "to create at most (users already in the tenant are left as they are)"
            } else {
                "created"
            },
            self.unchanged,
            self.skipped_total,
            if hashes.is_empty() {
                "none".into()
            } else {
                hashes.join(", ")
            },
            self.without_password,
            match (self.without_password, self.lazy_migration) {
                (0, _) => "",
                (_, true) => " (checked against the old tenant at their first login)",
                (_, false) => " (they need a password reset, or --lazy-from)",
            }
        );
        for s in &self.skipped {
            line.push_str(&format!("\n  skipped: {s}"));
        }
        line
    }
}

/// The result of the checking pass.
#[derive(Debug, Clone)]
pub struct CheckedUsers {
    /// For emails that appear more than once: the position of the user kept.
    keep: HashMap<String, usize>,
    file: String,
    read: usize,
    skipped: Vec<String>,
    skipped_total: usize,
    hashes: BTreeMap<String, usize>,
    without_password: usize,
}

impl CheckedUsers {
    /// The report of a dry run (or the starting point of a real one).
    pub fn report(&self, dry_run: bool) -> UsersReport {
        UsersReport {
            file: self.file.clone(),
            read: self.read,
            created: if dry_run {
                self.read - self.skipped_total
            } else {
                0
            },
            unchanged: 0,
            skipped: self.skipped.clone(),
            skipped_total: self.skipped_total,
            password_hashes: self.hashes.clone(),
            without_password: self.without_password,
            lazy_migration: false,
            seconds: 0.0,
            dry_run,
        }
    }
}

/// One user as read: the row, or why it is not imported.
enum Read1 {
    /// The row, its role names, and the algorithm of its imported hash (if it has one).
    User(Box<ImportedUser>, Vec<String>, Option<String>),
    Skip(String),
}

fn text(map: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            if s.len() > MAX_TEXT || s.chars().any(char::is_control) {
                Err(format!(
                    "{key} is longer than {MAX_TEXT} bytes or holds control characters"
                ))
            } else {
                Ok(Some(s.clone()))
            }
        }
        Some(_) => Err(format!("{key} is not a string")),
    }
}

fn metadata(map: &Map<String, Value>, key: &str) -> Result<String, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok("{}".into()),
        Some(v @ Value::Object(_)) => {
            let s = v.to_string();
            if s.len() > MAX_METADATA {
                Err(format!("{key} is larger than 16 KiB"))
            } else {
                Ok(s)
            }
        }
        Some(_) => Err(format!("{key} is not an object")),
    }
}

fn created_at(map: &Map<String, Value>, now: i64) -> i64 {
    match map.get("created_at") {
        Some(Value::String(s)) => {
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                .map(|t| t.unix_timestamp())
                .unwrap_or(now)
        }
        Some(Value::Object(o)) => o
            .get("$date")
            .and_then(Value::as_str)
            .and_then(|s| {
                time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()
            })
            .map(|t| t.unix_timestamp())
            .unwrap_or(now),
        _ => now,
    }
}

/// Reads one user object; `Err` is bad input (the import stops), `Skip` a user Wardstone
/// cannot hold.
fn read_user(v: Value, roles: &BTreeSet<String>, now: i64) -> Result<Read1, String> {
    let Value::Object(map) = v else {
        return Err("not a JSON object".into());
    };
    let user_id = text(&map, "user_id")?;
    let label = user_id.clone().unwrap_or_default();
    let Some(email) = text(&map, "email")? else {
        return Ok(Read1::Skip(format!(
            "{label}: no email (Wardstone signs users in by email)"
        )));
    };
    let email = Email::parse(&email).map_err(|e| e.0)?;
    if let Some(id) = &user_id
        && (id.is_empty() || id.len() > 255)
    {
        return Err("user_id must be 1 to 255 characters".into());
    }
    let flag = |key: &str| -> Result<bool, String> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(_) => Err(format!("{key} is not true or false")),
        }
    };
    let (algorithm, hash) = match (map.get("custom_password_hash"), map.get("password_hash")) {
        (Some(c), _) if !c.is_null() => {
            let algorithm = c
                .get("algorithm")
                .and_then(Value::as_str)
                .ok_or("custom_password_hash has no algorithm")?;
            let value = c
                .get("hash")
                .and_then(|h| h.get("value"))
                .and_then(Value::as_str)
                .ok_or("custom_password_hash has no hash.value")?;
            (Some(algorithm.to_string()), Some(value.to_string()))
        }
        (_, Some(Value::String(h))) => (Some("bcrypt".into()), Some(h.clone())),
        _ => (None, None),
    };
    let password_hash = match (algorithm.as_deref(), hash) {
        (None, _) | (_, None) => String::new(),
        (Some(alg), Some(hash)) => {
            let kind = match alg {
                "bcrypt" => HashKind::Bcrypt,
                "argon2" => HashKind::Argon2,
                "pbkdf2" => HashKind::Pbkdf2,
                other => {
                    return Err(format!(
                        "password hash algorithm {other:?} is not one Wardstone verifies (bcrypt, argon2, pbkdf2); import the user without it for a reset or lazy migration"
                    ));
                }
            };
            check_imported_hash(kind, &hash)?
        }
    };
    let role_names: Vec<String> = match map.get("roles") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|r| {
                r.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| "roles must be role names".to_string())
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("roles is not a list of role names".into()),
    };
    if let Some(r) = role_names.iter().find(|r| !roles.contains(*r)) {
        return Err(format!(
            "role {r:?} is neither in the tenant nor in the export"
        ));
    }
    // Auth0's bulk import prefixes a bare id with the connection's strategy; its export job
    // writes ids that already carry one (`auth0|…`, `google-oauth2|…`).
    let user_id = match user_id {
        Some(id) if id.contains('|') => id,
        Some(id) => format!("auth0|{id}"),
        None => format!("auth0|{}", crate::crypto::hex(&random_bytes(12))),
    };
    let user = ImportedUser {
        user_id,
        email: email.as_str().to_string(),
        email_verified: flag("email_verified")?,
        password_hash,
        profile: Profile {
            name: text(&map, "name")?,
            given_name: text(&map, "given_name")?,
            family_name: text(&map, "family_name")?,
            nickname: text(&map, "nickname")?
                .or_else(|| email.as_str().split('@').next().map(str::to_string)),
            picture: text(&map, "picture")?,
            username: text(&map, "username")?,
        },
        app_metadata: metadata(&map, "app_metadata")?,
        user_metadata: metadata(&map, "user_metadata")?,
        blocked: flag("blocked")?,
        created_at: created_at(&map, now),
        role_ids: Vec::new(),
    };
    let algorithm = (!user.password_hash.is_empty())
        .then_some(algorithm)
        .flatten();
    Ok(Read1::User(Box::new(user), role_names, algorithm))
}

/// The checking pass (off the async workers: it reads and parses the whole file).
pub async fn check_file(path: &Path, roles: &BTreeSet<String>) -> Result<CheckedUsers, AdminError> {
    let path: PathBuf = path.to_path_buf();
    let roles = roles.clone();
    tokio::task::spawn_blocking(move || {
        let mut checked = CheckedUsers {
            keep: HashMap::new(),
            file: path.display().to_string(),
            read: 0,
            skipped: Vec::new(),
            skipped_total: 0,
            hashes: BTreeMap::new(),
            without_password: 0,
        };
        // Every id once; an email once (Auth0 keeps a social and a database user with the same
        // email apart; Wardstone signs users in by email): the one with a password wins, then
        // the database user, then the first.
        let mut ids: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut emails: HashMap<String, (usize, u8, String)> = HashMap::new();
        let mut duplicates: Vec<(usize, String)> = Vec::new();
        for_each_object(&path, |v, at| {
            checked.read += 1;
            let position = checked.read;
            match read_user(v, &roles, 0)
                .map_err(|e| AdminError::Invalid(format!("{}: {e}", at())))?
            {
                Read1::User(u, _, algorithm) => {
                    if !ids.insert(u.user_id.clone()) {
                        return Err(AdminError::Invalid(format!(
                            "{}: user_id {} appears twice in the file",
                            at(),
                            u.user_id
                        )));
                    }
                    let score = 2 * u8::from(!u.password_hash.is_empty())
                        + u8::from(u.user_id.starts_with("auth0|"));
                    match emails.get_mut(&u.email) {
                        None => {
                            emails.insert(u.email.clone(), (position, score, at()));
                        }
                        Some(best) => {
                            let (lost, lost_at) = if score > best.1 {
                                let old = (best.0, best.2.clone());
                                *best = (position, score, at());
                                old
                            } else {
                                (position, at())
                            };
                            checked.keep.insert(u.email.clone(), best.0);
                            duplicates.push((lost, format!(
                                "{lost_at}: the same email as {} (Wardstone holds one user per email; kept the one with a password, else the database user, else the first)",
                                best.2
                            )));
                        }
                    }
                    if u.password_hash.is_empty() {
                        checked.without_password += 1;
                    } else if let Some(k) = algorithm {
                        *checked.hashes.entry(k).or_default() += 1;
                    }
                }
                Read1::Skip(why) => {
                    checked.skipped_total += 1;
                    if checked.skipped.len() < 20 {
                        checked.skipped.push(format!("{}: {why}", at()));
                    }
                }
            }
            Ok(())
        })?;
        checked.skipped_total += duplicates.len();
        for (_, why) in duplicates {
            if checked.skipped.len() < 20 {
                checked.skipped.push(why);
            }
        }
        Ok(checked)
    })
    .await
    .map_err(|e| AdminError::Internal(e.into()))?
}

impl Admin {
    /// The writing pass: every user in one transaction, in batches; existing users (same id or
    /// email in this tenant) are left as they are.
    pub(super) async fn import_users(
        &self,
        tenant: &Tenant,
        path: &Path,
        checked: CheckedUsers,
    ) -> Result<UsersReport, AdminError> {
        let started = std::time::Instant::now();
        let role_ids: HashMap<String, String> = self
            .list_roles(tenant, 0, 10_000)
            .await?
            .into_iter()
            .map(|r| (r.name, r.id))
            .collect();
        let now = self.clock.now();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<ImportedUser>>(4);
        let reader = {
            let path = path.to_path_buf();
            let role_names: BTreeSet<String> = role_ids.keys().cloned().collect();
            let role_ids = role_ids.clone();
            let keep = checked.keep.clone();
            tokio::task::spawn_blocking(move || -> Result<(), AdminError> {
                let mut batch = Vec::with_capacity(IMPORT_BATCH);
                let mut position = 0usize;
                for_each_object(&path, |v, at| {
                    position += 1;
                    match read_user(v, &role_names, now)
                        .map_err(|e| AdminError::Invalid(format!("{}: {e}", at())))?
                    {
                        Read1::User(u, _, _)
                            if keep.get(&u.email).is_some_and(|k| *k != position) => {}
                        Read1::User(mut u, names, _) => {
                            u.role_ids = names
                                .iter()
                                .filter_map(|n| role_ids.get(n).cloned())
                                .collect();
                            batch.push(*u);
                        }
                        Read1::Skip(_) => {}
                    }
                    if batch.len() == IMPORT_BATCH {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(IMPORT_BATCH));
                        tx.blocking_send(full).map_err(|_| {
                            AdminError::Internal(anyhow::anyhow!("the import's writer stopped"))
                        })?;
                    }
                    Ok(())
                })?;
                if !batch.is_empty() {
                    let _ = tx.blocking_send(batch);
                }
                Ok(())
            })
        };
        let mut import = self
            .store
            .begin_user_import(&tenant.id)
            .await
            .map_err(super::super::internal)?;
        let mut created = 0usize;
        let mut unchanged = 0usize;
        let mut elsewhere = Vec::new();
        let mut elsewhere_total = 0usize;
        while let Some(batch) = rx.recv().await {
            let inserted = import
                .insert(&batch)
                .await
                .map_err(super::super::internal)?;
            created += inserted.len();
            if inserted.len() < batch.len() {
                let fresh: BTreeSet<&String> = inserted.iter().collect();
                let rest: Vec<&ImportedUser> = batch
                    .iter()
                    .filter(|u| !fresh.contains(&u.user_id))
                    .collect();
                let ids: Vec<String> = rest.iter().map(|u| u.user_id.clone()).collect();
                let emails: Vec<String> = rest.iter().map(|u| u.email.clone()).collect();
                let here = import
                    .existing(&ids, &emails)
                    .await
                    .map_err(super::super::internal)?
                    .min(rest.len());
                unchanged += here;
                if here < rest.len() {
                    elsewhere_total += rest.len() - here;
                    if elsewhere.len() < 20 {
                        elsewhere.push(format!(
                            "{} user(s) of this batch, e.g. {}: user_id taken by another tenant of this server",
                            rest.len() - here,
                            rest[0].user_id
                        ));
                    }
                }
            }
        }
        // A reader failure (it cannot happen after the checking pass, unless the file changed
        // in between) drops the transaction: nothing is written.
        reader.await.map_err(|e| AdminError::Internal(e.into()))??;
        import.commit().await.map_err(super::super::internal)?;
        let mut report = checked.report(false);
        report.created = created;
        report.unchanged = unchanged;
        report.skipped_total += elsewhere_total;
        report.skipped.extend(elsewhere);
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }
}
