//! `[tracing]`: OpenTelemetry export.

use super::read::{Reader, Section};
use toml::Table;

/// OTLP trace export protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// `http/protobuf` (default).
    HttpProtobuf,
    /// `http/json`.
    HttpJson,
}

/// `[tracing]`: OpenTelemetry traces over OTLP/HTTP. Off unless an
/// endpoint is configured here or in `OTEL_EXPORTER_OTLP_ENDPOINT` /
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingConfig {
    /// `otlp_endpoint`: default unset. The collector's base URL; traces go
    /// to `<base>/v1/traces`. When unset, the standard variables apply.
    pub otlp_endpoint: Option<String>,
    /// True when an endpoint comes from config or the environment.
    pub enabled: bool,
    /// `protocol` (or `OTEL_EXPORTER_OTLP_PROTOCOL`): default `http/protobuf`.
    pub protocol: OtlpProtocol,
    /// `sample_ratio`: default 1.0; root spans kept at this ratio, child
    /// spans follow their parent's decision.
    pub sample_ratio: f64,
    /// `service_name` (or `OTEL_SERVICE_NAME`): default `authgate`.
    pub service_name: String,
}

/// `[signed_proxy]`: present when the section or its secret variable is.
pub(super) fn read_tracing(r: &mut Reader<'_>, table: Option<&Table>) -> TracingConfig {
    let mut s = Section::new("tracing", table);
    let otlp_endpoint = s.parsed(r, "otlp_endpoint", None, None, |v| {
        let url = reqwest::Url::parse(v).map_err(|e| format!("not a URL: {e}"))?;
        match url.scheme() {
            "http" | "https" => Ok(v.trim_end_matches('/').to_string()),
            _ => Err("must be an http(s) URL".to_string()),
        }
    });
    let env_endpoint = ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
        .iter()
        .any(|k| (r.env)(k).is_some_and(|v| !v.is_empty()));
    let protocol = s
        .parsed(r, "protocol", Some("OTEL_EXPORTER_OTLP_PROTOCOL"), None, |v| match v {
            "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
            "http/json" => Ok(OtlpProtocol::HttpJson),
            _ => Err("must be `http/protobuf` or `http/json` (gRPC export is not built in)".to_string()),
        })
        .unwrap_or(OtlpProtocol::HttpProtobuf);
    let sample_ratio = s
        .parsed(r, "sample_ratio", None, None, |v| match v.parse::<f64>() {
            Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
            _ => Err("must be a number from 0 to 1".to_string()),
        })
        .unwrap_or(1.0);
    let service_name = s
        .parsed(r, "service_name", Some("OTEL_SERVICE_NAME"), None, |v| Ok(v.to_string()))
        .unwrap_or_else(|| "authgate".to_string());
    s.finish(r);
    TracingConfig {
        enabled: otlp_endpoint.is_some() || env_endpoint,
        otlp_endpoint,
        protocol,
        sample_ratio,
        service_name,
    }
}
