//! What a rule does when it fails.

use super::{Invalid, invalid};

/// A rule's failure mode (SPEC §12). A *denial* always denies; this governs traps, timeouts,
/// exhausted fuel or memory and bad output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", try_from = "String", into = "String")]
pub enum OnFailure {
    /// Fail closed: the login fails with the execution id.
    #[default]
    Deny,
    /// Fail open: the failure is logged (`skipped: true`) and the pipeline goes on with the
    /// objects as they were before this rule.
    Skip,
}

impl OnFailure {
    /// Parses `deny` or `skip`.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        match s {
            "deny" => Ok(OnFailure::Deny),
            "skip" => Ok(OnFailure::Skip),
            other => Err(invalid(format!(
                "unsupported on_failure {other:?}; use deny or skip"
            ))),
        }
    }

    /// The stored and shown value.
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Deny => "deny",
            OnFailure::Skip => "skip",
        }
    }
}

impl TryFrom<String> for OnFailure {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        OnFailure::parse(&s).map_err(|e| e.0)
    }
}

impl From<OnFailure> for String {
    fn from(v: OnFailure) -> String {
        v.as_str().to_string()
    }
}
