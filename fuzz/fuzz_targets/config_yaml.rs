//! `Config::from_yaml` on arbitrary text must return `Ok` or `Err`, never panic (nor overflow the
//! stack, nor run away on aliases). A config that loads must also render its redacted form.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use session_proxy::config::{Config, Overrides};

fuzz_target!(|text: &str| {
    if let Ok(config) = Config::from_yaml(text, &HashMap::new(), &Overrides::default()) {
        let out = config.to_redacted_yaml();
        assert!(!out.starts_with("# cannot render"), "{out}");
        assert!(out.contains("secret: <redacted>"), "secret not redacted");
    }
});
