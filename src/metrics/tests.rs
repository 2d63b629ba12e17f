use super::build_info::{unix_now, COMMIT};
use super::*;

#[test]
fn renders_known_series() {
    let m = Metrics::new("cookie");
    m.request(&Method::GET, StatusCode::OK, Duration::from_millis(3));
    m.request(
        &Method::from_bytes(b"PURGE").unwrap(),
        StatusCode::BAD_GATEWAY,
        Duration::ZERO,
    );
    m.cookie_rejected(Rejection::Expired);
    m.store_op(StoreOp::Load, Duration::from_micros(50), false);
    let text = m.render();
    assert!(
        text.contains("session_proxy_requests_total{method=\"GET\",status=\"2xx\"} 1"),
        "{text}"
    );
    assert!(text.contains("session_proxy_requests_total{method=\"OTHER\",status=\"5xx\"} 1"));
    assert!(text.contains("session_proxy_cookie_rejections_total{reason=\"expired\"} 1"));
    assert!(text.contains("session_proxy_store_errors_total{driver=\"cookie\",op=\"load\"} 1"));
    m.tunnel_opened();
    m.tunnel_bytes_down().inc_by(5);
    let text = m.render();
    assert!(text.contains("session_proxy_tunnels_open 1"), "{text}");
    assert!(text.contains("session_proxy_tunnel_bytes_total{direction=\"upstream_to_client\"} 5"));
}

#[test]
fn build_info_and_reloads() {
    let before = unix_now();
    let m = Metrics::new("memory");
    let text = m.render();
    let line = format!(
        "session_proxy_build_info{{version=\"{}\",commit=\"{COMMIT}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    assert!(text.contains(&line), "{line} in:\n{text}");
    assert!(text.contains("session_proxy_config_reloads_total{result=\"success\"} 0"));
    assert!(text.contains("session_proxy_config_reloads_total{result=\"failure\"} 0"));
    let stamp = |text: &str| -> f64 {
        text.lines()
            .find_map(|l| {
                l.strip_prefix("session_proxy_config_last_reload_success_timestamp_seconds ")
            })
            .unwrap_or_else(|| panic!("no timestamp in:\n{text}"))
            .parse()
            .unwrap()
    };
    // Set at start-up, to the start.
    let started = stamp(&text);
    assert!(started >= before && started <= unix_now(), "{started}");

    m.config_reload(false);
    let text = m.render();
    assert!(text.contains("session_proxy_config_reloads_total{result=\"failure\"} 1"));
    assert_eq!(stamp(&text), started, "a failure leaves the timestamp");

    std::thread::sleep(Duration::from_millis(20));
    m.config_reload(true);
    let text = m.render();
    assert!(text.contains("session_proxy_config_reloads_total{result=\"success\"} 1"));
    assert!(stamp(&text) > started);
}

#[cfg(target_os = "linux")]
#[test]
fn process_series_are_unprefixed() {
    let text = Metrics::new("cookie").render();
    for name in [
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_max_fds ",
        "process_start_time_seconds ",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "{name} in:\n{text}"
        );
    }
    assert!(!text.contains("session_proxy_process_"));
    assert_eq!(text.matches("# EOF").count(), 1);
}
