//! Label values, one scheme for every series: each label is an enum declared once with
//! `labels!`, which gives its text (`as_str`), its position (`index`) and the list of all values
//! (`ALL`). Handles are resolved at start-up for every value in `ALL`, in that order, so recording
//! is an index into a slice ([`ByLabel`]) instead of a string search or a cast per call site.

use http::{Method, StatusCode};

/// A label value: its text in the exposition and its position among all values.
pub trait Label: Copy + 'static {
    /// Every value, in `index` order.
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;
    fn index(self) -> usize;
}

/// Declares a label enum and its [`Label`] implementation from one list of `Variant => "text"`.
macro_rules! labels {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// The label value as it appears in `/metrics` (and in logs).
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl $crate::metrics::labels::Label for $name {
            const ALL: &'static [$name] = &[$( $name::$variant, )+];
            fn as_str(self) -> &'static str {
                $name::as_str(self)
            }
            fn index(self) -> usize {
                self as usize
            }
        }
    };
}
pub(crate) use labels;

/// One handle per value of label `L`, built at start-up in `L::ALL` order.
pub struct ByLabel<L, M> {
    handles: Box<[M]>,
    _label: std::marker::PhantomData<L>,
}

impl<L: Label, M> ByLabel<L, M> {
    /// Resolves the handle of every value of `L` once.
    pub fn new(mut make: impl FnMut(L) -> M) -> ByLabel<L, M> {
        ByLabel {
            handles: L::ALL.iter().map(|&l| make(l)).collect(),
            _label: std::marker::PhantomData,
        }
    }

    /// The handle of `label`. Every value has one (built from `ALL`), so `None` cannot happen;
    /// callers skip the recording rather than panic if it ever did.
    pub fn get(&self, label: L) -> Option<&M> {
        self.handles.get(label.index())
    }
}

labels! {
    /// The request method, with the rare and extension methods folded into `OTHER` so that a
    /// client cannot grow the series count.
    pub enum MethodLabel {
        Get => "GET",
        Head => "HEAD",
        Post => "POST",
        Put => "PUT",
        Delete => "DELETE",
        Patch => "PATCH",
        Options => "OPTIONS",
        Connect => "CONNECT",
        Trace => "TRACE",
        Other => "OTHER",
    }
}

impl MethodLabel {
    pub fn of(method: &Method) -> MethodLabel {
        match *method {
            Method::GET => MethodLabel::Get,
            Method::HEAD => MethodLabel::Head,
            Method::POST => MethodLabel::Post,
            Method::PUT => MethodLabel::Put,
            Method::DELETE => MethodLabel::Delete,
            Method::PATCH => MethodLabel::Patch,
            Method::OPTIONS => MethodLabel::Options,
            Method::CONNECT => MethodLabel::Connect,
            Method::TRACE => MethodLabel::Trace,
            _ => MethodLabel::Other,
        }
    }
}

labels! {
    /// The status class (`2xx`...), which is what dashboards group by; exact codes would only
    /// multiply the series.
    pub enum StatusClass {
        Informational => "1xx",
        Success => "2xx",
        Redirection => "3xx",
        ClientError => "4xx",
        ServerError => "5xx",
    }
}

impl StatusClass {
    pub fn of(status: StatusCode) -> StatusClass {
        match status.as_u16() / 100 {
            0 | 1 => StatusClass::Informational,
            2 => StatusClass::Success,
            3 => StatusClass::Redirection,
            4 => StatusClass::ClientError,
            _ => StatusClass::ServerError,
        }
    }
}

labels! {
    /// Why a session cookie yielded no session (`cookie_rejections_total{reason}`).
    #[non_exhaustive]
    pub enum Rejection {
        /// Not decryptable or not well-formed.
        Tampered => "tampered",
        /// Authentic but past its deadline.
        Expired => "expired",
        /// A server-side store has no record for the ID.
        Unknown => "unknown",
        /// The sealed session no longer fits in one cookie, so the response was refused.
        TooLarge => "too_large",
    }
}

impl From<crate::session::store::Reject> for Rejection {
    fn from(reason: crate::session::store::Reject) -> Rejection {
        use crate::session::store::Reject;
        match reason {
            Reject::Tampered => Rejection::Tampered,
            Reject::Expired => Rejection::Expired,
            Reject::Unknown => Rejection::Unknown,
        }
    }
}

labels! {
    /// A store operation, for the per-operation store series.
    #[non_exhaustive]
    pub enum StoreOp {
        Load => "load",
        Create => "create",
        Update => "update",
        Regenerate => "regenerate",
        Destroy => "destroy",
        /// The periodic sweep of expired records.
        Cleanup => "cleanup",
        /// The readiness probe's reachability check.
        Ping => "ping",
        /// Adding a session to its owner's index (`sessions.owner_key`).
        Index => "index",
        /// Removing a session from its owner's index.
        Unindex => "unindex",
        /// Listing an owner's sessions (admin API).
        List => "list",
        /// Ending sessions by owner or handle (`X-Session-Clear: others | everywhere`, admin API).
        Revoke => "revoke",
    }
}

labels! {
    /// Which way tunnel bytes went.
    pub enum Direction {
        ClientToUpstream => "client_to_upstream",
        UpstreamToClient => "upstream_to_client",
    }
}

labels! {
    /// How a configuration reload ended.
    pub enum ReloadResult {
        Success => "success",
        Failure => "failure",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_follows_all() {
        fn check<L: Label + std::fmt::Debug>() {
            for (i, l) in L::ALL.iter().enumerate() {
                assert_eq!(l.index(), i, "{l:?}");
            }
        }
        check::<MethodLabel>();
        check::<StatusClass>();
        check::<Rejection>();
        check::<StoreOp>();
        check::<Direction>();
        check::<ReloadResult>();
        check::<crate::error::UpstreamFailure>();
    }

    #[test]
    fn folds_unknown_values() {
        let purge = Method::from_bytes(b"PURGE").unwrap();
        assert_eq!(MethodLabel::of(&purge), MethodLabel::Other);
        assert_eq!(MethodLabel::of(&Method::PATCH).as_str(), "PATCH");
        assert_eq!(StatusClass::of(StatusCode::CONTINUE).as_str(), "1xx");
        assert_eq!(StatusClass::of(StatusCode::BAD_GATEWAY).as_str(), "5xx");
    }
}
