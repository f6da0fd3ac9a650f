//! Plain HTTP responses and request bodies, for every handler on the
//! public listener: the response body type, text answers, and reading a
//! request body within a size and a time limit.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode, Version};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::Shared;

/// The response body type.
pub type Body = Full<Bytes>;

pub(crate) fn text(status: StatusCode, msg: impl Into<String>) -> Response<Body> {
    let mut msg = msg.into();
    msg.push('\n');
    let mut r = Response::new(Full::new(Bytes::from(msg)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Why a request body could not be read.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// Longer than the caller's limit.
    TooLarge,
    /// Not complete within `server.body_read_timeout`.
    TimedOut,
    /// The connection failed or the body was malformed.
    Failed,
}

/// Reads a whole request body, at most `limit` bytes, within the server's
/// `body_read_timeout` (counted from now, which is the end of the request
/// head for a handler that reads the body first). Every request body the
/// gateway reads goes through here, so that no body can hold a connection
/// (and its permit) by trickling in.
pub(crate) async fn read_body(
    shared: &Shared,
    body: Incoming,
    limit: usize,
) -> Result<Bytes, BodyError> {
    use http_body_util::{BodyExt, Limited};
    let read = Limited::new(body, limit).collect();
    match tokio::time::timeout(shared.config.server.body_read_timeout, read).await {
        Err(_) => Err(BodyError::TimedOut),
        Ok(Ok(c)) => Ok(c.to_bytes()),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(BodyError::TooLarge)
        }
        Ok(Err(_)) => Err(BodyError::Failed),
    }
}

/// 408 for a body that did not arrive in time; HTTP/1.1 closes the
/// connection after it (the rest of the body may still be on its way).
pub(crate) fn body_timeout_response(version: Version) -> Response<Body> {
    let mut r = text(
        StatusCode::REQUEST_TIMEOUT,
        "the request body did not arrive within server.body_read_timeout",
    );
    if version < Version::HTTP_2 {
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    r
}
