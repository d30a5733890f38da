//! HTML pages. minijinja auto-escapes every `.html` template, so user-controlled text (client
//! names, emails, error messages) can never become markup.

use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;
use serde::Serialize;

/// The compiled templates.
pub struct Pages {
    env: Environment<'static>,
    base_path: String,
}

impl Pages {
    /// Loads the templates compiled into the binary.
    pub fn new(base_path: String) -> Self {
        let mut env = Environment::new();
        for (name, source) in [
            ("base.html", include_str!("../../templates/base.html")),
            ("login.html", include_str!("../../templates/login.html")),
            ("consent.html", include_str!("../../templates/consent.html")),
            ("error.html", include_str!("../../templates/error.html")),
            ("logout.html", include_str!("../../templates/logout.html")),
            (
                "logged_out.html",
                include_str!("../../templates/logged_out.html"),
            ),
            (
                "demo_callback.html",
                include_str!("../../templates/demo_callback.html"),
            ),
        ] {
            env.add_template(name, source)
                .expect("built-in templates are valid");
        }
        Pages { env, base_path }
    }

    /// Renders `name` with `ctx` (plus `base_path`) and `status`; pages are never cached.
    pub fn render<S: Serialize>(&self, name: &str, status: StatusCode, ctx: S) -> Response {
        let rendered = self.env.get_template(name).and_then(|t| {
            t.render(minijinja::context! { base_path => &self.base_path, ..minijinja::Value::from_serialize(&ctx) })
        });
        match rendered {
            Ok(html) => (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response(),
            Err(e) => {
                tracing::error!(error = %e, template = name, "template rendering failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        }
    }

    pub fn error(&self, status: StatusCode, message: &str) -> Response {
        self.render("error.html", status, minijinja::context! { message })
    }
}

pub const STYLESHEET: &str = include_str!("../../assets/style.css");
