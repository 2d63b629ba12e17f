//! Sessions and the store behind them: lifecycle counts, refused cookies, and every store
//! operation's count, errors and latency by driver and operation.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::labels::{ByLabel, Rejection, StoreOp};
use super::{counter, counters, latency_buckets};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StoreLabels {
    driver: &'static str,
    op: &'static str,
}

/// The three series of one store operation.
struct OpSeries {
    count: Counter,
    errors: Counter,
    latency: Histogram,
}

pub(super) struct Sessions {
    pub(super) created: Counter,
    pub(super) destroyed: Counter,
    pub(super) regenerated: Counter,
    pub(super) revoked: Counter,
    rejections: ByLabel<Rejection, Counter>,
    store: ByLabel<StoreOp, OpSeries>,
}

impl Sessions {
    pub(super) fn register(registry: &mut Registry, driver: &'static str) -> Sessions {
        Sessions {
            created: counter(registry, "sessions_created", "Sessions created"),
            destroyed: counter(
                registry,
                "sessions_destroyed",
                "Sessions destroyed by X-Session-Clear",
            ),
            regenerated: counter(
                registry,
                "sessions_regenerated",
                "Sessions given a new ID by X-Session-Regenerate",
            ),
            revoked: counter(
                registry,
                "sessions_revoked",
                "Sessions ended by owner or handle: X-Session-Clear: others | everywhere, the admin API",
            ),
            rejections: counters(
                registry,
                "cookie_rejections",
                "Session cookies that yielded no session, by reason",
                |reason: Rejection| ReasonLabels {
                    reason: reason.as_str(),
                },
            ),
            store: store_series(registry, driver),
        }
    }

    pub(super) fn rejected(&self, reason: Rejection) {
        self.rejections.get(reason).map(Counter::inc);
    }

    pub(super) fn store_op(&self, op: StoreOp, elapsed: Duration, ok: bool) {
        let Some(series) = self.store.get(op) else {
            return;
        };
        series.count.inc();
        if !ok {
            series.errors.inc();
        }
        series.latency.observe(elapsed.as_secs_f64());
    }
}

fn store_series(registry: &mut Registry, driver: &'static str) -> ByLabel<StoreOp, OpSeries> {
    let ops = Family::<StoreLabels, Counter>::default();
    registry.register(
        "store_operations",
        "Session store operations by driver and operation",
        ops.clone(),
    );
    let errors = Family::<StoreLabels, Counter>::default();
    registry.register(
        "store_errors",
        "Failed session store operations by driver and operation",
        errors.clone(),
    );
    let latency =
        Family::<StoreLabels, Histogram>::new_with_constructor(
            || Histogram::new(latency_buckets()),
        );
    registry.register(
        "store_duration_seconds",
        "Session store operation latency by driver and operation",
        latency.clone(),
    );
    ByLabel::new(|op: StoreOp| {
        let labels = StoreLabels {
            driver,
            op: op.as_str(),
        };
        OpSeries {
            count: ops.get_or_create(&labels).clone(),
            errors: errors.get_or_create(&labels).clone(),
            latency: latency.get_or_create(&labels).clone(),
        }
    })
}
