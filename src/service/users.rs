//! Users of a tenant's database connection.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{Admin, AdminError, internal};
use crate::crypto::{hex, random_bytes};
use crate::domain::{DisplayName, Email, Password, Profile, Tenant};
use crate::store::{NewUser, StoreError, UserChanges, UserRecord};

/// A user as the Management API shows it (never the password hash).
#[warn(missing_docs)]
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    /// Id.
    pub user_id: String,
    /// Email.
    pub email: String,
    /// Whether the email is verified.
    pub email_verified: bool,
    /// Name fields, nickname, picture, username.
    #[serde(flatten)]
    pub profile: Profile,
    /// App metadata.
    #[schema(value_type = Object)]
    pub app_metadata: Value,
    /// User metadata.
    #[schema(value_type = Object)]
    pub user_metadata: Value,
    /// Successful logins.
    pub logins_count: i64,
    /// Last login (Unix seconds).
    pub last_login: Option<i64>,
    /// Creation time.
    pub created_at: i64,
    /// Last change.
    pub updated_at: i64,
    /// Whether the user is blocked from logging in.
    pub blocked: bool,
}

impl From<UserRecord> for UserView {
    fn from(u: UserRecord) -> Self {
        UserView {
            app_metadata: Value::Object(u.app_metadata.0.clone()),
            user_metadata: Value::Object(u.user_metadata.0.clone()),
            email_verified: *u.email_verified,
            user_id: u.user_id,
            email: u.email,
            profile: u.profile,
            logins_count: u.logins_count,
            last_login: u.last_login,
            created_at: u.created_at,
            updated_at: u.updated_at,
            blocked: *u.blocked,
        }
    }
}

/// What creating a user takes.
#[warn(missing_docs)]
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserInput {
    /// Email (unique in the tenant).
    pub email: String,
    /// Password (8 to 1024 characters).
    pub password: String,
    /// Full name.
    pub name: Option<String>,
    /// Default false.
    #[serde(default)]
    pub email_verified: bool,
    /// App metadata (object).
    #[schema(value_type = Option<Object>)]
    pub app_metadata: Option<Value>,
    /// User metadata (object).
    #[schema(value_type = Option<Object>)]
    pub user_metadata: Option<Value>,
}

/// What updating a user may change. Metadata is merged at the first level (`null` removes a
/// key), as Auth0 does. A new `password` ends the user's sessions and revokes their tokens; a
/// new `email` is unverified unless `email_verified` says otherwise; `blocked` stops logins and
/// revokes the user's tokens.
#[warn(missing_docs)]
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// New email.
    pub email: Option<String>,
    /// New verification flag.
    pub email_verified: Option<bool>,
    /// New password.
    pub password: Option<String>,
    /// Block (true) or unblock (false) the user.
    pub blocked: Option<bool>,
    /// Full name (`null` clears it).
    #[serde(default, deserialize_with = "nullable")]
    pub name: Option<Option<String>>,
    /// Given name.
    #[serde(default, deserialize_with = "nullable")]
    pub given_name: Option<Option<String>>,
    /// Family name.
    #[serde(default, deserialize_with = "nullable")]
    pub family_name: Option<Option<String>>,
    /// Nickname.
    #[serde(default, deserialize_with = "nullable")]
    pub nickname: Option<Option<String>>,
    /// Picture URL.
    #[serde(default, deserialize_with = "nullable")]
    pub picture: Option<Option<String>>,
    /// Username.
    #[serde(default, deserialize_with = "nullable")]
    pub username: Option<Option<String>>,
    /// Merged into app_metadata.
    #[schema(value_type = Option<Object>)]
    pub app_metadata: Option<Value>,
    /// Merged into user_metadata.
    #[schema(value_type = Option<Object>)]
    pub user_metadata: Option<Value>,
}

fn nullable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::<String>::deserialize(d)?))
}

fn metadata_object(what: &str, v: &Value) -> Result<Map<String, Value>, AdminError> {
    let Value::Object(map) = v else {
        return Err(AdminError::Invalid(format!("{what} must be a JSON object")));
    };
    if v.to_string().len() > 16 * 1024 {
        return Err(AdminError::Invalid(format!("{what} is larger than 16 KiB")));
    }
    Ok(map.clone())
}

fn optional_text(
    what: &str,
    v: &Option<Option<String>>,
) -> Result<Option<Option<String>>, AdminError> {
    match v {
        None => Ok(None),
        Some(None) => Ok(Some(None)),
        Some(Some(s)) => Ok(Some(Some(
            DisplayName::parse(what, s)?.as_str().to_string(),
        ))),
    }
}

impl Admin {
    async fn hash(&self, password: &Password) -> Result<String, AdminError> {
        self.passwords
            .hash(password.expose().to_string())
            .await
            .map_err(|e| AdminError::Busy(format!("{e}; try again in a moment")))
    }
}

impl Admin {
    /// Creates a user with the CLI's options.
    pub async fn create_user(
        &self,
        tenant: &Tenant,
        email: &str,
        password: &str,
        name: Option<&str>,
        email_verified: bool,
    ) -> Result<UserView, AdminError> {
        self.create_user_with(
            tenant,
            NewUserInput {
                email: email.into(),
                password: password.into(),
                name: name.map(String::from),
                email_verified,
                app_metadata: None,
                user_metadata: None,
            },
        )
        .await
    }

    /// Creates a user; the password is hashed with argon2id.
    pub async fn create_user_with(
        &self,
        tenant: &Tenant,
        input: NewUserInput,
    ) -> Result<UserView, AdminError> {
        let email = Email::parse(&input.email)?;
        let password = Password::parse(&input.password)?;
        let name = input
            .name
            .as_deref()
            .map(|n| DisplayName::parse("name", n))
            .transpose()?;
        let app = input
            .app_metadata
            .as_ref()
            .map(|v| metadata_object("app_metadata", v))
            .transpose()?;
        let user_meta = input
            .user_metadata
            .as_ref()
            .map(|v| metadata_object("user_metadata", v))
            .transpose()?;
        let record = NewUser {
            user_id: format!("auth0|{}", hex(&random_bytes(12))),
            tenant_id: tenant.id.clone(),
            email: email.as_str().to_string(),
            email_verified: input.email_verified,
            password_hash: self.hash(&password).await?,
            name: name.map(|n| n.as_str().to_string()),
            created_at: self.clock.now(),
        };
        let app = Value::Object(app.unwrap_or_default()).to_string();
        let user_meta = Value::Object(user_meta.unwrap_or_default()).to_string();
        match self.store.insert_user(&record, &app, &user_meta).await {
            Ok(()) => {}
            Err(StoreError::Conflict) => {
                return Err(AdminError::Conflict(format!(
                    "a user with email {} already exists",
                    email.as_str()
                )));
            }
            Err(e) => return Err(internal(e)),
        }
        self.get_user_in(&tenant.id, &record.user_id).await
    }

    async fn get_user_in(&self, tenant_id: &str, user_id: &str) -> Result<UserView, AdminError> {
        Ok(self
            .store
            .user(tenant_id, user_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| AdminError::NotFound(format!("user {user_id:?} does not exist")))?
            .into())
    }

    /// Users, oldest first; `email` finds one user.
    pub async fn list_users(
        &self,
        tenant: &Tenant,
        email: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<UserView>, AdminError> {
        let email = email.map(|e| e.trim().to_lowercase());
        let users = self
            .store
            .list_users(&tenant.id, email.as_deref(), offset, limit)
            .await
            .map_err(internal)?;
        Ok(users.into_iter().map(UserView::from).collect())
    }

    pub async fn get_user(&self, tenant: &Tenant, user_id: &str) -> Result<UserView, AdminError> {
        self.get_user_in(&tenant.id, user_id).await
    }

    /// Changes a user (profile, email, password, metadata) in one statement.
    pub async fn update_user(
        &self,
        tenant: &Tenant,
        user_id: &str,
        patch: UserPatch,
    ) -> Result<UserView, AdminError> {
        let email = patch.email.as_deref().map(Email::parse).transpose()?;
        let password = patch.password.as_deref().map(Password::parse).transpose()?;
        let app_patch = patch
            .app_metadata
            .as_ref()
            .map(|v| metadata_object("app_metadata", v))
            .transpose()?;
        let user_patch = patch
            .user_metadata
            .as_ref()
            .map(|v| metadata_object("user_metadata", v))
            .transpose()?;
        let mut changes = UserChanges {
            email: email.map(|e| e.as_str().to_string()),
            email_verified: patch.email_verified,
            name: optional_text("name", &patch.name)?,
            given_name: optional_text("given_name", &patch.given_name)?,
            family_name: optional_text("family_name", &patch.family_name)?,
            nickname: optional_text("nickname", &patch.nickname)?,
            picture: optional_text("picture", &patch.picture)?,
            username: optional_text("username", &patch.username)?,
            blocked: patch.blocked,
            max_metadata_bytes: Some(self.rules.engine().limits().metadata_bytes),
            ..UserChanges::default()
        };
        let current = self
            .store
            .user(&tenant.id, user_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| AdminError::NotFound(format!("user {user_id:?} does not exist")))?;
        // A new address is not verified until someone says it is.
        if changes.email.as_ref().is_some_and(|e| *e != current.email)
            && changes.email_verified.is_none()
        {
            changes.email_verified = Some(false);
        }
        changes.app_metadata_patch = app_patch;
        changes.user_metadata_patch = user_patch;
        if let Some(p) = &password {
            changes.password_hash = Some(self.hash(p).await?);
        }
        let now = self.clock.now();
        match self
            .store
            .update_user(&tenant.id, user_id, &changes, now)
            .await
        {
            Ok(true) => {}
            Err(StoreError::TooLarge(what)) => return Err(AdminError::TooLarge(what)),
            Ok(false) => {
                return Err(AdminError::NotFound(format!(
                    "user {user_id:?} does not exist"
                )));
            }
            Err(StoreError::Conflict) => {
                return Err(AdminError::Conflict(
                    "a user with this email already exists".into(),
                ));
            }
            Err(e) => return Err(internal(e)),
        }
        // Whoever held the old password, or a blocked user, keeps nothing: sessions end and
        // every grant is revoked (its access tokens turn inactive at introspection and
        // userinfo, its refresh tokens stop working).
        if password.is_some() || patch.blocked == Some(true) {
            self.store
                .end_user_access(&tenant.id, user_id, now)
                .await
                .map_err(internal)?;
        }
        self.get_user_in(&tenant.id, user_id).await
    }

    /// Deletes a user with their sessions, consents and tokens.
    pub async fn delete_user(&self, tenant: &Tenant, user_id: &str) -> Result<(), AdminError> {
        if !self
            .store
            .delete_user(&tenant.id, user_id)
            .await
            .map_err(internal)?
        {
            return Err(AdminError::NotFound(format!(
                "user {user_id:?} does not exist"
            )));
        }
        Ok(())
    }
}
