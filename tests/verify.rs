//! Verify over real gRPC against the in-process server: one table, each case
//! with a description, asserting the gRPC code AND the ErrorInfo reason.

mod common;

use authgate::pb::{Identity, VerifyRequest};
use common::*;
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use std::collections::HashMap;
use tonic::Code;
use tonic_types::StatusExt;

/// What a case expects.
enum Want {
    /// Granted; the check inspects the identity.
    Ok(fn(&Identity)),
    /// Denied with this code and reason.
    Err(Code, &'static str),
}

struct Case {
    what: &'static str,
    req: VerifyRequest,
    want: Want,
}

fn token_req(token: String) -> VerifyRequest {
    VerifyRequest { token, ..Default::default() }
}

fn headers_req(pairs: &[(&str, String)]) -> VerifyRequest {
    let headers: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    VerifyRequest { headers, ..Default::default() }
}

fn with(mut claims: Value, f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Value {
    f(claims.as_object_mut().unwrap());
    claims
}

fn ok(_: &Identity) {}

fn cases() -> Vec<Case> {
    let c = gotrue_claims();
    let good = gotrue_token(&c, SECRET);
    let unauth = |r| Want::Err(Code::Unauthenticated, r);
    let rs256_header = r#"{"alg":"RS256","typ":"JWT","kid":"nf-ident"}"#;
    let tampered = {
        // Swap the payload for one granting more, keep the signature.
        let parts: Vec<&str> = good.split('.').collect();
        let forged = gotrue_token(
            &with(c.clone(), |m| m["app_metadata"]["roles"] = json!(["owner"])),
            "x".repeat(32).as_str(),
        );
        let fp: Vec<&str> = forged.split('.').collect();
        format!("{}.{}.{}", parts[0], fp[1], parts[2])
    };
    vec![
        Case {
            what: "valid GoTrue token with kid nf-ident: full identity",
            req: token_req(good.clone()),
            want: Want::Ok(|id| {
                assert_eq!(id.subject, "775a5344-0c6d-4dc6-9ac7-d2d646e071ec");
                assert_eq!(id.email, "test@test.com");
                assert_eq!(id.roles, ["member", "admin"]);
                assert_eq!(id.provider, "email");
                assert_eq!(id.issuer, "netlify");
                assert!(id.audiences.is_empty());
                let exp = id.expires_at.as_ref().unwrap().seconds;
                assert!((exp - now() - 3600).abs() < 5, "exp {exp}");
                let um = id.user_metadata.as_ref().unwrap();
                assert!(um.fields.contains_key("full_name"));
                let am = id.app_metadata.as_ref().unwrap();
                assert!(am.fields.contains_key("provider"));
            }),
        },
        Case {
            what: "valid token without kid (issued before Feb 2026)",
            req: token_req(sign(Algorithm::HS256, None, &c, SECRET)),
            want: Want::Ok(ok),
        },
        Case {
            what: "aud as a string, no expected audience",
            req: token_req(gotrue_token(
                &with(c.clone(), |m| m.insert("aud".into(), json!("netlify")).map(drop).unwrap_or(())),
                SECRET,
            )),
            want: Want::Ok(|id| assert_eq!(id.audiences, ["netlify"])),
        },
        Case {
            what: "aud as an array, no expected audience",
            req: token_req(gotrue_token(
                &with(c.clone(), |m| {
                    m.insert("aud".into(), json!(["a", "b"]));
                }),
                SECRET,
            )),
            want: Want::Ok(|id| assert_eq!(id.audiences, ["a", "b"])),
        },
        Case {
            what: "expected audience, aud string matches",
            req: VerifyRequest {
                issuer: "netlify-aud".into(),
                ..token_req(gotrue_token(
                    &with(c.clone(), |m| {
                        m.insert("aud".into(), json!("api.netlify.com"));
                    }),
                    SECRET,
                ))
            },
            want: Want::Ok(|id| assert_eq!(id.issuer, "netlify-aud")),
        },
        Case {
            what: "expected audience, aud array contains it",
            req: VerifyRequest {
                issuer: "netlify-aud".into(),
                ..token_req(gotrue_token(
                    &with(c.clone(), |m| {
                        m.insert("aud".into(), json!(["x", "api.netlify.com"]));
                    }),
                    SECRET,
                ))
            },
            want: Want::Ok(ok),
        },
        Case {
            what: "expected audience, aud is another",
            req: VerifyRequest {
                issuer: "netlify-aud".into(),
                ..token_req(gotrue_token(
                    &with(c.clone(), |m| {
                        m.insert("aud".into(), json!("other"));
                    }),
                    SECRET,
                ))
            },
            want: unauth("wrong_audience"),
        },
        Case {
            what: "expected audience, aud absent",
            req: VerifyRequest { issuer: "netlify-aud".into(), ..token_req(good.clone()) },
            want: unauth("wrong_audience"),
        },
        Case {
            what: "expired beyond the 30 s leeway",
            req: token_req(gotrue_token(
                &with(c.clone(), |m| {
                    m.insert("exp".into(), json!(now() - 120));
                }),
                SECRET,
            )),
            want: unauth("token_expired"),
        },
        Case {
            what: "expired within the leeway",
            req: token_req(gotrue_token(
                &with(c.clone(), |m| {
                    m.insert("exp".into(), json!(now() - 10));
                }),
                SECRET,
            )),
            want: Want::Ok(ok),
        },
        Case {
            what: "nbf in the future",
            req: token_req(gotrue_token(
                &with(c.clone(), |m| {
                    m.insert("nbf".into(), json!(now() + 600));
                }),
                SECRET,
            )),
            want: unauth("token_not_yet_valid"),
        },
        Case {
            what: "nbf within the leeway",
            req: token_req(gotrue_token(
                &with(c.clone(), |m| {
                    m.insert("nbf".into(), json!(now() + 5));
                }),
                SECRET,
            )),
            want: Want::Ok(ok),
        },
        Case {
            what: "no exp",
            req: token_req(gotrue_token(
                &with(c.clone(), |m| {
                    m.remove("exp");
                }),
                SECRET,
            )),
            want: unauth("missing_claim"),
        },
        Case {
            what: "no sub",
            req: token_req(gotrue_token(
                &with(c.clone(), |m| {
                    m.remove("sub");
                }),
                SECRET,
            )),
            want: unauth("missing_claim"),
        },
        Case {
            what: "alg none, empty signature",
            req: token_req(raw_token(r#"{"alg":"none"}"#, &c, b"")),
            want: unauth("unsupported_algorithm"),
        },
        Case {
            what: "alg None",
            req: token_req(raw_token(r#"{"alg":"None","typ":"JWT"}"#, &c, b"")),
            want: unauth("unsupported_algorithm"),
        },
        Case {
            what: "alg NONE with a signature",
            req: token_req(raw_token(r#"{"alg":"NONE"}"#, &c, b"sig")),
            want: unauth("unsupported_algorithm"),
        },
        Case {
            what: "HS512 signed with the right secret",
            req: token_req(sign(Algorithm::HS512, Some("nf-ident"), &c, SECRET)),
            want: unauth("unsupported_algorithm"),
        },
        Case {
            what: "RS256 header",
            req: token_req(raw_token(rs256_header, &c, &[7u8; 256])),
            want: unauth("unsupported_algorithm"),
        },
        Case {
            what: "wrong secret",
            req: token_req(gotrue_token(&c, "some-other-secret-0123456789")),
            want: unauth("bad_signature"),
        },
        Case {
            what: "payload swapped under a valid signature",
            req: token_req(tampered),
            want: unauth("bad_signature"),
        },
        Case {
            what: "previous secret still accepted",
            req: token_req(gotrue_token(&c, PREVIOUS)),
            want: Want::Ok(ok),
        },
        Case {
            what: "previous secret of another issuer is not",
            req: VerifyRequest { issuer: "ops".into(), ..token_req(gotrue_token(&c, PREVIOUS)) },
            want: unauth("bad_signature"),
        },
        Case {
            what: "cookie nf_jwt",
            req: headers_req(&[("cookie", format!("nf_jwt={good}; nf_refresh=abcdefghijklmnopqrstuv"))]),
            want: Want::Ok(ok),
        },
        Case {
            what: "Authorization: Bearer",
            req: headers_req(&[("authorization", format!("Bearer {good}"))]),
            want: Want::Ok(ok),
        },
        Case {
            what: "authorization: bearer (lower case)",
            req: headers_req(&[("Authorization", format!("bearer {good}"))]),
            want: Want::Ok(ok),
        },
        Case {
            what: "missing credential",
            req: VerifyRequest::default(),
            want: unauth("missing_credential"),
        },
        Case {
            what: "x-nf-identity-info is never a credential",
            req: headers_req(&[("x-nf-identity-info", "eyJ1c2VyIjp7InN1YiI6IjEifX0=".into())]),
            want: unauth("missing_credential"),
        },
        Case {
            what: "token plus a header credential",
            req: VerifyRequest {
                token: good.clone(),
                ..headers_req(&[("authorization", format!("Bearer {good}"))])
            },
            want: Want::Err(Code::InvalidArgument, "invalid_request"),
        },
        Case {
            what: "oversized token (17 KiB)",
            req: token_req(format!("{good}{}", "A".repeat(17 * 1024))),
            want: unauth("token_too_large"),
        },
        Case { what: "garbage", req: token_req("this is not a jwt".into()), want: unauth("malformed_token") },
        Case { what: "garbage with dots", req: token_req("a.b.c".into()), want: unauth("malformed_token") },
        Case {
            what: "signed payload that is not an object",
            req: token_req({
                let h = r#"{"alg":"HS256"}"#;
                let unsigned = raw_token(h, &json!([1, 2]), b"");
                let input = &unsigned[..unsigned.len() - 1];
                let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, SECRET.as_bytes());
                use base64::Engine;
                format!(
                    "{input}.{}",
                    base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .encode(aws_lc_rs::hmac::sign(&key, input.as_bytes()))
                )
            }),
            want: unauth("malformed_token"),
        },
        Case {
            what: "sub \"0\" is Netlify's operator token",
            req: token_req(gotrue_token(&json!({"exp": now() + 60, "sub": "0"}), SECRET)),
            want: unauth("system_principal"),
        },
        Case {
            what: "nil UUID is the system principal too",
            req: token_req(gotrue_token(
                &with(c.clone(), |m| {
                    m.insert("sub".into(), json!("00000000-0000-0000-0000-000000000000"));
                }),
                SECRET,
            )),
            want: unauth("system_principal"),
        },
        Case {
            what: "system principal where the issuer allows it",
            req: VerifyRequest {
                issuer: "ops".into(),
                ..token_req(gotrue_token(&json!({"exp": now() + 60, "sub": "0"}), SECRET))
            },
            want: Want::Ok(|id| assert_eq!(id.subject, "0")),
        },
        Case {
            what: "roles only in user_metadata never grant",
            req: VerifyRequest {
                required_roles: vec!["admin".into()],
                ..token_req(gotrue_token(
                    &with(c.clone(), |m| {
                        m.insert("app_metadata".into(), json!({"provider": "email"}));
                        m.insert("user_metadata".into(), json!({"roles": ["admin"]}));
                    }),
                    SECRET,
                ))
            },
            want: Want::Err(Code::PermissionDenied, "insufficient_role"),
        },
        Case {
            what: "roles from user_metadata are not reported either",
            req: token_req(gotrue_token(
                &with(c.clone(), |m| {
                    m.insert("app_metadata".into(), json!({"provider": "github"}));
                    m.insert("user_metadata".into(), json!({"roles": ["admin"]}));
                }),
                SECRET,
            )),
            want: Want::Ok(|id| {
                assert!(id.roles.is_empty());
                assert_eq!(id.provider, "github");
            }),
        },
        Case {
            what: "required role from app_metadata.roles",
            req: VerifyRequest {
                required_roles: vec!["editor".into(), "admin".into()],
                ..token_req(good.clone())
            },
            want: Want::Ok(ok),
        },
        Case {
            what: "required role from app_metadata.authorization.roles",
            req: VerifyRequest {
                required_roles: vec!["ops".into()],
                ..token_req(gotrue_token(
                    &with(c.clone(), |m| {
                        m.insert(
                            "app_metadata".into(),
                            json!({"provider": "email", "authorization": {"roles": ["ops", 5]}}),
                        );
                    }),
                    SECRET,
                ))
            },
            want: Want::Ok(|id| assert_eq!(id.roles, ["ops"])),
        },
        Case {
            what: "required role absent",
            req: VerifyRequest { required_roles: vec!["owner".into()], ..token_req(good.clone()) },
            want: Want::Err(Code::PermissionDenied, "insufficient_role"),
        },
        Case {
            what: "unknown issuer name",
            req: VerifyRequest { issuer: "nope".into(), ..token_req(good.clone()) },
            want: Want::Err(Code::InvalidArgument, "unknown_issuer"),
        },
        Case {
            what: "routed by iss to the functions issuer",
            req: token_req(gotrue_token(
                &json!({"iss": FN_ISS, "aud": "backend", "sub": "u1", "exp": now() + 300}),
                FN_SECRET,
            )),
            want: Want::Ok(|id| assert_eq!(id.issuer, "functions")),
        },
        Case {
            what: "claimed by iss and rejected: never falls through to the default issuer",
            req: token_req(gotrue_token(
                &json!({"iss": FN_ISS, "aud": "backend", "sub": "u1", "exp": now() + 300}),
                SECRET,
            )),
            want: unauth("bad_signature"),
        },
        Case {
            what: "functions issuer requires its iss",
            req: VerifyRequest {
                issuer: "functions".into(),
                ..token_req(gotrue_token(
                    &json!({"aud": "backend", "sub": "u1", "exp": now() + 300}),
                    FN_SECRET,
                ))
            },
            want: unauth("missing_claim"),
        },
        Case {
            what: "functions issuer checks aud",
            req: token_req(gotrue_token(
                &json!({"iss": FN_ISS, "aud": "frontend", "sub": "u1", "exp": now() + 300}),
                FN_SECRET,
            )),
            want: unauth("wrong_audience"),
        },
        Case {
            what: "unknown iss goes to the default issuer, which verifies it",
            req: token_req(gotrue_token(
                &with(c.clone(), |m| {
                    m.insert("iss".into(), json!("https://elsewhere"));
                }),
                SECRET,
            )),
            want: Want::Ok(|id| assert_eq!(id.issuer, "netlify")),
        },
    ]
}

#[tokio::test]
async fn verify_table() {
    let server = TestServer::start(&standard_config()).await;
    let mut client = server.client().await;
    let mut failures = Vec::new();
    for case in cases() {
        let got = client.verify(case.req).await;
        match (&case.want, got) {
            (Want::Ok(check), Ok(resp)) => {
                let id = resp.into_inner().identity.expect("identity");
                if let Err(p) = std::panic::catch_unwind(|| check(&id)) {
                    failures.push(format!(
                        "{}: identity check failed: {:?}",
                        case.what,
                        p.downcast_ref::<String>()
                    ));
                }
            }
            (Want::Ok(_), Err(status)) => {
                failures.push(format!("{}: denied {:?} {:?}", case.what, status.code(), reason(&status)))
            }
            (Want::Err(code, r), Ok(_)) => {
                failures.push(format!("{}: granted, want {code:?} {r}", case.what))
            }
            (Want::Err(code, r), Err(status)) => {
                if status.code() != *code || reason(&status).as_deref() != Some(*r) {
                    failures.push(format!(
                        "{}: got {:?} {:?}, want {code:?} {r}",
                        case.what,
                        status.code(),
                        reason(&status)
                    ));
                }
                let info = status.get_details_error_info();
                if info.map(|i| i.domain) != Some("authgate".into()) {
                    failures.push(format!("{}: ErrorInfo domain is not authgate", case.what));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} case(s) failed:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test]
async fn messages_never_echo_the_token() {
    let server = TestServer::start(&standard_config()).await;
    let mut client = server.client().await;
    let expired = gotrue_token(
        &with(gotrue_claims(), |m| {
            m.insert("exp".into(), json!(now() - 999));
        }),
        SECRET,
    );
    for token in [expired.clone(), format!("{expired}xx"), "garbage-token-value".to_string()] {
        let status = client.verify(token_req(token.clone())).await.unwrap_err();
        let sig = token.rsplit('.').next().unwrap();
        assert!(
            !status.message().contains(sig) && !status.message().contains("test@test.com"),
            "{}",
            status.message()
        );
    }
}

#[tokio::test]
async fn oversized_message_is_refused_without_crashing() {
    let server = TestServer::start(&standard_config()).await;
    let mut client = server.client().await;
    let huge = VerifyRequest { token: "A".repeat(200 * 1024), ..Default::default() };
    let status = client.verify(huge).await.unwrap_err();
    // RESOURCE_EXHAUSTED, as the README says (tonic alone answers OUT_OF_RANGE).
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    // The server is still fine afterwards.
    let ok = client.verify(token_req(gotrue_token(&gotrue_claims(), SECRET))).await;
    assert!(ok.is_ok(), "{ok:?}");
}

#[tokio::test]
async fn hostile_transport_input_is_refused_and_the_server_survives() {
    let server = TestServer::start(&standard_config()).await;
    const VERIFY: &str = "/authgate.v1.AuthService/Verify";
    let cases: Vec<(&str, bytes::Bytes, &[&str])> = vec![
        // INTERNAL (13) is tonic's answer to a body it cannot decode.
        ("garbage protobuf", grpc_frame(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]), &["13"]),
        ("field with a truncated length", grpc_frame(&[0x0a, 0x80, 0x80, 0x04]), &["13"]),
        ("token that is not UTF-8", grpc_frame(&[0x0a, 0x02, 0xc3, 0x28]), &["13"]),
        ("frame shorter than its length prefix", bytes::Bytes::from_static(&[0, 0, 0, 1, 0, 0x0a]), &["13"]),
        ("compressed flag without compression", bytes::Bytes::from_static(&[1, 0, 0, 0, 0]), &["13", "12"]),
        ("length prefix of 4 GiB", bytes::Bytes::from_static(&[0, 0xff, 0xff, 0xff, 0xff]), &["8"]),
    ];
    for (what, body, want) in cases {
        let got = raw_grpc_call(server.grpc, VERIFY, body).await;
        assert!(matches!(&got, Ok(s) if want.contains(&s.as_str())), "{what}: {got:?}, want one of {want:?}");
    }

    // A metadata block far above the header-list limit is refused by HTTP/2.
    let mut client = server.client().await;
    let mut req = tonic::Request::new(token_req(gotrue_token(&gotrue_claims(), SECRET)));
    req.metadata_mut().insert("x-padding", "p".repeat(200 * 1024).parse().unwrap());
    let err = client.verify(req).await.unwrap_err();
    assert_ne!(err.code(), Code::Ok);

    // The server still answers correctly on a fresh connection.
    let mut client = server.client().await;
    let ok = client.verify(token_req(gotrue_token(&gotrue_claims(), SECRET))).await;
    assert!(ok.is_ok(), "{ok:?}");
}
