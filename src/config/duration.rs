//! Durations as the config writes them (Go-style: `90s`, `5m`, `1h30m`, `500ms`): parsing,
//! formatting, and the serde adapters the schema uses.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Go-style durations: `90s`, `5m`, `1h30m`, `500ms`, `24h`. A bare number is refused: `30` could be
/// seconds or minutes, and guessing wrong silently is worse than asking.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    if t == "0" {
        return Ok(Duration::ZERO);
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(match t.parse::<u64>() {
            Ok(n) => needs_unit(n),
            Err(_) => format!("invalid duration {text:?}: a duration needs a unit"),
        });
    }
    // humantime accepts Go's concatenated form (`1h30m`) as well as spaced (`1h 30m`).
    humantime::parse_duration(t).map_err(|e| {
        format!("invalid duration {text:?} ({e}); write it like 90s, 5m, 1h30m or 500ms")
    })
}

/// What a bare number of seconds should have been written as: `3600` → `"3600s" or "1h"`.
fn needs_unit(n: u64) -> String {
    let secs = format!("{n}s");
    let human = format_duration(Duration::from_secs(n));
    let other = if human == secs {
        format!("{n}m")
    } else {
        human
    };
    format!("a duration needs a unit, e.g. \"{secs}\" or \"{other}\"")
}

/// A duration the way the config writes it, so `check`'s output can be pasted back: `24h` (not
/// humantime's `1day`, which the Go-style grammar has no unit for), `1h30m`, `500ms`; zero parts
/// are left out, and zero itself is `0s`.
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        return "0s".into();
    }
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    let parts = [
        (secs / 3600, "h"),
        (secs / 60 % 60, "m"),
        (secs % 60, "s"),
        (u64::from(nanos / 1_000_000), "ms"),
        (u64::from(nanos / 1_000 % 1_000), "us"),
        (u64::from(nanos % 1_000), "ns"),
    ];
    parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect()
}

/// A duration as written in YAML: text, or an unquoted number, which gets its own message (the
/// type error serde would give, "expected a string", does not say what is wrong with `3600`).
enum DurationInput {
    Text(String),
    Whole(u64),
    Negative,
    Fraction(f64),
}

impl DurationInput {
    fn into_duration(self) -> Result<Duration, String> {
        match self {
            DurationInput::Text(text) => parse_duration(&text),
            DurationInput::Whole(0) => Ok(Duration::ZERO),
            DurationInput::Whole(n) => Err(needs_unit(n)),
            DurationInput::Negative => Err("a duration cannot be negative".into()),
            DurationInput::Fraction(f) => Err(format!(
                "a duration needs a unit and whole numbers, e.g. \"{}ms\"",
                (f * 1000.0).round()
            )),
        }
    }
}

impl<'de> Deserialize<'de> for DurationInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = DurationInput;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 90s, 5m, 1h30m or 500ms")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<DurationInput, E> {
                Ok(DurationInput::Text(v.to_owned()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<DurationInput, E> {
                Ok(DurationInput::Whole(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<DurationInput, E> {
                Ok(u64::try_from(v).map_or(DurationInput::Negative, DurationInput::Whole))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<DurationInput, E> {
                Ok(if v < 0.0 {
                    DurationInput::Negative
                } else {
                    DurationInput::Fraction(v)
                })
            }
        }
        d.deserialize_any(Visitor)
    }
}

pub(super) mod duration_serde {
    use super::*;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        DurationInput::deserialize(d)?
            .into_duration()
            .map_err(serde::de::Error::custom)
    }
}

pub(super) mod opt_duration_serde {
    use super::*;
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&format_duration(*d)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Option::<DurationInput>::deserialize(d)? {
            None => Ok(None),
            Some(DurationInput::Text(t)) if matches!(t.trim(), "" | "off") => Ok(None),
            Some(input) => input
                .into_duration()
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests;
