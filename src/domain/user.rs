//! A user's profile: OIDC Core §5.1's standard claims other than email, one field list for the
//! stored row, the Management API, an Auth0 import and a rule's `user`.

use serde::{Deserialize, Serialize};

/// The standard claims of OIDC Core §5.1 a user has besides `email`.
#[warn(missing_docs)]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Profile {
    /// Full name.
    pub name: Option<String>,
    /// Given name.
    pub given_name: Option<String>,
    /// Family name.
    pub family_name: Option<String>,
    /// Nickname.
    pub nickname: Option<String>,
    /// Picture URL.
    pub picture: Option<String>,
    /// Username (the `preferred_username` claim).
    pub username: Option<String>,
}

impl Profile {
    /// Each field with its column name (the same as its JSON name), in declaration order.
    pub fn fields(&self) -> [(&'static str, &Option<String>); 6] {
        [
            ("name", &self.name),
            ("given_name", &self.given_name),
            ("family_name", &self.family_name),
            ("nickname", &self.nickname),
            ("picture", &self.picture),
            ("username", &self.username),
        ]
    }
}
