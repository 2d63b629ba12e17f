//! The signed session assertion (`X-Session-Assertion`): verified here from the outside with the
//! JWKS the proxy publishes, the way an app would. (`tests/assertion/run.sh` verifies the same
//! tokens with independent implementations: Python PyJWT and Node jose.)

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::*;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// A directory of key files for one test.
struct Keys {
    dir: tempfile::TempDir,
}

impl Keys {
    fn new() -> Keys {
        Keys {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A new Ed25519 key from `session-proxy keygen --assertion --out FILE`.
    fn ed25519(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        let out = std::process::Command::new(binary())
            .args(["keygen", "--assertion", "--out"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        path
    }

    /// A new ECDSA P-256 key (PKCS#8 PEM).
    fn p256(&self, name: &str) -> PathBuf {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let path = self.dir.path().join(name);
        std::fs::write(&path, key.serialize_pem()).unwrap();
        path
    }

    /// The SPKI public key of a private key file, as `previous_keys` wants it.
    fn public(&self, private: &Path) -> PathBuf {
        let pem = std::fs::read_to_string(private).unwrap();
        let key = rcgen::KeyPair::from_pem(&pem).unwrap();
        let path = private.with_extension("pub.pem");
        std::fs::write(&path, key.public_key_pem()).unwrap();
        path
    }
}

/// The app: `/login` sets user=Ann and role=admin, `/set/<k>/<v>` sets one key, anything else
/// just answers.
async fn app() -> TestUpstream {
    TestUpstream::with(|seen| {
        let path = seen.uri.path().to_owned();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match parts.as_slice() {
            ["login"] => Reply::ok()
                .header("X-Session-Set", "user=Ann")
                .header("X-Session-Set", "role=admin"),
            ["set", k, v] => Reply::ok().header("X-Session-Set", &format!("{k}={v}")),
            _ => Reply::ok(),
        }
    })
    .await
}

fn with_key(up: &TestUpstream, key: &Path) -> ProxyBuilder {
    ProxyBuilder::new(&up.url())
        .driver("memory")
        .set("limits.workers", "1")
        .set("assertion.key", &format!("\"{}\"", key.display()))
}

async fn login(proxy: &TestProxy) -> String {
    get(proxy.addr, "/login", &[])
        .await
        .cookie("session_id")
        .expect("a session")
}

/// The assertion and the `X-Session-Data` the app received on a request with `cookie`.
async fn assertion_for(proxy: &TestProxy, up: &TestUpstream, cookie: &str) -> (String, Value) {
    let res = get_with_cookie(proxy.addr, "/", "session_id", cookie).await;
    assert_eq!(res.status, 200);
    let seen = up.last();
    let token = seen
        .header("x-session-assertion")
        .expect("an assertion")
        .to_owned();
    let data = serde_json::from_str(seen.header("x-session-data").unwrap()).unwrap();
    (token, data)
}

async fn jwks(proxy: &TestProxy) -> JwkSet {
    let res = get(proxy.addr, "/.well-known/session-proxy/jwks.json", &[]).await;
    assert_eq!(res.status, 200);
    serde_json::from_slice(&res.body).unwrap()
}

/// Verifies `token` the way an app would: key by `kid` from the JWKS, signature, `iss`, `aud`,
/// `exp` and `nbf` with no leeway.
fn verify(token: &str, set: &JwkSet, aud: &str) -> Result<Value, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk = set.find(&kid).ok_or(format!("kid {kid} not in the JWKS"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut v = Validation::new(header.alg);
    v.leeway = 0;
    v.validate_nbf = true;
    v.set_issuer(&["session-proxy"]);
    v.set_audience(&[aud]);
    v.set_required_spec_claims(&["exp", "iat", "nbf", "iss", "aud"]);
    jsonwebtoken::decode::<Value>(token, &key, &v)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

/// Rewrites the proxy's `assertion` block in place (then send SIGHUP).
fn edit_config(proxy: &TestProxy, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let text = std::fs::read_to_string(&proxy.config_path).unwrap();
    let mut tree: Value = serde_norway::from_str(&text).unwrap();
    edit(tree["assertion"].as_object_mut().unwrap());
    std::fs::write(&proxy.config_path, serde_norway::to_string(&tree).unwrap()).unwrap();
}

fn handle_of(cookie: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(cookie.as_bytes()))
}

#[tokio::test]
async fn a_request_with_a_session_carries_a_verifiable_assertion() {
    let keys = Keys::new();
    let key = keys.ed25519("k1.pem");
    let up = app().await;
    let proxy = with_key(&up, &key)
        .set("assertion.subject_key", "user")
        .set("admin_listen", "127.0.0.1:0")
        .start();

    // No session: no assertion (an app treats that as anonymous).
    get(proxy.addr, "/", &[]).await;
    assert!(up.last().header("x-session-assertion").is_none());

    let cookie = login(&proxy).await;
    let (token, data) = assertion_for(&proxy, &up, &cookie).await;
    let set = jwks(&proxy).await;
    assert_eq!(set.keys.len(), 1);
    let claims = verify(&token, &set, &up.url()).unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    assert_eq!(header.kid, set.keys[0].common.key_id);
    assert_eq!(
        header.kid.as_deref(),
        Some(
            set.keys[0]
                .thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
                .unwrap()
                .as_str()
        )
    );
    assert_eq!(claims["iss"], "session-proxy");
    assert_eq!(claims["aud"], up.url());
    assert_eq!(claims["session"], data);
    assert_eq!(data, json!({"role": "admin", "user": "Ann"}));
    assert_eq!(claims["sub"], "Ann");
    // The memory store's cookie is the session ID, so the handle can be checked from here.
    assert_eq!(claims["sid"], handle_of(&cookie));
    let iat = claims["iat"].as_u64().unwrap();
    assert_eq!(claims["nbf"].as_u64(), Some(iat));
    assert_eq!(claims["exp"].as_u64(), Some(iat + 60));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(iat <= now && now - iat < 10, "iat {iat}, now {now}");
    // The assertion is for the app only: never echoed to the client.
    let res = get_with_cookie(proxy.addr, "/", "session_id", &cookie).await;
    assert!(res.header("x-session-assertion").is_none());

    // The JWKS: answered by the proxy itself, cacheable, the same on the admin listener.
    let before = up.seen().len();
    let public = get(proxy.addr, "/.well-known/session-proxy/jwks.json", &[]).await;
    assert_eq!(up.seen().len(), before, "the JWKS request reached the app");
    assert_eq!(public.header("cache-control"), Some("max-age=300"));
    assert_eq!(
        public.header("content-type"),
        Some("application/jwk-set+json")
    );
    let doc: Value = serde_json::from_slice(&public.body).unwrap();
    assert_eq!(doc["keys"][0]["kty"], "OKP");
    assert_eq!(doc["keys"][0]["crv"], "Ed25519");
    assert_eq!(doc["keys"][0]["use"], "sig");
    assert_eq!(doc["keys"][0]["alg"], "EdDSA");
    assert!(doc["keys"][0].get("d").is_none(), "private part published");
    let admin = get(proxy.admin_addr(), "/jwks.json", &[]).await;
    assert_eq!(admin.status, 200);
    assert_eq!(admin.body, public.body);
    assert_eq!(admin.header("cache-control"), Some("max-age=300"));
    let post = send(
        proxy.addr,
        http::Request::post("/.well-known/session-proxy/jwks.json")
            .header("host", proxy.addr.to_string())
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(post.status, 405);
    assert_eq!(up.seen().len(), before);
    proxy.assert_no_panic();
}

#[tokio::test]
async fn a_client_sent_assertion_never_reaches_the_app() {
    let keys = Keys::new();
    let up = app().await;
    for header in ["X-Session-Assertion", "X-Session-Jwt"] {
        let proxy = with_key(&up, &keys.ed25519(&format!("{header}.pem")))
            .set("assertion.header", header)
            .start();
        let forged = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.";
        let lower = header.to_ascii_lowercase();
        let spellings = [
            lower.clone(),
            lower.replace('-', "_"),
            header.to_ascii_uppercase(),
        ];
        for name in &spellings {
            get(proxy.addr, "/", &[(name.as_str(), forged)]).await;
            assert!(up.last().header(&lower).is_none(), "{name} reached the app");
        }
        let cookie = login(&proxy).await;
        for name in &spellings {
            let header_line = format!("session_id={cookie}");
            get(
                proxy.addr,
                "/",
                &[(name.as_str(), forged), ("cookie", header_line.as_str())],
            )
            .await;
            let seen = up.last();
            let values: Vec<_> = seen.headers.get_all(lower.as_str()).iter().collect();
            assert_eq!(values.len(), 1, "{name}");
            let token = values[0].to_str().unwrap();
            assert_ne!(token, forged);
            verify(token, &jwks(&proxy).await, &up.url()).unwrap();
        }
        // A session key named like the header cannot shadow it either.
        let short = lower.trim_start_matches("x-session-");
        get_with_cookie(
            proxy.addr,
            &format!("/set/{short}/spoof"),
            "session_id",
            &cookie,
        )
        .await;
        get_with_cookie(proxy.addr, "/", "session_id", &cookie).await;
        let seen = up.last();
        let data: Value = serde_json::from_str(seen.header("x-session-data").unwrap()).unwrap();
        assert_eq!(data[short], "spoof");
        assert_eq!(seen.headers.get_all(lower.as_str()).iter().count(), 1);
        let claims = verify(seen.header(&lower).unwrap(), &jwks(&proxy).await, &up.url()).unwrap();
        assert_eq!(claims["session"], data);
    }
}

#[tokio::test]
async fn sighup_rotates_keys_and_a_token_of_a_rotated_out_key_fails() {
    let keys = Keys::new();
    let k1 = keys.ed25519("k1.pem");
    let k2 = keys.p256("k2.pem");
    let up = app().await;
    let proxy = with_key(&up, &k1).start();
    let cookie = login(&proxy).await;
    let (old, _) = assertion_for(&proxy, &up, &cookie).await;
    let kid1 = jsonwebtoken::decode_header(&old).unwrap().kid.unwrap();

    // Rotate: k2 signs, k1 stays published while its tokens may still be alive.
    let pub1 = keys.public(&k1);
    edit_config(&proxy, |a| {
        a.insert("key".into(), k2.display().to_string().into());
        a.insert(
            "previous_keys".into(),
            vec![Value::from(pub1.display().to_string())].into(),
        );
    });
    proxy.signal("HUP");
    assert!(proxy.wait_for_log("configuration reloaded", Duration::from_secs(5)));
    let set = jwks(&proxy).await;
    assert_eq!(set.keys.len(), 2, "{set:?}");
    let (new, _) = assertion_for(&proxy, &up, &cookie).await;
    let header = jsonwebtoken::decode_header(&new).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);
    assert_ne!(header.kid.as_deref(), Some(kid1.as_str()));
    assert_eq!(set.keys[0].common.key_id, header.kid, "current key first");
    verify(&new, &set, &up.url()).unwrap();
    verify(&old, &set, &up.url()).expect("the previous key still verifies");

    // A key file that cannot be used is refused whole on SIGHUP, naming it; the keys stay.
    let garbage = keys.dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a key\n").unwrap();
    edit_config(&proxy, |a| {
        a.insert("key".into(), garbage.display().to_string().into());
    });
    proxy.signal("HUP");
    assert!(proxy.wait_for_log("reload failed", Duration::from_secs(5)));
    assert!(proxy.logs_text().contains("garbage.pem"));
    assert_eq!(jwks(&proxy).await, set);
    edit_config(&proxy, |a| {
        a.insert("key".into(), k2.display().to_string().into());
    });

    // The rotation window is over: k1 is no longer published and its tokens fail.
    edit_config(&proxy, |a| {
        a.remove("previous_keys");
    });
    proxy.signal("HUP");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let set = loop {
        let set = jwks(&proxy).await;
        if set.keys.len() == 1 || std::time::Instant::now() > deadline {
            break set;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(set.keys.len(), 1);
    let err = verify(&old, &set, &up.url()).unwrap_err();
    assert!(err.contains("not in the JWKS"), "{err}");
    verify(&new, &set, &up.url()).unwrap();
    // A token of k1 checked against k2 directly (a verifier ignoring kid) fails too.
    let key = DecodingKey::from_jwk(&set.keys[0]).unwrap();
    assert!(jsonwebtoken::decode::<Value>(&old, &key, &Validation::new(Algorithm::ES256)).is_err());
    proxy.assert_no_panic();
}

/// With a path prefix in `upstream.url` the JWKS path is still the proxy's own: the app never
/// sees it (and so can never serve keys of its own there), in any dot-segment spelling.
#[tokio::test]
async fn the_jwks_path_is_the_proxys_own_behind_a_path_prefix() {
    let keys = Keys::new();
    let key = keys.ed25519("k1.pem");
    let up = app().await;
    let proxy = ProxyBuilder::new(&format!("{}/app1/", up.url()))
        .driver("memory")
        .set("assertion.key", &format!("\"{}\"", key.display()))
        .start();
    for path in [
        "/.well-known/session-proxy/jwks.json",
        "/x/../.well-known/session-proxy/jwks.json",
    ] {
        let res = get(proxy.addr, path, &[]).await;
        assert_eq!(res.status, 200, "{path}");
        assert_eq!(
            res.header("content-type"),
            Some("application/jwk-set+json"),
            "{path}"
        );
    }
    assert!(up.seen().is_empty(), "a JWKS request reached the app");
}

#[tokio::test]
async fn without_the_assertion_block_nothing_changes() {
    let up = app().await;
    let proxy = ProxyBuilder::new(&up.url())
        .driver("memory")
        .set("admin_listen", "127.0.0.1:0")
        .start();
    let cookie = login(&proxy).await;
    get_with_cookie(proxy.addr, "/", "session_id", &cookie).await;
    assert!(up.last().header("x-session-data").is_some());
    assert!(up.last().header("x-session-assertion").is_none());
    // The path is the app's own then.
    get(proxy.addr, "/.well-known/session-proxy/jwks.json", &[]).await;
    assert_eq!(up.last().uri.path(), "/.well-known/session-proxy/jwks.json");
    assert_eq!(get(proxy.admin_addr(), "/jwks.json", &[]).await.status, 404);
}

#[tokio::test]
async fn audience_issuer_and_a_numeric_subject_come_from_the_config() {
    let keys = Keys::new();
    let up = app().await;
    let proxy = with_key(&up, &keys.ed25519("k.pem"))
        .env("SESSION_ASSERTION_AUDIENCE", "https://app.example")
        .env("SESSION_ASSERTION_SUBJECT_KEY", "uid")
        .start();
    let cookie = login(&proxy).await;
    get_with_cookie(proxy.addr, "/set/uid/42", "session_id", &cookie).await;
    let (token, _) = assertion_for(&proxy, &up, &cookie).await;
    let claims = verify(&token, &jwks(&proxy).await, "https://app.example").unwrap();
    assert_eq!(claims["sub"], "42");
    assert!(verify(&token, &jwks(&proxy).await, &up.url()).is_err());
}

const BASE: &str = "upstream:\n  url: http://127.0.0.1:9\nsessions:\n  secret: \"test-secret-0123456789abcdefghijklmnopqrstuvwxyz\"\n";

#[test]
fn keygen_writes_a_private_key_that_check_accepts_and_never_overwrites() {
    let keys = Keys::new();
    let path = keys.ed25519("k.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let pem = std::fs::read_to_string(&path).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{pem}");
    let yaml = format!("{BASE}assertion:\n  key: \"{}\"\n", path.display());
    let (code, out, err) = run_cli(&yaml, &["check"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("assertion:"), "{out}");
    assert!(!out.contains("PRIVATE"), "{out}");

    // Never over an existing file: a key in use must not vanish.
    let (code, _, err) = run_cli(
        BASE,
        &["keygen", "--assertion", "--out", path.to_str().unwrap()],
        &[],
    );
    assert_ne!(code, 0);
    assert!(err.contains(path.to_str().unwrap()), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), pem);

    // To stdout, and two keys differ.
    let (code, a, _) = run_cli(BASE, &["keygen", "--assertion"], &[]);
    let (_, b, _) = run_cli(BASE, &["keygen", "--assertion"], &[]);
    assert_eq!(code, 0);
    assert!(a.starts_with("-----BEGIN PRIVATE KEY-----") && a != b);
}

#[test]
fn check_and_serve_name_the_key_file_on_any_error() {
    let keys = Keys::new();
    let garbage = keys.dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a key\n").unwrap();
    let public = keys.public(&keys.ed25519("k.pem"));
    let good = keys.ed25519("good.pem");
    let missing = keys.dir.path().join("missing.pem");
    let cases = [
        (format!("  key: \"{}\"\n", missing.display()), &missing),
        (format!("  key: \"{}\"\n", garbage.display()), &garbage),
        // A public key where the private one belongs.
        (format!("  key: \"{}\"\n", public.display()), &public),
        (
            format!(
                "  key: \"{}\"\n  previous_keys: [\"{}\"]\n",
                good.display(),
                garbage.display()
            ),
            &garbage,
        ),
    ];
    for (block, named) in &cases {
        let yaml = format!("{BASE}assertion:\n{block}");
        for cmd in [&["check"][..], &["serve", "--listen", "127.0.0.1:0"][..]] {
            let (code, _, err) = run_cli(&yaml, cmd, &[]);
            assert_ne!(code, 0, "{cmd:?} {block}");
            assert!(
                err.contains(named.to_str().unwrap()),
                "{cmd:?} {block}: {err}"
            );
        }
    }
}
