//! The page shell (header, navigation, footer) and the stylesheet.

use axum::{
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use maud::{DOCTYPE, Markup, html};

const CSS: &str = include_str!("style.css");

/// `/static/callboard.css`. The content is compiled in, so a version query
/// string ([`css_href`]) lets browsers cache it for good.
pub(crate) async fn stylesheet() -> Response {
    let mut response = CSS.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    response
}

fn css_href() -> String {
    // A cheap content hash: a new build with a changed stylesheet gets a new URL.
    let hash = CSS.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("/static/callboard.css?v={hash:016x}")
}

/// Which navigation entry is current.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Home,
    Catalog,
    Docs,
    Apis,
    Teams,
    Plugins,
    Admin,
    Account,
    None,
}

/// A whole page: `title` goes in `<title>` (with the product name).
pub(crate) fn page(title: &str, nav: Nav, search: &str, body: &Markup) -> Markup {
    page_with(title, nav, search, body, &[])
}

/// [`page`] with more stylesheets (our own paths).
pub(crate) fn page_with(
    title: &str,
    nav: Nav,
    search: &str,
    body: &Markup,
    stylesheets: &[&str],
) -> Markup {
    let item = |href: &str, label: &str, this: Nav| {
        html! {
            li { a href=(href) aria-current=[(nav == this).then_some("page")] { (label) } }
        }
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Callboard" }
                link rel="stylesheet" href=(css_href());
                @for sheet in stylesheets { link rel="stylesheet" href=(sheet); }
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" aria-label="Callboard home" {
                        span.logo aria-hidden="true" { "◧" } " Callboard"
                    }
                    nav aria-label="Main" {
                        ul {
                            (item("/", "Home", Nav::Home))
                            (item("/catalog", "Catalog", Nav::Catalog))
                            (item("/docs", "Docs", Nav::Docs))
                            (item("/catalog?kind=api", "APIs", Nav::Apis))
                            (item("/catalog?kind=group", "Teams", Nav::Teams))
                            (item("/plugins", "Plugins", Nav::Plugins))
                            (item("/admin", "Admin", Nav::Admin))
                            (item("/account", "Account", Nav::Account))
                        }
                    }
                    form.search role="search" action="/search" method="get" {
                        label.visually-hidden for="top-search" { "Search the catalog and docs" }
                        input #top-search type="search" name="query" value=(search)
                            placeholder="Search services, APIs, teams, docs…";
                        button type="submit" { "Search" }
                    }
                }
                main #main { (body) }
                footer.bottom {
                    "Callboard · an internal developer portal · "
                    a href="/api/catalog/entities?limit=20" { "catalog API" }
                }
            }
        }
    }
}

/// The body of an error page.
pub(crate) fn error_page(title: &str, message: &str) -> Markup {
    page(
        title,
        Nav::None,
        "",
        &html! {
            div.error-page {
                h1 { (title) }
                p { (message) }
                p { a href="/" { "Back to the home page" } " · " a href="/catalog" { "Browse the catalog" } }
            }
        },
    )
}

/// A coloured label for an entity kind.
pub(crate) fn kind_badge(kind: &str) -> Markup {
    let class = format!("badge kind-{}", kind.to_lowercase());
    html! { span class=(class) { (super::kind_label(kind)) } }
}

/// A label for a lifecycle (production, experimental, deprecated, ...).
pub(crate) fn lifecycle_badge(lifecycle: &str) -> Markup {
    let class = format!("badge life-{}", lifecycle.to_lowercase());
    html! { span class=(class) { (lifecycle) } }
}
