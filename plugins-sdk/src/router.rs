//! A small router: method + path patterns with `{param}` segments and a
//! trailing `{*rest}` wildcard.

use crate::{IntoResponse, Request, Response};

/// Path parameters captured by a route pattern, percent-decoded.
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// The value of parameter `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

type Handler = Box<dyn Fn(&Request, &Params) -> Response>;

struct Route {
    method: &'static str,
    segments: Vec<Segment>,
    handler: Handler,
}

enum Segment {
    Literal(String),
    Param(String),
    Rest(String),
}

/// Routes requests to handlers by method and path.
///
/// Patterns are matched in the order they were added. A path that matches
/// no pattern gets 404; one that matches only with another method gets 405.
#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// An empty router.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route for `method` (upper-case, e.g. `"GET"`).
    ///
    /// # Panics
    /// If `pattern` has a `{*rest}` segment anywhere but last: a bug in the
    /// plugin, caught the first time the router is built.
    pub fn route<R: IntoResponse>(
        mut self,
        method: &'static str,
        pattern: &str,
        handler: impl Fn(&Request, &Params) -> R + 'static,
    ) -> Self {
        let parts: Vec<&str> = pattern
            .trim_start_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let segments = parts
            .iter()
            .enumerate()
            .map(
                |(i, part)| match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    Some(name) => match name.strip_prefix('*') {
                        Some(rest) => {
                            assert!(
                                i + 1 == parts.len(),
                                "`{{*{rest}}}` must be the last segment of {pattern:?}"
                            );
                            Segment::Rest(rest.to_owned())
                        }
                        None => Segment::Param(name.to_owned()),
                    },
                    None => Segment::Literal((*part).to_owned()),
                },
            )
            .collect();
        self.routes.push(Route {
            method,
            segments,
            handler: Box::new(move |r: &Request, p: &Params| handler(r, p).into_response()),
        });
        self
    }

    /// Adds a `GET` route (also answers `HEAD`).
    pub fn get<R: IntoResponse>(
        self,
        pattern: &str,
        handler: impl Fn(&Request, &Params) -> R + 'static,
    ) -> Self {
        self.route("GET", pattern, handler)
    }

    /// Adds a `POST` route.
    pub fn post<R: IntoResponse>(
        self,
        pattern: &str,
        handler: impl Fn(&Request, &Params) -> R + 'static,
    ) -> Self {
        self.route("POST", pattern, handler)
    }

    /// Adds a `PUT` route.
    pub fn put<R: IntoResponse>(
        self,
        pattern: &str,
        handler: impl Fn(&Request, &Params) -> R + 'static,
    ) -> Self {
        self.route("PUT", pattern, handler)
    }

    /// Adds a `DELETE` route.
    pub fn delete<R: IntoResponse>(
        self,
        pattern: &str,
        handler: impl Fn(&Request, &Params) -> R + 'static,
    ) -> Self {
        self.route("DELETE", pattern, handler)
    }

    /// Runs the first matching route's handler.
    pub fn handle(&self, request: &Request) -> Response {
        let path: Vec<&str> = request
            .path()
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let method = match request.method() {
            "HEAD" => "GET",
            other => other,
        };
        let mut path_matched = false;
        for route in &self.routes {
            let Some(params) = match_path(&route.segments, &path) else {
                continue;
            };
            if route.method != method {
                path_matched = true;
                continue;
            }
            return (route.handler)(request, &params);
        }
        if path_matched {
            Response::error(
                405,
                format!(
                    "method {} is not allowed on {}",
                    request.method(),
                    request.path()
                ),
            )
        } else {
            Response::not_found(format!("no route for {}", request.path()))
        }
    }
}

fn match_path(segments: &[Segment], path: &[&str]) -> Option<Params> {
    let mut params = Vec::new();
    for (i, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Rest(name) => {
                let rest = path
                    .get(i..)
                    .unwrap_or_default()
                    .iter()
                    .map(|s| decode(s))
                    .collect::<Vec<_>>()
                    .join("/");
                params.push((name.clone(), rest));
                return Some(Params(params));
            }
            Segment::Literal(literal) => {
                if path.get(i) != Some(&literal.as_str()) {
                    return None;
                }
            }
            Segment::Param(name) => params.push((name.clone(), decode(path.get(i)?))),
        }
    }
    (segments.len() == path.len()).then_some(Params(params))
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        Router::new()
            .get("/", |_, _| Response::text("root"))
            .get("/greet/{name}", |_, p| {
                Response::text(format!("hi {}", p.get("name").unwrap_or("?")))
            })
            .post("/greet/{name}", |_, _| Response::text("posted"))
            .get("/files/{*path}", |_, p| {
                Response::text(p.get("path").unwrap_or("").to_owned())
            })
    }

    fn body(r: Response) -> (u16, String) {
        (r.status, String::from_utf8(r.body).unwrap())
    }

    #[test]
    fn matches_literals_params_and_rest() {
        let r = router();
        assert_eq!(
            body(r.handle(&Request::new("GET", "/"))),
            (200, "root".into())
        );
        assert_eq!(
            body(r.handle(&Request::new("GET", "/greet/Ada%20L"))),
            (200, "hi Ada L".into())
        );
        assert_eq!(
            body(r.handle(&Request::new("POST", "/greet/x"))),
            (200, "posted".into())
        );
        assert_eq!(
            body(r.handle(&Request::new("GET", "/files/a/b/c.txt"))),
            (200, "a/b/c.txt".into())
        );
        assert_eq!(body(r.handle(&Request::new("HEAD", "/greet/x"))).0, 200);
    }

    #[test]
    fn unknown_paths_and_methods() {
        let r = router();
        assert_eq!(r.handle(&Request::new("GET", "/greet")).status, 404);
        assert_eq!(r.handle(&Request::new("GET", "/greet/a/b")).status, 404);
        assert_eq!(r.handle(&Request::new("DELETE", "/greet/a")).status, 405);
    }

    #[test]
    fn query_params_are_decoded() {
        let req = Request::new("GET", "/x?name=Ada+Lovelace&n=%31");
        assert_eq!(req.query_param("name").as_deref(), Some("Ada Lovelace"));
        assert_eq!(req.query_param("n").as_deref(), Some("1"));
        assert_eq!(req.query_param("missing"), None);
    }
}
