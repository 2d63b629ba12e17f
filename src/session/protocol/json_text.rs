//! Checks on the JSON text of a session value the app sets: what would not survive a store round
//! trip is refused by looking at the text, before or instead of parsing it.

use serde_json::Value;

use super::controls::Malformed;

/// Deepest nesting of arrays and objects a session value may have (`[1]` is 1, `{"a":[1]}` is 2).
/// Every store must hand back exactly what it accepted; the cookie store adds two levels of its
/// own and serde_json refuses input nested past 128, so 32 leaves a wide margin.
pub const MAX_DEPTH: usize = 32;

/// Whether `text` has the shape of a JSON number (RFC 8259 §6), whatever its size.
pub(super) fn is_json_number(text: &str) -> bool {
    let b = text.strip_prefix('-').unwrap_or(text).as_bytes();
    let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if int_len == 0 || (int_len > 1 && b[0] == b'0') {
        return false;
    }
    let mut rest = &b[int_len..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    if let Some(exp) = rest.strip_prefix(b"e").or_else(|| rest.strip_prefix(b"E")) {
        let exp = exp
            .strip_prefix(b"+")
            .or_else(|| exp.strip_prefix(b"-"))
            .unwrap_or(exp);
        let n = exp.iter().take_while(|c| c.is_ascii_digit()).count();
        return n > 0 && n == exp.len();
    }
    rest.is_empty()
}

/// One value of a JSON object line, already known to be syntactically valid JSON.
pub(super) fn json_value(raw: &str) -> Result<Value, Malformed> {
    scan_json(raw)?;
    // The syntax was checked; serde_json can still refuse a number it cannot hold (1e400) or a
    // lone surrogate (`"\ud800"`), which its raw-value scan lets through.
    serde_json::from_str(raw).map_err(|_| Malformed::Unrepresentable)
}

/// Checks the text of a JSON value for what would not survive a store round trip: nesting past
/// [`MAX_DEPTH`], and integer literals outside `i64`/`u64` (serde_json would read them as an `f64`
/// and hand back another number). Works on the text because a parsed value no longer tells an
/// integer literal from a float. Allocation-free, one pass; strings are skipped.
pub fn scan_json(text: &str) -> Result<(), Malformed> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Malformed::TooDeep);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i + 1 < b.len()
                    && matches!(b[i + 1], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    i += 1;
                }
                let token = &text[start..=i];
                let integer = !token.contains(['.', 'e', 'E']);
                if integer && token.parse::<i64>().is_err() && token.parse::<u64>().is_err() {
                    return Err(Malformed::InexactNumber);
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}
