//! The headers of the request being decided, as every adapter hands them to
//! the gate: names compared without case, every value kept in arrival
//! order, so a header received twice is visible as two values and a reader
//! that needs one value refuses the ambiguity instead of picking one.

use std::collections::HashMap;

/// True when every byte is visible ASCII (`0x20..=0x7e`) or, with `tab`, a
/// tab. One branch-free pass that the compiler vectorises: credentials of
/// ~400 bytes are checked on every request, and a byte-at-a-time loop with
/// an early exit cost ~1,800 instructions per token.
pub fn all_visible(bytes: &[u8], tab: bool) -> bool {
    bytes.iter().fold(true, |ok, &b| ok & ((0x20..0x7f).contains(&b) | (tab & (b == b'\t'))))
}

/// A request's headers. Built by each adapter from what its transport
/// received (HTTP headers, Envoy's `headers` and `header_map`, the gRPC
/// request's `headers` map).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one header; the name is lower-cased.
    pub fn add(&mut self, name: &str, value: impl Into<String>) {
        self.0.push((name.to_ascii_lowercase(), value.into()));
    }

    /// Adds one header received from a proxy, unless the same name with the
    /// same value is there already: Envoy reports a header in both
    /// `headers` and `header_map`, and a proxy may repeat one verbatim.
    pub fn add_received(&mut self, name: &str, value: &str) {
        if !self.0.iter().any(|(n, v)| n.eq_ignore_ascii_case(name) && v == value) {
            self.add(name, value);
        }
    }

    /// Every value of `name`, in arrival order.
    pub fn values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> {
        self.0.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The one value of `name`: `Err(())` when there are several.
    #[allow(clippy::result_unit_err)]
    pub fn one(&self, name: &str) -> Result<Option<&str>, ()> {
        let mut values = self.values(name);
        match (values.next(), values.next()) {
            (first, None) => Ok(first),
            (Some(_), Some(_)) | (None, Some(_)) => Err(()),
        }
    }

    /// The first value of `name` (trace context, where a repeat is the
    /// sender's problem and never a grant).
    pub fn first(&self, name: &str) -> Option<&str> {
        self.values(name).next()
    }

    /// Every value of a list header as one, joined by `separator` (`cookie`
    /// with "; " after HTTP/2 split it; `x-forwarded-for` with ", ", one
    /// list in order, RFC 9110 §5.3).
    pub fn joined(&self, name: &str, separator: &str) -> Option<String> {
        let mut values = self.values(name);
        let first = values.next()?;
        Some(values.fold(first.to_string(), |mut all, v| {
            all.push_str(separator);
            all.push_str(v);
            all
        }))
    }

    /// Every (name, value), names lower-cased, in arrival order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Number of header values.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<&HashMap<String, String>> for Headers {
    /// The gRPC request's `headers` map: two keys that differ only in case
    /// are two values of one header.
    fn from(map: &HashMap<String, String>) -> Self {
        let mut headers = Headers::new();
        for (name, value) in map {
            headers.add(name, value.as_str());
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visible_ascii() {
        let cases: [(&str, &[u8], bool, bool); 8] = [
            ("empty", b"", false, true),
            ("a bearer token", b"Bearer eyJ.a-b_c.~!", false, true),
            ("space and tilde are visible", b" ~", false, true),
            ("tab refused unless allowed", b"a\tb", false, false),
            ("tab allowed", b"a\tb", true, true),
            ("DEL", b"a\x7f", true, false),
            ("a control byte at the end", b"Bearer abc\n", true, false),
            ("UTF-8", "é".as_bytes(), true, false),
        ];
        for (what, bytes, tab, want) in cases {
            assert_eq!(all_visible(bytes, tab), want, "{what}");
        }
    }

    #[test]
    fn names_ignore_case_and_repeats_stay_visible() {
        let mut h = Headers::new();
        h.add_received("Authorization", "Bearer a.b.c");
        h.add_received("authorization", "Bearer a.b.c");
        h.add_received("Cookie", "a=1");
        h.add_received("cookie", "nf_jwt=x.y.z");
        type Case<'a> = (&'a str, Result<Option<&'a str>, ()>);
        let cases: [Case; 3] =
            [("authorization", Ok(Some("Bearer a.b.c"))), ("COOKIE", Err(())), ("x-nf-sign", Ok(None))];
        for (name, want) in cases {
            assert_eq!(h.one(name), want, "{name}");
        }
        assert_eq!(h.joined("cookie", "; ").as_deref(), Some("a=1; nf_jwt=x.y.z"));
        h.add_received("AUTHORIZATION", "Bearer d.e.f");
        assert_eq!(h.one("authorization"), Err(()), "a second, different value is ambiguous");
        assert_eq!(h.len(), 4);
        h.add("x-nf-sign", "s");
        h.add("X-NF-Sign", "s");
        assert_eq!(h.one("x-nf-sign"), Err(()), "a caller's map that repeats a header is refused");
    }

    #[test]
    fn a_grpc_map_with_two_spellings_is_two_values() {
        let map: HashMap<String, String> = [("X-NF-Sign", "a"), ("x-nf-sign", "a")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(Headers::from(&map).one("x-nf-sign"), Err(()));
    }
}
