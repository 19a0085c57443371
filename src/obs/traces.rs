//! OpenTelemetry traces, exported over OTLP/HTTP when `[tracing]` (or the
//! standard `OTEL_EXPORTER_OTLP_ENDPOINT`) says so; otherwise every helper
//! here is a no-op that costs an atomic load.
//!
//! Spans: one server span per decision (`authgate.v1.AuthService/Verify`,
//! `/Exchange`, `envoy.service.auth.v3.Authorization/Check`,
//! `forward-auth`), a child per identity-provider request
//! (`introspection`, `jwks fetch`, `discovery`), and a root span per
//! background key refresh. The parent comes from W3C trace context
//! (`traceparent`, `tracestate`) in the incoming gRPC metadata or, for
//! ext_authz and forward-auth, the proxied request's headers. Attributes
//! are bounded and never carry a token, a secret or a claim read before
//! verification: issuer name, outcome, reason, adapter, HTTP status.

use crate::config::{OtlpProtocol, TracingConfig};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{Span, SpanKind, Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(false);
static TRACER: OnceLock<opentelemetry_sdk::trace::SdkTracer> = OnceLock::new();

/// Starts the exporter when tracing is configured; the returned provider
/// must be shut down at exit to flush what is batched.
pub fn init(config: &TracingConfig) -> Result<Option<SdkTracerProvider>, String> {
    use opentelemetry_otlp::{Protocol, WithExportConfig};
    if !config.enabled {
        return Ok(None);
    }
    let protocol = match config.protocol {
        OtlpProtocol::HttpProtobuf => Protocol::HttpBinary,
        OtlpProtocol::HttpJson => Protocol::HttpJson,
    };
    let mut builder = opentelemetry_otlp::SpanExporter::builder().with_http().with_protocol(protocol);
    if let Some(base) = &config.otlp_endpoint {
        builder = builder.with_endpoint(format!("{base}/v1/traces"));
    }
    let exporter = builder.build().map_err(|e| format!("OTLP exporter: {e}"))?;
    let resource =
        opentelemetry_sdk::Resource::builder().with_service_name(config.service_name.clone()).build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sample_ratio))))
        .with_resource(resource)
        .build();
    let _ = TRACER.set(provider.tracer("authgate"));
    ENABLED.store(true, Ordering::Release);
    Ok(Some(provider))
}

fn tracer() -> Option<&'static opentelemetry_sdk::trace::SdkTracer> {
    if ENABLED.load(Ordering::Acquire) { TRACER.get() } else { None }
}

struct Lookup<'a, F>(F, std::marker::PhantomData<&'a ()>);

impl<'a, F: Fn(&str) -> Option<&'a str>> Extractor for Lookup<'a, F> {
    fn get(&self, key: &str) -> Option<&str> {
        (self.0)(key)
    }
    fn keys(&self) -> Vec<&str> {
        Vec::new()
    }
}

/// The headers the W3C trace context is read from.
pub const CONTEXT_HEADERS: [&str; 2] = ["traceparent", "tracestate"];

/// A server span for one decision, child of the W3C context that
/// `header(name)` finds (lower-case names). The returned context carries the
/// span: run the work under it with
/// [`opentelemetry::context::FutureExt::with_context`], then [`finish`].
pub fn server_span<'a>(name: &'static str, header: impl Fn(&str) -> Option<&'a str>) -> Context {
    // Most requests carry no trace context: without `traceparent` the
    // propagator would only copy the (empty) current context, at a few
    // hundred instructions a request.
    let parent = match header(CONTEXT_HEADERS[0]) {
        None => Context::new(),
        Some(_) => TraceContextPropagator::new().extract(&Lookup(header, std::marker::PhantomData)),
    };
    // Without export, the caller's trace id still reaches the decision line.
    let Some(tracer) = tracer() else { return parent };
    let span = tracer.span_builder(name).with_kind(SpanKind::Server).start_with_context(tracer, &parent);
    parent.with_span(span)
}

/// Ends a decision's span with its outcome: the issuer name when granted,
/// the stable reason when denied.
pub fn finish(cx: &Context, issuer: Option<&str>, reason: Option<&'static str>) {
    if tracer().is_none() {
        return;
    }
    let span = cx.span();
    match reason {
        None => span.set_attribute(KeyValue::new("authgate.outcome", "granted")),
        Some(r) => {
            span.set_attribute(KeyValue::new("authgate.outcome", "denied"));
            span.set_attribute(KeyValue::new("authgate.reason", r));
        }
    }
    if let Some(i) = issuer {
        span.set_attribute(KeyValue::new("authgate.issuer", i.to_owned()));
    }
    span.end();
}

/// A client span for one request to an identity provider, child of the
/// current context (a decision's span, or a key refresh). Ended on drop.
pub struct UpstreamSpan(Option<opentelemetry_sdk::trace::Span>);

impl UpstreamSpan {
    /// Starts the client span of one `kind` of request (`introspection`,
    /// `discovery`, `jwks fetch`) for `issuer`.
    pub fn start(kind: crate::obs::metrics::UpstreamKind, issuer: &str) -> Self {
        let Some(tracer) = tracer() else { return Self(None) };
        let name = match kind {
            crate::obs::metrics::UpstreamKind::Introspection => "introspection",
            crate::obs::metrics::UpstreamKind::Discovery => "discovery",
            crate::obs::metrics::UpstreamKind::Jwks => "jwks fetch",
        };
        let mut span = tracer.span_builder(name).with_kind(SpanKind::Client).start(tracer);
        span.set_attribute(KeyValue::new("authgate.issuer", issuer.to_owned()));
        Self(Some(span))
    }

    /// Records the outcome (a short fixed word).
    pub fn outcome(&mut self, outcome: &'static str) {
        if let Some(span) = &mut self.0 {
            span.set_attribute(KeyValue::new("authgate.upstream.outcome", outcome));
            if outcome != "ok" {
                span.set_status(Status::error(outcome));
            }
        }
    }
}

impl Drop for UpstreamSpan {
    fn drop(&mut self) {
        if let Some(span) = &mut self.0 {
            span.end();
        }
    }
}

/// A root span for one background key refresh of `issuer`.
pub fn refresh_span(issuer: &str) -> Context {
    let Some(tracer) = tracer() else { return Context::new() };
    let mut span = tracer.span_builder("key refresh").with_kind(SpanKind::Internal).start(tracer);
    span.set_attribute(KeyValue::new("authgate.issuer", issuer.to_owned()));
    Context::new().with_span(span)
}

/// Ends a span held in a context (refresh).
pub fn end(cx: &Context) {
    if tracer().is_some() {
        cx.span().end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_headers_are_the_propagators() {
        use opentelemetry::propagation::TextMapPropagator;
        let propagator = TraceContextPropagator::new();
        let fields: Vec<&str> = propagator.fields().collect();
        assert_eq!(fields, CONTEXT_HEADERS, "ext_authz keeps exactly these headers for the trace context");
    }
}
