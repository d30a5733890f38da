//! What a trigger run is given, and what rules and actions see of it: Auth0's Rules `user` and
//! `context` (rule ABI v1 input), and Auth0's Actions `event` for post-login and
//! credentials-exchange — built once per run; only the parts an earlier rule or action can
//! change are serialized again for the next one.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::Serialize;
use serde::ser::SerializeMap;
use serde_json::{Map, Value, json};

use crate::domain::{RequestInfo, ScopeSet, TriggerId};
use crate::store::{ClientRecord, UserRecord};
use rules_sdk::{
    AccessToken, Authentication, AuthenticationMethod, Authorization, Context, IdToken, Lazy,
    Request, Stats, User,
};

/// Which flow runs the trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Authorization code grant, after login and consent.
    Login,
    /// Refresh token grant.
    Refresh,
}

impl Protocol {
    /// Auth0's `context.protocol` / `event.transaction.protocol`.
    pub fn as_str(self) -> &'static str {
        self.trigger().label()
    }

    /// How the execution log names it.
    pub fn trigger(self) -> crate::domain::execution::Trigger {
        match self {
            Protocol::Login => crate::domain::execution::Trigger::Login,
            Protocol::Refresh => crate::domain::execution::Trigger::Refresh,
        }
    }
}

/// Everything a post-login run needs to know about the login.
pub struct LoginInput<'a> {
    pub tenant_id: &'a str,
    pub tenant_name: &'a str,
    /// The tenant's issuer (`iss` of the session tokens actions encode).
    pub issuer: &'a str,
    /// The tenant's rules generation, as read with the tenant for this request.
    pub rules_generation: i64,
    /// Login or refresh.
    pub protocol: Protocol,
    pub user: &'a UserRecord,
    pub client: &'a ClientRecord,
    pub request: RequestInfo,
    /// Public session id.
    pub session_id: Option<&'a str>,
    /// When the user authenticated.
    pub auth_time: i64,
    pub scope: &'a ScopeSet,
    /// API identifier.
    pub audience: Option<&'a str>,
    /// The user's role names when the caller read them already (with the SSO session);
    /// `None`: read here, only if a rule or action runs.
    pub roles: Option<&'a [String]>,
    pub now: i64,
}

/// Everything a credentials-exchange run needs to know about the token request.
pub struct ClientCredentialsInput<'a> {
    pub tenant_id: &'a str,
    pub tenant_name: &'a str,
    /// The tenant's rules generation, as read with the tenant for this request.
    pub rules_generation: i64,
    pub client: &'a ClientRecord,
    /// The API the token is for.
    pub audience: &'a str,
    /// The scopes being granted.
    pub scope: &'a ScopeSet,
    pub request: RequestInfo,
    pub now: i64,
}

fn rfc3339(unix: i64) -> Option<String> {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).ok()?;
    t.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// The only connection Wardstone has: Auth0's default database connection.
const CONNECTION: &str = "Username-Password-Authentication";
/// Its id, as rules (`context.connectionID`) and actions (`event.connection.id`) see it.
const CONNECTION_ID: &str = "con_wardstone_database";

/// Auth0's Rules `user` for a login.
pub fn rule_user(input: &LoginInput<'_>) -> User {
    let u = input.user;
    User {
        user_id: u.user_id.clone(),
        email: Some(u.email.clone()),
        email_verified: *u.email_verified,
        name: u.profile.name.clone(),
        given_name: u.profile.given_name.clone(),
        family_name: u.profile.family_name.clone(),
        nickname: u.profile.nickname.clone(),
        picture: u.profile.picture.clone(),
        username: u.profile.username.clone(),
        created_at: rfc3339(u.created_at),
        updated_at: rfc3339(u.updated_at),
        last_login: u.last_login.and_then(rfc3339),
        logins_count: u.logins_count,
        app_metadata: u.app_metadata.0.clone().into(),
        user_metadata: u.user_metadata.0.clone().into(),
    }
}

/// The tokens of Auth0's `context` as a login starts: no custom claims, the granted scopes.
/// A run of actions alone needs only these of the context (actions see their `event`).
pub fn initial_tokens(input: &LoginInput<'_>) -> (IdToken, AccessToken) {
    let access_token = AccessToken {
        scope: input.scope.iter().map(String::from).collect(),
        claims: Map::new(),
    };
    (IdToken::default(), access_token)
}

/// Auth0's Rules `context` for a login; `roles` are the names of the user's roles.
pub fn rule_context(input: &LoginInput<'_>, roles: Vec<String>) -> Context {
    let u = input.user;
    let (id_token, access_token) = initial_tokens(input);
    Context {
        tenant: input.tenant_name.to_string(),
        client_id: input.client.client_id.clone(),
        client_name: input.client.name.clone(),
        client_metadata: input.client.metadata.0.clone().into(),
        connection: CONNECTION.into(),
        connection_strategy: "auth0".into(),
        protocol: input.protocol.as_str().into(),
        request: Request {
            ip: input.request.ip.clone(),
            hostname: input.request.hostname.clone(),
            user_agent: input.request.user_agent.clone(),
            query: input.request.query.clone(),
            body: input.request.body.clone(),
            language: input.request.language.clone(),
            geoip: Map::new(),
        }
        .into(),
        stats: Stats {
            logins_count: u.logins_count,
        },
        session_id: input.session_id.unwrap_or_default().to_string(),
        authentication: Authentication {
            methods: vec![AuthenticationMethod {
                name: "pwd".into(),
                timestamp: input.auth_time * 1000,
            }],
        }
        .into(),
        authorization: Authorization { roles },
        id_token,
        access_token,
        audience: input.audience.map(String::from),
        connection_id: CONNECTION_ID.into(),
        connection_metadata: Lazy::default(),
        connection_options: Lazy::default(),
        saml_configuration: Lazy::default(),
        jwt_configuration: Lazy::default(),
        sso: Lazy::new(
            match json!({
                "with_auth0": false,
                "with_dbconn": input.session_id.is_some(),
                "current_clients": [],
            }) {
                Value::Object(m) => m,
                _ => Map::new(),
            },
        ),
        primary_user: u.user_id.clone(),
        risk_assessment: Lazy::new(match risk_assessment() {
            Value::Object(m) => m,
            _ => Map::new(),
        }),
    }
}

/// Auth0's risk assessment with nothing assessed: Wardstone has no signal, so every
/// assessment is `neutral` / `assessment_not_available` (the shape Adaptive MFA code reads;
/// an empty object made such code throw).
pub(crate) fn risk_assessment() -> Value {
    let unavailable = json!({"confidence": "neutral", "code": "assessment_not_available"});
    json!({
        "confidence": "neutral",
        "version": "1",
        "assessments": {
            "UntrustedIP": unavailable,
            "NewDevice": unavailable,
            "ImpossibleTravel": unavailable,
        },
    })
}

/// Auth0's Actions `event.user` from a Rules-shaped user (metadata always objects).
pub fn event_user(user: &Value) -> Value {
    let mut out = user.clone();
    if let Value::Object(map) = &mut out {
        for key in ["app_metadata", "user_metadata"] {
            if !map.get(key).is_some_and(Value::is_object) {
                map.insert(key.into(), json!({}));
            }
        }
        let user_id = map.get("user_id").cloned().unwrap_or(Value::Null);
        map.entry("identities").or_insert_with(|| {
            json!([{
                "connection": CONNECTION,
                "provider": "auth0",
                "user_id": user_id.as_str().map(|id| id.strip_prefix("auth0|").unwrap_or(id)),
                "isSocial": false,
            }])
        });
        map.entry("multifactor").or_insert_with(|| json!([]));
        map.entry("enrolledFactors").or_insert_with(|| json!([]));
    }
    out
}

/// The parts of an action's event that no action can change, serialized once per run, and
/// the one that can (`user` for post-login, `accessToken` for credentials-exchange).
pub(crate) struct EventFrame {
    /// The members as a [`member_index`].
    fixed: Vec<u8>,
    /// Names `fixed` for the runtime, unique in this process (see [`Self::action_input`]).
    id: u64,
    /// The member that is serialized again for every action.
    dynamic: &'static str,
}

impl EventFrame {
    fn new(members: Map<String, Value>, dynamic: &'static str) -> Self {
        Self::from_index(member_index(&members), dynamic)
    }

    fn from_index(fixed: Vec<u8>, dynamic: &'static str) -> Self {
        EventFrame {
            fixed,
            id: next_token(),
            dynamic,
        }
    }

    /// The input of one action run, as the JavaScript runtime's `run` reads it: ten
    /// length-prefixed parts (u32 little-endian length, then the bytes) — the handler, the
    /// trigger, the fixed members' token and [`member_index`], the dynamic member's name,
    /// token, value (JSON) and, when it is `user`, its own member index; the action's own
    /// `secrets` (JSON) and the facts its `api` needs (JSON).
    ///
    /// Not one JSON document: parsing (or even scanning) kilobytes of JSON costs an
    /// interpreter-bound sandbox far more than it costs us, so the runtime gets each member's
    /// text already cut out, keeps the fixed members from one action to the next, and the
    /// dynamic value while its token is unchanged. Tokens are unique in the process, so a
    /// fresh instance never mistakes another run's text for its own.
    pub(crate) fn action_input(
        &self,
        entry: &str,
        trigger: &str,
        value: &DynamicMember,
        secrets: &str,
        facts: &str,
    ) -> Vec<u8> {
        let (fixed_token, dynamic_token) = (self.id.to_le_bytes(), value.token.to_le_bytes());
        let parts: [&[u8]; 10] = [
            entry.as_bytes(),
            trigger.as_bytes(),
            &fixed_token,
            &self.fixed,
            self.dynamic.as_bytes(),
            &dynamic_token,
            value.text.as_bytes(),
            &value.index,
            secrets.as_bytes(),
            facts.as_bytes(),
        ];
        let mut out = Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
        for part in parts {
            push_part(&mut out, part);
        }
        out
    }

    /// The members no action can change, as one JSON object (what a recording keeps).
    pub(crate) fn fixed_json(&self) -> String {
        object_of_index(&self.fixed)
    }

    /// The frame of a whole event (a test run's): everything but `secrets` and the trigger's
    /// dynamic member is fixed. Returns the frame and the dynamic member's value.
    pub(crate) fn of_event(trigger: TriggerId, mut event: Map<String, Value>) -> (Self, Value) {
        let dynamic = dynamic_member(trigger);
        let value = event.remove(dynamic).unwrap_or_else(|| json!({}));
        event.remove("secrets");
        (EventFrame::new(event, dynamic), value)
    }
}

/// A token no other event part of this process had.
fn next_token() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The member of `trigger`'s event that actions can change for the ones after them.
fn dynamic_member(trigger: TriggerId) -> &'static str {
    match trigger {
        TriggerId::PostLogin => "user",
        TriggerId::CredentialsExchange => "accessToken",
    }
}

/// The dynamic member of an action's event as sent: its JSON text and, for `user`, its
/// [`member_index`] (empty otherwise: the runtime keeps that member whole). Made once and
/// sent to each action until one changes what it shows (`trigger::ActionTexts`); its token,
/// unique in the process, tells the runtime when the text it holds is still this one.
#[derive(Debug, Clone)]
pub(crate) struct DynamicMember {
    // Private: the runtime keeps the text under the token, so neither may change alone.
    text: String,
    index: Vec<u8>,
    token: u64,
}

impl DynamicMember {
    pub(crate) fn new(trigger: TriggerId, value: &Value) -> Self {
        let (text, index) = match (trigger, value) {
            // The object's text is put together from its index: one serialization, not two.
            (TriggerId::PostLogin, Value::Object(map)) => {
                let index = member_index(map);
                (object_of_index(&index), index)
            }
            _ => (value.to_string(), Vec::new()),
        };
        DynamicMember {
            token: next_token(),
            text,
            index,
        }
    }
}

/// The JSON object a [`member_index`] was made from (its keys in the index's order).
fn object_of_index(index: &[u8]) -> String {
    let mut out = Vec::with_capacity(index.len() + 2);
    out.push(b'{');
    let mut rest = index;
    while let (Some(key), Some(value)) = (next_part(&mut rest), next_part(&mut rest)) {
        if out.len() > 1 {
            out.push(b',');
        }
        let key = std::str::from_utf8(key).unwrap_or_default();
        serde_json::to_writer(&mut out, key).expect("a str serializes");
        out.push(b':');
        out.extend_from_slice(value);
    }
    out.push(b'}');
    // Keys came from `str`s and values from serde_json's writer: UTF-8 throughout.
    String::from_utf8(out).unwrap_or_default()
}

/// An object's members as the JavaScript runtime reads them without scanning JSON: for each,
/// the key and then the value's JSON text, each as a u32 little-endian length and the bytes.
fn member_index(members: &Map<String, Value>) -> Vec<u8> {
    let mut out = Members(Vec::with_capacity(members.len() * 48));
    for (key, value) in members {
        out.member(key, value);
    }
    out.0
}

/// A [`member_index`] being written.
#[derive(Default)]
struct Members(Vec<u8>);

impl Members {
    fn member(&mut self, key: &str, value: &impl Serialize) {
        let out = &mut self.0;
        push_part(out, key.as_bytes());
        let at = out.len();
        out.extend_from_slice(&[0; 4]);
        serde_json::to_writer(&mut *out, value).expect("event members serialize");
        let len = u32::try_from(out.len() - at - 4).unwrap_or(u32::MAX);
        out[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }
}

fn push_part(out: &mut Vec<u8>, part: &[u8]) {
    let len = u32::try_from(part.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(part);
}

/// The next length-prefixed part of `rest`, consumed.
fn next_part<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let part = rest.get(4..4 + len)?;
    *rest = &rest[4 + len..];
    Some(part)
}

/// The fixed part of a post-login event (Auth0's shape; empty where Wardstone has no data).
///
/// Written straight into the member index: every login with an action builds it, and making
/// it as `serde_json::Value`s first (maps built, serialized, dropped) cost more than writing
/// it. Members and the fields of each are in the order a `Value` object would hold them
/// (sorted by key), so the event reads the same either way.
pub(crate) fn post_login_event(
    input: &LoginInput<'_>,
    roles: &[String],
    transaction_id: &str,
) -> EventFrame {
    #[derive(Serialize)]
    struct Method<'a> {
        name: &'a str,
        timestamp: Option<String>,
    }
    #[derive(Serialize)]
    struct Authentication<'a> {
        methods: [Method<'a>; 1],
        #[serde(rename = "riskAssessment")]
        risk_assessment: &'a Value,
    }
    #[derive(Serialize)]
    struct Request<'a> {
        body: &'a BTreeMap<String, String>,
        geoip: Empty,
        hostname: &'a str,
        ip: &'a str,
        language: &'a str,
        method: &'a str,
        query: &'a BTreeMap<String, String>,
        user_agent: &'a str,
    }
    #[derive(Serialize)]
    struct Transaction<'a> {
        acr_values: Vec<&'a str>,
        id: &'a str,
        locale: &'a str,
        login_hint: Option<&'a String>,
        metadata: Empty,
        prompt: Vec<&'a str>,
        protocol: &'a str,
        redirect_uri: Option<&'a String>,
        requested_scopes: Vec<&'a str>,
        response_mode: Option<&'a String>,
        response_type: Vec<&'a str>,
        state: Option<&'a String>,
        ui_locales: Vec<&'a str>,
    }
    static RISK_ASSESSMENT: LazyLock<Value> = LazyLock::new(risk_assessment);
    static CONNECTION_MEMBER: LazyLock<Value> = LazyLock::new(
        || json!({"id": CONNECTION_ID, "name": CONNECTION, "strategy": "auth0", "metadata": {}}),
    );
    let (q, request) = (&input.request.query, &input.request);
    let words = |key: &str| -> Vec<&str> {
        q.get(key)
            .map(|v| v.split_whitespace().collect())
            .unwrap_or_default()
    };
    let mut m = Members::default();
    m.member(
        "authentication",
        &Authentication {
            methods: [Method {
                name: "pwd",
                timestamp: rfc3339(input.auth_time),
            }],
            risk_assessment: &RISK_ASSESSMENT,
        },
    );
    m.member("authorization", &Field1("roles", roles));
    m.member("client", &client_member(input.client));
    m.member("configuration", &Empty);
    m.member("connection", &*CONNECTION_MEMBER);
    m.member("organization", &Value::Null);
    m.member(
        "request",
        &Request {
            body: &request.body,
            geoip: Empty,
            hostname: &request.hostname,
            ip: &request.ip,
            language: &request.language,
            method: &request.method,
            query: q,
            user_agent: &request.user_agent,
        },
    );
    if let Some(audience) = input.audience {
        m.member("resource_server", &Field1("identifier", audience));
    }
    m.member(
        "session",
        &Field1("id", input.session_id.unwrap_or_default()),
    );
    m.member("stats", &Field1("logins_count", input.user.logins_count));
    m.member("tenant", &Field1("id", input.tenant_name));
    m.member(
        "transaction",
        &Transaction {
            acr_values: words("acr_values"),
            id: transaction_id,
            locale: request
                .language
                .split('-')
                .next()
                .filter(|l| !l.is_empty())
                .unwrap_or("en"),
            login_hint: q.get("login_hint"),
            metadata: Empty,
            prompt: words("prompt"),
            protocol: input.protocol.as_str(),
            redirect_uri: q.get("redirect_uri"),
            requested_scopes: q.get("scope").map_or_else(
                || input.scope.iter().collect(),
                |s| s.split_whitespace().collect(),
            ),
            response_mode: q.get("response_mode"),
            response_type: words("response_type"),
            state: q.get("state"),
            ui_locales: words("ui_locales"),
        },
    );
    EventFrame::from_index(m.0, "user")
}

/// `event.client`, the same in both triggers.
fn client_member(client: &ClientRecord) -> impl Serialize + '_ {
    #[derive(Serialize)]
    struct Client<'a> {
        client_id: &'a str,
        metadata: &'a Map<String, Value>,
        name: &'a str,
    }
    Client {
        client_id: &client.client_id,
        metadata: &client.metadata.0,
        name: &client.name,
    }
}

/// `{}`.
struct Empty;

impl Serialize for Empty {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_map(Some(0))?.end()
    }
}

/// An object of one field.
struct Field1<'a, T>(&'a str, T);

impl<T: Serialize> Serialize for Field1<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry(self.0, &self.1)?;
        map.end()
    }
}

/// The fixed part of a credentials-exchange event.
pub(crate) fn credentials_exchange_event(
    input: &ClientCredentialsInput<'_>,
    transaction_id: &str,
) -> EventFrame {
    let mut event = Map::new();
    event.insert(
        "client".into(),
        serde_json::to_value(client_member(input.client)).expect("a client serializes"),
    );
    event.insert(
        "resource_server".into(),
        json!({"identifier": input.audience}),
    );
    event.insert(
        "request".into(),
        json!({
            "ip": input.request.ip,
            "method": input.request.method,
            "hostname": input.request.hostname,
            "user_agent": input.request.user_agent,
            "language": input.request.language,
            "body": {},
            "geoip": {},
        }),
    );
    event.insert(
        "transaction".into(),
        json!({
            "id": transaction_id,
            "protocol": crate::domain::execution::Trigger::ClientCredentials.label(),
            "requested_scopes": input.scope.iter().collect::<Vec<_>>(),
        }),
    );
    event.insert("tenant".into(), json!({"id": input.tenant_name}));
    event.insert("organization".into(), Value::Null);
    EventFrame::new(event, "accessToken")
}

/// The fixed part of `trigger`'s sample event (benchmarks and offline runs).
pub(crate) fn sample_frame(trigger: TriggerId) -> EventFrame {
    let event = match super::test_run::sample_event(trigger) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    EventFrame::of_event(trigger, event).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_input_is_ten_length_prefixed_parts_with_tokens_for_what_repeats() {
        let mut fixed_part = Map::new();
        fixed_part.insert("tenant".into(), json!({"id": "acme"}));
        fixed_part.insert("na\"me".into(), json!("x\ny"));
        let frame = EventFrame::new(fixed_part, "user");
        let split = |bytes: &[u8]| {
            let mut parts = Vec::new();
            let mut rest = bytes;
            while let Some(part) = next_part(&mut rest) {
                parts.push(String::from_utf8(part.to_vec()).unwrap());
            }
            assert!(rest.is_empty(), "no bytes after the last part");
            parts
        };
        let parts = |user: &DynamicMember| {
            let input = frame.action_input(
                "onExecutePostLogin",
                "post-login",
                user,
                r#"{"K":"v"}"#,
                "{}",
            );
            split(&input)
        };
        let member = |user: Value| DynamicMember::new(TriggerId::PostLogin, &user);
        let user = member(json!({"user_id": "u1", "app_metadata": {"plan": "gold"}}));
        let first = parts(&user);
        assert_eq!(first.len(), 10);
        assert_eq!(first[0], "onExecutePostLogin");
        assert_eq!(first[1], "post-login");
        // Each member's key, then its value's JSON text.
        assert_eq!(
            split(first[3].as_bytes()),
            ["na\"me", r#""x\ny""#, "tenant", r#"{"id":"acme"}"#]
        );
        assert_eq!(first[4], "user");
        assert_eq!(
            first[6],
            r#"{"app_metadata":{"plan":"gold"},"user_id":"u1"}"#
        );
        assert_eq!(
            split(first[7].as_bytes()),
            ["app_metadata", r#"{"plan":"gold"}"#, "user_id", r#""u1""#]
        );
        assert_eq!(first[8], r#"{"K":"v"}"#);
        assert_eq!(first[9], "{}");
        // What a recording keeps is the fixed members as one JSON object.
        assert_eq!(
            serde_json::from_str::<Value>(&frame.fixed_json()).unwrap(),
            json!({"tenant": {"id": "acme"}, "na\"me": "x\ny"})
        );
        // The same member keeps its token; a member made again (an action changed the user)
        // gets a new one, even with the same text; the fixed part's never changes.
        let same = parts(&user);
        let changed = parts(&member(json!({"user_id": "u1", "app_metadata": {"a": 1}})));
        let remade = parts(&member(
            json!({"user_id": "u1", "app_metadata": {"plan": "gold"}}),
        ));
        assert_eq!(same[5], first[5]);
        assert_ne!(changed[5], first[5]);
        assert_ne!(remade[5], first[5]);
        assert_eq!(remade[6], first[6]);
        assert_eq!(changed[2], first[2]);
        assert_ne!(
            EventFrame::new(Map::new(), "user").id,
            frame.id,
            "tokens are unique"
        );
        // The credentials-exchange member is sent whole, without an index.
        let access = DynamicMember::new(TriggerId::CredentialsExchange, &json!({"scope": []}));
        assert!(access.index.is_empty());
    }

    #[test]
    fn the_post_login_event_keeps_its_members_and_their_fields_in_sorted_order() {
        // `post_login_event` writes its members with structs: their order must stay the one a
        // `Value` object keeps (sorted), or `Object.keys(event.x)` changes for actions.
        let user = UserRecord {
            user_id: "auth0|1".into(),
            tenant_id: "t1".into(),
            email: "ann@example.com".into(),
            email_verified: Default::default(),
            password_hash: String::new(),
            profile: Default::default(),
            app_metadata: Default::default(),
            user_metadata: Default::default(),
            logins_count: 3,
            last_login: None,
            created_at: 0,
            updated_at: 0,
            blocked: Default::default(),
        };
        let mut metadata = Map::new();
        metadata.insert("z".into(), json!(1));
        metadata.insert("a".into(), json!({"y": 1, "b": 2}));
        let client = ClientRecord {
            client_id: "c1".into(),
            tenant_id: "t1".into(),
            name: "App".into(),
            secret_hash: None,
            redirect_uris: Default::default(),
            grant_types: Default::default(),
            metadata: crate::store::JsonText(metadata),
            created_at: 0,
            logout_urls: Default::default(),
            app_type: None,
            is_first_party: Default::default(),
            description: String::new(),
            logo_uri: None,
            id_token_lifetime: None,
        };
        let scope = ScopeSet::try_from("openid profile".to_string()).unwrap();
        let full_query: std::collections::BTreeMap<String, String> = [
            ("scope", "openid email"),
            ("prompt", "login consent"),
            ("ui_locales", "fr en"),
            ("login_hint", "ann"),
            ("state", "s"),
            ("redirect_uri", "https://app.example/cb"),
            ("response_type", "code"),
            ("response_mode", "query"),
            ("acr_values", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (audience, query, auth_time) in [
            (None, Default::default(), i64::MAX),
            (Some("https://api.example"), full_query, 1_700_000_000),
        ] {
            let input = LoginInput {
                tenant_id: "t1",
                tenant_name: "acme",
                issuer: "https://id.example/t/acme",
                rules_generation: 0,
                protocol: Protocol::Login,
                user: &user,
                client: &client,
                request: RequestInfo {
                    ip: "203.0.113.9".into(),
                    method: "GET".into(),
                    hostname: "id.example".into(),
                    user_agent: "ua".into(),
                    language: "fr-FR".into(),
                    query,
                    body: Default::default(),
                },
                session_id: Some("sid"),
                auth_time,
                scope: &scope,
                audience,
                roles: None,
                now: 0,
            };
            let text = post_login_event(&input, &["admin".into()], "tx1").fixed_json();
            let event: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(event.to_string(), text, "sorted members and fields");
            assert_eq!(event["transaction"]["locale"], "fr");
            assert_eq!(event["authorization"]["roles"], json!(["admin"]));
            assert_eq!(event["client"]["metadata"]["a"]["b"], 2);
            assert_eq!(event["organization"], Value::Null);
            match audience {
                None => {
                    assert!(event.get("resource_server").is_none());
                    assert_eq!(
                        event["transaction"]["requested_scopes"],
                        json!(["openid", "profile"])
                    );
                    assert_eq!(event["transaction"]["prompt"], json!([]));
                    assert_eq!(event["transaction"]["state"], Value::Null);
                    // A time that is no date is `null`, as before.
                    assert_eq!(
                        event["authentication"]["methods"][0]["timestamp"],
                        Value::Null
                    );
                }
                Some(audience) => {
                    assert_eq!(event["resource_server"]["identifier"], audience);
                    assert_eq!(
                        event["transaction"]["requested_scopes"],
                        json!(["openid", "email"])
                    );
                    assert_eq!(event["transaction"]["prompt"], json!(["login", "consent"]));
                    assert_eq!(event["transaction"]["login_hint"], "ann");
                    assert_eq!(
                        event["authentication"]["methods"][0]["timestamp"],
                        "2023-11-14T22:13:20Z"
                    );
                }
            }
        }
    }

    #[test]
    fn the_event_user_always_has_metadata_objects() {
        let user = event_user(&json!({"user_id": "auth0|1", "app_metadata": null}));
        assert_eq!(user["app_metadata"], json!({}));
        assert_eq!(user["user_metadata"], json!({}));
        assert_eq!(user["identities"][0]["user_id"], "1");
    }
}
