//! Request traffic: requests answered, their durations, and the upstream's time and failures.

use std::time::Duration;

use http::{Method, StatusCode};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::labels::{ByLabel, MethodLabel, StatusClass};
use super::{counters, latency_histogram};
use crate::error::UpstreamFailure;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: &'static str,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

pub(super) struct Traffic {
    requests: ByLabel<MethodLabel, ByLabel<StatusClass, Counter>>,
    request_duration: Histogram,
    upstream_duration: Histogram,
    upstream_errors: ByLabel<UpstreamFailure, Counter>,
}

impl Traffic {
    pub(super) fn register(registry: &mut Registry) -> Traffic {
        let family = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests answered, by method and status class",
            family.clone(),
        );
        let requests = ByLabel::new(|method: MethodLabel| {
            ByLabel::new(|status: StatusClass| {
                family
                    .get_or_create(&RequestLabels {
                        method: method.as_str(),
                        status: status.as_str(),
                    })
                    .clone()
            })
        });
        Traffic {
            requests,
            request_duration: latency_histogram(
                registry,
                "request_duration_seconds",
                "Time from request head to response head",
            ),
            upstream_duration: latency_histogram(
                registry,
                "upstream_duration_seconds",
                "Time the upstream took to send its response head",
            ),
            upstream_errors: counters(
                registry,
                "upstream_errors",
                "Upstream failures by kind",
                |kind: UpstreamFailure| KindLabels {
                    kind: kind.as_str(),
                },
            ),
        }
    }

    pub(super) fn request(&self, method: &Method, status: StatusCode, elapsed: Duration) {
        if let Some(by_status) = self.requests.get(MethodLabel::of(method)) {
            by_status.get(StatusClass::of(status)).map(Counter::inc);
        }
        self.request_duration.observe(elapsed.as_secs_f64());
    }

    pub(super) fn upstream(&self, elapsed: Duration) {
        self.upstream_duration.observe(elapsed.as_secs_f64());
    }

    pub(super) fn upstream_error(&self, kind: UpstreamFailure) {
        self.upstream_errors.get(kind).map(Counter::inc);
    }
}
