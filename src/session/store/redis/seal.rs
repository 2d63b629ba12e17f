//! Encryption at rest: what a sealed session's fields are, and the keys they are sealed under.
//!
//! The session ID (the cookie) is the only secret. Redis holds `SHA-256(ID)` in the key; the two
//! keys here come from HKDF-SHA256 over the ID (expand only: the ID is already a uniformly random
//! key) with their own info labels, which nothing stored in
//! Redis can reproduce. A stolen dump therefore yields neither data nor the names the app chose:
//!
//! - field name: `s:` + HMAC-SHA256(name key, app key name), 32 raw bytes;
//! - field value: `nonce (12) || AES-256-GCM(data key, nonce, plaintext) || tag (16)`, where the
//!   plaintext is `len(name) as u32 BE || name || JSON value`. The name has to travel inside the
//!   ciphertext because the HMAC cannot be reversed, so the AAD is the stored field name (the HMAC
//!   of the plaintext name): a value moved to another field, or to another session, fails to open.
//!
//! Nonces are random (96 bits from the OS CSPRNG, one `getrandom` per write for all its fields).
//! A session writes few fields in its life, far below the 2^32 messages per key at which random
//! nonces would need a second thought, and every session has its own key.

use std::sync::OnceLock;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use serde_json::Value;
use sha2::Sha256;

use crate::session::store::SessionId;

/// The prefix of a sealed data field's name (plaintext fields are `d:<name>`).
pub(super) const SEALED_PREFIX: &[u8] = b"s:";
const DATA_INFO: &[u8] = b"session-proxy/redis/data/v1";
const NAME_INFO: &[u8] = b"session-proxy/redis/name/v1";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const NAME_LEN_LEN: usize = 4;

/// One session's keys, derived once per store call from its ID.
pub(super) struct Keys {
    data: Aes256Gcm,
    /// HKDF's extracted key, for the name key on first use: a load opens fields without their
    /// names' HMAC, so a read never pays for it.
    hkdf: Hkdf<Sha256>,
    /// Keyed once; each name clones the keyed state (a copy of two hash states, no allocation).
    names: OnceLock<Hmac<Sha256>>,
}

/// Why a sealed field did not open: too short, not authentic, or not what we seal.
#[derive(Debug, thiserror::Error)]
pub(super) enum OpenError {
    #[error("a sealed field is too short")]
    Short,
    #[error("a sealed field failed authentication")]
    Forged,
    #[error("a sealed field's plaintext is malformed")]
    Malformed,
    /// Every write to a marked hash is sealed, so a readable field there was put in by hand.
    #[error("a sealed session holds a readable field")]
    Readable,
}

impl Keys {
    pub(super) fn derive(id: &SessionId) -> Keys {
        // HKDF-Expand straight from the ID (RFC 5869 §3.3): the ID is already 256 uniformly random
        // bits from the OS CSPRNG, so the extract step would add nothing but four SHA-256 blocks
        // to every request. An ID shorter than a PRK (never generated) takes the full HKDF.
        let ikm = id.as_str().as_bytes();
        let hkdf = Hkdf::<Sha256>::from_prk(ikm).unwrap_or_else(|_| Hkdf::new(None, ikm));
        let mut data = [0u8; 32];
        // Far below HKDF-SHA256's 8160-byte limit: cannot fail.
        let _ = hkdf.expand(DATA_INFO, &mut data);
        Keys {
            data: Aes256Gcm::new(&data.into()),
            hkdf,
            names: OnceLock::new(),
        }
    }

    fn names(&self) -> &Hmac<Sha256> {
        self.names.get_or_init(|| {
            // SHA-256's block size: HMAC uses a key of this length as it is.
            let mut names = [0u8; 64];
            let _ = self.hkdf.expand(NAME_INFO, &mut names);
            <Hmac<Sha256> as KeyInit>::new(&names.into())
        })
    }

    /// The stored field name of the app's key `name`.
    pub(super) fn field(&self, name: &str) -> Vec<u8> {
        let mut mac = self.names().clone();
        mac.update(name.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = Vec::with_capacity(SEALED_PREFIX.len() + digest.len());
        out.extend_from_slice(SEALED_PREFIX);
        out.extend_from_slice(&digest);
        out
    }

    /// The stored value of `name = value` under the stored field name `field`, with `nonce`.
    pub(super) fn seal(
        &self,
        field: &[u8],
        name: &str,
        value: &Value,
        nonce: [u8; NONCE_LEN],
    ) -> Vec<u8> {
        let mut out = Vec::with_capacity(NONCE_LEN + NAME_LEN_LEN + name.len() + 64 + TAG_LEN);
        out.extend_from_slice(&nonce);
        // Names are header-sized (bounded by `sessions.max_bytes`), far below 4 GiB.
        out.extend_from_slice(&(name.len() as u32).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        // Writing a `Value` into a Vec cannot fail (no I/O, keys are strings).
        let _ = serde_json::to_writer(&mut out, value);
        let tag = self.data.encrypt_in_place_detached(
            Nonce::from_slice(&nonce),
            field,
            &mut out[NONCE_LEN..],
        );
        match tag {
            Ok(tag) => out.extend_from_slice(&tag),
            // Only for plaintexts over 64 GiB; an empty value then fails to open and reads as
            // tampered, never as data.
            Err(_) => out.clear(),
        }
        out
    }

    /// The app's key and value sealed in `value` under the stored field name `field`. Decrypts in
    /// place: the only allocation is the returned name.
    pub(super) fn open(
        &self,
        field: &[u8],
        mut value: Vec<u8>,
    ) -> Result<(String, Value), OpenError> {
        if value.len() < NONCE_LEN + NAME_LEN_LEN + TAG_LEN {
            return Err(OpenError::Short);
        }
        let (nonce, rest) = value.split_at_mut(NONCE_LEN);
        let (body, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
        let nonce = Nonce::from_slice(nonce);
        let tag = Tag::from_slice(tag);
        self.data
            .decrypt_in_place_detached(nonce, field, body, tag)
            .map_err(|_| OpenError::Forged)?;
        let (len, rest) = body.split_at(NAME_LEN_LEN);
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if len > rest.len() {
            return Err(OpenError::Malformed);
        }
        let (name, json) = rest.split_at(len);
        let name = std::str::from_utf8(name).map_err(|_| OpenError::Malformed)?;
        let value = serde_json::from_slice(json).map_err(|_| OpenError::Malformed)?;
        Ok((name.to_owned(), value))
    }
}

/// `n` nonces from the OS CSPRNG in one call: a write seals all its fields with one `getrandom`.
pub(super) fn nonces(n: usize) -> Vec<[u8; NONCE_LEN]> {
    let mut out = vec![[0u8; NONCE_LEN]; n];
    rand::rngs::OsRng.fill_bytes(out.as_flattened_mut());
    out
}

#[cfg(test)]
mod tests;
