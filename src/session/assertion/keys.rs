//! The key material: the signing key and the previous public keys read from PEM files, their JWKs
//! as published, and new keys for `keygen --assertion`.

use std::path::Path;

use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};

use super::AssertionError;

/// A JWK as published: `use: sig`, its algorithm and `kid`.
pub(super) fn published(mut jwk: Jwk, alg: Algorithm, kid: String) -> Jwk {
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    jwk.common.key_algorithm = Some(match alg {
        Algorithm::ES256 => KeyAlgorithm::ES256,
        _ => KeyAlgorithm::EdDSA,
    });
    jwk.common.key_id = Some(kid);
    jwk
}

/// The RFC 7638 SHA-256 thumbprint; computed over the required members only, so it does not
/// depend on `use`/`alg`/`kid`.
pub(super) fn thumbprint(jwk: &Jwk) -> Result<String, String> {
    jwk.thumbprint(ThumbprintHash::SHA256)
        .map_err(|e| e.to_string())
}

fn read(path: &Path) -> Result<Vec<u8>, AssertionError> {
    std::fs::read(path).map_err(|source| AssertionError::Read {
        path: path.to_owned(),
        source,
    })
}

/// The signing key, its algorithm and its public JWK. Ed25519 is tried first (the default), then
/// ECDSA P-256; `aws-lc-rs` derives the public key from the PKCS#8 document and refuses other curves.
pub(super) fn load_private(path: &Path) -> Result<(EncodingKey, Algorithm, Jwk), AssertionError> {
    let pem = read(path)?;
    let bad = |reason: String| AssertionError::PrivateKey {
        path: path.to_owned(),
        reason,
    };
    if let Ok(key) = EncodingKey::from_ed_pem(&pem) {
        let pair = aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(key.as_bytes())
            .map_err(|e| bad(format!("Ed25519: {e}")))?;
        let public =
            DecodingKey::from_ed_der(aws_lc_rs::signature::KeyPair::public_key(&pair).as_ref());
        let jwk = Jwk::from_decoding_key(&public, Some(Algorithm::EdDSA))
            .map_err(|e| bad(e.to_string()))?;
        return Ok((key, Algorithm::EdDSA, jwk));
    }
    match EncodingKey::from_ec_pem(&pem) {
        Ok(key) => {
            let pair = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
                &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                key.as_bytes(),
            )
            .map_err(|e| bad(format!("ECDSA P-256: {e}")))?;
            let public =
                DecodingKey::from_ec_der(aws_lc_rs::signature::KeyPair::public_key(&pair).as_ref());
            let jwk = Jwk::from_decoding_key(&public, Some(Algorithm::ES256))
                .map_err(|e| bad(e.to_string()))?;
            Ok((key, Algorithm::ES256, jwk))
        }
        Err(e) => Err(bad(e.to_string())),
    }
}

/// A previous key: SPKI PEM, Ed25519 or P-256.
pub(super) fn load_public(path: &Path) -> Result<(Jwk, Algorithm), AssertionError> {
    let pem = read(path)?;
    let bad = |reason: String| AssertionError::PublicKey {
        path: path.to_owned(),
        reason,
    };
    let (key, alg) = match DecodingKey::from_ed_pem(&pem) {
        Ok(key) => (key, Algorithm::EdDSA),
        Err(_) => (
            DecodingKey::from_ec_pem(&pem).map_err(|e| bad(e.to_string()))?,
            Algorithm::ES256,
        ),
    };
    let jwk = Jwk::from_decoding_key(&key, Some(alg)).map_err(|e| bad(e.to_string()))?;
    Ok((jwk, alg))
}

/// Why `keygen --assertion` could not make a key.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode the new Ed25519 key as PKCS#8: {0}")]
pub struct KeygenError(String);

/// A new Ed25519 private key as PEM PKCS#8 v1 (RFC 8410: the 32-byte seed, no public key), for
/// `session-proxy keygen --assertion`. The seed comes from the OS CSPRNG.
pub fn generate_ed25519_pem() -> Result<String, KeygenError> {
    use ed25519::pkcs8::EncodePrivateKey;
    use rand::RngCore;
    let mut seed = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let doc = ed25519::pkcs8::KeypairBytes {
        secret_key: seed,
        public_key: None,
    }
    .to_pkcs8_der()
    .map_err(|e| KeygenError(e.to_string()))?;
    Ok(pem::encode_config(
        &pem::Pem::new("PRIVATE KEY", doc.as_bytes()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    ))
}
