//! Field types that need more than serde's default reading: URLs and lists of CIDRs.

use http::Uri;
use serde::{Deserialize, Deserializer, Serializer};

/// CIDRs, where a bare address means just that address (`10.0.0.7` = `10.0.0.7/32`), as in
/// nginx's `set_real_ip_from`.
pub(super) mod cidr_list {
    use super::*;
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| {
                let t = text.trim();
                t.parse::<ipnet::IpNet>()
                    .or_else(|_| t.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| {
                        serde::de::Error::custom(format!(
                            "invalid address or CIDR {text:?} (write e.g. 10.0.0.0/8 or 192.0.2.7)"
                        ))
                    })
            })
            .collect()
    }
}

pub(super) mod uri_serde {
    use super::*;
    pub fn serialize<S: Serializer>(u: &Uri, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&u.to_string())
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Uri, D::Error> {
        let text = String::deserialize(d)?;
        text.parse::<Uri>()
            .map_err(|e| serde::de::Error::custom(format!("invalid URL {text:?}: {e}")))
    }
}
