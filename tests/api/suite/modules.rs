// The built-in modules (SPEC §15, docs/writing-js-rules.md): what Auth0's rules and actions
// `require` works through real logins — the HTTP clients over the tenant's allow-list to a
// local upstream, the pure modules, host-backed JWTs — and is shared frozen by the scripts of
// one login; a module used wrongly fails the login closed.

use std::sync::{Arc, Mutex};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;

const NS: &str = "https://wardstone.dev/";

/// Whether this build bundles the modules (CI requires it; elsewhere the tests skip).
fn bundled() -> bool {
    let bundled = wardstone::rules::js::BUILTIN_MODULES.contains(&"lodash");
    assert!(
        bundled || !toolchains_required(),
        "WARDSTONE_REQUIRE_TOOLCHAINS is set but the modules were not bundled"
    );
    bundled && js_sample("add-roles").is_some()
}

fn post_login(body: &str) -> String {
    format!("exports.onExecutePostLogin = async (event, api) => {{\n{body}\n}};\n")
}

/// An upstream on loopback: `/echo` answers what it received as JSON, `/status/404` a JSON
/// 404, `/slack` records what was posted.
async fn upstream() -> (u16, Arc<Mutex<Vec<Value>>>) {
    use axum::routing::{any, get, post};
    let slack = Arc::new(Mutex::new(Vec::new()));
    let posted = slack.clone();
    let router = axum::Router::new()
        .route(
            "/echo",
            any(
                |method: axum::http::Method,
                 uri: axum::http::Uri,
                 headers: axum::http::HeaderMap,
                 body: String| async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .map(str::to_string)
                    };
                    axum::Json(json!({
                        "method": method.as_str(),
                        "query": uri.query(),
                        "headers": {
                            "authorization": header("authorization"),
                            "content-type": header("content-type"),
                            "x-api-key": header("x-api-key"),
                        },
                        "body": body,
                    }))
                },
            ),
        )
        .route(
            "/status/404",
            get(|| async {
                (
                    axum::http::StatusCode::NOT_FOUND,
                    axum::Json(json!({"error": "nope"})),
                )
            }),
        )
        .route(
            "/slack",
            post(move |body: String| async move {
                posted
                    .lock()
                    .unwrap()
                    .push(serde_json::from_str(&body).unwrap_or(Value::Null));
                "ok"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (port, slack)
}

async fn id_token_claims(app: &TestApp) -> Value {
    let tokens = app.tokens(&Browser::new()).await;
    app.verify(tokens["id_token"].as_str().unwrap(), &app.client_id)
        .await
        .1
}

#[tokio::test]
async fn the_http_modules_reach_an_allowed_upstream_from_rules_and_actions() {
    if !bundled() {
        return;
    }
    let app = spawn_app_reaching_loopback().await;
    let mgmt = app.mgmt_token(None).await;
    let (port, slack) = upstream().await;
    let base = format!("http://127.0.0.1:{port}");
    app.allow_host(&mgmt, &format!("127.0.0.1:{port}")).await;

    // Auth0 Rules templates' shapes: request's callback API (versioned), request-promise.
    app.add_script(
        "request",
        &format!(
            "function (user, context, callback) {{
               const request = require('request@2.88.0');
               request.post({{ url: '{base}/echo', qs: {{ a: 1 }}, form: {{ email: user.email }},
                 auth: {{ bearer: 'tok' }}, json: true }}, function (err, response, body) {{
                 if (err) return callback(err);
                 context.idToken['{NS}request'] = {{ status: response.statusCode, method: body.method,
                   query: body.query, auth: body.headers.authorization,
                   type: body.headers['content-type'], body: body.body }};
                 callback(null, user, context);
               }});
             }}"
        ),
    )
    .await;
    app.add_script(
        "request-promise",
        &format!(
            "function (user, context, callback) {{
               const rp = require('request-promise');
               rp({{ uri: '{base}/status/404', json: true }})
                 .then(() => {{ throw new Error('a 404 must reject'); }}, (e) => {{
                   context.idToken['{NS}rp404'] = {{ name: e.name, status: e.statusCode, error: e.error }};
                   return rp.get('{base}/echo?x=1', {{ json: true, auth: {{ user: 'u', pass: 'p' }} }});
                 }})
                 .then((body) => {{
                   context.idToken['{NS}rp'] = body.headers.authorization;
                   callback(null, user, context);
                 }})
                 .catch(callback);
             }}"
        ),
    )
    .await;
    // An action with axios, node-fetch and slack-notify, and a host the tenant did not allow.
    app.live_action(
        &mgmt,
        "http modules",
        &post_login(&format!(
            "const axios = require('axios@0.21.1');
             const claim = (k, v) => api.idToken.setCustomClaim('{NS}' + k, v);
             const client = axios.create({{ baseURL: '{base}', headers: {{ 'X-Api-Key': 'k1' }} }});
             const res = await client.post('/echo', {{ user: event.user.email }}, {{ params: {{ p: 'q' }} }});
             claim('axios', {{ status: res.status, body: JSON.parse(res.data.body), query: res.data.query,
               key: res.data.headers['x-api-key'], type: res.data.headers['content-type'] }});
             try {{ await axios.get('{base}/status/404'); }} catch (e) {{
               claim('axios404', {{ status: e.response.status, data: e.response.data, axiosError: axios.isAxiosError(e) }});
             }}
             try {{ await axios.get('http://10.0.0.1/'); claim('refused', 'sent'); }} catch (e) {{ claim('refused', e.code); }}
             const fetch = require('node-fetch');
             const r = await fetch('{base}/echo', {{ method: 'PUT', body: 'raw' }});
             claim('nodefetch', (await r.json()).method);
             const slack = require('slack-notify')('{base}/slack');
             await slack.alert({{ text: 'login', fields: {{ email: event.user.email }} }});"
        )),
    )
    .await;

    let claims = id_token_claims(&app).await;
    let claim = |k: &str| claims[format!("{NS}{k}")].clone();
    let email = claims["email"].as_str().unwrap().to_string();
    assert_eq!(
        claim("request"),
        json!({"status": 200, "method": "POST", "query": "a=1", "auth": "Bearer tok",
               "type": "application/x-www-form-urlencoded",
               "body": format!("email={}", email.replace('@', "%40"))}),
        "{claims}"
    );
    assert_eq!(
        claim("rp404"),
        json!({"name": "StatusCodeError", "status": 404, "error": {"error": "nope"}})
    );
    assert_eq!(claim("rp"), "Basic dTpw");
    assert_eq!(
        claim("axios"),
        json!({"status": 200, "body": {"user": email}, "query": "p=q", "key": "k1",
               "type": "application/json"})
    );
    assert_eq!(
        claim("axios404"),
        json!({"status": 404, "data": {"error": "nope"}, "axiosError": true})
    );
    assert_eq!(
        claim("refused"),
        "ERR_NETWORK",
        "a private host stays closed"
    );
    assert_eq!(claim("nodefetch"), "PUT");
    let posted = slack.lock().unwrap().clone();
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!(posted[0]["text"], "login");
    assert_eq!(posted[0]["username"], "Alert");
    assert_eq!(posted[0]["attachments"][0]["fields"][0]["title"], "email");
    assert_eq!(posted[0]["attachments"][0]["fields"][0]["value"], email);
}

#[tokio::test]
async fn the_pure_modules_work_and_one_script_cannot_change_them_for_the_next() {
    if !bundled() {
        return;
    }
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    app.add_script(
        "lodash and moment in a rule",
        &format!(
            "function (user, context, callback) {{
               const _ = require('lodash');
               const moment = require('moment@2.11.2');
               context.idToken['{NS}rule'] = _.pick({{ a: 1, b: 2, when: moment.utc(0).add(1, 'day').format('YYYY-MM-DD') }}, ['a', 'when']);
               try {{ _.pick = function () {{ return 'tampered'; }}; }} catch (e) {{}}
               try {{ require('moment').utc = null; }} catch (e) {{}}
               callback(null, user, context);
             }}"
        ),
    )
    .await;
    app.live_action(
        &mgmt,
        "pure modules",
        &post_login(&format!(
            "const _ = require('lodash@4.17.19');
             const moment = require('moment');
             const {{ v4: uuidv4 }} = require('uuid');
             const url = require('url');
             const qs = require('querystring');
             const ipaddr = require('ipaddr.js');
             const jwt = require('jsonwebtoken');
             const claim = (k, v) => api.idToken.setCustomClaim('{NS}' + k, v);
             claim('untampered', _.pick({{ x: 1, y: 2 }}, ['y']));
             claim('get', _.get({{ a: {{ b: [1, 2] }} }}, 'a.b[1]'));
             claim('moment', moment.utc('2026-12-04T10:00:00Z').add(1, 'day').format('YYYY-MM-DD HH:mm'));
             claim('uuid', /^[0-9a-f]{{8}}-[0-9a-f]{{4}}-4[0-9a-f]{{3}}-[89ab][0-9a-f]{{3}}-[0-9a-f]{{12}}$/.test(uuidv4()));
             claim('parse', url.parse('https://a.example/p?q=1#h', true).query.q);
             claim('format', url.format({{ protocol: 'https', hostname: 'b.example', pathname: '/x', query: {{ y: '2' }} }}));
             const u = new URL('https://C.example:443/path?x=1');
             u.searchParams.set('y', '2 3');
             claim('URL', [u.href, u.host, new url.URL('/z', 'https://d.example/a/b').href]);
             claim('qs', [qs.stringify({{ a: [1, 2], b: 'c d' }}), qs.parse('x=1&x=2&y=%20').x]);
             claim('ip', [ipaddr.parse('10.1.2.3').match(ipaddr.parseCIDR('10.0.0.0/8')), ipaddr.parse('192.168.0.1').range()]);
             "
        )),
    )
    .await;
    // A second action (each has its own fuel: QuickJS in wasm makes a moment format or a JWT
    // round trip cost about a million instructions).
    app.live_action(
        &mgmt,
        "jwt",
        &post_login(&format!(
            "const jwt = require('jsonwebtoken');
             const claim = (k, v) => api.idToken.setCustomClaim('{NS}' + k, v);

             const token = jwt.sign({{ sub: event.user.user_id }}, 'shh', {{ expiresIn: '1h', issuer: 'me' }});
             const decoded = jwt.verify(token, 'shh', {{ issuer: 'me' }});
             claim('jwt', [decoded.sub === event.user.user_id, decoded.exp - decoded.iat, jwt.decode(token, {{ complete: true }}).header.alg]);
             "
        )),
    )
    .await;
    app.live_action(
        &mgmt,
        "jwt errors",
        &post_login(&format!(
            "const jwt = require('jsonwebtoken');
             const token = jwt.sign({{ sub: event.user.user_id }}, 'shh', {{ expiresIn: '1h', issuer: 'me' }});
             const errors = [];
             try {{ jwt.verify(token, 'wrong'); }} catch (e) {{ errors.push(e.name + ': ' + e.message); }}
             try {{ jwt.verify(token, 'shh', {{ audience: 'api' }}); }} catch (e) {{ errors.push(e.message); }}
             const old = jwt.sign({{ x: 1, exp: Math.floor(Date.now() / 1000) - 10 }}, Buffer.from('c2ho', 'base64'));
             try {{ jwt.verify(old, 'shh'); }} catch (e) {{ errors.push(e.name); }}
             // A public key's text is no HMAC secret, and an empty key signs nothing.
             const pem = '-----BEGIN PUBLIC KEY-----\\nMFkw\\n-----END PUBLIC KEY-----';
             try {{ jwt.sign({{ a: 1 }}, pem, {{ algorithm: 'HS256' }}); errors.push('signed with a PEM'); }} catch (e) {{ errors.push('no PEM secret'); }}
             try {{ jwt.verify(token, pem, {{ algorithms: ['RS256', 'HS256'] }}); errors.push('verified'); }} catch (e) {{ errors.push(e.message); }}
             try {{ jwt.sign({{ a: 1 }}, new Buffer('', 'base64')); errors.push('signed empty'); }} catch (e) {{ errors.push('no empty secret'); }}
             api.idToken.setCustomClaim('{NS}jwt errors', errors);"
        )),
    )
    .await;

    app.live_action(
        &mgmt,
        "buffer",
        &post_login(&format!(
            "api.idToken.setCustomClaim('{NS}buffer', [Buffer.from('hello:world').toString('base64'),
               Buffer.from('aGk=', 'base64').toString(), new Buffer('aGk=', 'base64').toString(),
               Buffer.alloc(4, 'ab').toString()]);"
        )),
    )
    .await;
    let q = app.authorize_outcome(&Browser::new(), &[]).await;
    assert!(q.contains_key("code"), "{q:?}: {:?}", app.logs(4).await);
    let claims = id_token_claims(&app).await;
    let claim = |k: &str| claims[format!("{NS}{k}")].clone();
    assert_eq!(
        claim("rule"),
        json!({"a": 1, "when": "1970-01-02"}),
        "{claims}"
    );
    assert_eq!(
        claim("untampered"),
        json!({"y": 2}),
        "the rule's assignment did not reach the action"
    );
    assert_eq!(claim("get"), 2);
    assert_eq!(claim("moment"), "2026-12-05 10:00");
    assert_eq!(claim("uuid"), true);
    assert_eq!(claim("parse"), "1");
    assert_eq!(claim("format"), "https://b.example/x?y=2");
    assert_eq!(
        claim("URL"),
        json!([
            "https://c.example/path?x=1&y=2+3",
            "c.example",
            "https://d.example/z"
        ])
    );
    assert_eq!(claim("qs"), json!(["a=1&a=2&b=c%20d", ["1", "2"]]));
    assert_eq!(claim("ip"), json!([true, "private"]));
    assert_eq!(
        claim("buffer"),
        json!(["aGVsbG86d29ybGQ=", "hi", "hi", "abab"])
    );
    assert_eq!(claim("jwt"), json!([true, 3600, "HS256"]));
    assert_eq!(
        claim("jwt errors"),
        json!([
            "JsonWebTokenError: invalid signature",
            "jwt audience invalid. expected: api",
            "TokenExpiredError",
            "no PEM secret",
            "invalid algorithm",
            "no empty secret"
        ])
    );
}

#[tokio::test]
async fn modules_used_wrongly_fail_closed_and_unknown_ones_are_refused_by_name() {
    if !bundled() {
        return;
    }
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    // A vendor SDK or database driver is not in the set: refused at upload, naming it.
    for (code, name) in [
        ("const db = require('mongodb@3.1.4');", "mongodb@3.1.4"),
        ("const x = require('xmldom');", "xmldom"),
    ] {
        let (status, body) = app
            .api(
                "POST",
                "/actions/actions",
                &mgmt,
                Some(
                    json!({"name": "x", "supported_triggers": [{"id": "post-login"}],
                    "code": format!("{code}\nexports.onExecutePostLogin = async () => {{}};")}),
                ),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(name), "{body}");
        assert!(message.contains("lodash"), "the set is listed: {body}");
    }
    let (status, body) = app
        .api(
            "POST",
            "/actions/actions",
            &mgmt,
            Some(json!({"name": "deps", "supported_triggers": [{"id": "post-login"}],
                "dependencies": [{"name": "lodash", "version": "4.17.21"}, {"name": "tedious", "version": "1.0.0"}],
                "code": "exports.onExecutePostLogin = async () => {};"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("tedious"),
        "{body}"
    );

    // Signing with a key that is not one fails the login closed, saying why.
    app.live_action(
        &mgmt,
        "bad key",
        &post_login(&format!(
            "api.idToken.setCustomClaim('{NS}x', require('jsonwebtoken').sign({{ a: 1 }}, 'not a pem', {{ algorithm: 'RS256' }}));"
        )),
    )
    .await;
    app.assert_login_fails_closed("PEM").await;
}

#[tokio::test]
async fn a_rules_redirect_with_auth0s_rule_utilities_pauses_the_login_and_reruns_the_rules_on_continue()
 {
    if !bundled() {
        return;
    }
    let app = spawn_app().await;
    let mgmt = app.mgmt_token(None).await;
    const SECRET: &str = "session-token-secret-shared-with-the-page";
    let (status, body) = app
        .api(
            "PUT",
            "/rules-configs/SESSION_TOKEN_SECRET",
            &mgmt,
            Some(json!({"value": SECRET})),
        )
        .await;
    assert!(status.is_success(), "{body}");
    // The shape of Auth0's rule-utilities templates (caisson, onfido, vouched, ...).
    app.add_script(
        "verify",
        &format!(
            "async function verify(user, context, callback) {{
               const {{ Auth0RedirectRuleUtilities, Auth0UserUpdateUtilities }} = require('@auth0/rule-utilities@0.2.0');
               const ruleUtils = new Auth0RedirectRuleUtilities(user, context, configuration);
               const userUtils = new Auth0UserUpdateUtilities(user, auth0, 'verify');
               if (ruleUtils.isRedirectCallback && ruleUtils.queryParams.session_token) {{
                 let payload;
                 try {{ payload = ruleUtils.validateSessionToken(); }} catch (e) {{ return callback(e); }}
                 userUtils.setAppMeta('result', payload.result);
                 await userUtils.updateAppMeta();
                 context.idToken['{NS}result'] = payload.result;
                 return callback(null, user, context);
               }}
               if (ruleUtils.canRedirect && !userUtils.getAppMeta('result')) {{
                 ruleUtils.doRedirect('https://verify.example/start?lang=fr');
                 return callback(null, user, context);
               }}
               context.idToken['{NS}result'] = 'already ' + userUtils.getAppMeta('result');
               callback(null, user, context);
             }}"
        ),
    )
    .await;
    // A later rule sees the redirect and runs on; actions come after the pause.
    app.add_script(
        "sees it",
        &format!(
            "function (user, context, callback) {{
               context.idToken['{NS}protocol'] = context.protocol;
               context.idToken['{NS}saw'] = !!context.redirect;
               callback(null, user, context);
             }}"
        ),
    )
    .await;

    let app = &app;
    let pause = || async move {
        let browser = Browser::new();
        let next = app
            .sign_in_and_allow(&browser, &app.authorize_url(&[]))
            .await;
        (browser, next)
    };
    // The token the rule sent out cannot come straight back as the page's answer.
    let (browser, next) = pause().await;
    let q = query_of(&next);
    let mut u = url::Url::parse(&app.url("/continue")).unwrap();
    u.query_pairs_mut()
        .append_pair("state", &q["state"])
        .append_pair("session_token", &q["session_token"]);
    let back = query_of(&location(&browser.get(u.as_str()).await));
    assert_eq!(
        back.get("error").map(String::as_str),
        Some("server_error"),
        "{back:?}"
    );
    assert!(!back.contains_key("code"));

    let (browser, next) = pause().await;
    assert!(
        next.starts_with("https://verify.example/start?lang=fr&"),
        "the page's query is kept as it was: {next}"
    );
    let q = query_of(&next);
    assert_eq!(q["lang"], "fr", "the page's own query is kept");
    let state = q["state"].clone();
    let sent: Value = jsonwebtoken::dangerous::insecure_decode::<Value>(&q["session_token"])
        .unwrap()
        .claims;
    assert!(sent["sub"].as_str().unwrap().len() > 3, "{sent}");

    // The page answers with a token of its own under the shared secret.
    let answer = |secret: &str| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &json!({"sub": sent["sub"], "iss": sent["iss"], "result": "pass", "exp": 4_000_000_000u64}),
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let continue_url = |token: &str| {
        let mut u = url::Url::parse(&app.url("/continue")).unwrap();
        u.query_pairs_mut()
            .append_pair("state", &state)
            .append_pair("session_token", token);
        u.to_string()
    };
    let callback = location(&browser.get(&continue_url(&answer(SECRET))).await);
    assert!(callback.starts_with(CALLBACK), "{callback}");
    let claims = app.id_claims(&query_of(&callback)["code"]).await;
    assert_eq!(claims[format!("{NS}result")], "pass", "{claims}");
    assert_eq!(claims[format!("{NS}protocol")], "redirect-callback");
    assert_eq!(claims[format!("{NS}saw")], false);
    // Single use.
    let replay = browser.get(&continue_url(&answer(SECRET))).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);

    // The metadata the callback saved: the next login does not redirect.
    let tokens = app.tokens(&Browser::new()).await;
    let (_, claims) = app
        .verify(tokens["id_token"].as_str().unwrap(), &app.client_id)
        .await;
    assert_eq!(claims[format!("{NS}result")], "already pass", "{claims}");
    assert_eq!(claims[format!("{NS}protocol")], "oidc-basic-profile");
}

#[tokio::test]
async fn a_rules_redirect_that_cannot_be_followed_fails_closed() {
    if !bundled() {
        return;
    }
    let app = spawn_app().await;
    let tokens = app.tokens(&Browser::new()).await;
    let refresh_token = tokens["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_string();
    // Rule code that redirects whatever the protocol, and one whose URL is no URL.
    let id = app
        .add_script(
            "always redirects",
            "function (user, context, callback) {
               context.redirect = { url: 'https://verify.example/start' };
               callback(null, user, context);
             }",
        )
        .await;
    let resp = app.refresh(&refresh_token).await;
    assert!(resp.status().is_client_error(), "{}", resp.status());
    let body: Value = resp.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
    assert!(!body.get("access_token").is_some_and(|t| t.is_string()));
    let log = &app.logs(1).await[0];
    assert_eq!(log.outcome.label(), "failed:unsupported", "{log:?}");

    // In a login it redirects — and on the way back again, forever if nothing stopped it:
    // after five the login is refused, naming why.
    let browser = Browser::new();
    let mut next = app
        .sign_in_and_allow(&browser, &app.authorize_url(&[]))
        .await;
    let mut redirects = 0;
    while next.starts_with("https://verify.example/start?") {
        redirects += 1;
        assert!(redirects <= 5, "{next}");
        let mut u = url::Url::parse(&app.url("/continue")).unwrap();
        u.query_pairs_mut()
            .append_pair("state", &query_of(&next)["state"]);
        next = location(&browser.get(u.as_str()).await);
    }
    assert_eq!(redirects, 5);
    let q = query_of(&next);
    assert_eq!(
        q.get("error").map(String::as_str),
        Some("access_denied"),
        "{q:?}"
    );
    assert!(
        q["error_description"].contains("redirect-callback"),
        "{q:?}"
    );
    app.admin.remove_rule(&app.t().await, &id).await.unwrap();

    app.add_script(
        "bad url",
        "function (user, context, callback) {
           context.redirect = { url: 'javascript:alert(1)' };
           callback(null, user, context);
         }",
    )
    .await;
    let q = app.authorize_outcome(&Browser::new(), &[]).await;
    assert_eq!(
        q.get("error").map(String::as_str),
        Some("access_denied"),
        "{q:?}"
    );
    assert!(q["error_description"].contains("http(s) URL"), "{q:?}");
    assert!(!q.contains_key("code"));
    let log = &app.logs(1).await[0];
    assert_eq!(log.outcome.label(), "failed:unsupported", "{log:?}");
}

#[tokio::test]
async fn the_auth0_management_client_reaches_only_the_user_logging_in() {
    if !bundled() {
        return;
    }
    let app = spawn_app().await;
    // The shape of Auth0's templates: a client from auth0.domain / auth0.accessToken.
    app.add_script(
        "management",
        &format!(
            "async function (user, context, callback) {{
               const ManagementClient = require('auth0@2.30.0').ManagementClient;
               const management = new ManagementClient({{ domain: auth0.domain, token: auth0.accessToken }});
               const refused = async (f) => {{ try {{ await f(); return 'allowed'; }} catch (e) {{ return e.message; }} }};
               const seen = (user.app_metadata || {{}}).visits || 0;
               await management.updateAppMetadata({{ id: user.user_id }}, {{ visits: seen + 1 }});
               const me = await management.users.get({{ id: user.user_id }});
               const byEmail = await management.getUsersByEmail(user.email);
               context.idToken['{NS}management'] = {{
                 visits: me.app_metadata.visits,
                 byEmail: byEmail.length,
                 other: await refused(() => management.getUser({{ id: 'auth0|someone-else' }})),
                 otherEmail: await refused(() => management.getUsersByEmail('other@example.com')),
                 root: await refused(() => management.updateUser({{ id: user.user_id }}, {{ email: 'x@example.com' }})),
                 roles: await refused(() => management.assignRolestoUser({{ id: user.user_id }}, {{ roles: ['admin'] }})),
               }};
               callback(null, user, context);
             }}"
        ),
    )
    .await;
    // The modules runtime's compiled code is stored like the lean one's (other nodes and
    // restarts load it instead of a snapshot and a compile), and pruning keeps it.
    let fingerprint = app.rules.engine().fingerprint().to_string();
    let keys = [false, true].map(wardstone::rules::js::runtime_artifact_key_of);
    app.store
        .prune_rule_artifacts([&keys[0], &keys[1]], &fingerprint)
        .await
        .unwrap();
    for key in &keys {
        assert!(
            app.store
                .rule_artifact(key, &fingerprint)
                .await
                .unwrap()
                .is_some(),
            "{key} is stored"
        );
    }
    let first = id_token_claims(&app).await;
    let m = &first[format!("{NS}management")];
    assert_eq!(m["visits"], 1, "{first}");
    assert_eq!(m["byEmail"], 1);
    assert!(
        m["other"]
            .as_str()
            .unwrap()
            .contains("only the user logging in"),
        "{m}"
    );
    assert!(
        m["otherEmail"]
            .as_str()
            .unwrap()
            .contains("only the user logging in"),
        "{m}"
    );
    assert!(m["root"].as_str().unwrap().contains("not email"), "{m}");
    assert!(
        m["roles"].as_str().unwrap().contains("assignRolestoUser"),
        "{m}"
    );
    // Saved with the login: the next one counts on.
    let second = id_token_claims(&app).await;
    assert_eq!(second[format!("{NS}management")]["visits"], 2, "{second}");
}
