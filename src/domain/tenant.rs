/// A tenant resolved from the URL or the command line: what every layer needs to act for it.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: String,
    /// Name (path segment).
    pub name: String,
    /// `{public_url}/t/{name}`.
    pub issuer: String,
    /// The generation of its rules and rule settings, read with the tenant (see `rules/`).
    pub rules_generation: i64,
    /// The algorithm of its new signing keys.
    pub signing_alg: super::SigningAlg,
    /// The generation of its signing keys, read with the tenant (see `tokens/`).
    pub keys_generation: i64,
    /// The generation of its clients, read with the tenant (see `oauth/registrar.rs`).
    pub clients_generation: i64,
}

impl Tenant {
    /// The URL of an endpoint below the issuer, e.g. `"/oauth/token"`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }
}
