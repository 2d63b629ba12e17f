//! Listen addresses: the form is checked when parsed, names resolved once, listeners apart.

use std::net::SocketAddr;

use super::super::testing::*;
use super::*;

#[test]
fn listeners_must_not_share_an_address() {
    let with = |extra: &str| format!("{}{extra}", base());
    let e = err_text(&with("admin_listen: 127.0.0.1:8080\n"), &[]);
    assert_eq!(
        e,
        "invalid config: admin_listen: 127.0.0.1:8080 is the address of listen too; each listener needs a port of its own"
    );
    let e = err_text(&with("admin_listen: 0.0.0.0:8080\n"), &[]);
    assert!(
        e.contains("admin_listen: 0.0.0.0:8080 overlaps listen 127.0.0.1:8080"),
        "{e}"
    );
    assert_eq!(
        err_field(&with("admin_listen: \"[::]:8080\"\n"), &[]),
        "admin_listen"
    );
    let e = err_text(
        &with("tls:\n  cert: /c.pem\n  key: /k.pem\n  redirect_http: 127.0.0.1:8080\n"),
        &[],
    );
    assert!(
        e.contains("tls.redirect_http: 127.0.0.1:8080 is the address of listen too"),
        "{e}"
    );
    let e = err_text(&base(), &[("SESSION_PROXY_ADMIN_LISTEN", "127.0.0.1:8080")]);
    assert!(
        e.contains("SESSION_PROXY_ADMIN_LISTEN (admin_listen): "),
        "{e}"
    );
    // Apart: another port, another specific address, another family, or port 0 (each its own).
    for admin in ["127.0.0.1:9901", "127.0.0.2:8080", "\"[::1]:8080\""] {
        assert!(
            load(&with(&format!("admin_listen: {admin}\n")), &[]).is_ok(),
            "{admin}"
        );
    }
    let zero = base().replace("127.0.0.1:8080", "127.0.0.1:0");
    assert!(load(&format!("{zero}admin_listen: 127.0.0.1:0\n"), &[]).is_ok());
}

#[test]
fn listen_resolves_a_host_name_or_asks_for_ip_and_port() {
    let c = load(&base().replace("127.0.0.1:8080", "localhost:8080"), &[]).unwrap();
    assert!(c.listen.ip().is_loopback(), "{}", c.listen);
    assert_eq!(c.listen.port(), 8080);
    let c = load(&base(), &[("SESSION_PROXY_ADMIN_LISTEN", "localhost:9901")]).unwrap();
    assert!(c
        .admin_listen
        .is_some_and(|a| a.ip().is_loopback() && a.port() == 9901));
    for (listen, says) in [
        (
            "no-such-host.invalid:8080",
            "cannot resolve \"no-such-host.invalid\"",
        ),
        ("localhost", "has no port"),
        ("\"[::1]\"", "has no port"),
        ("\":8080\"", "has no host"),
        ("localhost:http", "the port must be a number"),
        (
            "8080",
            "a port alone is not an address; use IP:port, e.g. 0.0.0.0:8080",
        ),
    ] {
        let e = err_text(&base().replace("127.0.0.1:8080", listen), &[]);
        assert!(e.starts_with("invalid config: listen: "), "{listen}: {e}");
        assert!(e.contains(says), "{listen}: {e}");
        if listen != "8080" {
            assert!(e.contains("use IP:port"), "{listen}: {e}");
        }
    }
    assert_eq!(
        resolve_socket_addr("[::1]:80"),
        Ok(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 80)))
    );
}

/// Parsing checks the form and nothing else: a name is kept as written until resolved.
#[test]
fn parsing_never_looks_a_name_up() {
    assert_eq!(
        ListenAddr::parse(" no-such-host.invalid:8080 "),
        Ok(ListenAddr::Name {
            host: "no-such-host.invalid".into(),
            port: 8080
        })
    );
    assert_eq!(
        ListenAddr::parse("[::1]:80"),
        Ok(ListenAddr::Ip(SocketAddr::from((
            std::net::Ipv6Addr::LOCALHOST,
            80
        ))))
    );
    // Resolution comes after the other rules: a config refused anyway is refused for its own
    // reason, without a lookup.
    let yaml = base()
        .replace("127.0.0.1:8080", "no-such-host.invalid:8080")
        .replace(SECRET, "short");
    assert_eq!(err_field(&yaml, &[]), "sessions.secret");
}

#[test]
fn redirect_http_resolves_and_is_named() {
    let tls = "tls:\n  cert: /c.pem\n  key: /k.pem\n  redirect_http: ";
    let c = load(&format!("{}{tls}localhost:8081\n", base()), &[]).unwrap();
    let redirect = c.tls.and_then(|t| t.redirect_http).unwrap();
    assert!(redirect.ip().is_loopback() && redirect.port() == 8081);
    let e = err_text(&format!("{}{tls}no-such-host.invalid:8081\n", base()), &[]);
    assert!(
        e.starts_with("invalid config: tls.redirect_http: cannot resolve"),
        "{e}"
    );
}
