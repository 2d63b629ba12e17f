use std::time::Duration;

use super::*;

#[test]
fn go_style_durations() {
    assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
    assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
    assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
    assert_eq!(parse_duration("24h").unwrap(), Duration::from_secs(86400));
    assert!(parse_duration("30").is_err());
    assert!(parse_duration("5 parsecs").is_err());
}

/// `check` prints what the operator would write, never humantime's `1day` or `1h 30m`.
#[test]
fn formatted_as_the_config_writes_them() {
    for (d, text) in [
        (Duration::ZERO, "0s"),
        (Duration::from_secs(24 * 3600), "24h"),
        (Duration::from_secs(7 * 24 * 3600), "168h"),
        (Duration::from_secs(30 * 60), "30m"),
        (Duration::from_secs(5400), "1h30m"),
        (Duration::from_secs(90), "1m30s"),
        (Duration::from_secs(3601), "1h1s"),
        (Duration::from_millis(500), "500ms"),
        (Duration::from_millis(1500), "1s500ms"),
        (Duration::from_nanos(1_001_001), "1ms1us1ns"),
    ] {
        assert_eq!(format_duration(d), text, "{d:?}");
    }
}

#[test]
fn formatted_durations_parse_back() {
    for ms in [
        1, 999, 1000, 59_999, 60_000, 3_599_999, 3_600_000, 86_400_000, 90_061_001,
    ] {
        let d = Duration::from_millis(ms);
        assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{ms}ms");
    }
    let d = Duration::from_nanos(3_723_004_005_006);
    assert_eq!(parse_duration(&format_duration(d)), Ok(d));
}

/// The hint for a bare number uses the same spelling.
#[test]
fn a_bare_number_is_answered_in_config_spelling() {
    assert_eq!(
        parse_duration("86400").unwrap_err(),
        "a duration needs a unit, e.g. \"86400s\" or \"24h\""
    );
    assert_eq!(
        parse_duration("90").unwrap_err(),
        "a duration needs a unit, e.g. \"90s\" or \"1m30s\""
    );
}
