//! The session API on the admin listener (issue 16): list an owner's sessions, end them, or end
//! one session by its handle.
//!
//! - `GET /sessions?owner=VALUE`: `[{"handle", "created", "last_seen", "expires"}]`, oldest
//!   first, times in RFC 3339 (the format of `X-Session-Created`). Handles only: never an ID
//!   (which would let the reader use the session) nor the data.
//! - `DELETE /sessions?owner=VALUE`: `{"revoked": N, "handles": [...]}`.
//! - `DELETE /sessions/HANDLE`: `{"revoked": 1}`, or 404 when no session has that handle.
//!
//! `VALUE` is form-decoded (`%2B` for a literal `+`, which alone decodes to a space). The owner
//! API needs `sessions.owner_key`; none of it works with the cookie store, which keeps nothing
//! server-side. Either answers 404 with a body that says so.

use bytes::Bytes;
use http::Response;
use serde_json::{json, Value};

use crate::error::{ok_json, ProxyError, ResponseBody};
use crate::handler::App;
use crate::session::protocol::rfc3339_text;
use crate::session::store::{Handle, Owner, SessionInfo};
use crate::session::OwnersOff;

type Answer = Result<Response<ResponseBody>, ProxyError>;

/// `GET /sessions?owner=VALUE`.
pub async fn list(app: &App, query: Option<&str>) -> Answer {
    available(app, true)?;
    let owner = owner(query)?;
    let sessions = app.session.owner_sessions(&owner).await?;
    json(&Value::Array(sessions.iter().map(listed).collect()))
}

/// `DELETE /sessions?owner=VALUE`.
pub async fn revoke_owner(app: &App, query: Option<&str>) -> Answer {
    available(app, true)?;
    let owner = owner(query)?;
    let revoked = app.session.revoke_owner(&owner).await?;
    app.metrics.sessions_revoked(revoked.len() as u64);
    // The count, never the owner: the owner value names a user, and the log is no place for it.
    tracing::info!(
        revoked = revoked.len(),
        "admin API: ended an owner's sessions"
    );
    let handles: Vec<&str> = revoked.iter().map(Handle::as_str).collect();
    json(&json!({ "revoked": handles.len(), "handles": handles }))
}

/// `DELETE /sessions/HANDLE`.
pub async fn revoke_handle(app: &App, handle: &str) -> Answer {
    available(app, false)?;
    let handle = Handle::parse(handle).ok_or(ProxyError::BadAdminRequest(
        "bad request: not a session handle (the 43-character X-Session-Id the app is given)\n",
    ))?;
    if !app.session.revoke_handle(&handle).await? {
        return Err(ProxyError::NotFound(
            "not found: no session has this handle (ended, expired, or never existed)\n",
        ));
    }
    app.metrics.sessions_revoked(1);
    tracing::info!(handle = handle.as_str(), "admin API: ended a session");
    json(&json!({ "revoked": 1 }))
}

/// 404 when the configuration cannot answer: checked before the arguments, because no argument
/// would make it answer.
fn available(app: &App, by_owner: bool) -> Result<(), ProxyError> {
    app.session
        .owners_available(by_owner)
        .map_err(|off| ProxyError::NotFound(unavailable(off)))
}

fn unavailable(off: OwnersOff) -> &'static str {
    match off {
        OwnersOff::CookieStore => {
            "not found: the cookie store keeps nothing server-side to list or revoke; cookies stay valid until they expire (rotate sessions.secret to end every session)\n"
        }
        OwnersOff::NoOwnerKey => {
            "not found: sessions.owner_key is not set, so sessions are not indexed by owner\n"
        }
    }
}

/// The one `owner` of the query string, form-decoded.
fn owner(query: Option<&str>) -> Result<Owner, ProxyError> {
    let mut found = None;
    for (name, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if name == "owner" {
            if found.is_some() {
                return Err(ProxyError::BadAdminRequest(
                    "bad request: owner= given more than once\n",
                ));
            }
            found = Some(value);
        }
    }
    let value = found.ok_or(ProxyError::BadAdminRequest(
        "bad request: name the owner: ?owner=VALUE (the value the app stores under sessions.owner_key)\n",
    ))?;
    Owner::new(&value).ok_or(ProxyError::BadAdminRequest(
        "bad request: the owner must be 1 to 512 bytes\n",
    ))
}

fn listed(info: &SessionInfo) -> Value {
    json!({
        "handle": info.handle.as_str(),
        "created": rfc3339_text(info.created),
        "last_seen": rfc3339_text(info.last_seen),
        "expires": rfc3339_text(info.expires),
    })
}

fn json(value: &Value) -> Answer {
    let mut body = serde_json::to_vec(value)
        .map_err(|_| ProxyError::Internal("the admin API's JSON did not serialize"))?;
    body.push(b'\n');
    Ok(ok_json(Bytes::from(body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_owner_is_one_form_decoded_value() {
        for (query, want) in [
            (Some("owner=alice"), Some("alice")),
            (Some("owner=a%2Bb%40x.org"), Some("a+b@x.org")),
            (Some("owner=a+b"), Some("a b")),
            (Some("other=1&owner=42"), Some("42")),
            (Some("owner="), None),
            (Some("owner=a&owner=b"), None),
            (Some(""), None),
            (None, None),
        ] {
            let got = owner(query).ok();
            assert_eq!(got.as_ref().map(Owner::as_str), want, "{query:?}");
        }
        let long = format!("owner={}", "x".repeat(513));
        assert!(owner(Some(&long)).is_err());
    }
}
