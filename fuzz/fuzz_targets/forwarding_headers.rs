//! A client's request headers → `forwarded::apply`, and any header block as a trailer section →
//! `trailers::filter`. No client-written member of the forwarding family survives for an untrusted
//! peer (in any spelling), and no trailer carries `X-Session-*`, a cookie, or a forwarding header.
#![no_main]

use arbitrary::Arbitrary;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use session_proxy::proxy::{forwarded, trailers};

const NAMES: &[&str] = &[
    "x-forwarded-for",
    "X_Forwarded_For",
    "forwarded",
    "x-real-ip",
    "true-client-ip",
    "x-forwarded-port",
    "x-session-id",
    "X_SESSION_USER",
    "set-cookie",
    "cookie",
    "grpc-status",
];

#[derive(Arbitrary, Debug)]
enum Name<'a> {
    Known(u8),
    Raw(&'a [u8]),
}

#[derive(Arbitrary, Debug)]
struct Header<'a> {
    name: Name<'a>,
    value: &'a [u8],
}

fn build(input: &[Header<'_>]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for h in input {
        let name = match h.name {
            Name::Known(i) => {
                HeaderName::from_bytes(NAMES[usize::from(i) % NAMES.len()].as_bytes()).ok()
            }
            Name::Raw(raw) => HeaderName::from_bytes(raw).ok(),
        };
        if let (Some(name), Ok(value)) = (name, HeaderValue::from_bytes(h.value)) {
            headers.append(name, value);
        }
    }
    headers
}

fuzz_target!(|input: (Vec<Header<'_>>, [u8; 4], bool)| {
    let (list, ip, tls) = input;
    let mut headers = build(&list);
    let host = HeaderValue::from_static("app.test");
    let peer = std::net::IpAddr::from(ip);
    let addr = forwarded::PeerAddr::new(peer);
    forwarded::apply(
        &mut headers,
        &forwarded::Hop {
            peer: &addr,
            tls,
            host: Some(&host),
        },
        &[],
    );
    for (name, value) in &headers {
        if forwarded::is_forwarding_header(name.as_str()) {
            let ours = [
                peer.to_string(),
                if tls { "https".into() } else { "http".into() },
                "app.test".into(),
            ];
            let v = value.to_str().expect("the proxy writes ASCII");
            assert!(
                ours.iter().any(|o| v == o) || name == "forwarded",
                "{name}: {v:?} came from the client"
            );
            assert!(!name.as_str().contains('_'), "{name} kept");
        }
    }
    assert_eq!(headers.get_all("x-forwarded-for").iter().count(), 1);

    let mut trailer = build(&list);
    trailers::filter(&mut trailer);
    for name in trailer.keys() {
        let n = name.as_str().replace('_', "-");
        assert!(!n.starts_with("x-session-"), "{name} in a trailer");
        assert!(n != "cookie" && n != "set-cookie", "{name} in a trailer");
        assert!(
            !forwarded::is_forwarding_header(name.as_str()),
            "{name} in a trailer"
        );
    }
});
