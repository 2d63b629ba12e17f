//! The default store: nothing server-side. The whole session is sealed (AES-256-GCM through the
//! `cookie` crate's private jar, which also binds the cookie name as associated data) into the
//! cookie value.
//!
//! Expiry is enforced from the sealed timestamps, so a client that keeps a cookie past its
//! `Max-Age` gains nothing. The known limit: a stolen cookie stays valid until it expires, because
//! there is no server-side record to revoke; use a server-side store where that matters.

use ::cookie::{Cookie, CookieJar, Key};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

use super::*;

pub struct CookieStore {
    cookie_name: String,
    /// `keys[0]` seals; every key opens (the rest are `previous_secrets`, for rotation).
    keys: Vec<Key>,
    idle_timeout: Option<Duration>,
    /// `PrivateJar::decrypt` needs a jar to borrow but never touches it.
    empty_jar: CookieJar,
}

/// The sealed record. Short field names: every byte here is a byte in every request.
#[derive(Serialize, Deserialize)]
struct Sealed<'a> {
    i: Cow<'a, str>,
    c: Millis,
    s: Millis,
    e: Millis,
    d: Cow<'a, Data>,
}

impl CookieStore {
    pub fn new(
        cookie_name: &str,
        secret: &str,
        previous_secrets: &[String],
        idle_timeout: Option<Duration>,
    ) -> CookieStore {
        let keys = std::iter::once(secret)
            .chain(previous_secrets.iter().map(String::as_str))
            .map(|s| Key::derive_from(s.as_bytes()))
            .collect();
        CookieStore {
            cookie_name: cookie_name.to_owned(),
            keys,
            idle_timeout,
            empty_jar: CookieJar::new(),
        }
    }

    fn open(&self, value: &str) -> Option<(String, bool)> {
        for (i, key) in self.keys.iter().enumerate() {
            let sealed = Cookie::new(self.cookie_name.clone(), value.to_owned());
            if let Some(plain) = self.empty_jar.private(key).decrypt(sealed) {
                return Some((plain.value().to_owned(), i > 0));
            }
        }
        None
    }

    /// Seals `session` under the current secret.
    pub fn seal(&self, session: &Session) -> Result<String, StoreError> {
        let record = Sealed {
            i: Cow::Borrowed(session.id.as_str()),
            c: session.created,
            s: session.last_seen,
            e: session.expires,
            d: Cow::Borrowed(&session.data),
        };
        let sealing = |message: &str| StoreError::Backend {
            driver: "cookie",
            message: message.to_owned(),
        };
        let plain = serde_json::to_string(&record)
            .map_err(|_| sealing("the session does not serialize"))?;
        let key = self.keys.first().ok_or_else(|| sealing("no secret"))?;
        let mut jar = CookieJar::new();
        jar.private_mut(key)
            .add(Cookie::new(self.cookie_name.clone(), plain));
        jar.get(&self.cookie_name)
            .map(|c| c.value().to_owned())
            .ok_or_else(|| sealing("the sealed cookie is missing from the jar"))
    }
}

impl SessionStore for CookieStore {
    fn driver(&self) -> &'static str {
        "cookie"
    }

    async fn load(&self, cookie: &str, now: Millis) -> Result<Lookup, StoreError> {
        let Some((plain, reseal)) = self.open(cookie) else {
            return Ok(Lookup::Rejected(Reject::Tampered));
        };
        let Ok(record) = serde_json::from_str::<Sealed<'_>>(&plain) else {
            return Ok(Lookup::Rejected(Reject::Tampered));
        };
        let Some(id) = SessionId::parse(&record.i) else {
            return Ok(Lookup::Rejected(Reject::Tampered));
        };
        let session = Session {
            id,
            data: Arc::new(record.d.into_owned()),
            created: record.c,
            last_seen: record.s,
            expires: record.e,
        };
        if !session.is_live(now, self.idle_timeout) {
            return Ok(Lookup::Rejected(Reject::Expired));
        }
        Ok(Lookup::Found { session, reseal })
    }

    async fn create(&self, session: &Session, _now: Millis) -> Result<Write, StoreError> {
        Ok(Write::Stored(self.seal(session)?))
    }

    async fn update(
        &self,
        session: &Session,
        _delta: Delta<'_>,
        _now: Millis,
    ) -> Result<Write, StoreError> {
        Ok(Write::Stored(self.seal(session)?))
    }

    async fn regenerate(
        &self,
        _old: &SessionId,
        session: &Session,
        _delta: Delta<'_>,
        _now: Millis,
    ) -> Result<Write, StoreError> {
        Ok(Write::Stored(self.seal(session)?))
    }

    async fn destroy(&self, _id: &SessionId) -> Result<(), StoreError> {
        Ok(())
    }

    async fn cleanup(&self, _now: Millis) -> Result<CleanupReport, StoreError> {
        Ok(CleanupReport::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const A: &str = "0123456789abcdef0123456789abcdef";
    const B: &str = "fedcba9876543210fedcba9876543210";

    fn session() -> Session {
        let mut s = Session::new(SessionId::generate(), 1_000, Duration::from_secs(60));
        Arc::make_mut(&mut s.data).insert("user".into(), json!("Jos\u{e9}"));
        s
    }

    #[tokio::test]
    async fn round_trip() {
        let store = CookieStore::new("sid", A, &[], None);
        let s = session();
        let sealed = store.seal(&s).unwrap();
        match store.load(&sealed, 2_000).await.unwrap() {
            Lookup::Found { session, reseal } => {
                assert_eq!(session.id, s.id);
                assert_eq!(session.data, s.data);
                assert!(!reseal);
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn tampering_and_foreign_keys_and_names_are_rejected() {
        let store = CookieStore::new("sid", A, &[], None);
        let sealed = store.seal(&session()).unwrap();
        let mut bytes = sealed.clone().into_bytes();
        bytes[10] = if bytes[10] == b'A' { b'B' } else { b'A' };
        let flipped = String::from_utf8(bytes).unwrap();
        for bad in [
            flipped.as_str(),
            &sealed[..sealed.len() - 1],
            &format!("{sealed}AA"),
            "",
            "not base64 at all!",
        ] {
            assert!(matches!(
                store.load(bad, 2_000).await.unwrap(),
                Lookup::Rejected(Reject::Tampered)
            ));
        }
        let other_key = CookieStore::new("sid", B, &[], None);
        assert!(matches!(
            other_key.load(&sealed, 2_000).await.unwrap(),
            Lookup::Rejected(Reject::Tampered)
        ));
        let other_name = CookieStore::new("other", A, &[], None);
        assert!(matches!(
            other_name.load(&sealed, 2_000).await.unwrap(),
            Lookup::Rejected(Reject::Tampered)
        ));
    }

    /// Found by fuzzing (cookie_open): serde_json's default float parsing is not exact, so a
    /// number could come back one ulp off after a seal/open round trip.
    #[tokio::test]
    async fn floats_survive_the_round_trip_exactly() {
        let store = CookieStore::new("sid", A, &[], None);
        let mut s = session();
        Arc::make_mut(&mut s.data).insert("f".into(), json!(-4.986884178005349e245));
        match store.load(&store.seal(&s).unwrap(), 2_000).await.unwrap() {
            Lookup::Found { session, .. } => assert_eq!(session.data, s.data),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn previous_secret_opens_and_asks_for_reseal() {
        let old = CookieStore::new("sid", B, &[], None);
        let sealed = old.seal(&session()).unwrap();
        let rotated = CookieStore::new("sid", A, &[B.to_string()], None);
        assert!(matches!(
            rotated.load(&sealed, 2_000).await.unwrap(),
            Lookup::Found { reseal: true, .. }
        ));
    }

    #[tokio::test]
    async fn expiry_comes_from_the_sealed_timestamps() {
        let store = CookieStore::new("sid", A, &[], Some(Duration::from_secs(5)));
        let sealed = store.seal(&session()).unwrap();
        assert!(matches!(
            store.load(&sealed, 7_000).await.unwrap(),
            Lookup::Rejected(Reject::Expired)
        ));
        assert!(matches!(
            store.load(&sealed, 5_000).await.unwrap(),
            Lookup::Found { .. }
        ));
    }
}
