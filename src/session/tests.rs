use super::*;
use http::header::COOKIE;

fn layer() -> SessionLayer {
    let cfg: SessionConfig =
        serde_norway::from_str("driver: memory\nsecret: 0123456789abcdef0123456789abcdef").unwrap();
    SessionLayer::new(
        Arc::new(Store::Memory(store::memory::MemoryStore::new(None))),
        &cfg,
    )
}

/// One round trip: the request carries `cookie`, the app answers `controls`. Returns the
/// response headers the client would see.
async fn round(layer: &SessionLayer, cookie: Option<&str>, controls: &[(&str, &str)]) -> HeaderMap {
    let mut req = HeaderMap::new();
    if let Some(c) = cookie {
        req.insert(
            COOKIE,
            HeaderValue::from_str(&format!("session_id={c}")).unwrap(),
        );
    }
    let state = layer.on_request(&mut req).await.unwrap();
    let mut res = HeaderMap::new();
    for (n, v) in controls {
        res.append(
            http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    layer.on_response(state, &mut res).await.unwrap();
    res
}

fn cookie_value(res: &HeaderMap) -> Option<String> {
    let line = res.get(SET_COOKIE)?.to_str().unwrap();
    let pair = line.split(';').next().unwrap();
    Some(pair.split_once('=').unwrap().1.to_owned())
}

#[tokio::test]
async fn writes_that_change_nothing_send_no_cookie() {
    let layer = layer();
    let res = round(&layer, None, &[("x-session-set", "a=1")]).await;
    let id = cookie_value(&res).expect("created");
    for noop in [
        ("x-session-delete", "missing"),
        ("x-session-set", "a=1"),
        ("x-session-set", "{\"a\":1}"),
    ] {
        let res = round(&layer, Some(&id), &[noop]).await;
        assert!(res.get(SET_COOKIE).is_none(), "{noop:?}");
        assert!(res.get(CACHE_CONTROL).is_none(), "{noop:?}");
    }
    let res = round(&layer, Some(&id), &[("x-session-set", "a=2")]).await;
    assert_eq!(cookie_value(&res).as_deref(), Some(id.as_str()));
    assert_eq!(res[CACHE_CONTROL], "no-store");
    let res = round(&layer, Some(&id), &[("x-session-delete", "a")]).await;
    assert_eq!(cookie_value(&res).as_deref(), Some(id.as_str()));
    // Regenerate changes no data but always sends the new ID.
    let res = round(&layer, Some(&id), &[("x-session-regenerate", "1")]).await;
    let new_id = cookie_value(&res).expect("regenerated");
    assert_ne!(new_id, id);
}
