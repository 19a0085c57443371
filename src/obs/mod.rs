//! Observability: log setup and escaping, Prometheus metrics with bounded
//! labels, OpenTelemetry traces over OTLP.

pub mod logs;
pub mod metrics;
pub mod sink;
pub mod traces;
