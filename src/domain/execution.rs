//! One execution of a rule or an action, described once: the engine says how it failed
//! ([`Failure`]), the trigger builds the record ([`ExecutionRecord`]), the execution log stores
//! it, the Management API and the CLI show it.

use serde::{Deserialize, Serialize};

/// A log line written by a rule through `wardstone.log`, or by the host about the rule.
#[warn(missing_docs)]
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct LogLine {
    /// `debug`, `info`, `warn` or `error`.
    pub level: String,
    /// The message.
    pub message: String,
}

impl LogLine {
    /// A host warning about the rule.
    pub fn warn(message: impl Into<String>) -> Self {
        LogLine {
            level: "warn".into(),
            message: message.into(),
        }
    }

    /// A host error about the rule.
    pub fn error(message: impl Into<String>) -> Self {
        LogLine {
            level: "error".into(),
            message: message.into(),
        }
    }
}

/// Why an execution failed, as the engine saw it. Each fails the login closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The instruction budget ran out.
    Fuel,
    /// The wall-clock deadline passed.
    Timeout,
    /// The code tried to grow memory past the cap and then failed.
    Memory,
    /// The wasm stack overflowed.
    StackOverflow,
    /// Any other trap (`unreachable`, out-of-bounds access, ...).
    Trap(String),
    /// JavaScript threw, rejected, failed its callback or never finished (the runtime logs
    /// the error and traps; this carries the error's first line).
    Script(String),
    /// The module lacks an export or has the wrong signature.
    Abi(String),
    /// The output was out of bounds, too large, not UTF-8 JSON, or not an object.
    BadOutput(String),
}

impl Failure {
    /// What kind of failure this is, as the execution log records it.
    pub fn kind(&self) -> FailureKind {
        match self {
            Failure::Fuel => FailureKind::Fuel,
            Failure::Timeout => FailureKind::Timeout,
            Failure::Memory => FailureKind::Memory,
            Failure::StackOverflow => FailureKind::StackOverflow,
            Failure::Trap(_) | Failure::Script(_) => FailureKind::Trap,
            Failure::Abi(_) => FailureKind::Abi,
            Failure::BadOutput(_) => FailureKind::BadOutput,
        }
    }

    /// A description for the tenant's execution log (never shown to end users).
    pub fn detail(&self) -> String {
        match self {
            Failure::Fuel => "the code used its whole instruction budget (fuel)".into(),
            Failure::Timeout => "the code ran past its deadline".into(),
            Failure::Memory => "the code tried to use more memory than allowed".into(),
            Failure::StackOverflow => "the code overflowed its stack (deep recursion?)".into(),
            Failure::Trap(t) => format!("the code trapped: {t}"),
            Failure::Script(e) => format!("the JavaScript failed: {e}"),
            Failure::Abi(m) => format!("the module does not follow rule ABI v1: {m}"),
            Failure::BadOutput(m) => format!("the output is invalid: {m}"),
        }
    }
}

/// Why an execution failed; each fails the login closed. The details go to the log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The instruction budget ran out.
    Fuel,
    /// The rule's or the pipeline's deadline passed.
    Timeout,
    /// The rule tried to grow memory past the cap.
    Memory,
    /// The wasm stack overflowed.
    StackOverflow,
    /// Any other trap (`unreachable`, out-of-bounds access, ...).
    Trap,
    /// The module does not follow the ABI (or could not be loaded at all).
    Abi,
    /// The output was out of bounds, too large, not UTF-8 JSON, or not a valid patch.
    BadOutput,
    /// The metadata after the pipeline exceeds the cap.
    MetadataTooLarge,
    /// The custom claims after the pipeline exceed the cap.
    ClaimsTooLarge,
    /// The rule asked for something the server cannot do (multifactor authentication, a
    /// redirect): the login is refused rather than passed without it.
    Unsupported,
    /// The rule could not run on this node now (its compiled code could not be loaded in
    /// time); nothing of the rule ran.
    Unavailable,
}

const FAILURES: &[(FailureKind, &str)] = &[
    (FailureKind::Fuel, "failed:fuel"),
    (FailureKind::Timeout, "failed:timeout"),
    (FailureKind::Memory, "failed:memory"),
    (FailureKind::StackOverflow, "failed:stack_overflow"),
    (FailureKind::Trap, "failed:trap"),
    (FailureKind::Abi, "failed:abi"),
    (FailureKind::BadOutput, "failed:bad_output"),
    (FailureKind::MetadataTooLarge, "failed:metadata_too_large"),
    (FailureKind::ClaimsTooLarge, "failed:claims_too_large"),
    (FailureKind::Unavailable, "failed:unavailable"),
    (FailureKind::Unsupported, "failed:unsupported"),
];

/// How an execution ended. Shown and stored as `ok`, `denied` or `failed:<reason>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The rule returned a patch.
    Ok,
    /// The rule denied access.
    Denied,
    Failed(FailureKind),
}

impl Outcome {
    /// The label stored in the log and shown to tenants.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Denied => "denied",
            Outcome::Failed(kind) => FAILURES
                .iter()
                .find(|(k, _)| *k == kind)
                .map(|(_, l)| *l)
                .unwrap_or("failed"),
        }
    }

    /// The outcome a label names.
    pub fn parse(label: &str) -> Option<Outcome> {
        match label {
            "ok" => Some(Outcome::Ok),
            "denied" => Some(Outcome::Denied),
            _ => FAILURES
                .iter()
                .find(|(_, l)| *l == label)
                .map(|(k, _)| Outcome::Failed(*k)),
        }
    }

    /// Every label, for documentation and error messages.
    pub fn labels() -> impl Iterator<Item = &'static str> {
        ["ok", "denied"]
            .into_iter()
            .chain(FAILURES.iter().map(|(_, l)| *l))
    }

    /// Whether the execution failed.
    pub fn is_failure(self) -> bool {
        matches!(self, Outcome::Failed(_))
    }
}

impl Serialize for Outcome {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.label())
    }
}

impl<'de> Deserialize<'de> for Outcome {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let label = String::deserialize(d)?;
        Outcome::parse(&label)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown outcome {label:?}")))
    }
}

impl utoipa::PartialSchema for Outcome {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(Outcome::labels()))
            .into()
    }
}

impl utoipa::ToSchema for Outcome {}

/// What ran the code: the protocol of the login (Auth0's `context.protocol` /
/// `event.transaction.protocol`), or a test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Trigger {
    /// A login (authorization code grant): `oidc-basic-profile`.
    #[serde(rename = "oidc-basic-profile")]
    Login,
    /// A refresh: `oauth2-refresh-token`.
    #[serde(rename = "oauth2-refresh-token")]
    Refresh,
    /// A client credentials grant (credentials-exchange actions): `oauth2-client-credentials`.
    #[serde(rename = "oauth2-client-credentials")]
    ClientCredentials,
    /// The Management API's test endpoints.
    #[serde(rename = "test")]
    Test,
}

const TRIGGERS: [Trigger; 4] = [
    Trigger::Login,
    Trigger::Refresh,
    Trigger::ClientCredentials,
    Trigger::Test,
];

impl Trigger {
    /// The label stored in the log (the protocol of a real execution).
    pub fn label(self) -> &'static str {
        match self {
            Trigger::Login => "oidc-basic-profile",
            Trigger::Refresh => "oauth2-refresh-token",
            Trigger::ClientCredentials => "oauth2-client-credentials",
            Trigger::Test => "test",
        }
    }

    /// The trigger a label names.
    pub fn parse(label: &str) -> Option<Trigger> {
        TRIGGERS.into_iter().find(|t| t.label() == label)
    }
}

impl utoipa::PartialSchema for Trigger {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .enum_values(Some(TRIGGERS.map(Trigger::label)))
            .into()
    }
}

impl utoipa::ToSchema for Trigger {}

/// What kind of code an execution ran.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum CodeKind {
    /// An Auth0-style rule (wasm or JavaScript).
    #[default]
    Rule,
    /// An Auth0 Action.
    Action,
}

impl CodeKind {
    /// The stored label (in execution-log rows: renaming one breaks them).
    pub fn as_str(self) -> &'static str {
        match self {
            CodeKind::Rule => "rule",
            CodeKind::Action => "action",
        }
    }

    /// The kind a stored label names.
    pub fn parse(label: &str) -> Option<CodeKind> {
        match label {
            "rule" => Some(CodeKind::Rule),
            "action" => Some(CodeKind::Action),
            _ => None,
        }
    }
}

/// One execution of one rule or action, as the tenant's execution log keeps it (the store
/// keeps it in this serde shape too, inside its pipeline run's row).
#[warn(missing_docs)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExecutionRecord {
    /// Execution id (time-ordered), quoted to end users when a rule fails.
    pub id: String,
    /// A rule or an action.
    pub kind: CodeKind,
    /// Rule or action id.
    pub rule_id: String,
    /// Rule or action name at the time.
    pub rule_name: String,
    /// What ran it.
    #[serde(rename = "protocol")]
    pub trigger: Trigger,
    /// How it ended.
    pub outcome: Outcome,
    /// Wall-clock time, µs.
    pub duration_us: i64,
    /// Instructions used.
    pub fuel: i64,
    /// The rule's log lines, then the host's notes.
    pub logs: Vec<LogLine>,
    /// Unix time.
    pub created_at: i64,
    /// The rule's or action's version that ran (0 when unknown: recorded before versions
    /// existed).
    pub rule_version: i64,
    /// The rule failed and, its `on_failure` being `skip`, the pipeline went on without it.
    pub skipped: bool,
}

impl ExecutionRecord {
    /// A record of a rule's execution that is about to run (outcome set when it ends).
    pub fn start(rule_id: &str, rule_name: &str, trigger: Trigger, now: i64) -> Self {
        ExecutionRecord {
            // Time-ordered ids keep executions of one second in the order they ran.
            id: uuid::Uuid::now_v7().to_string(),
            kind: CodeKind::Rule,
            rule_id: rule_id.to_string(),
            rule_name: rule_name.to_string(),
            trigger,
            outcome: Outcome::Ok,
            duration_us: 0,
            fuel: 0,
            logs: Vec::new(),
            created_at: now,
            rule_version: 0,
            skipped: false,
        }
    }

    /// Marks the record failed, with the reason as the last log line.
    pub fn fail(&mut self, kind: FailureKind, detail: impl Into<String>) {
        self.outcome = Outcome::Failed(kind);
        self.logs.push(LogLine::error(detail));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_label_parses_back() {
        for label in Outcome::labels() {
            assert_eq!(Outcome::parse(label).unwrap().label(), label);
        }
        assert_eq!(Outcome::parse("failed:nope"), None);
        assert_eq!(
            serde_json::to_string(&Outcome::Failed(FailureKind::Fuel)).unwrap(),
            "\"failed:fuel\""
        );
    }
}
