//! Connections: open client connections, TLS handshakes, and upgraded connections (tunnels).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::labels::Direction;
use super::{counter, gauge};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DirectionLabels {
    direction: &'static str,
}

pub(super) struct Connections {
    pub(super) active: Gauge,
    pub(super) tls_handshakes: Counter,
    pub(super) tls_failures: Counter,
    pub(super) tunnels_open: Gauge,
    /// `tunnel_bytes_total`, one counter per [`Direction`], held apart because the tunnel keeps
    /// a reference to each for the life of the relay.
    pub(super) tunnel_up: Counter,
    pub(super) tunnel_down: Counter,
}

impl Connections {
    pub(super) fn register(registry: &mut Registry) -> Connections {
        let bytes = Family::<DirectionLabels, Counter>::default();
        registry.register(
            "tunnel_bytes",
            "Bytes relayed through upgraded connections, by direction",
            bytes.clone(),
        );
        let direction = |direction: Direction| {
            bytes
                .get_or_create(&DirectionLabels {
                    direction: direction.as_str(),
                })
                .clone()
        };
        Connections {
            active: gauge(
                registry,
                "active_connections",
                "Client connections open now",
            ),
            tls_handshakes: counter(registry, "tls_handshakes", "Completed TLS handshakes"),
            tls_failures: counter(
                registry,
                "tls_handshake_failures",
                "TLS handshakes that failed or timed out",
            ),
            tunnels_open: gauge(
                registry,
                "tunnels_open",
                "Upgraded connections (WebSocket tunnels) open now",
            ),
            tunnel_up: direction(Direction::ClientToUpstream),
            tunnel_down: direction(Direction::UpstreamToClient),
        }
    }
}
