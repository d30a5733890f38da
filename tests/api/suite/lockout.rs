// Login throttling (SPEC §17): guessing is stopped before any hash, yet nothing an anonymous
// visitor does keeps a real user out of their account from a place they used before.

use reqwest::StatusCode;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_flood_is_answered_at_once_and_a_real_user_still_gets_in() {
    let app = spawn_app_with(behind_proxy).await;
    // The attackers' login forms first, so the flood itself is nothing but password posts.
    let mut posts = Vec::new();
    for i in 0..120 {
        let browser = browser_from(&format!("10.0.{}.{}", i / 50, i % 50));
        let (action, mut fields) = login_form(&app, &browser).await;
        set_field(&mut fields, "username", &format!("nobody{i}@example.com"));
        set_field(&mut fields, "password", "wrong password");
        posts.push((browser, action, fields));
    }
    let flood: Vec<_> = posts
        .into_iter()
        .map(|(b, action, fields)| {
            tokio::spawn(async move { b.post_form(&action, &fields).await.status() })
        })
        .collect();
    // The server keeps answering while the flood runs.
    let health = reqwest::get(format!("{}/healthz", app.base)).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let mut statuses = Vec::new();
    for f in flood {
        statuses.push(f.await.unwrap());
    }
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::TOO_MANY_REQUESTS),
        "every bogus login is answered as such: {statuses:?}"
    );
    assert!(
        statuses.contains(&StatusCode::TOO_MANY_REQUESTS),
        "beyond the bound, 429 at once"
    );
    // A real user from elsewhere gets in right after.
    let real = browser_from("192.0.2.10");
    let resp = try_login(&app, &real, EMAIL, PASSWORD).await;
    assert_eq!(
        resp.status(),
        StatusCode::SEE_OTHER,
        "the real user logs in"
    );
}

#[tokio::test]
async fn logins_are_throttled_per_pair_per_account_and_per_address_before_any_hash() {
    let app = spawn_app_with(|o| {
        behind_proxy(o);
        o.lifetimes.max_failed_logins = 2;
        o.lifetimes.max_failed_logins_per_account = 4;
        o.lifetimes.max_failed_logins_per_ip = 6;
    })
    .await;
    // Per (account, address): the third attempt is refused, with Retry-After.
    let b = browser_from("198.51.100.1");
    for _ in 0..2 {
        assert_eq!(
            try_login(&app, &b, EMAIL, "wrong").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let resp = try_login(&app, &b, EMAIL, PASSWORD).await;
    assert_eq!(
        resp.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    assert!(resp.headers().contains_key("retry-after"));
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("Too many failed attempts")
    );

    // Per account, from anywhere: two more addresses, then a fresh one is refused too.
    for ip in ["198.51.100.2", "198.51.100.3"] {
        try_login(&app, &browser_from(ip), EMAIL, "wrong").await;
    }
    let resp = try_login(&app, &browser_from("198.51.100.4"), EMAIL, PASSWORD).await;
    assert_eq!(
        resp.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the account is throttled"
    );

    // Per address, whatever the account.
    let sprayer = browser_from("203.0.113.9");
    for i in 0..6 {
        let status = try_login(&app, &sprayer, &format!("u{i}@example.com"), "wrong")
            .await
            .status();
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let status = try_login(&app, &sprayer, "u7@example.com", "wrong")
        .await
        .status();
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the address is throttled"
    );

    // Another user from another address is not affected.
    app.admin
        .create_user(&app.t().await, "bob@example.com", PASSWORD, None, true)
        .await
        .unwrap();
    let ok = try_login(
        &app,
        &browser_from("192.0.2.77"),
        "bob@example.com",
        PASSWORD,
    )
    .await;
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_forwarded_for_header_counts_only_from_a_trusted_proxy() {
    let app = spawn_app_with(|o| o.lifetimes.max_failed_logins_per_ip = 2).await;
    // No trusted proxy: every claimed address is the same peer, 127.0.0.1.
    for i in 0..2 {
        let b = browser_from(&format!("10.9.9.{i}"));
        try_login(&app, &b, &format!("x{i}@example.com"), "wrong").await;
    }
    let resp = try_login(&app, &browser_from("10.9.9.200"), "y@example.com", "wrong").await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// Statuses of `rounds` wrong-password attempts for `email` from each of `addresses`.
async fn guess(app: &TestApp, email: &str, addresses: &[&str], rounds: usize) -> Vec<StatusCode> {
    let mut statuses = Vec::new();
    for ip in addresses {
        let b = browser_from(ip);
        for _ in 0..rounds {
            statuses.push(try_login(app, &b, email, "wrong guess").await.status());
        }
    }
    statuses
}

#[tokio::test]
async fn a_stranger_who_knows_an_email_cannot_keep_its_owner_out() {
    let app = spawn_app_with(|o| {
        behind_proxy(o);
        o.lifetimes.max_failed_logins = 2;
        o.lifetimes.max_failed_logins_per_account = 4;
        o.lifetimes.max_failed_logins_per_ip = 50;
    })
    .await;
    // Alice signs in from home with her own browser, which keeps the device cookie.
    let first = try_login(&app, &browser_from("192.0.2.10"), EMAIL, PASSWORD).await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let device_cookie = first
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_string())
        .find(|c| c.starts_with("wardstone_device="))
        .expect("a successful login sets the device cookie");

    // A stranger guesses from three addresses until the account's own limit trips.
    let attackers = ["203.0.113.5", "203.0.113.6", "203.0.113.7"];
    let against_alice = guess(&app, EMAIL, &attackers, 4).await;
    assert!(
        against_alice.contains(&StatusCode::TOO_MANY_REQUESTS),
        "{against_alice:?}"
    );
    // The same attack on an address nobody owns looks exactly the same.
    let against_nobody = guess(&app, "nobody@example.com", &attackers, 4).await;
    assert_eq!(against_alice, against_nobody, "the attacker learns nothing");

    // A place that never signed in to the account is throttled by the account's limit ...
    let elsewhere = try_login(&app, &browser_from("198.51.100.200"), EMAIL, PASSWORD).await;
    assert_eq!(elsewhere.status(), StatusCode::TOO_MANY_REQUESTS);
    // ... and so is the attacker's own address, even with the right password.
    let stolen = try_login(&app, &browser_from(attackers[0]), EMAIL, PASSWORD).await;
    assert_eq!(stolen.status(), StatusCode::TOO_MANY_REQUESTS);

    // Alice from home, in a fresh browser (no cookie): the address signed in before.
    let home = try_login(&app, &browser_from("192.0.2.10"), EMAIL, PASSWORD).await;
    assert_eq!(
        home.status(),
        StatusCode::SEE_OTHER,
        "the owner gets in from home"
    );
    // Alice's own browser (its device cookie, not its session) on a new network: the cookie
    // vouches for her.
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    jar.add_cookie_str(&device_cookie, &app.base.parse().unwrap());
    let cafe = browser_with_jar(jar, "198.51.100.77");
    assert_eq!(
        try_login(&app, &cafe, EMAIL, PASSWORD).await.status(),
        StatusCode::SEE_OTHER
    );
    // A wrong password from home is still a failure, and the pair's own limit still holds.
    let home_browser = browser_from("192.0.2.10");
    for _ in 0..2 {
        assert_eq!(
            try_login(&app, &home_browser, EMAIL, "typo").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        try_login(&app, &home_browser, EMAIL, PASSWORD)
            .await
            .status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the pair's limit applies at home too"
    );
    // A forged device cookie vouches for nobody.
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    jar.add_cookie_str(
        &format!(
            "wardstone_device={}.AAAAAAAAAAAAAAAA.forged; Path=/t/{}",
            app.clock.now(),
            app.tenant
        ),
        &app.base.parse().unwrap(),
    );
    let forged = browser_with_jar(jar, "198.51.100.78");
    assert_eq!(
        try_login(&app, &forged, EMAIL, PASSWORD).await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
}

fn forwarded(ip: &str) -> reqwest::header::HeaderMap {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", ip.parse().unwrap());
    headers
}

fn browser_with_jar(jar: std::sync::Arc<reqwest::cookie::Jar>, ip: &str) -> Browser {
    Browser {
        http: reqwest::Client::builder()
            .cookie_provider(jar)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(forwarded(ip))
            .build()
            .unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_correct_logins_are_never_refused_as_failures() {
    let app = spawn_app_with(behind_proxy).await;
    let mut posts = Vec::new();
    for _ in 0..16 {
        let browser = browser_from("192.0.2.33");
        let (action, mut fields) = login_form(&app, &browser).await;
        set_field(&mut fields, "username", EMAIL);
        set_field(&mut fields, "password", PASSWORD);
        posts.push((browser, action, fields));
    }
    let tasks: Vec<_> = posts
        .into_iter()
        .map(|(b, action, fields)| {
            tokio::spawn(async move {
                let resp = b.post_form(&action, &fields).await;
                (resp.status(), resp.text().await.unwrap())
            })
        })
        .collect();
    let mut signed_in = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert!(
            !body.contains("Too many failed attempts"),
            "a correct login called a failure"
        );
        match status {
            StatusCode::SEE_OTHER => signed_in += 1,
            StatusCode::TOO_MANY_REQUESTS => assert!(body.contains("busy"), "{body}"),
            other => panic!("unexpected {other}"),
        }
    }
    assert!(signed_in >= 1);
    // Nothing stays pending: the next one gets in at once.
    let resp = try_login(&app, &browser_from("192.0.2.33"), EMAIL, PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn ipv6_clients_are_counted_per_64() {
    let app = spawn_app_with(|o| {
        behind_proxy(o);
        o.lifetimes.max_failed_logins = 2;
    })
    .await;
    // Two guesses from two addresses of one /64 use up that pair's allowance.
    for ip in ["2001:db8:5:6::1", "2001:db8:5:6:ffff:ffff:ffff:ffff"] {
        assert_eq!(
            try_login(&app, &browser_from(ip), EMAIL, "wrong")
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let status = try_login(&app, &browser_from("2001:db8:5:6::abcd"), EMAIL, "wrong")
        .await
        .status();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "the same /64");
    let status = try_login(&app, &browser_from("2001:db8:5:7::1"), EMAIL, PASSWORD)
        .await
        .status();
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "another /64 is another place"
    );
}
