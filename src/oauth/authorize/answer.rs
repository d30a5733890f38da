//! What the authorizer takes from `http/` (the browser, the forms) and gives back (an
//! [`Answer`]: an [`Outcome`] and cookie changes, or a [`Problem`]); `http/` decides how each
//! looks.

use super::*;

/// What the HTTP layer knows about the browser.
#[derive(Debug, Clone, Default)]
pub struct Browser {
    /// The browser-binding cookie, if present.
    pub browser_id: Option<String>,
    /// The SSO session cookie, if present.
    pub session_id: Option<String>,
    /// Client address (through trusted proxies, see `http/`).
    pub ip: String,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// `Host` header.
    pub hostname: Option<String>,
    /// The device cookie: accounts that signed in from this browser (see [`throttle`]).
    pub device: Option<String>,
    /// HTTP method of the request.
    pub method: String,
    /// The first language of `Accept-Language`.
    pub language: Option<String>,
}

impl Browser {
    /// What rules and actions are told of this request, with `query`'s parameters.
    pub fn request_info(&self, query: std::collections::BTreeMap<String, String>) -> RequestInfo {
        RequestInfo {
            ip: self.ip.clone(),
            method: self.method.clone(),
            hostname: self.hostname.clone().unwrap_or_default(),
            user_agent: self.user_agent.clone().unwrap_or_default(),
            language: self.language.clone().unwrap_or_default(),
            query,
            body: Default::default(),
        }
    }
}

/// Cookies the HTTP layer must set with the response.
#[derive(Debug, Clone, Default)]
pub struct CookieChanges {
    /// A new browser-binding cookie value.
    pub browser_id: Option<String>,
    /// A new SSO session cookie value.
    pub session_id: Option<String>,
    /// A new device cookie value.
    pub device: Option<String>,
}

/// A browser's live SSO session and its user.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub session: SessionRecord,
    /// Its user, read with it.
    pub user: UserRecord,
    /// The user's role names when they were read with the session (`None`: not read; the
    /// claims step reads them if a rule or action runs).
    pub roles: Option<Vec<String>>,
}

/// Why a login form is shown again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginProblem {
    /// Unknown user or wrong password (one answer for both).
    WrongCredentials,
    /// The username or password is longer than any real one.
    TooLong,
    /// Too many attempts for this account or from this address; try again after `retry_after`
    /// seconds.
    Throttled {
        /// Seconds.
        retry_after: i64,
    },
    /// Every password check is busy; try again after `retry_after` seconds.
    Busy {
        /// Seconds.
        retry_after: i64,
    },
    /// The user's password is still with the old Auth0 tenant (lazy migration), which gave no
    /// clear answer; try again after `retry_after` seconds.
    Unavailable {
        /// Seconds.
        retry_after: i64,
    },
}

impl LoginProblem {
    /// The message shown on the form.
    pub fn message(self) -> &'static str {
        match self {
            LoginProblem::WrongCredentials => "Wrong email or password.",
            LoginProblem::TooLong => "That email or password is too long.",
            LoginProblem::Throttled { .. } => {
                "Too many failed attempts. Wait a few minutes and try again."
            }
            LoginProblem::Busy { .. } => "The server is busy. Wait a moment and try again.",
            LoginProblem::Unavailable { .. } => {
                "Your account is being moved and could not be checked right now. Try again in a few minutes."
            }
        }
    }
}

/// The login form to render.
#[derive(Debug, Clone, Serialize)]
pub struct LoginForm {
    /// Transaction id.
    pub tx: String,
    pub csrf: String,
    /// The application's name.
    pub client_name: String,
    /// Prefilled username (`login_hint`, or what was typed).
    pub username: String,
    /// Message after a failed attempt.
    pub error: Option<&'static str>,
    /// Why the form is shown again.
    #[serde(skip)]
    pub problem: Option<LoginProblem>,
}

/// The consent form to render.
#[derive(Debug, Clone, Serialize)]
pub struct ConsentForm {
    /// Transaction id.
    pub tx: String,
    pub csrf: String,
    /// The application's name.
    pub client_name: String,
    /// Who is consenting.
    pub user_email: String,
    /// The API the application will call, if any.
    pub api_name: Option<String>,
    /// Requested permissions.
    pub scopes: Vec<ScopeLine>,
}

/// Why a step cannot go on; shown on an error page, never sent to the client's redirect_uri.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The request is malformed or names an unknown client or callback.
    BadRequest(String),
    /// The login transaction expired, is unknown, or belongs to another browser.
    Expired,
    /// The form could not be verified (CSRF).
    Forbidden,
}

impl Problem {
    /// Text safe to show.
    pub fn message(&self) -> &str {
        match self {
            Problem::BadRequest(m) => m,
            Problem::Expired => {
                "This sign-in request has expired or is not valid in this browser. Go back to the application and start again."
            }
            Problem::Forbidden => {
                "The form could not be verified (missing or invalid CSRF token). Go back to the application and start again."
            }
        }
    }
}

/// What to answer the browser.
#[derive(Debug)]
pub enum Outcome {
    /// An error page.
    Problem(Problem),
    /// 303 to this URL (the client's redirect_uri or our own next step).
    Redirect(String),
    /// Show the login form.
    Login(LoginForm),
    /// Show the consent form.
    Consent(ConsentForm),
}

/// An answer plus the cookies to set with it.
#[derive(Debug)]
pub struct Answer {
    /// What to show.
    pub outcome: Outcome,
    pub cookies: CookieChanges,
}

impl From<Outcome> for Answer {
    fn from(outcome: Outcome) -> Self {
        Answer {
            outcome,
            cookies: CookieChanges::default(),
        }
    }
}

impl From<Problem> for Answer {
    fn from(problem: Problem) -> Self {
        Outcome::Problem(problem).into()
    }
}
