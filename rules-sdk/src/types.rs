use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Lazy;

/// A JSON object of metadata (`app_metadata`, `user_metadata`, `clientMetadata`).
pub type Metadata = Map<String, Value>;

/// The user who is logging in (Auth0's user object).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Stable id, e.g. `auth0|5f7c8ec7c33c6c004bbafe82`.
    pub user_id: String,
    /// Email address.
    pub email: Option<String>,
    /// Whether the email address is verified.
    #[serde(default)]
    pub email_verified: bool,
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
    /// Username.
    pub username: Option<String>,
    /// Creation time, RFC 3339.
    pub created_at: Option<String>,
    /// Last profile change, RFC 3339.
    pub updated_at: Option<String>,
    /// Last successful login, RFC 3339.
    pub last_login: Option<String>,
    /// Successful logins, this one included.
    #[serde(default)]
    pub logins_count: i64,
    /// Data the user cannot change (roles, plans...). Changes are saved after a successful login.
    #[serde(default)]
    pub app_metadata: Lazy<Metadata>,
    /// Data the user may change (preferences...). Changes are saved after a successful login.
    #[serde(default)]
    pub user_metadata: Lazy<Metadata>,
}

/// Details of the HTTP request that started the login.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Client IP address.
    #[serde(default)]
    pub ip: String,
    /// Host the request was sent to.
    #[serde(default)]
    pub hostname: String,
    /// Browser user agent.
    #[serde(rename = "userAgent", default)]
    pub user_agent: String,
    /// Query parameters of the authorization request.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Form fields of the request (empty at a redirect login).
    #[serde(default)]
    pub body: BTreeMap<String, String>,
    /// The browser's preferred language (`Accept-Language`'s first tag), or empty.
    #[serde(default)]
    pub language: String,
    /// Auth0's geolocation of the address: always empty on Wardstone (no GeoIP database).
    #[serde(default)]
    pub geoip: Metadata,
}

/// Login statistics.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Successful logins of this user, this one included.
    #[serde(rename = "loginsCount", default)]
    pub logins_count: i64,
}

/// One way the user authenticated.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuthenticationMethod {
    /// `pwd` for a password.
    pub name: String,
    /// When, in milliseconds since the Unix epoch.
    pub timestamp: i64,
}

/// How the user authenticated in this session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Authentication {
    /// Methods used.
    #[serde(default)]
    pub methods: Vec<AuthenticationMethod>,
}

/// Authorization data of the user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Authorization {
    /// Role names.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// Claims to add to the ID token.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IdToken {
    /// Custom claims. Use namespaced names (`https://example.com/roles`); registered claims
    /// (`sub`, `iss`, `aud`, `exp`, ...) are ignored by the server.
    pub claims: Map<String, Value>,
}

impl IdToken {
    /// Sets a claim.
    pub fn set_claim(&mut self, name: impl Into<String>, value: impl Into<Value>) {
        self.claims.insert(name.into(), value.into());
    }
}

/// Claims to add to the access token, and its scopes.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AccessToken {
    /// Granted scopes; removing one narrows the token (adding one has no effect).
    pub scope: Vec<String>,
    /// Custom claims (same rules as [`IdToken::claims`]).
    #[serde(flatten)]
    pub claims: Map<String, Value>,
}

// By hand rather than with `#[serde(flatten)]`, which buffers the whole object first.
impl<'de> Deserialize<'de> for AccessToken {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = AccessToken;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object with scope and claims")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<AccessToken, A::Error> {
                let mut token = AccessToken::default();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "scope" {
                        token.scope = map.next_value()?;
                    } else {
                        token.claims.insert(key, map.next_value()?);
                    }
                }
                Ok(token)
            }
        }
        d.deserialize_map(Fields)
    }
}

impl AccessToken {
    /// Sets a claim.
    pub fn set_claim(&mut self, name: impl Into<String>, value: impl Into<Value>) {
        self.claims.insert(name.into(), value.into());
    }
}

/// The login context (Auth0's context object). Only `id_token` and `access_token` are yours to
/// change; the server ignores changes to everything else.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Context {
    /// Tenant name.
    #[serde(default)]
    pub tenant: String,
    /// The application's client id.
    #[serde(rename = "clientID", default)]
    pub client_id: String,
    /// The application's name.
    #[serde(rename = "clientName", default)]
    pub client_name: String,
    /// The application's metadata.
    #[serde(rename = "clientMetadata", default)]
    pub client_metadata: Lazy<Metadata>,
    /// `Username-Password-Authentication`.
    #[serde(default)]
    pub connection: String,
    /// `auth0`.
    #[serde(rename = "connectionStrategy", default)]
    pub connection_strategy: String,
    /// `oidc-basic-profile` at login, `oauth2-refresh-token` at refresh.
    #[serde(default)]
    pub protocol: String,
    /// The HTTP request.
    #[serde(default)]
    pub request: Lazy<Request>,
    /// Login statistics.
    #[serde(default)]
    pub stats: Stats,
    /// SSO session id.
    #[serde(rename = "sessionID", default)]
    pub session_id: String,
    /// How the user authenticated.
    #[serde(default)]
    pub authentication: Lazy<Authentication>,
    /// Roles.
    #[serde(default)]
    pub authorization: Authorization,
    /// Claims for the ID token.
    #[serde(rename = "idToken", default)]
    pub id_token: IdToken,
    /// Claims and scopes for the access token.
    #[serde(rename = "accessToken", default)]
    pub access_token: AccessToken,
    /// The API the access token is for, if any.
    #[serde(default)]
    pub audience: Option<String>,
    /// Auth0's connection id (Wardstone's one database connection).
    #[serde(rename = "connectionID", default)]
    pub connection_id: String,
    /// The connection's metadata: always empty.
    #[serde(rename = "connectionMetadata", default)]
    pub connection_metadata: Lazy<Metadata>,
    /// The connection's options: always empty.
    #[serde(rename = "connectionOptions", default)]
    pub connection_options: Lazy<Metadata>,
    /// SAML settings of the application: always empty (Wardstone speaks OIDC only; writes are
    /// ignored).
    #[serde(rename = "samlConfiguration", default)]
    pub saml_configuration: Lazy<Metadata>,
    /// Token settings of the application: always empty (writes are ignored).
    #[serde(rename = "jwtConfiguration", default)]
    pub jwt_configuration: Lazy<Metadata>,
    /// Auth0's `{with_auth0, with_dbconn, current_clients}`.
    #[serde(default)]
    pub sso: Lazy<Metadata>,
    /// The user id whose login this is (Wardstone links no accounts).
    #[serde(rename = "primaryUser", default)]
    pub primary_user: String,
    /// Auth0's risk assessment. Wardstone has no signals: every assessment is `neutral` /
    /// `assessment_not_available`. Like the other objects here, decoded when first read.
    #[serde(rename = "riskAssessment", default)]
    pub risk_assessment: Lazy<Metadata>,
}

/// The tenant's rule settings (secrets, allow-lists...), read-only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Configuration(pub BTreeMap<String, String>);

impl Configuration {
    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }
}

/// A denial: the login fails with `access_denied` and this message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deny {
    /// Shown to the application as `error_description`.
    pub message: String,
}

impl Deny {
    /// A denial with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Deny {
            message: message.into(),
        }
    }
}

/// The input of one rule execution: `{"user", "context", "configuration"}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleInput {
    /// The user.
    pub user: User,
    /// The context.
    pub context: Context,
    /// The configuration.
    #[serde(default)]
    pub configuration: Configuration,
}

/// The `error` member of a denial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleErrorBody {
    /// Always `unauthorized` in ABI v1.
    pub kind: String,
    /// The message.
    pub message: String,
}

/// The output of one rule execution, as the server reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RuleOutput {
    /// Deny access.
    Error {
        /// What and why.
        error: RuleErrorBody,
    },
    /// A JSON Merge Patch (RFC 7396) of the user and context.
    Patch {
        /// Patch of the user.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user: Option<Value>,
        /// Patch of the context.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context: Option<Value>,
    },
}

// What the rule's own reader (`crate::json`) decodes: the same field names as the serde
// attributes above, which the host uses to write the input. Listed in the order a login's input
// has them (the host writes `user` and `context` as JSON objects, keys sorted, with the members
// rules may change last: `USER_WRITABLE`/`CONTEXT_WRITABLE` in src/rules/patch.rs), so the
// reader recognises each next key by comparing words.
crate::json::from_json_fields!(User {
    "created_at" => created_at,
    "email" => email,
    "email_verified" => email_verified,
    "family_name" => family_name,
    "given_name" => given_name,
    "last_login" => last_login,
    "logins_count" => logins_count,
    "name" => name,
    "nickname" => nickname,
    "picture" => picture,
    "updated_at" => updated_at,
    "user_id" => user_id,
    "username" => username,
    "app_metadata" => app_metadata,
    "user_metadata" => user_metadata,
} required: ["user_id"]);

crate::json::from_json_fields!(Request {
    "body" => body,
    "geoip" => geoip,
    "hostname" => hostname,
    "ip" => ip,
    "language" => language,
    "query" => query,
    "userAgent" => user_agent,
});

crate::json::from_json_fields!(Stats { "loginsCount" => logins_count });

crate::json::from_json_fields!(AuthenticationMethod {
    "name" => name,
    "timestamp" => timestamp,
} required: ["name", "timestamp"]);

crate::json::from_json_fields!(Authentication { "methods" => methods });

crate::json::from_json_fields!(Authorization { "roles" => roles });

crate::json::from_json_fields!(Context {
    "audience" => audience,
    "authentication" => authentication,
    "authorization" => authorization,
    "clientID" => client_id,
    "clientMetadata" => client_metadata,
    "clientName" => client_name,
    "connection" => connection,
    "connectionID" => connection_id,
    "connectionMetadata" => connection_metadata,
    "connectionOptions" => connection_options,
    "connectionStrategy" => connection_strategy,
    "jwtConfiguration" => jwt_configuration,
    "primaryUser" => primary_user,
    "protocol" => protocol,
    "request" => request,
    "riskAssessment" => risk_assessment,
    "samlConfiguration" => saml_configuration,
    "sessionID" => session_id,
    "sso" => sso,
    "stats" => stats,
    "tenant" => tenant,
    "idToken" => id_token,
    "accessToken" => access_token,
});

impl crate::json::FromJson for IdToken {
    fn from_json(r: &mut crate::json::Reader<'_>) -> Result<Self, crate::json::Stop> {
        Map::from_json(r).map(|claims| IdToken { claims })
    }
}

impl crate::json::FromJson for AccessToken {
    fn from_json(r: &mut crate::json::Reader<'_>) -> Result<Self, crate::json::Stop> {
        let mut token = AccessToken::default();
        r.object(|r, key| {
            if key == "scope" {
                crate::json::FromJson::read_into(&mut token.scope, r)?;
            } else {
                let v = r.value()?;
                crate::json::discard(token.claims.insert(crate::json::owned(key), v));
            }
            Ok(())
        })?;
        Ok(token)
    }
}

impl crate::json::FromJson for Configuration {
    fn from_json(r: &mut crate::json::Reader<'_>) -> Result<Self, crate::json::Stop> {
        crate::json::FromJson::from_json(r).map(Configuration)
    }
}

crate::json::from_json_fields!(RuleInput {
    "user" => user,
    "context" => context,
    "configuration" => configuration,
} required: ["user", "context"]);

#[cfg(test)]
mod tests {
    use super::*;

    /// The host writes `user` and `context` with their keys sorted and the members rules may
    /// change last (src/rules/patch.rs); the decoders list their fields in that order, so
    /// every known key of a login's input is recognised by the word comparison, the objects
    /// inside (sorted like any JSON object the host writes) included.
    #[test]
    fn a_login_input_in_the_hosts_order_takes_the_fast_path_for_every_key() {
        fn host_order(value: serde_json::Value, writable: &[&str]) -> String {
            let map = value.as_object().unwrap();
            let mut keys: Vec<&String> = map
                .keys()
                .filter(|k| !writable.contains(&k.as_str()))
                .collect();
            keys.sort();
            keys.extend(
                writable
                    .iter()
                    .map(|w| map.keys().find(|k| k == w).unwrap()),
            );
            let members: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", serde_json::to_string(k).unwrap(), map[k.as_str()]))
                .collect();
            format!("{{{}}}", members.join(","))
        }
        let user = serde_json::to_value(User::default()).unwrap();
        let context = serde_json::to_value(Context::default()).unwrap();
        let text = format!(
            r#"{{"user":{},"context":{},"configuration":{{}}}}"#,
            host_order(user, &["app_metadata", "user_metadata"]),
            host_order(context, &["idToken", "accessToken"]),
        );
        let mut input = RuleInput::default();
        let mut r = crate::json::Reader::new(&text);
        crate::json::FromJson::read_into(&mut input, &mut r).unwrap();
        assert_eq!(r.slow_keys, 0, "{text}");
        // The objects inside, decoded when read (lazily or not): sorted keys, nothing last.
        fn slow_keys<T: crate::json::FromJson + Serialize>(value: T) -> u32 {
            let text = serde_json::to_value(value).unwrap().to_string();
            let mut r = crate::json::Reader::new(&text);
            T::from_json(&mut r).unwrap();
            r.slow_keys
        }
        assert_eq!(slow_keys(Request::default()), 0);
        assert_eq!(slow_keys(Stats::default()), 0);
        assert_eq!(slow_keys(Authorization::default()), 0);
        let methods = vec![AuthenticationMethod::default()];
        assert_eq!(slow_keys(Authentication { methods }), 0);
        // The same input in another order reads the same, the slow way.
        let sorted: RuleInput = crate::json::from_str(
            &serde_json::to_string(&serde_json::from_str::<serde_json::Value>(&text).unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(sorted, input);
    }

    /// The objects a login always sends but rules rarely read stay text until read: a value
    /// of another shape reads as empty instead of failing the input, and one never read goes
    /// back out as it came.
    #[test]
    fn the_context_objects_a_rule_rarely_reads_decode_only_when_read() {
        let text = r#"{"user":{"user_id":"u"},"context":{"sso":null,"riskAssessment":"x","connectionOptions":{"b":[1, 2],"a":{}}}}"#;
        let read: RuleInput = crate::json::from_str(text).unwrap();
        let out = serde_json::to_value(&read.context).unwrap();
        assert_eq!(
            out["connectionOptions"],
            serde_json::json!({"b": [1, 2], "a": {}})
        );
        assert!(read.context.sso.is_empty());
        assert!(read.context.risk_assessment.is_empty());
        assert_eq!(
            read.context.connection_options["b"],
            serde_json::json!([1, 2])
        );
    }

    /// The SDK's reader and the serde attributes the host writes with name the same fields:
    /// every field set, written by serde, read back by the reader, equal.
    #[test]
    fn the_reader_and_the_host_agree_on_every_field() {
        let full = serde_json::json!({
            "user": {
                "user_id": "auth0|1", "email": "a@example.com", "email_verified": true,
                "name": "A", "given_name": "G", "family_name": "F", "nickname": "n",
                "picture": "https://p.example/a.png", "username": "u",
                "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-02T00:00:00Z",
                "last_login": "2026-01-03T00:00:00Z", "logins_count": 7,
                "app_metadata": {"roles": ["admin"], "n": 1.5},
                "user_metadata": {"theme": "dark"}
            },
            "context": {
                "tenant": "acme", "clientID": "c1", "clientName": "App",
                "clientMetadata": {"tier": "gold"}, "connection": "Username-Password-Authentication",
                "connectionStrategy": "auth0", "protocol": "oidc-basic-profile",
                "request": {"ip": "203.0.113.1", "hostname": "id.example", "userAgent": "UA",
                    "query": {"scope": "openid"}, "body": {"k": "v"}, "language": "en",
                    "geoip": {"country_code": "FR"}},
                "stats": {"loginsCount": 7}, "sessionID": "s1",
                "authentication": {"methods": [{"name": "pwd", "timestamp": 1700000000000i64}]},
                "authorization": {"roles": ["r1"]},
                "idToken": {"https://e.example/a": 1},
                "accessToken": {"scope": ["openid"], "https://e.example/b": [true]},
                "audience": "https://api.example/", "connectionID": "con_1",
                "connectionMetadata": {"a": "b"}, "connectionOptions": {"c": "d"},
                "samlConfiguration": {"e": "f"}, "jwtConfiguration": {"g": "h"},
                "sso": {"with_auth0": false}, "primaryUser": "auth0|1",
                "riskAssessment": {"confidence": "high"}
            },
            "configuration": {"KEY": "value"}
        });
        let host: RuleInput = serde_json::from_value(full.clone()).unwrap();
        let text = serde_json::to_string(&host).unwrap();
        let read: RuleInput = crate::json::from_str(&text).unwrap();
        assert_eq!(read, host);
        assert_eq!(serde_json::to_value(&read).unwrap(), full);
    }
}
