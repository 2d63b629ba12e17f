//! `CookieStore::load` on arbitrary cookie names and values must never panic, and whatever the
//! store seals it must open again: same ID, timestamps and data, or `Expired` past the deadline.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Number, Value};
use session_proxy::session::store::cookie::CookieStore;
use session_proxy::session::store::{Data, Lookup, Reject, Session, SessionId, SessionStore};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const OLD_SECRET: &str = "fedcba9876543210fedcba9876543210";
const ID: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
/// Deeper than this, serde_json's own recursion limit (128) refuses to read the sealed record
/// back; the fuzzer is told about real depth limits elsewhere, here it builds realistic data.
const MAX_DEPTH: usize = 32;

/// `CookieStore` never awaits anything, so one poll with a no-op waker drives it to completion.
fn run<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("CookieStore future was pending"),
    }
}

#[derive(Arbitrary, Debug)]
enum Json {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn to_value(&self, depth: usize) -> Value {
        match self {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Int(i) => Value::from(*i),
            Json::UInt(u) => Value::from(*u),
            Json::Float(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Json::Str(s) => Value::String(s.clone()),
            Json::Array(_) | Json::Object(_) if depth >= MAX_DEPTH => Value::Null,
            Json::Array(items) => items.iter().map(|j| j.to_value(depth + 1)).collect(),
            Json::Object(pairs) => Value::Object(
                pairs
                    .iter()
                    .map(|(k, j)| (k.clone(), j.to_value(depth + 1)))
                    .collect::<Map<_, _>>(),
            ),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// `None`: the default cookie name.
    name: Option<&'a str>,
    /// Opened as is: forged, cut, or random cookie values.
    value: &'a str,
    now: u64,
    idle_secs: Option<u16>,
    rotated: bool,
    /// Sealed, then opened again.
    data: Vec<(String, Json)>,
    created: u64,
    last_seen: u64,
    expires: u64,
}

fuzz_target!(|input: Input<'_>| {
    let name = input.name.unwrap_or("session_id");
    let idle = input.idle_secs.map(|s| Duration::from_secs(s.into()));
    let previous = if input.rotated {
        vec![OLD_SECRET.to_owned()]
    } else {
        Vec::new()
    };
    let store = CookieStore::new(name, SECRET, &previous, idle);

    // Arbitrary cookie values: never a panic, and never a session (the fuzzer cannot forge
    // AES-GCM, so anything it finds that opens is a bug).
    match run(store.load(input.value, input.now)) {
        Ok(Lookup::Rejected(_)) => {}
        other => panic!("a forged cookie did not get rejected: {other:?}"),
    }

    // Seal → load round trip.
    let data: Data = input
        .data
        .iter()
        .map(|(k, j)| (k.clone(), j.to_value(1)))
        .collect();
    let session = Session {
        id: SessionId::parse(ID).expect("a well-formed id"),
        data: Arc::new(data),
        created: input.created,
        last_seen: input.last_seen,
        expires: input.expires,
    };
    let sealed = store.seal(&session).unwrap();
    match run(store.load(&sealed, input.now)) {
        Ok(Lookup::Found {
            session: back,
            reseal,
        }) => {
            assert!(session.is_live(input.now, idle), "a dead session opened");
            assert!(
                !reseal,
                "sealed under the current key yet asked for a reseal"
            );
            assert_eq!(back.id, session.id);
            assert_eq!(back.created, session.created);
            assert_eq!(back.last_seen, session.last_seen);
            assert_eq!(back.expires, session.expires);
            assert_eq!(back.data, session.data, "data changed through seal/load");
        }
        Ok(Lookup::Rejected(Reject::Expired)) => {
            assert!(!session.is_live(input.now, idle), "a live session expired");
        }
        other => panic!("our own sealed cookie did not open: {other:?}"),
    }
});
