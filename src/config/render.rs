//! The effective configuration, secrets redacted.

use super::*;
use toml::Value;

impl Config {
    /// The effective configuration as TOML, secrets replaced by a marker.
    pub fn render_redacted(&self) -> String {
        let mut out = String::new();
        let q = |s: &str| Value::String(s.to_string()).to_string();
        let d = |d: Duration| q(&humantime::format_duration(d).to_string());
        if let Mode::Dev { secret_origin } = &self.mode {
            out.push_str(&format!("# zero-config dev mode; dev secret from {secret_origin}\n"));
        }
        out.push_str("[server]\n");
        out.push_str(&format!("grpc_addr = {}\n", q(&self.grpc_addr.to_string())));
        out.push_str(&format!("http_addr = {}\n", q(&self.http_addr.to_string())));
        out.push_str(&format!("max_token_bytes = {}\n", self.max_token_bytes));
        out.push_str(&format!("max_message_bytes = {}\n", self.max_message_bytes));
        out.push_str(&format!("max_check_request_bytes = {}\n", self.max_check_request_bytes));
        out.push_str(&format!("shutdown_grace = {}\n", d(self.shutdown_grace)));
        out.push_str(&format!("drain_delay = {}\n", d(self.drain_delay)));
        out.push_str(&format!("decision_deadline = {}\n", d(self.decision_deadline)));
        out.push_str(&format!("watch_interval = {}\n", d(self.watch_interval)));
        out.push_str(&format!("trusted_proxy_hops = {}\n", self.trusted_proxy_hops));
        out.push_str(&format!("plaintext = {}\n", q(self.plaintext.as_str())));
        out.push_str(&format!("trust_forwarded_client_cert = {}\n", self.trust_forwarded_client_cert));
        if let Some(a) = self.webhook_addr {
            out.push_str(&format!("webhook_addr = {}\n", q(&a.to_string())));
        }
        let l = &self.limits;
        out.push_str(&format!(
            "max_connections = {}\nmax_streams_per_connection = {}\nmax_in_flight = {}\n",
            l.max_connections, l.max_streams_per_connection, l.max_in_flight
        ));
        out.push_str(&format!(
            "request_timeout = {}\nhandshake_timeout = {}\nhttp_header_timeout = {}\nkeepalive_interval = {}\nkeepalive_timeout = {}\n",
            d(l.request_timeout),
            d(l.handshake_timeout),
            d(l.http_header_timeout),
            d(l.keepalive_interval),
            d(l.keepalive_timeout)
        ));
        out.push_str("\n[log]\n");
        let format = match self.log.format {
            LogFormat::Human => "human",
            LogFormat::Json => "json",
        };
        out.push_str(&format!(
            "format = {}\nlevel = {}\nqueue_lines = {}\n",
            q(format),
            q(&self.log.level),
            self.log.queue_lines
        ));
        out.push_str(&format!(
            "\n[cache]\nmax_entries = {}\nmax_ttl = {}\n",
            self.cache.max_entries,
            d(self.cache.max_ttl)
        ));
        if let Some(s) = &self.store {
            out.push_str("\n[store]\n");
            match &s.url {
                StoreUrl::Postgres(_) => out.push_str("url = \"[redacted: postgres URL]\"\n"),
                StoreUrl::Sqlite(p) => {
                    out.push_str(&format!("url = {}\n", q(&format!("sqlite://{}", p.display()))))
                }
            }
            if let Some(schema) = &s.schema {
                out.push_str(&format!("schema = {}\n", q(schema)));
            }
            for (k, v) in [
                ("max_staleness", s.max_staleness),
                ("cache_ttl", s.cache_ttl),
                ("poll_interval", s.poll_interval),
                ("touch_interval", s.touch_interval),
                ("timeout", s.timeout),
            ] {
                out.push_str(&format!("{k} = {}\n", d(v)));
            }
            out.push_str(&format!(
                "cache_max_entries = {}\nqueue_capacity = {}\nrevocations = {}\n",
                s.cache_max_entries, s.queue_capacity, s.revocations
            ));
        }
        if let Some(p) = &self.signed_proxy {
            let list = |v: &[String]| v.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ");
            out.push_str("\n[signed_proxy]\n");
            out.push_str(&format!("secret = \"[redacted: {} bytes]\"\n", p.secret.len()));
            if let Some(prev) = &p.previous_secret {
                out.push_str(&format!("previous_secret = \"[redacted: {} bytes]\"\n", prev.len()));
            }
            out.push_str(&format!(
                "site_ids = [{}]\nsite_urls = [{}]\ndeploy_contexts = [{}]\n",
                list(&p.site_ids),
                list(&p.site_urls),
                list(&p.deploy_contexts)
            ));
            out.push_str(&format!("leeway = {}\nmax_lifetime = {}\n", d(p.leeway), d(p.max_lifetime)));
            out.push_str(&format!(
                "replay_protection = {}\nreplay_cache_max_entries = {}\n",
                p.replay_protection, p.replay_cache_max_entries
            ));
        }
        if let Some(x) = &self.exchange {
            let list = |v: &[String]| v.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ");
            out.push_str(&format!(
                "\n[exchange]\nissuer_url = {}\npublic_base_url = {}\njwks_max_age = {}\n",
                q(&x.issuer_url),
                q(&x.public_base_url),
                d(x.jwks_max_age)
            ));
            out.push_str(&format!(
                "mint_cache_max_entries = {}\nmint_cache_min_remaining = {}\nleeway = {}\n",
                x.mint_cache_max_entries,
                x.mint_cache_min_remaining,
                d(x.leeway)
            ));
            if let Some(ns) = &x.claims_namespace {
                out.push_str(&format!("claims_namespace = {}\n", q(ns)));
            }
            for k in &x.keys {
                out.push_str(&format!(
                    "\n[[exchange.keys]]\nkid = {}\nalg = {}\nstate = {}\nprivate_key = \"[redacted: {} bytes]\"\n",
                    q(&k.kid),
                    q(k.alg.as_str()),
                    q(k.state.as_str()),
                    k.private_key.as_ref().map_or(0, Secret::len)
                ));
            }
            for a in &x.audiences {
                out.push_str(&format!(
                    "\n[[exchange.audiences]]\nname = {}\nscopes = [{}]\ndefault_scopes = [{}]\nmax_ttl = {}\n",
                    q(&a.name),
                    list(&a.scopes),
                    list(&a.default_scopes),
                    d(a.max_ttl)
                ));
                out.push_str(&format!(
                    "issuers = [{}]\nrequired_roles = [{}]\nallow_ttl_beyond_subject = {}\ncallers = [{}]\n",
                    list(&a.issuers),
                    list(&a.required_roles),
                    a.allow_ttl_beyond_subject,
                    list(&a.callers)
                ));
                let rs: Vec<String> =
                    a.role_scopes.iter().map(|(r, v)| format!("{} = [{}]", q(r), list(v))).collect();
                out.push_str(&format!("role_scopes = {{ {} }}\n", rs.join(", ")));
            }
        }
        if let Some(tls) = &self.tls {
            let p = |p: &std::path::Path| q(&p.display().to_string());
            out.push_str(&format!(
                "\n[tls]\ncert_file = {}\nkey_file = {}\n",
                p(&tls.cert_file),
                p(&tls.key_file)
            ));
            if let Some(ca) = &tls.client_ca_file {
                out.push_str(&format!("client_ca_file = {}\n", p(ca)));
            }
            out.push_str(&format!(
                "grpc_client_auth = {}\nhttp_client_auth = {}\nreload_interval = {}\n",
                q(tls.grpc_client_auth.as_str()),
                q(tls.http_client_auth.as_str()),
                d(tls.reload_interval)
            ));
        }
        let t = &self.tracing;
        out.push_str(&format!(
            "\n[tracing]\n# export {}\n",
            if t.enabled { "on" } else { "off (no endpoint configured)" }
        ));
        if let Some(e) = &t.otlp_endpoint {
            out.push_str(&format!("otlp_endpoint = {}\n", q(e)));
        }
        out.push_str(&format!(
            "protocol = {}\nsample_ratio = {}\nservice_name = {}\n",
            q(match t.protocol {
                OtlpProtocol::HttpProtobuf => "http/protobuf",
                OtlpProtocol::HttpJson => "http/json",
            }),
            t.sample_ratio,
            q(&t.service_name)
        ));
        let e = &self.edge;
        let list = |v: &[String]| v.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ");
        let route = |p: &RoutePolicy| {
            let mut out = format!(
                "issuer = {}\nroles = [{}]\nsigned_proxy = {}\nremove_headers = [{}]\n",
                q(p.issuer.as_deref().unwrap_or("")),
                list(&p.roles),
                q(if p.require_signed_proxy { "required" } else { "optional" }),
                list(&p.remove_headers)
            );
            if let Some(a) = &p.exchange_audience {
                out.push_str(&format!("exchange_audience = {}\n", q(a)));
            }
            out
        };
        out.push_str("\n[edge]\n");
        out.push_str(&route(&e.default));
        out.push_str(&format!("strip_cookies = [{}]\n", list(&e.strip_cookies)));
        out.push_str(&format!(
            "subject_header = {}\nemail_header = {}\nroles_header = {}\nissuer_header = {}\nclaims_header = {}\n",
            q(&e.headers.subject),
            q(&e.headers.email),
            q(&e.headers.roles),
            q(&e.headers.issuer),
            q(&e.headers.claims)
        ));
        for (name, policy) in &e.routes {
            out.push_str(&format!("\n[edge.routes.{name}]\n"));
            out.push_str(&route(policy));
        }
        let list = |v: &[String]| v.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ");
        for c in &self.callers {
            let (key, value) = match &c.pattern {
                CallerPattern::Exact(e) => ("match", e),
                CallerPattern::Prefix(p) => ("match_prefix", p),
            };
            out.push_str(&format!("\n[[callers]]\nname = {}\n{key} = {}\n", q(&c.name), q(value)));
        }
        let a = &self.access;
        let entries = [
            ("verify", &a.verify),
            ("exchange", &a.exchange),
            ("ext_authz", &a.ext_authz),
            ("forward_auth", &a.forward_auth),
            ("admin", &a.admin),
        ];
        if entries.iter().any(|(_, v)| v.is_some()) {
            out.push_str("\n[access]\n");
            for (key, names) in entries {
                if let Some(names) = names {
                    out.push_str(&format!("{key} = [{}]\n", list(names)));
                }
            }
        }
        let issuers = self.issuers.iter().map(|i| ("issuers", i));
        for (list, i) in issuers.chain(self.caller_issuers.iter().map(|i| ("caller_issuers", i))) {
            out.push_str(&format!("\n[[{list}]]\n"));
            out.push_str(&format!("name = {}\nkind = {}\n", q(&i.name), q(i.kind.as_str())));
            match &i.kind {
                IssuerKind::Hs256(h) => {
                    out.push_str(&format!("secret = \"[redacted: {} bytes]\"\n", h.secret.len()));
                    if let Some(p) = &h.previous_secret {
                        out.push_str(&format!("previous_secret = \"[redacted: {} bytes]\"\n", p.len()));
                    }
                    out.push_str(&format!("allow_system_principal = {}\n", h.allow_system_principal));
                }
                IssuerKind::Jwks(j) => {
                    match &j.source {
                        KeySource::Discovery(u) => {
                            out.push_str(&format!("# keys by discovery from {}\n", q(u)))
                        }
                        KeySource::Url(u) => out.push_str(&format!("jwks_url = {}\n", q(u))),
                        KeySource::JwksDocument(_) => out.push_str("# keys from jwks_file (read at load)\n"),
                        KeySource::Pems(p) => {
                            let kids: Vec<&str> = p.iter().map(|(k, _)| k.as_str()).collect();
                            out.push_str(&format!("# keys from public_key_files: {kids:?}\n"))
                        }
                    }
                    let algs: Vec<String> = j.algorithms.iter().map(|a| q(a.as_str())).collect();
                    out.push_str(&format!("algorithms = [{}]\nrequired = {}\n", algs.join(", "), j.required));
                    for (k, v) in [
                        ("fetch_timeout", j.fetch_timeout),
                        ("min_refresh_interval", j.min_refresh_interval),
                        ("max_refresh_interval", j.max_refresh_interval),
                        ("refetch_cooldown", j.refetch_cooldown),
                        ("max_staleness", j.max_staleness),
                    ] {
                        out.push_str(&format!("{k} = {}\n", d(v)));
                    }
                    let rc: Vec<String> =
                        j.require_claims.iter().map(|(k, v)| format!("{} = {}", q(k), q(v))).collect();
                    out.push_str(&format!(
                        "max_response_bytes = {}\nallow_anonymous = {}\nrequire_claims = {{ {} }}\n",
                        j.max_response_bytes,
                        j.allow_anonymous,
                        rc.join(", ")
                    ));
                }
                IssuerKind::NetlifyIdentity(n) => {
                    out.push_str(&format!("identity_url = {}\n", q(&n.identity_url)));
                    for (k, v) in [
                        ("connect_timeout", n.connect_timeout),
                        ("timeout", n.timeout),
                        ("queue_timeout", n.queue_timeout),
                        ("cache_ttl", n.cache_ttl),
                        ("negative_cache_ttl", n.negative_cache_ttl),
                    ] {
                        out.push_str(&format!("{k} = {}\n", d(v)));
                    }
                    out.push_str(&format!(
                        "max_concurrent_requests = {}\nmax_concurrent_per_client = {}\ncache_max_entries = {}\ncache_max_bytes = {}\nmax_response_bytes = {}\n",
                        n.max_concurrent_requests,
                        n.max_concurrent_per_client,
                        n.cache_max_entries,
                        n.cache_max_bytes,
                        n.max_response_bytes
                    ));
                }
            }
            out.push_str(&format!("leeway = {}\n", d(i.leeway)));
            let list = |v: Vec<String>| v.iter().map(|s| q(s)).collect::<Vec<_>>().join(", ");
            out.push_str(&format!("audiences = [{}]\n", list(i.audiences.clone())));
            if let Some(iss) = &i.expected_iss {
                out.push_str(&format!("iss = {}\n", q(iss)));
            }
            out.push_str(&format!(
                "role_claims = [{}]\n",
                list(i.role_claims.iter().map(ClaimPath::as_dotted).collect())
            ));
            out.push_str(&format!("default = {}\n", i.default));
            out.push_str(&format!("require_signed_proxy = {}\n", i.require_signed_proxy));
            out.push_str(&format!(
                "roles_source = {}\nclaims_from_store = {}\naccess_token_ttl = {}\non_stale_revocations = {}\n",
                q(i.store.roles_source.as_str()),
                i.store.claims_from_store,
                d(i.store.access_token_ttl),
                q(if i.store.allow_stale_revocations { "allow" } else { "deny" })
            ));
            if let Some(w) = &i.store.webhook {
                out.push_str(&format!("webhook_secret = \"[redacted: {} bytes]\"\n", w.secret.len()));
                if let Some(id) = &w.instance_id {
                    out.push_str(&format!("webhook_instance_id = {}\n", q(id)));
                }
                let on_error = match w.on_store_error {
                    OnStoreError::Deny => "deny",
                    OnStoreError::Allow => "allow",
                };
                out.push_str(&format!(
                    "webhook_max_age = {}\non_store_error = {}\n",
                    d(w.max_age),
                    q(on_error)
                ));
            }
        }
        out
    }
}
