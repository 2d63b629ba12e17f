//! Who may use the admin listener. One decision per request, taken on the route before any
//! handler runs: the probes are always open (kubelet, Docker and load balancers hold no
//! credentials), everything else needs `Authorization: Bearer <admin_token>` once a token is set.
//!
//! The presented token is compared with [`AdminToken::matches`] (constant time) and is never
//! logged, nor is the header.

use http::{header, HeaderMap};

use super::Route;
use crate::config::AdminToken;

/// Whether a request with `headers` may reach `route`.
pub fn allowed(token: Option<&AdminToken>, route: Route<'_>, headers: &HeaderMap) -> bool {
    let Some(token) = token else {
        return true;
    };
    route.is_probe() || bearer(headers).is_some_and(|presented| token.matches(presented))
}

/// The credentials of `Authorization: Bearer <token>`. The scheme is case-insensitive (RFC 9110
/// §11.1). More than one `Authorization` header is refused rather than picked from: which one a
/// front proxy would have checked is anyone's guess.
fn bearer(headers: &HeaderMap) -> Option<&[u8]> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next()?.as_bytes();
    if values.next().is_some() {
        return None;
    }
    let space = value.iter().position(|&b| b == b' ')?;
    let (scheme, rest) = value.split_at(space);
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn token() -> AdminToken {
        serde_json::from_str("\"0123456789abcdef0123456789abcdef\"").unwrap()
    }

    fn with(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn the_token_guards_all_but_the_probes() {
        let t = token();
        let good = "Bearer 0123456789abcdef0123456789abcdef";
        for (route, values, allowed_) in [
            (Route::Metrics, vec![good], true),
            (
                Route::Metrics,
                vec!["bearer 0123456789abcdef0123456789abcdef"],
                true,
            ),
            (Route::Sessions, vec![], false),
            (Route::Sessions, vec!["Bearer wrong"], false),
            (
                Route::Sessions,
                vec!["Basic 0123456789abcdef0123456789abcdef"],
                false,
            ),
            (
                Route::Sessions,
                vec!["0123456789abcdef0123456789abcdef"],
                false,
            ),
            (Route::Sessions, vec!["Bearer "], false),
            (Route::Sessions, vec![good, good], false),
            (Route::Session("x"), vec![good], true),
            (Route::NotFound, vec![], false),
            (Route::Jwks, vec![], false),
            (Route::Live, vec![], true),
            (Route::Ready, vec!["Bearer wrong"], true),
        ] {
            assert_eq!(
                allowed(Some(&t), route, &with(&values)),
                allowed_,
                "{route:?} {values:?}"
            );
        }
        assert!(allowed(None, Route::Sessions, &HeaderMap::new()));
    }
}
