//! Unit tests of the header grammar.

use super::ascii::ascii_json_bytes;
use super::json_text::is_json_number;
use super::*;
use crate::session::store::Data;
use http::header::HeaderValue;
use serde_json::json;
use serde_json::Value;

const T0: Times = Times {
    created: 1_764_633_600_000,
    last_seen: 1_764_633_723_456,
};

fn controls_of(lines: &[(&str, &[u8])]) -> (Controls, Ignored, HeaderMap) {
    let mut h = HeaderMap::new();
    for (name, value) in lines {
        h.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
    }
    let (c, bad) = take_controls(&mut h);
    (c, bad, h)
}

#[test]
fn session_header_spellings() {
    for yes in [
        "x-session-id",
        "X-Session-Id",
        "X_SESSION_ID",
        "x_session-user-id",
        "x-session_data",
        "x-session-",
    ] {
        assert!(is_session_header(yes), "{yes}");
    }
    for no in [
        "x-session",
        "x-sessions-id",
        "session-id",
        "x-sess",
        "xx-session-id",
    ] {
        assert!(!is_session_header(no), "{no}");
    }
}

#[test]
fn strip_removes_all_values_of_all_spellings() {
    let mut h = HeaderMap::new();
    h.append("x-session-id", HeaderValue::from_static("a"));
    h.append("x-session-id", HeaderValue::from_static("b"));
    h.append("x_session_user_id", HeaderValue::from_static("c"));
    h.append("accept", HeaderValue::from_static("*/*"));
    strip_session_headers(&mut h);
    assert_eq!(h.len(), 1);
    assert!(h.contains_key("accept"));
}

#[test]
fn header_names_for_keys() {
    assert_eq!(header_name_for_key("user_id").unwrap(), "x-session-user-id");
    assert_eq!(header_name_for_key("Role").unwrap(), "x-session-role");
    assert_eq!(header_name_for_key("a-b").unwrap(), "x-session-a-b");
    assert!(header_name_for_key("id").is_none());
    assert!(header_name_for_key("data").is_none());
    assert!(header_name_for_key("ID").is_none());
    assert!(header_name_for_key("has space").is_none());
    assert!(header_name_for_key("dot.ted").is_none());
    assert!(header_name_for_key("").is_none());
    assert!(header_name_for_key("caf\u{e9}").is_none());
}

#[test]
fn header_values() {
    assert_eq!(header_value_for(&json!("Ann")).unwrap(), "Ann");
    assert_eq!(
        header_value_for(&json!("Jos\u{e9}")).unwrap(),
        "\"Jos\\u00e9\""
    );
    assert_eq!(header_value_for(&json!("a\r\nb")).unwrap(), "\"a\\r\\nb\"");
    assert_eq!(header_value_for(&json!(3)).unwrap(), "3");
    assert_eq!(header_value_for(&json!(true)).unwrap(), "true");
    assert_eq!(header_value_for(&json!(null)).unwrap(), "null");
    assert_eq!(
        header_value_for(&json!({"a": [1, "x"]})).unwrap(),
        "{\"a\":[1,\"x\"]}"
    );
    assert_eq!(
        header_value_for(&json!("\u{1F600}")).unwrap(),
        "\"\\ud83d\\ude00\""
    );
}

/// Found by reading the code after fuzzing: a DEL in a value or key made `inject` panic on
/// every request of that session.
#[test]
fn del_is_escaped_in_values_and_keys() {
    assert_eq!(
        header_value_for(&json!("a\u{7f}b")).unwrap(),
        "\"a\\u007fb\""
    );
    let mut data = Data::new();
    data.insert("k\u{7f}".into(), json!("v\u{7f}"));
    let mut h = HeaderMap::new();
    inject(&mut h, "abc", T0, &data);
    assert_eq!(h["x-session-data"], "{\"k\\u007f\":\"v\\u007f\"}");
    assert_eq!(
        serde_json::from_str::<Value>(h["x-session-data"].to_str().unwrap()).unwrap(),
        Value::Object(data)
    );
}

#[test]
fn json_len_is_the_length_of_x_session_data() {
    let mut data = Data::new();
    assert_eq!(json_len(&data), 2);
    data.insert("name".into(), json!("Jos\u{e9} \u{1F600}"));
    data.insert("n".into(), json!([1, {"a": null}]));
    assert_eq!(json_len(&data), ascii_json_bytes(&data).len());
}

#[test]
fn ascii_json_escapes_everything_non_ascii() {
    let v = json!({"n": "Jos\u{e9} \u{4e2d} \u{1F600}", "t": "tab\t"});
    let s = ascii_json(&v);
    assert!(s.is_ascii());
    assert_eq!(serde_json::from_str::<Value>(&s).unwrap(), v);
    assert_eq!(
        s,
        "{\"n\":\"Jos\\u00e9 \\u4e2d \\ud83d\\ude00\",\"t\":\"tab\\t\"}"
    );
}

#[test]
fn set_lines_are_typed_as_json_when_they_parse() {
    let (c, bad, rest) = controls_of(&[
        ("x-session-set", b"count=3"),
        ("x-session-set", b"ok=true"),
        ("x-session-set", b"name=\"Jos\\u00e9\""),
        ("x-session-set", b"plain=Ann"),
        ("x-session-set", b"eq=a=b"),
        ("x-session-set", b"empty="),
        ("x-session-set", b"obj={\"k\":[1,2]}"),
        ("x-session-set", b" spaced = 1 "),
    ]);
    assert!(bad.is_empty());
    assert!(rest.is_empty());
    assert_eq!(
        c.set,
        vec![
            ("count".into(), json!(3)),
            ("ok".into(), json!(true)),
            ("name".into(), json!("Jos\u{e9}")),
            ("plain".into(), json!("Ann")),
            ("eq".into(), json!("a=b")),
            ("empty".into(), json!("")),
            ("obj".into(), json!({"k": [1, 2]})),
            ("spaced".into(), json!(1)),
        ]
    );
}

#[test]
fn numbers_json_cannot_hold_are_refused_not_stored_as_text() {
    let huge = format!("n={}", "7".repeat(700));
    for line in [huge.as_str(), "n=1e400", "n=-1E+999"] {
        let mut out = Vec::new();
        let mut bad = Ignored::default();
        parse_set_line(line, &mut out, &mut bad);
        assert!(out.is_empty(), "{line}: {out:?}");
        assert_eq!(bad.count(Malformed::InexactNumber), 1, "{line}");
    }
    for text in ["0", "-1", "1.5", "2e10", "1E-3"] {
        assert!(is_json_number(text), "{text}");
    }
    for text in ["01", "1.", ".5", "1e", "-", "abc", "1x", "+1"] {
        assert!(!is_json_number(text), "{text}");
    }
}

#[test]
fn json_object_line_merges_keys() {
    let (c, bad, _) = controls_of(&[("x-session-set", b"{\"a\":1,\"b\":\"x\"}")]);
    assert!(bad.is_empty());
    assert_eq!(
        c.set,
        vec![("a".into(), json!(1)), ("b".into(), json!("x"))]
    );
}

#[test]
fn malformed_lines_are_reported_and_others_still_apply() {
    let long = format!("{}=1", "k".repeat(MAX_KEY_LEN + 1));
    let (c, bad, _) = controls_of(&[
        ("x-session-set", b"novalue"),
        ("x-session-set", b"=3"),
        ("x-session-set", long.as_bytes()),
        ("x-session-set", b"good=1"),
        ("x-session-set", b"bin=\xff"),
    ]);
    assert_eq!(c.set, vec![("good".into(), json!(1))]);
    assert_eq!(
        bad.iter().collect::<Vec<_>>(),
        vec![
            (Malformed::NoEquals, 1),
            (Malformed::EmptyKey, 1),
            (Malformed::KeyTooLong, 1),
            (Malformed::NotUtf8, 1)
        ]
    );
}

/// Issue 11 item 9: one response's problems are counts, not one entry (and log line) each.
#[test]
fn ignored_lines_are_counted_per_kind() {
    let mut line = String::from("{");
    for i in 0..20_000 {
        line.push_str(&format!("\"{}\":{i},", "k".repeat(MAX_KEY_LEN + 1 + i % 2)));
    }
    line.push_str("\"ok\":1}");
    let (c, bad, _) = controls_of(&[
        ("x-session-set", line.as_bytes()),
        ("x-session-set", b"x"),
        ("x-session-set", b"y"),
    ]);
    assert_eq!(c.set, vec![("ok".into(), json!(1))]);
    // Two distinct long keys (the object merges duplicates), two lines without '='.
    assert_eq!(
        bad.iter().collect::<Vec<_>>(),
        vec![(Malformed::NoEquals, 2), (Malformed::KeyTooLong, 2)]
    );
}

fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

/// Issue 11 item 7: a value no store could hand back exactly is refused, the rest applies.
#[test]
fn values_that_cannot_come_back_are_refused() {
    let deep_ok = format!("a={}", nested(MAX_DEPTH));
    let deep = format!("b={}", nested(MAX_DEPTH + 1));
    let deeper_than_serde = format!("c={}", nested(127));
    let deeper_than_serde_limit = format!("d={}", nested(200));
    let in_object = format!("{{\"e\":{},\"f\":1}}", nested(MAX_DEPTH));
    let object_too_deep = format!("{{\"g\":{},\"h\":2}}", nested(200));
    let (c, bad, _) = controls_of(&[
        ("x-session-set", deep_ok.as_bytes()),
        ("x-session-set", deep.as_bytes()),
        ("x-session-set", deeper_than_serde.as_bytes()),
        ("x-session-set", deeper_than_serde_limit.as_bytes()),
        ("x-session-set", in_object.as_bytes()),
        ("x-session-set", object_too_deep.as_bytes()),
        ("x-session-set", b"big=18446744073709551616"),
        ("x-session-set", b"neg=-9223372036854775809"),
        ("x-session-set", b"max=18446744073709551615"),
        ("x-session-set", b"min=-9223372036854775808"),
        (
            "x-session-set",
            b"nested={\"n\":[1,123456789012345678901234567890]}",
        ),
        (
            "x-session-set",
            b"{\"i\":100000000000000000000,\"j\":2.5e3}",
        ),
        ("x-session-set", b"huge_float=1e400"),
        ("x-session-set", b"{\"k\":1e400,\"l\":3}"),
        ("x-session-set", b"{\"m\":\"\\ud800\",\"n\":4}"),
        ("x-session-set", b"text=[[[not json"),
        ("x-session-set", b"str=\"12345678901234567890123 [[[[\""),
    ]);
    let keys: Vec<&str> = c.set.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        ["a", "e", "f", "h", "max", "min", "j", "l", "n", "text", "str"]
    );
    assert_eq!(c.set[4].1, json!(u64::MAX));
    assert_eq!(c.set[5].1, json!(i64::MIN));
    // `huge_float=1e400` was meant as a number: refused, like `{"k":1e400}`, rather than
    // stored as a string (another type than the app sent).
    assert_eq!(bad.count(Malformed::TooDeep), 4);
    assert_eq!(bad.count(Malformed::InexactNumber), 5);
    assert_eq!(bad.count(Malformed::Unrepresentable), 2);
}

#[test]
fn scan_skips_strings_and_escapes() {
    assert_eq!(scan_json(r#"{"a\"[[[":"99999999999999999999999"}"#), Ok(()));
    assert_eq!(scan_json("[1e30, -1.5, 0, -0]"), Ok(()));
    assert_eq!(
        scan_json("[99999999999999999999999]"),
        Err(Malformed::InexactNumber)
    );
}

#[test]
fn delete_clear_regenerate_and_leftovers() {
    let (c, _, rest) = controls_of(&[
        ("x-session-delete", b"a, b"),
        ("x-session-delete", b"c,,"),
        ("x-session-clear", b"1"),
        ("x-session-regenerate", b"yes"),
        ("x-session-user-id", b"spoof"),
        ("x_session_other", b"spoof"),
        ("content-type", b"text/plain"),
    ]);
    assert!(c.clear && c.regenerate);
    assert_eq!(c.delete, vec!["a", "b", "c"]);
    assert_eq!(rest.len(), 1);
}

#[test]
fn no_controls_is_empty() {
    let (c, bad, rest) = controls_of(&[("content-type", b"text/plain")]);
    assert!(c.is_empty() && bad.is_empty());
    assert_eq!(rest.len(), 1);
}

/// Issue 11 item 6: `user_id`, `user-id` and `USER_ID` all map to X-Session-User-Id.
#[test]
fn keys_sharing_a_header_get_none() {
    let mut data = Data::new();
    data.insert("user_id".into(), json!(1));
    data.insert("user-id".into(), json!(2));
    data.insert("USER_ID".into(), json!(3));
    data.insert("Role".into(), json!("a"));
    data.insert("role".into(), json!("b"));
    data.insert("name".into(), json!("Ann"));
    let mut h = HeaderMap::new();
    inject(&mut h, "abc", T0, &data);
    assert!(!h.contains_key("x-session-user-id"));
    assert!(!h.contains_key("x-session-role"));
    assert_eq!(h["x-session-name"], "Ann");
    assert_eq!(
        h["x-session-data"],
        "{\"Role\":\"a\",\"USER_ID\":3,\"name\":\"Ann\",\"role\":\"b\",\"user-id\":2,\"user_id\":1}"
    );
    // id, data, created, last-seen, name
    assert_eq!(h.len(), 5);
}

#[test]
fn which_keys_share_a_header() {
    for (a, b) in [
        ("user_id", "user-id"),
        ("user_id", "USER_ID"),
        ("a-b", "A_B"),
    ] {
        assert!(share_a_header(a, b), "{a} {b}");
    }
    for (a, b) in [
        ("user_id", "user_id"),
        ("user_id", "user_ids"),
        ("id", "ID"),
        ("data", "Data"),
        ("a.b", "A.B"),
        ("a b", "A B"),
        ("", ""),
    ] {
        assert!(!share_a_header(a, b), "{a} {b}");
    }
}

#[test]
fn inject_writes_id_data_and_simple_keys() {
    let mut data = Data::new();
    data.insert("user_id".into(), json!(42));
    data.insert("name".into(), json!("Jos\u{e9}"));
    data.insert("id".into(), json!("shadow"));
    data.insert("a b".into(), json!(1));
    let mut h = HeaderMap::new();
    inject(&mut h, "abc", T0, &data);
    assert_eq!(h["x-session-id"], "abc");
    assert_eq!(h["x-session-user-id"], "42");
    assert_eq!(h["x-session-name"], "\"Jos\\u00e9\"");
    assert!(h["x-session-data"].to_str().unwrap().contains("\"a b\":1"));
    // id, data, created, last-seen, user-id, name
    assert_eq!(h.len(), 6);
}

#[test]
fn times_are_rfc3339_utc_seconds() {
    let mut h = HeaderMap::new();
    inject(&mut h, "abc", T0, &Data::new());
    assert_eq!(h[CREATED_HEADER], "2025-12-02T00:00:00Z");
    assert_eq!(h[LAST_SEEN_HEADER], "2025-12-02T00:02:03Z");
}

#[test]
fn keys_never_take_the_proxys_header_names() {
    for key in [
        "created",
        "Created",
        "last_seen",
        "LAST-SEEN",
        "id",
        "data",
        "assertion",
    ] {
        assert_eq!(header_name_for_key(key), None, "{key}");
    }
    assert!(header_name_for_key("last_seen_at").is_some());
    assert!(!share_a_header("created", "CREATED"));
}

#[test]
fn clear_lines_name_their_scope() {
    let take = |lines: &[&str]| {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append("x-session-clear", HeaderValue::from_str(l).unwrap());
        }
        let c = take_controls(&mut h).0;
        (c.clear, c.revoke)
    };
    assert_eq!(take(&["1"]), (true, None));
    assert_eq!(take(&[""]), (true, None));
    assert_eq!(take(&[" Others "]), (false, Some(Revoke::Others)));
    assert_eq!(take(&["everywhere"]), (true, Some(Revoke::Everywhere)));
    assert_eq!(take(&["others", "1"]), (true, Some(Revoke::Others)));
    assert_eq!(
        take(&["others", "EVERYWHERE"]),
        (true, Some(Revoke::Everywhere))
    );
    assert_eq!(
        take(&["everywhere", "others"]),
        (true, Some(Revoke::Everywhere))
    );
}

#[test]
fn listing_times_are_rfc3339_seconds_and_never_fail() {
    use super::rfc3339_text;
    assert_eq!(rfc3339_text(1_796_173_323_999), "2026-12-02T01:02:03Z");
    assert_eq!(rfc3339_text(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339_text(u64::MAX), "9999-12-31T23:59:59Z");
}
