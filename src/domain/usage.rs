//! What a tenant used, per day (SPEC §18): counted where it happens, added into the database by
//! every node off the request path, so whichever node answers, the figures are the same.

use serde::Serialize;

pub use super::GrantType;

/// One figure usage counts per tenant and day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    /// Password logins that succeeded.
    Logins,
    /// Token responses of one grant type.
    Grant(GrantType),
    /// Rule executions (logins, refreshes), whatever their outcome.
    RuleExecutions,
    /// Action executions (post-login, credentials-exchange), whatever their outcome.
    ActionExecutions,
    /// Executions that failed (`failed:*`).
    Failures,
    /// Executions that denied access.
    Denials,
    /// Instructions (fuel) the executions used.
    Fuel,
}

impl Metric {
    const SIMPLE: [(Metric, &'static str); 6] = [
        (Metric::Logins, "logins"),
        (Metric::RuleExecutions, "rule_executions"),
        (Metric::ActionExecutions, "action_executions"),
        (Metric::Failures, "failures"),
        (Metric::Denials, "denials"),
        (Metric::Fuel, "fuel"),
    ];

    /// How the database names it.
    pub fn key(self) -> String {
        match self {
            Metric::Grant(g) => format!("grant:{}", g.as_str()),
            m => Self::SIMPLE
                .iter()
                .find(|(s, _)| *s == m)
                .map(|(_, k)| k.to_string())
                .expect("every simple metric has a key"),
        }
    }

    /// The metric a database key names (`None` for a key of a later version).
    pub fn parse(key: &str) -> Option<Metric> {
        if let Some(g) = key.strip_prefix("grant:") {
            return GrantType::parse(g).map(Metric::Grant);
        }
        Self::SIMPLE
            .iter()
            .find(|(_, k)| *k == key)
            .map(|(m, _)| *m)
    }
}

/// A day as usage counts it: days since 1970-01-01, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Day(pub i64);

impl Day {
    /// The day a Unix time falls on.
    pub fn of(unix: i64) -> Day {
        Day(unix.div_euclid(86_400))
    }

    /// `YYYY-MM-DD` or Auth0's `YYYYMMDD`.
    pub fn parse(text: &str) -> Option<Day> {
        let digits: String = text.chars().filter(|c| *c != '-').collect();
        let well_formed = match text.len() {
            10 => text.as_bytes()[4] == b'-' && text.as_bytes()[7] == b'-',
            8 => true,
            _ => false,
        };
        if !well_formed || digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (y, m, d) = (
            digits[0..4].parse().ok()?,
            digits[4..6].parse::<u8>().ok()?,
            digits[6..8].parse().ok()?,
        );
        let month = time::Month::try_from(m).ok()?;
        let date = time::Date::from_calendar_date(y, month, d).ok()?;
        Some(Day(i64::from(date.to_julian_day() - EPOCH_JULIAN_DAY)))
    }

    /// `YYYY-MM-DD`.
    pub fn render(self) -> String {
        let julian = i32::try_from(self.0 + i64::from(EPOCH_JULIAN_DAY)).unwrap_or(i32::MAX);
        match time::Date::from_julian_day(julian) {
            Ok(d) => format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day()),
            Err(_) => format!("day {}", self.0),
        }
    }
}

/// 1970-01-01's Julian day number.
const EPOCH_JULIAN_DAY: i32 = 2_440_588;

/// One day of a tenant's usage, as the Management API and the CLI show it.
#[warn(missing_docs)]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UsageDay {
    /// `YYYY-MM-DD` (UTC).
    pub date: String,
    /// Password logins that succeeded.
    pub logins: i64,
    /// Token responses by grant type.
    pub token_grants: TokenGrants,
    /// Rule executions.
    pub rule_executions: i64,
    /// Action executions.
    pub action_executions: i64,
    /// Rule and action executions that failed.
    pub failures: i64,
    /// Rule and action executions that denied access.
    pub denials: i64,
    /// Instructions (fuel) the rules and actions used.
    pub fuel: i64,
}

/// Token responses of one day by grant type.
#[warn(missing_docs)]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TokenGrants {
    /// Codes exchanged.
    pub authorization_code: i64,
    /// Refresh tokens used.
    pub refresh_token: i64,
    /// Client credentials grants (Management API tokens among them).
    pub client_credentials: i64,
}

impl UsageDay {
    /// A day with nothing counted.
    pub fn empty(day: Day) -> Self {
        UsageDay {
            date: day.render(),
            ..Default::default()
        }
    }

    /// Adds `value` of `metric`.
    pub fn add(&mut self, metric: Metric, value: i64) {
        let slot = match metric {
            Metric::Logins => &mut self.logins,
            Metric::Grant(GrantType::AuthorizationCode) => {
                &mut self.token_grants.authorization_code
            }
            Metric::Grant(GrantType::RefreshToken) => &mut self.token_grants.refresh_token,
            Metric::Grant(GrantType::ClientCredentials) => {
                &mut self.token_grants.client_credentials
            }
            Metric::RuleExecutions => &mut self.rule_executions,
            Metric::ActionExecutions => &mut self.action_executions,
            Metric::Failures => &mut self.failures,
            Metric::Denials => &mut self.denials,
            Metric::Fuel => &mut self.fuel,
        };
        *slot = slot.saturating_add(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_parse_both_forms_and_render_back() {
        assert_eq!(Day::parse("1970-01-01"), Some(Day(0)));
        assert_eq!(Day::parse("19700102"), Some(Day(1)));
        let d = Day::parse("2026-12-05").unwrap();
        assert_eq!(d, Day::of(1_796_464_800));
        assert_eq!(d.render(), "2026-12-05");
        assert_eq!(Day::parse("2024-02-29").unwrap().render(), "2024-02-29");
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "2026-1-01",
            "20261",
            "2026/12/05",
            "",
            "2026-12-05x",
            "+026-12-05",
            "2026120",
        ] {
            assert_eq!(Day::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_metric_has_a_key_that_parses_back() {
        let mut all = vec![
            Metric::Logins,
            Metric::RuleExecutions,
            Metric::ActionExecutions,
            Metric::Failures,
            Metric::Denials,
            Metric::Fuel,
        ];
        all.extend(GrantType::ALL.map(Metric::Grant));
        for m in all {
            assert_eq!(Metric::parse(&m.key()), Some(m));
        }
        assert_eq!(Metric::parse("grant:password"), None);
    }
}
