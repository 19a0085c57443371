use super::*;

/// The value of the exported sample whose line starts with `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[test]
fn handles_count_into_the_exported_series() {
    let m = Metrics::new();
    let took = Duration::from_micros(40);
    for _ in 0..3 {
        m.decision(Adapter::Verify, "site", None, took);
    }
    m.decision(Adapter::Verify, "other", None, took);
    m.decision(Adapter::Exchange, "site", None, took);
    m.decision(Adapter::Verify, "site", Some("token_expired"), took);
    for hit in [true, true, false] {
        m.cache_lookup(CacheName::Identity, hit);
    }
    let text = m.encode();
    let cases = [
        (
            "granted, first through the family then the handle",
            r#"authgate_decisions_total{adapter="verify",issuer="site",outcome="granted",reason="none"}"#,
            3.0,
        ),
        (
            "another issuer has its own handle",
            r#"authgate_decisions_total{adapter="verify",issuer="other",outcome="granted",reason="none"}"#,
            1.0,
        ),
        (
            "the same issuer through another adapter",
            r#"authgate_decisions_total{adapter="exchange",issuer="site",outcome="granted",reason="none"}"#,
            1.0,
        ),
        (
            "denials go through the family",
            r#"authgate_decisions_total{adapter="verify",issuer="site",outcome="denied",reason="token_expired"}"#,
            1.0,
        ),
        ("every decision timed", r#"authgate_decision_duration_seconds_count{adapter="verify"}"#, 5.0),
        ("cache hits", r#"authgate_cache_requests_total{cache="identity",result="hit"}"#, 2.0),
        ("cache misses", r#"authgate_cache_requests_total{cache="identity",result="miss"}"#, 1.0),
    ];
    for (what, series, want) in cases {
        assert_eq!(sample(&text, series), Some(want), "{what}\n{text}");
    }
    assert!(!text.contains(r#"adapter="ext_authz""#), "no series for an adapter never used");
}
