//! Request smuggling and framing, over raw TCP: every case embeds a second request
//! (`GET /smuggled`) after an ambiguous or malformed first one. The proxy must answer 4xx or close
//! the connection, and the upstream must never receive `/smuggled` as a request: at most one
//! request line per case, and every byte the upstream got accounted for by that one request.
//!
//! Related cases elsewhere: `forwarding.rs` (`conflicting_framing_is_never_smuggled`,
//! `differing_duplicate_content_length_is_400`), `errors.rs` (`malformed_requests_get_400`).
//!
//! `cargo test --test it smuggling:: -- --nocapture` prints the case → answer table
//! (docs-draft/smuggling-table.md is a copy).

use std::time::Duration;

use crate::support::*;

const SMUGGLED: &str = "GET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n";
const OK_2: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// What a case may get.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    /// A 4xx, and nothing reaches the upstream.
    Refused,
    /// A 4xx with nothing forwarded, or one request forwarded (re-framed by the proxy) and the
    /// client connection closed after its response. Used where RFC 9112 §6.1 lets a server
    /// process CL+TE by Transfer-Encoding alone provided it closes the connection.
    RefusedOrClosed,
    /// A bare LF line end in a request head: a 400 (from the proxy's bare-LF guard, see
    /// `src/bare_lf.rs`) with nothing forwarded. Kept apart so `bare_lf_is_refused` can run just
    /// these; asserted like `Refused`.
    BareLf,
}

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    expect: Expect,
}

fn case(name: &'static str, bytes: impl Into<Vec<u8>>, expect: Expect) -> Case {
    Case {
        name,
        bytes: bytes.into(),
        expect,
    }
}

/// A POST whose head is `headers` (each ending in CRLF) and whose body is `body`.
fn post(headers: &str, body: &str) -> Vec<u8> {
    format!("POST /first HTTP/1.1\r\nHost: app.test\r\n{headers}\r\n{body}").into_bytes()
}

fn cases() -> Vec<Case> {
    use Expect::*;
    // CL covers a zero chunk plus the smuggled request: a CL-reading front sees one request, a
    // TE-reading back end sees a second one after the zero chunk.
    let cl_te_body = format!("0\r\n\r\n{SMUGGLED}");
    let cl_te_len = cl_te_body.len();
    // The smuggled request inside a chunk; CL 4 makes a CL-reading back end stop after "xx\r\n".
    let te_cl_body = format!("{:x}\r\n{SMUGGLED}\r\n0\r\n\r\n", SMUGGLED.len());
    let smuggled_len = SMUGGLED.len();
    let cl_te = |te_line: &str| {
        post(
            &format!("Content-Length: {cl_te_len}\r\n{te_line}\r\n"),
            &cl_te_body,
        )
    };
    let long_path = format!("/{}", "a".repeat(70 * 1024));
    let many_headers: String = (0..200).map(|i| format!("X-H-{i}: v\r\n")).collect();

    vec![
        case("CL.TE", cl_te("Transfer-Encoding: chunked"), RefusedOrClosed),
        case(
            "TE.CL",
            post(
                "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
                &te_cl_body,
            ),
            RefusedOrClosed,
        ),
        case(
            "TE.TE `chunked ` (trailing space)",
            cl_te("Transfer-Encoding: chunked "),
            RefusedOrClosed,
        ),
        case(
            "TE.TE `xchunked`",
            cl_te("Transfer-Encoding: xchunked"),
            Refused,
        ),
        case(
            "TE.TE duplicated: chunked then identity",
            cl_te("Transfer-Encoding: chunked\r\nTransfer-Encoding: identity"),
            Refused,
        ),
        case(
            "TE.TE duplicated: identity then chunked",
            cl_te("Transfer-Encoding: identity\r\nTransfer-Encoding: chunked"),
            RefusedOrClosed,
        ),
        case(
            "TE.TE `chunked, identity`",
            cl_te("Transfer-Encoding: chunked, identity"),
            Refused,
        ),
        case(
            "TE.TE tab before value",
            cl_te("Transfer-Encoding:\tchunked"),
            RefusedOrClosed,
        ),
        case(
            "TE.TE mixed case",
            cl_te("tRaNsFeR-eNcOdInG: cHuNkEd"),
            RefusedOrClosed,
        ),
        case(
            "TE.TE space before colon",
            cl_te("Transfer-Encoding : chunked"),
            Refused,
        ),
        case(
            "TE.TE vertical tab before value",
            cl_te("Transfer-Encoding:\x0bchunked"),
            Refused,
        ),
        case(
            "TE.TE obs-fold value",
            cl_te("Transfer-Encoding:\r\n chunked"),
            Refused,
        ),
        case(
            "duplicate differing Content-Length",
            post(
                &format!("Content-Length: 0\r\nContent-Length: {smuggled_len}\r\n"),
                SMUGGLED,
            ),
            Refused,
        ),
        case(
            "Content-Length list `0, n`",
            post(&format!("Content-Length: 0, {smuggled_len}\r\n"), SMUGGLED),
            Refused,
        ),
        case(
            "obs-fold header line",
            format!("GET /first HTTP/1.1\r\nHost: app.test\r\nX-Folded: a\r\n b\r\n\r\n{SMUGGLED}"),
            Refused,
        ),
        case(
            "bare LF inside the head",
            format!(
                "GET /first HTTP/1.1\r\nHost: app.test\r\nX-Note: a\nContent-Length: {smuggled_len}\r\n\r\n{SMUGGLED}"
            ),
            BareLf,
        ),
        case(
            "bare LF line endings throughout",
            format!("GET /first HTTP/1.1\nHost: app.test\n\n{SMUGGLED}"),
            BareLf,
        ),
        case(
            "bare LF in chunk framing",
            post(
                "Transfer-Encoding: chunked\r\n",
                &format!("0\n\n{SMUGGLED}"),
            ),
            Refused,
        ),
        case(
            "NUL in header value",
            format!("GET /first HTTP/1.1\r\nHost: app.test\r\nX-Nul: a\0b\r\n\r\n{SMUGGLED}"),
            Refused,
        ),
        case(
            "CR in header value",
            format!("GET /first HTTP/1.1\r\nHost: app.test\r\nX-Cr: a\rb\r\n\r\n{SMUGGLED}"),
            Refused,
        ),
        case(
            "request line too long (70 KiB)",
            format!("GET {long_path} HTTP/1.1\r\nHost: app.test\r\n\r\n{SMUGGLED}"),
            Refused,
        ),
        case(
            "too many headers (200)",
            format!("GET /first HTTP/1.1\r\nHost: app.test\r\n{many_headers}\r\n{SMUGGLED}"),
            Refused,
        ),
        case(
            "absolute-form, Host differs",
            format!("GET http://evil.example/first HTTP/1.1\r\nHost: app.test\r\n\r\n{SMUGGLED}"),
            Refused,
        ),
        case(
            "absolute-form, no Host",
            format!("GET http://evil.example/first HTTP/1.1\r\n\r\n{SMUGGLED}"),
            Refused,
        ),
        case(
            "authority-form CONNECT",
            format!("CONNECT app.test:443 HTTP/1.1\r\nHost: app.test:443\r\n\r\n{SMUGGLED}"),
            Refused,
        ),
        case(
            "authority-form GET",
            format!("GET app.test:80 HTTP/1.1\r\nHost: app.test\r\n\r\n{SMUGGLED}"),
            Refused,
        ),
        case(
            "Host missing",
            format!("GET /first HTTP/1.1\r\n\r\n{SMUGGLED}"),
            Refused,
        ),
        case(
            "Host doubled, differing",
            format!("GET /first HTTP/1.1\r\nHost: app.test\r\nHost: evil.example\r\n\r\n{SMUGGLED}"),
            Refused,
        ),
        case(
            "Host doubled, same",
            format!("GET /first HTTP/1.1\r\nHost: app.test\r\nHost: app.test\r\n\r\n{SMUGGLED}"),
            Refused,
        ),
    ]
}

fn status_codes(answer: &str) -> Vec<u16> {
    answer
        .match_indices("HTTP/1.1 ")
        .filter_map(|(i, _)| answer.get(i + 9..i + 12)?.parse().ok())
        .collect()
}

/// Runs `cases` against one proxy (a fresh client connection each) and returns the Markdown rows
/// and the failures.
async fn run_cases(cases: Vec<Case>) -> (Vec<String>, Vec<String>) {
    let up = RawUpstream::start(Mode::Answer(OK_2.to_vec())).await;
    let proxy = ProxyBuilder::new(&up.url()).start();

    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for case in cases {
        let (bytes_before, requests_before) = (up.bytes().len(), up.requests().len());
        let (answer, closed) =
            raw_until_close(proxy.addr, &case.bytes, Duration::from_secs(4)).await;
        // Let anything the proxy forwarded reach the upstream before looking.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let wire = up.bytes()[bytes_before..].to_vec();
        let forwarded = up.requests()[requests_before..].to_vec();

        let codes = status_codes(&answer);
        let shown = match answer.lines().next() {
            Some(line) if !line.is_empty() => line.to_owned(),
            _ => "closed".to_owned(),
        };
        let shown = if closed && !answer.is_empty() {
            format!("{shown} (then closed)")
        } else {
            shown
        };
        let saw = match forwarded.len() {
            0 if wire.is_empty() => "nothing".to_owned(),
            0 => format!("{} stray bytes", wire.len()),
            1 => format!("1 request: `{}`", forwarded[0].request_line()),
            n => format!(
                "{n} requests: {}",
                forwarded
                    .iter()
                    .map(|r| format!("`{}`", r.request_line()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let expect = match case.expect {
            Expect::BareLf => Expect::Refused,
            other => other,
        };
        rows.push(format!("| {} | {} | {} |", case.name, shown, saw));

        let mut problems = Vec::new();
        let refused = codes.first().is_some_and(|c| (400..500).contains(c));
        if codes.len() > 1 {
            problems.push(format!("{} responses on one connection", codes.len()));
        }
        if forwarded.len() > 1 {
            problems.push(format!("upstream got {} requests", forwarded.len()));
        }
        if forwarded
            .iter()
            .any(|r| r.head.contains("smuggled") || r.request_line().contains("smuggled"))
        {
            problems.push("the smuggled request reached the upstream as a request".into());
        }
        // Every byte the upstream received belongs to the (at most one) request it parsed: no
        // leftover that a later read could take for a second request.
        let accounted: usize = forwarded
            .iter()
            .map(|r| r.head.len() + 4 + r.body.len())
            .sum();
        if accounted != wire.len() {
            problems.push(format!(
                "upstream got {} bytes, its requests account for {accounted}",
                wire.len()
            ));
        }
        match expect {
            Expect::Refused => {
                if !(refused || (answer.is_empty() && closed)) {
                    problems.push(format!(
                        "expected a 4xx or a closed connection, got {shown}"
                    ));
                }
                if !forwarded.is_empty() || !wire.is_empty() {
                    problems.push(format!("refused, yet the upstream saw {saw}"));
                }
            }
            Expect::RefusedOrClosed => {
                if !(refused || closed) {
                    problems.push(format!(
                        "expected a 4xx or the connection closed after the response, got {shown}"
                    ));
                }
                if let Some(req) = forwarded.first() {
                    // Forwarded: framed by chunking only, so the upstream has no length to
                    // disagree with; the smuggled bytes, if present, are chunk data.
                    if !req.headers("content-length").is_empty() {
                        problems.push(format!("Content-Length forwarded:\n{}", req.head));
                    }
                    if refused {
                        problems.push("refused, yet forwarded".into());
                    }
                }
            }
            Expect::BareLf => unreachable!("mapped to Refused above"),
        }
        if !problems.is_empty() {
            failures.push(format!("{}: {}", case.name, problems.join("; ")));
        }
    }
    proxy.assert_no_panic();
    // The proxy still serves normally afterwards.
    let res = get(proxy.addr, "/after", &[]).await;
    assert_eq!(res.status, 200);
    (rows, failures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_and_framing_cases() {
    let (rows, failures) = run_cases(cases()).await;
    println!("\n| case | proxy's answer | upstream received |\n|---|---|---|");
    for row in &rows {
        println!("{row}");
    }
    println!();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// Bare LF line ends in a request head (issue 17): hyper would accept them, the guard makes it a
/// 400 and a close, and nothing reaches the upstream. Stricter than `Refused`: a 400, exactly one,
/// and the connection closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_lf_is_refused() {
    let mut lf: Vec<Case> = cases()
        .into_iter()
        .filter(|c| c.expect == Expect::BareLf)
        .collect();
    lf.push(case(
        "bare LF ends the head",
        format!("GET /first HTTP/1.1\r\nHost: app.test\r\n\n{SMUGGLED}"),
        Expect::BareLf,
    ));
    lf.push(case(
        "bare LF before the request line",
        format!("\nGET /first HTTP/1.1\r\nHost: app.test\r\n\r\n{SMUGGLED}"),
        Expect::BareLf,
    ));
    lf.push(case(
        "bare LF after the request line only",
        format!("GET /first HTTP/1.1\nHost: app.test\r\n\r\n{SMUGGLED}"),
        Expect::BareLf,
    ));
    let up = RawUpstream::start(Mode::Answer(OK_2.to_vec())).await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let mut failures = Vec::new();
    for case in &lf {
        let (answer, closed) =
            raw_until_close(proxy.addr, &case.bytes, Duration::from_secs(4)).await;
        if status_codes(&answer) != [400] || !closed {
            failures.push(format!(
                "{}: expected one 400 and a close, got {answer:?} (closed: {closed})",
                case.name
            ));
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(up.bytes().is_empty(), "{:?}", up.requests());
    // The table-driven checks too (nothing forwarded, no stray bytes).
    let (_, more) = run_cases(lf).await;
    failures.extend(more);
    proxy.assert_no_panic();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

/// A valid request pipelined before a bare-LF one is answered first; then the 400 and the close.
/// The second head is checked although it arrived in the same read as the first request's body,
/// and the LFs in that body are data, not line ends.
#[tokio::test]
async fn bare_lf_after_a_pipelined_request_with_a_body() {
    let up = RawUpstream::start(Mode::Answer(OK_2.to_vec())).await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let body = "a\nb\n\nc";
    let first = format!(
        "POST /first HTTP/1.1\r\nHost: app.test\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (answer, closed) = raw_until_close(
        proxy.addr,
        format!("{first}GET /second HTTP/1.1\nHost: app.test\r\n\r\n").as_bytes(),
        Duration::from_secs(4),
    )
    .await;
    assert_eq!(status_codes(&answer), [200, 400], "{answer}");
    assert!(closed);
    let seen = up.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].request_line(), "POST /first HTTP/1.1");
    assert_eq!(seen[0].body, body.as_bytes());

    // The same pair with CRLF throughout: both served, body intact (LF in a body is data).
    let (answer, _) = raw_until_close(
        proxy.addr,
        format!("{first}GET /second HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
            .as_bytes(),
        Duration::from_secs(4),
    )
    .await;
    assert_eq!(status_codes(&answer), [200, 200], "{answer}");
    let seen = up.requests();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[1].body, body.as_bytes());
    assert_eq!(seen[2].request_line(), "GET /second HTTP/1.1");

    // Chunked: LFs inside chunk data are data; the head after the last chunk is checked.
    let chunked = "POST /first HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\na\nb\r\n0\r\n\r\n";
    let (answer, _) = raw_until_close(
        proxy.addr,
        format!("{chunked}GET /second HTTP/1.1\nHost: app.test\r\n\r\n").as_bytes(),
        Duration::from_secs(4),
    )
    .await;
    assert_eq!(status_codes(&answer), [200, 400], "{answer}");
    assert_eq!(up.requests().len(), 4);
    proxy.assert_no_panic();
}

/// RFC 9112 §3.2.2: a server must accept the absolute-form. When the client also sends the
/// identical `Host` (which RFC 9112 §3.2 requires of it), the request is forwarded in origin-form
/// with that one host, so nothing downstream can be told a different host than the proxy used.
#[tokio::test]
async fn conforming_absolute_form_is_forwarded_in_origin_form() {
    let up = RawUpstream::start(Mode::Answer(OK_2.to_vec())).await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let (answer, _) = raw_until_close(
        proxy.addr,
        b"GET http://app.test/first?q=1 HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n",
        Duration::from_secs(4),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let seen = up.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].request_line(), "GET /first?q=1 HTTP/1.1");
    assert_eq!(seen[0].headers("host"), ["app.test"]);
    assert_eq!(seen[0].headers("x-forwarded-host"), ["app.test"]);
    proxy.assert_no_panic();
}
