//! The whole sign-in flow in headless Chromium: a portal that lets nobody in
//! anonymously, a real OpenID Connect provider (`tests/oidc/provider.mjs`,
//! its login page typed into like a person would), the signed-in catalog,
//! the account page, the entity page's "Your access" panel (its Refresh
//! form posted), and signing out. Screenshots land next to `browser.rs`'s.

use std::time::Duration;

use callboard::identity::config::{Anonymous, OidcConfig};
use callboard_catalog::{LocationConfig, LocationKind};
use fantoccini::Locator;

use super::browser::{Browser, free_port};
use crate::{
    oidc::{Account, Provider},
    people::{ORG, ORG_ENTITIES},
};

/// The sign-in page's button that starts the OpenID Connect round trip.
const SSO_BUTTON: &str = "a.button[href^='/auth/oidc/start']";

/// Waits (30 s) until the browser is at `url` exactly; on a timeout, the
/// panic shows where it is and what the page says.
async fn wait_for_url(b: &Browser, url: &str) {
    let expected: reqwest::Url = url.parse().unwrap();
    let reached = b
        .client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_url(&expected)
        .await;
    if let Err(e) = reached {
        let now = b.client.current_url().await.map(|u| u.to_string());
        let body = b.body().await;
        panic!("not at {url} within 30 s ({e}); at {now:?}, showing:\n{body}");
    }
}

/// The texts of the buttons in the entity page's "Your access" panel.
async fn access_buttons(b: &Browser) -> Vec<String> {
    let mut texts = Vec::new();
    for button in b
        .client
        .find_all(Locator::Css("section.access button"))
        .await
        .unwrap()
    {
        texts.push(button.text().await.unwrap());
    }
    texts
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_signs_in_with_sso_changes_their_own_entity_and_signs_out() {
    // The provider must know the portal's redirect URI before the portal
    // starts: pick the portal's port first.
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let provider = Provider::start(
        "callboard",
        "client-secret",
        &[format!("{base}/auth/oidc/callback")],
        &[
            Account::new("alice", &["team-a"]),
            Account::new("bob", &["team-b"]),
        ],
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let catalog = dir.path().join("org.yaml");
    std::fs::write(&catalog, ORG).unwrap();
    let mut config = crate::support::config(&dir.path().join("data"));
    config.bind = format!("127.0.0.1:{port}").parse().unwrap();
    config.auth.anonymous = Anonymous::None;
    config.auth.oidc = Some(OidcConfig {
        issuer: provider.issuer.clone(),
        client_id: "callboard".into(),
        client_secret: "client-secret".into(),
        ..Default::default()
    });
    config.catalog.locations = vec![LocationConfig {
        kind: LocationKind::File,
        target: catalog.display().to_string(),
    }];
    let server = crate::support::TestServer::start(config).await;
    crate::support::wait_for_entities(&server, ORG_ENTITIES).await;
    let b = Browser::start().await;
    let c = &b.client;
    let sign_in_for_catalog = format!("{base}/sign-in?return=%2Fcatalog");

    // Signed out, the catalog sends you to sign in.
    c.goto(&format!("{base}/catalog")).await.unwrap();
    wait_for_url(&b, &sign_in_for_catalog).await;
    assert_eq!(b.text(SSO_BUTTON).await, "Sign in with SSO");

    // The SSO button leads to the provider's login page.
    b.follow_first(Locator::Css(SSO_BUTTON)).await;
    c.wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css("form input[name=login]"))
        .await
        .unwrap_or_else(|e| panic!("no login field at the provider: {e}"));
    let url = c.current_url().await.unwrap();
    assert!(
        url.as_str()
            .starts_with(&format!("{}/interaction/", provider.issuer)),
        "{url}"
    );

    // alice types her login and is sent back, signed in, to the catalog.
    b.submit_typing("form input[name=login]", "alice").await;
    wait_for_url(&b, &format!("{base}/catalog")).await;
    let table = b.text("table.entities").await;
    for name in ["a-one", "a-two", "b-one", "eng-tool"] {
        assert!(table.contains(name), "{name} missing: {table}");
    }
    b.screenshot("signin-catalog").await;

    // Her account: who she is and what she owns through.
    c.goto(&format!("{base}/account")).await.unwrap();
    assert_eq!(b.text("strong.who").await, "user:default/alice");
    let ownership = b.text("ul.ownership").await;
    assert!(
        ownership.contains("group:default/team-a") && ownership.contains("group:default/eng"),
        "her team and its parent: {ownership}"
    );

    // Her team's component: she may change it, and refreshes it.
    let a_one = format!("{base}/catalog/default/component/a-one");
    c.goto(&a_one).await.unwrap();
    let panel = b.text("section.access").await;
    assert!(panel.contains("You can change this entity"), "{panel}");
    assert_eq!(access_buttons(&b).await, ["Refresh", "Unregister"]);
    b.screenshot("signin-entity-access").await;
    b.follow_first(Locator::Css(
        "section.access form[action$='/refresh'] button[type=submit]",
    ))
    .await;
    wait_for_url(&b, &a_one).await;
    assert_eq!(b.text("#entity-title").await, "a-one");
    let panel = b.text("section.access").await;
    assert!(panel.contains("You can change this entity"), "{panel}");

    // team-b's component: hers to view only, no buttons.
    c.goto(&format!("{base}/catalog/default/component/b-one"))
        .await
        .unwrap();
    let panel = b.text("section.access").await;
    assert!(
        panel.contains("Changing it is up to its owners (team-b)"),
        "{panel}"
    );
    assert_eq!(access_buttons(&b).await, Vec::<String>::new());

    // Signing out from the account page ends the session.
    c.goto(&format!("{base}/account")).await.unwrap();
    b.follow_first(Locator::Css("form[action='/sign-out'] button[type=submit]"))
        .await;
    wait_for_url(&b, &format!("{base}/sign-in")).await;
    b.text(SSO_BUTTON).await;
    c.goto(&format!("{base}/catalog")).await.unwrap();
    wait_for_url(&b, &sign_in_for_catalog).await;
    b.text(SSO_BUTTON).await;

    b.close().await;
    server.stop().await;
    assert_eq!(provider.stderr(), "", "the provider logged errors");
}
