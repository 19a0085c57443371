//! Thin adapters that translate a transport to the gate and back: the
//! AuthService over gRPC, Envoy's ext_authz `Check`, HTTP forward-auth and
//! the HTTP side port; the accept loop and limits both ports share.

pub mod admin;
pub mod envoy_service;
pub mod ext_authz;
pub mod forward_auth;
pub mod grpc;
pub mod http;
pub mod listen;
pub mod pb;
pub mod webhook;
