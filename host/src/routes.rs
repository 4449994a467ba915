//! HTTP routing as Spin does it: exact routes and `/prefix/...` wildcards, the most specific match
//! wins (an exact route over any wildcard, a longer wildcard prefix over a shorter one), and the
//! `spin-*` request headers that tell a component how it was reached.

use std::collections::HashSet;

/// Errors in the routes of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// A route this host cannot read.
    #[error("invalid route {0:?}: routes start with `/` and may end in `/...`")]
    Invalid(String),
    /// Two triggers with the same route.
    #[error("duplicate route {0:?}")]
    Duplicate(String),
}

/// One HTTP trigger's route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Only this path (`/exact`).
    Exact(String),
    /// This prefix and everything under it (`/prefix/...`, stored as `/prefix`; `/...` is `""`).
    Wildcard(String),
    /// No route (`route = { private = true }`): reachable only through service chaining, which Spin
    /// 4.0.2 does not give WASIp3 handlers, so by nothing here.
    Private,
}

impl Route {
    /// Reads a route as written in `spin.toml`.
    pub fn parse(text: &str) -> Result<Self, RouteError> {
        if !text.starts_with('/') || text.contains(['?', '#']) {
            return Err(RouteError::Invalid(text.to_owned()));
        }
        if let Some(prefix) = text.strip_suffix("/...") {
            if prefix.contains("...") {
                return Err(RouteError::Invalid(text.to_owned()));
            }
            return Ok(Self::Wildcard(prefix.trim_end_matches('/').to_owned()));
        }
        if text.contains("...") || text.contains("/:") {
            return Err(RouteError::Invalid(text.to_owned()));
        }
        let trimmed = text.trim_end_matches('/');
        Ok(Self::Exact(if trimmed.is_empty() {
            "/".to_owned()
        } else {
            trimmed.to_owned()
        }))
    }

    /// The route as Spin writes it in `spin-raw-component-route`.
    fn raw(&self) -> String {
        match self {
            Self::Exact(path) => path.clone(),
            Self::Wildcard(prefix) => format!("{prefix}/..."),
            Self::Private => String::new(),
        }
    }

    /// The route without its wildcard, as in `spin-component-route`.
    fn base(&self) -> &str {
        match self {
            Self::Exact(path) | Self::Wildcard(path) => path,
            Self::Private => "",
        }
    }

    /// How well this route matches `path`: `None` if not at all; higher is more specific.
    fn specificity(&self, path: &str) -> Option<usize> {
        match self {
            Self::Exact(exact) => {
                (path == exact || path.trim_end_matches('/') == exact).then_some(usize::MAX)
            }
            Self::Wildcard(prefix) => {
                let rest = path.strip_prefix(prefix.as_str())?;
                (rest.is_empty() || rest.starts_with('/')).then_some(prefix.len())
            }
            Self::Private => None,
        }
    }
}

/// Where a request goes and the `spin-*` header values that say so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    /// The component's id.
    pub component: String,
    /// `spin-raw-component-route` and `spin-matched-route`: the route as in the manifest.
    pub raw_route: String,
    /// `spin-component-route`: the route without its wildcard.
    pub component_route: String,
    /// `spin-path-info`: the path below the route.
    pub path_info: String,
}

/// The routing table of an application.
#[derive(Debug, Clone, Default)]
pub struct Router {
    routes: Vec<(Route, String)>,
}

impl Router {
    /// A router over `(route, component id)` pairs; duplicate public routes are refused.
    pub fn new(routes: Vec<(Route, String)>) -> Result<Self, RouteError> {
        let mut seen = HashSet::new();
        for (route, _) in &routes {
            if *route != Route::Private && !seen.insert(route.raw()) {
                return Err(RouteError::Duplicate(route.raw()));
            }
        }
        Ok(Self { routes })
    }

    /// The component serving `path`, if any.
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        self.best(path)
    }

    fn best(&self, path: &str) -> Option<RouteMatch> {
        let (route, component) = self
            .routes
            .iter()
            .filter_map(|entry| Some((entry.0.specificity(path)?, entry)))
            .max_by_key(|(specificity, _)| *specificity)
            .map(|(_, entry)| entry)?;
        let path_info = match route {
            Route::Wildcard(prefix) => path[prefix.len()..].to_owned(),
            Route::Exact(_) | Route::Private => String::new(),
        };
        Some(RouteMatch {
            component: component.clone(),
            raw_route: route.raw(),
            component_route: route.base().to_owned(),
            path_info,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        let routes = [
            ("/...", "static"),
            ("/sender/...", "sender"),
            ("/sender/deep/...", "deep"),
            ("/exact", "exact"),
            ("/files/...", "receiver"),
        ];
        let mut routes: Vec<_> = routes
            .iter()
            .map(|(route, id)| (Route::parse(route).unwrap(), id.to_string()))
            .collect();
        routes.push((Route::Private, "private".into()));
        Router::new(routes).unwrap()
    }

    #[test]
    fn the_most_specific_route_wins() {
        let router = router();
        let cases = [
            ("/", "static", "/...", "", "/"),
            ("/index.html", "static", "/...", "", "/index.html"),
            ("/sender", "sender", "/sender/...", "/sender", ""),
            ("/sender/sip", "sender", "/sender/...", "/sender", "/sip"),
            ("/senders", "static", "/...", "", "/senders"),
            (
                "/sender/deep/x",
                "deep",
                "/sender/deep/...",
                "/sender/deep",
                "/x",
            ),
            ("/exact", "exact", "/exact", "/exact", ""),
            ("/exact/more", "static", "/...", "", "/exact/more"),
        ];
        for (path, component, raw, base, info) in cases {
            let found = router.route(path).unwrap();
            assert_eq!(
                (
                    found.component.as_str(),
                    found.raw_route.as_str(),
                    found.component_route.as_str(),
                    found.path_info.as_str()
                ),
                (component, raw, base, info),
                "{path}"
            );
        }
    }

    #[test]
    fn private_components_have_no_route() {
        let router = router();
        assert_ne!(router.route("/private").unwrap().component, "private");
    }

    #[test]
    fn no_catch_all_means_no_route() {
        let router = Router::new(vec![(Route::parse("/a/...").unwrap(), "a".into())]).unwrap();
        assert_eq!(router.route("/b"), None);
    }

    #[test]
    fn bad_and_duplicate_routes_are_refused() {
        for bad in ["sender", "/a/.../b", "/a/:id", "/a?x"] {
            assert!(Route::parse(bad).is_err(), "{bad}");
        }
        let twice = vec![
            (Route::parse("/a/...").unwrap(), "a".into()),
            (Route::parse("/a/...").unwrap(), "b".into()),
        ];
        assert_eq!(
            Router::new(twice).unwrap_err(),
            RouteError::Duplicate("/a/...".into())
        );
    }
}
