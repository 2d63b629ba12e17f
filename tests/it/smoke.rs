//! The harness itself works: proxy in front of a real upstream, session set and read back.
use crate::support::*;

#[tokio::test]
async fn set_then_read_a_session() {
    let up = TestUpstream::with(|seen| {
        if seen.uri.path() == "/login" {
            Reply::ok().header("X-Session-Set", "user=Ann")
        } else {
            Reply::ok().body(seen.header("x-session-user").unwrap_or("-").to_owned())
        }
    })
    .await;
    let proxy = ProxyBuilder::new(&up.url()).start();
    let login = get(proxy.addr, "/login", &[]).await;
    let cookie = login.cookie("session_id").expect("a session cookie");
    let who = get_with_cookie(proxy.addr, "/who", "session_id", &cookie).await;
    assert_eq!(who.text(), "Ann");
}
