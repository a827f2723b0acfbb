//! What the sign-in and permission tests share: a small company's catalog
//! ([`ORG`]), how a request names its caller ([`Auth`]), and a client that
//! does not follow redirects (sign-in answers are redirects worth seeing).

/// A company: team-a (alice, with parent group eng) and team-b (bob);
/// components owned by each team and one by eng.
pub const ORG: &str = "\
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: eng}
spec: {type: department, children: [team-a, team-b]}
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: team-a}
spec: {type: team, parent: eng, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata: {name: team-b}
spec: {type: team, parent: eng, children: []}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: alice}
spec: {profile: {email: alice@example.com}, memberOf: [team-a]}
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata: {name: bob}
spec: {profile: {email: bob@example.com}, memberOf: [team-b]}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: a-one, tags: [java]}
spec: {type: service, lifecycle: production, owner: team-a}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: a-two, tags: [go]}
spec: {type: website, lifecycle: production, owner: team-a}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: b-one, tags: [java]}
spec: {type: service, lifecycle: production, owner: team-b}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata: {name: eng-tool, tags: [rust]}
spec: {type: service, lifecycle: experimental, owner: eng}
";

/// Entities in [`ORG`].
pub const ORG_ENTITIES: u64 = 9;

/// A client that does not follow redirects.
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// How a request names its caller.
#[derive(Clone, Copy, Debug)]
pub enum Auth<'a> {
    /// Nobody.
    None,
    /// A session cookie (`name=value`).
    Cookie(&'a str),
    /// A bearer token.
    Bearer(&'a str),
}

impl Auth<'_> {
    /// `request` with this caller's credential.
    pub fn apply(self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::None => request,
            Auth::Cookie(c) => request.header("cookie", c),
            Auth::Bearer(t) => request.bearer_auth(t),
        }
    }
}
