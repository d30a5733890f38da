//! Outbound HTTP through the host (`wardstone.http_fetch`, SPEC §12). The host performs the
//! request only for hosts on the tenant's allow-list, follows no redirect, and stops within
//! the rule's deadline; every refusal or failure comes back as `Err(message)`, and the rule
//! decides what it means (deny, or go on without the data).
//!
//! ```no_run
//! use rules_sdk::http;
//! let answer = http::fetch(&http::Request::get("https://crm.example.com/v1/people/42"));
//! match answer {
//!     Ok(r) if r.status == 200 => { /* r.json::<…>() */ }
//!     Ok(r) => rules_sdk::log::warn(&format!("CRM answered {}", r.status)),
//!     Err(e) => rules_sdk::log::warn(&format!("CRM unreachable: {e}")),
//! }
//! ```
//!
//! Natively (unit tests) there is no host: [`mock`] installs a function that answers instead.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A request.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Request {
    /// `GET`, `POST`, `PUT`, `PATCH`, `DELETE` or `HEAD`.
    pub method: String,
    /// An absolute `http` or `https` URL whose host is on the tenant's allow-list.
    pub url: String,
    /// Request headers.
    pub headers: BTreeMap<String, String>,
    /// Request body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

impl Request {
    /// A `GET` of `url`.
    pub fn get(url: impl Into<String>) -> Self {
        Request {
            method: "GET".into(),
            url: url.into(),
            headers: BTreeMap::new(),
            body: None,
        }
    }

    /// A `POST` of a JSON body to `url`.
    pub fn post_json(url: impl Into<String>, body: &serde_json::Value) -> Self {
        Request {
            method: "POST".into(),
            url: url.into(),
            headers: BTreeMap::from([("content-type".into(), "application/json".into())]),
            body: Some(body.to_string()),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }
}

/// A response (any status: a 404 or 500 is a response, not an error).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Response {
    /// HTTP status (a 3xx is returned as is: redirects are not followed).
    pub status: u16,
    /// Response headers (lowercase names; repeated headers joined with `, `).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body as text (at most the host's cap, 256 KiB by default).
    #[serde(default)]
    pub body: String,
}

impl Response {
    /// The body parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_str(&self.body)
            .map_err(|e| format!("the response is not the JSON expected: {e}"))
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Answer {
    Error { error: String },
    Response(Response),
}

#[cfg(target_arch = "wasm32")]
mod sys {
    #[link(wasm_import_module = "wardstone")]
    unsafe extern "C" {
        pub fn http_fetch(ptr: i32, len: i32) -> i64;
    }
}

#[cfg(not(target_arch = "wasm32"))]
type Mock = Box<dyn Fn(&Request) -> Result<Response, String>>;

#[cfg(not(target_arch = "wasm32"))]
thread_local! {
    static MOCK: std::cell::RefCell<Option<Mock>> = const { std::cell::RefCell::new(None) };
}

/// Natively, answers [`fetch`] with `f` on this thread (for a rule's unit tests).
#[cfg(not(target_arch = "wasm32"))]
pub fn mock(f: impl Fn(&Request) -> Result<Response, String> + 'static) {
    MOCK.with(|m| *m.borrow_mut() = Some(Box::new(f)));
}

/// Performs `request` through the host.
pub fn fetch(request: &Request) -> Result<Response, String> {
    #[cfg(target_arch = "wasm32")]
    {
        let json = serde_json::to_vec(request).map_err(|e| e.to_string())?;
        // SAFETY: the pointer and length describe a live slice for the duration of the call;
        // the host writes its answer into memory it got from this module's `alloc` and
        // returns where.
        let packed = unsafe { sys::http_fetch(json.as_ptr() as i32, json.len() as i32) };
        let (ptr, len) = (
            (packed as u64 >> 32) as usize,
            (packed as u64 & 0xffff_ffff) as usize,
        );
        // SAFETY: `alloc` handed out `len` bytes at `ptr`, which the host filled.
        let bytes = unsafe { std::slice::from_raw_parts(ptr as *const u8, len) };
        parse(bytes)
    }
    #[cfg(not(target_arch = "wasm32"))]
    MOCK.with(|m| match &*m.borrow() {
        Some(f) => f(request),
        None => Err(
            "wardstone.http_fetch is only available inside Wardstone (use http::mock in tests)"
                .into(),
        ),
    })
}

#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn parse(bytes: &[u8]) -> Result<Response, String> {
    match serde_json::from_slice::<Answer>(bytes) {
        Ok(Answer::Response(r)) => Ok(r),
        Ok(Answer::Error { error }) => Err(error),
        Err(e) => Err(format!("the host's answer is not understood: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_into_responses_or_errors() {
        let ok = parse(br#"{"status":200,"headers":{"a":"b"},"body":"{\"x\":1}"}"#).unwrap();
        assert_eq!(ok.status, 200);
        assert_eq!(ok.json::<serde_json::Value>().unwrap()["x"], 1);
        assert_eq!(
            parse(br#"{"error":"host not allowed"}"#),
            Err("host not allowed".into())
        );
        assert!(parse(b"garbage").is_err());
    }

    #[test]
    fn the_mock_answers_natively() {
        mock(|r| {
            Ok(Response {
                status: 201,
                headers: BTreeMap::new(),
                body: r.url.clone(),
            })
        });
        let r = fetch(&Request::get("https://x.example/")).unwrap();
        assert_eq!((r.status, r.body.as_str()), (201, "https://x.example/"));
    }
}
