//! Naming a session: its ID (the credential the cookie carries) and its handle (the public name
//! the app, the logs and the admin API use, which no store accepts in place of the ID).

use base64::Engine;

/// A session ID: 256 bits from the OS CSPRNG, base64url without padding (43 characters).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    pub const ENCODED_LEN: usize = 43;

    pub fn generate() -> SessionId {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        SessionId(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Accepts only the exact shape we generate, so junk never reaches a store lookup.
    pub fn parse(text: &str) -> Option<SessionId> {
        let ok = text.len() == Self::ENCODED_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| SessionId(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The session's public name: base64url (no padding) of SHA-256 of the ID, 43 characters.
    /// Stable for the session's life and new after Clear or Regenerate, it is what the app sees as
    /// `X-Session-Id` and what logs and the admin API call a session. Knowing it gives nothing: no
    /// store accepts it in place of the cookie, and the ID cannot be derived from it.
    ///
    /// Returned on the stack: it is computed for every request that carries a session.
    pub fn handle(&self) -> Handle {
        use sha2::{Digest, Sha256};
        Handle::from_digest(&Sha256::digest(self.0.as_bytes()).into())
    }

    /// A short, non-reversible tag for logs: enough to correlate lines, useless as a credential.
    pub fn fingerprint(&self) -> String {
        self.handle().fingerprint()
    }
}

/// A session's public name ([`SessionId::handle`]): 43 base64url characters, held inline so that
/// describing a session to the app costs no allocation beyond the header value itself.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Handle([u8; Handle::LEN]);

impl Handle {
    pub const LEN: usize = 43;

    /// The handle of the session whose ID hashes to `digest` (a Redis key holds the digest).
    pub fn from_digest(digest: &[u8; 32]) -> Handle {
        let mut out = [0u8; Handle::LEN];
        // 32 bytes always encode to exactly 43 characters, so this cannot fail (the unit test
        // pins the output); no panic path on the request.
        let _ = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_slice(digest, &mut out);
        Handle(out)
    }

    /// A handle as an operator or the admin API names it: exactly the shape we produce.
    pub fn parse(text: &str) -> Option<Handle> {
        let digest = Handle::digest_of(text)?;
        let handle = Handle::from_digest(&digest);
        // Canonical only: a 43-character string whose last character carries stray low bits
        // decodes to the same digest, and must not name the session a second way.
        (handle.as_str() == text).then_some(handle)
    }

    /// The SHA-256 of the session ID this handle names.
    pub fn digest(&self) -> [u8; 32] {
        Handle::digest_of(self.as_str()).unwrap_or([0; 32])
    }

    fn digest_of(text: &str) -> Option<[u8; 32]> {
        if text.len() != Handle::LEN {
            return None;
        }
        let mut digest = [0u8; 33];
        let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode_slice(text, &mut digest)
            .ok()?;
        (n == 32).then(|| {
            let mut out = [0u8; 32];
            out.copy_from_slice(&digest[..32]);
            out
        })
    }

    pub fn as_str(&self) -> &str {
        // Only `SessionId::handle` builds a Handle, from base64url output: always ASCII.
        std::str::from_utf8(&self.0).unwrap_or("")
    }

    /// The first 32 bits of the digest as 8 hex digits ([`SessionId::fingerprint`]), read back
    /// from the handle's first 8 characters (6 bytes) instead of hashing the ID a second time.
    pub fn fingerprint(&self) -> String {
        let mut digest = [0u8; 6];
        let _ = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode_slice(&self.0[..8], &mut digest);
        let word = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
        format!("{word:08x}")
    }
}

impl std::fmt::Display for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// IDs are credentials: never print one by accident.
impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SessionId({})", self.fingerprint())
    }
}
