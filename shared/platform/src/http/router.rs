//! The route table: method, path pattern, the access it requires and the handler. One per component.

use super::ApiResponse;
use crate::http::pipeline::RequestContext;
use crate::ApiError;
use crate::BoxFuture;
use http::Method;

/// What a caller must present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token (health checks, the OpenAPI document).
    Public,
    /// A verified token carrying this scope.
    Scope(&'static str),
    /// The operator's credential (`operator_token`), not a tenant's token: cross-tenant
    /// maintenance such as the periodic webhook dispatch.
    Operator,
}

pub type Handler = fn(RequestContext) -> BoxFuture<'static, Result<ApiResponse, ApiError>>;

pub struct Route {
    pub method: Method,
    /// `/api/v1/contacts/{id}`: literal segments and `{name}` parameters.
    pub pattern: &'static str,
    pub access: Access,
    /// Counted against the stricter expensive-route limit (search, imports, exports, batch).
    pub expensive: bool,
    /// A body limit of its own (a batch's), when larger than the configured `max_body_bytes`.
    pub body_limit: Option<usize>,
    pub handler: Handler,
}

#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
}

/// The `{name}` values of a matched path.
#[derive(Debug, Default, Clone)]
pub struct PathParams(Vec<(&'static str, String)>);

impl PathParams {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }
}

impl Router {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn route(
        mut self,
        method: Method,
        pattern: &'static str,
        access: Access,
        handler: Handler,
    ) -> Self {
        self.routes.push(Route {
            method,
            pattern,
            access,
            expensive: false,
            body_limit: None,
            handler,
        });
        self
    }

    /// Marks the route added last as expensive.
    pub fn expensive(mut self) -> Self {
        if let Some(route) = self.routes.last_mut() {
            route.expensive = true;
        }
        self
    }

    /// Lets the route added last take bodies of up to `bytes` (or the configured limit, when
    /// larger).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        if let Some(route) = self.routes.last_mut() {
            route.body_limit = Some(bytes);
        }
        self
    }

    /// Adds every route of `other`; the native server hosts all components in one router this way.
    pub fn merge(mut self, other: Router) -> Self {
        self.routes.extend(other.routes);
        self
    }

    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }

    /// The route for `method` and `path`. When several patterns match, the most specific one
    /// (literal segments before parameters, left to right) is the path's resource, as in the
    /// OpenAPI document: `/api/v1/webhooks/dispatch` is not the webhook with id `dispatch`.
    ///
    /// # Errors
    /// 404 when no pattern matches the path, 405 (with the resource's methods) when one does but
    /// not for this method.
    pub fn resolve(&self, method: &Method, path: &str) -> Result<(&Route, PathParams), ApiError> {
        let matches: Vec<(&Route, PathParams)> = self
            .routes
            .iter()
            .filter_map(|route| Some((route, match_pattern(route.pattern, path)?)))
            .collect();
        let resource = matches
            .iter()
            .map(|(route, _)| route.pattern)
            .max_by_key(|pattern| specificity(pattern))
            .ok_or(ApiError::NotFound)?;
        let mut allowed = Vec::new();
        for (route, params) in matches {
            if route.pattern != resource {
                continue;
            }
            if route.method == *method {
                return Ok((route, params));
            }
            allowed.push(route.method.clone());
        }
        Err(ApiError::MethodNotAllowed { allowed })
    }
}

/// Ranks patterns matching one path: a literal segment outranks a parameter at the first place
/// they differ.
fn specificity(pattern: &str) -> Vec<bool> {
    pattern
        .split('/')
        .map(|segment| !segment.starts_with('{'))
        .collect()
}

fn match_pattern(pattern: &'static str, path: &str) -> Option<PathParams> {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let mut params = Vec::new();
    let mut pattern_segments = pattern.split('/');
    let mut path_segments = path.split('/');
    loop {
        match (pattern_segments.next(), path_segments.next()) {
            (None, None) => return Some(PathParams(params)),
            (Some(expected), Some(actual)) => {
                if let Some(name) = expected.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    if actual.is_empty() {
                        return None;
                    }
                    params.push((name, actual.to_owned()));
                } else if expected != actual {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never(_: RequestContext) -> BoxFuture<'static, Result<ApiResponse, ApiError>> {
        Box::pin(async { Err(ApiError::NotFound) })
    }

    fn router() -> Router {
        Router::new()
            .route(
                Method::GET,
                "/api/v1/contacts/{id}",
                Access::Scope("contacts:read"),
                never,
            )
            .route(
                Method::POST,
                "/api/v1/contacts",
                Access::Scope("contacts:write"),
                never,
            )
    }

    #[test]
    fn extracts_parameters() {
        let router = router();
        let (route, params) = router
            .resolve(&Method::GET, "/api/v1/contacts/abc")
            .unwrap();
        assert_eq!(route.pattern, "/api/v1/contacts/{id}");
        assert_eq!(params.get("id"), Some("abc"));
    }

    #[test]
    fn a_trailing_slash_is_tolerated() {
        assert!(router().resolve(&Method::POST, "/api/v1/contacts/").is_ok());
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405() {
        assert!(matches!(
            router().resolve(&Method::GET, "/api/v1/contacts/abc/extra"),
            Err(ApiError::NotFound)
        ));
        match router().resolve(&Method::DELETE, "/api/v1/contacts") {
            Err(ApiError::MethodNotAllowed { allowed }) => assert_eq!(allowed, vec![Method::POST]),
            other => panic!("expected 405, got {:?}", other.map(|(r, _)| r.pattern)),
        }
    }

    #[test]
    fn a_literal_segment_names_its_own_resource_not_a_parameter_value() {
        let router = router().route(
            Method::POST,
            "/api/v1/contacts/upsert",
            Access::Scope("contacts:write"),
            never,
        );
        let (route, _) = router
            .resolve(&Method::POST, "/api/v1/contacts/upsert")
            .unwrap();
        assert_eq!(route.pattern, "/api/v1/contacts/upsert");
        match router.resolve(&Method::GET, "/api/v1/contacts/upsert") {
            Err(ApiError::MethodNotAllowed { allowed }) => assert_eq!(allowed, vec![Method::POST]),
            other => panic!("expected 405, got {:?}", other.map(|(r, _)| r.pattern)),
        }
        assert!(router.resolve(&Method::GET, "/api/v1/contacts/abc").is_ok());
    }
}
