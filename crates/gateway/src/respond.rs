//! Every answer the gateway makes up itself, in the one shape the Docker CLI and SDKs print:
//! `{"message": "..."}` with the status code of the failure.

use bytes::Bytes;
use http::{header, Response, StatusCode};
use http_body_util::{BodyExt, Full};

/// The body type of every response the gateway sends.
pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;
/// Errors of response bodies (the engine's stream breaking, mostly).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why the gateway answered instead of the engine.
#[derive(Debug)]
pub enum Refusal {
    /// The route table or a rule refused the request (403).
    Denied(String),
    /// A named policy rule refused the request (403); the rule id goes to the audit log.
    DeniedBy(&'static str, String),
    /// The request could not be understood (400).
    BadRequest(String),
    /// The engine could not be reached or broke the exchange (502).
    EngineUnavailable(String),
}

impl Refusal {
    /// The HTTP status of the answer.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Denied(_) | Self::DeniedBy(..) => StatusCode::FORBIDDEN,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::EngineUnavailable(_) => StatusCode::BAD_GATEWAY,
        }
    }

    /// The message the user sees.
    #[must_use]
    pub fn message(&self) -> &str {
        match self {
            Self::Denied(m)
            | Self::DeniedBy(_, m)
            | Self::BadRequest(m)
            | Self::EngineUnavailable(m) => m,
        }
    }

    /// The rule that refused, for the audit log.
    #[must_use]
    pub fn rule(&self) -> &'static str {
        match self {
            Self::DeniedBy(rule, _) => rule,
            Self::Denied(_) => "route.deny",
            Self::BadRequest(_) => "request.malformed",
            Self::EngineUnavailable(_) => "engine.unavailable",
        }
    }

    /// The Docker-style JSON response for this refusal.
    #[must_use]
    pub fn into_response(self) -> Response<Body> {
        let body = serde_json::json!({ "message": self.message() }).to_string();
        let mut response = Response::new(full(Bytes::from(body)));
        *response.status_mut() = self.status();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// A complete in-memory body.
#[must_use]
pub fn full(bytes: Bytes) -> Body {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn refusals_are_docker_json() {
        let response = Refusal::Denied("enhanced container isolation: no".into()).into_response();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["message"], "enhanced container isolation: no");
    }

    #[test]
    fn statuses() {
        assert_eq!(
            Refusal::BadRequest(String::new()).status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            Refusal::EngineUnavailable(String::new()).status(),
            StatusCode::BAD_GATEWAY
        );
    }
}
