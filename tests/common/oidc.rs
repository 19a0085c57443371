//! The pinned OpenID provider (tests/oidc, oidc-provider on Node) as a
//! child process.

use super::repo_root;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A running oidc-provider process.
pub struct Provider {
    child: Child,
    pub port: u16,
    pub keys: PathBuf,
    pub issuer: String,
}

impl Provider {
    /// Starts the provider on `port` (0: any free port) with the keys in
    /// `keys` (created on first start); `rotate` adds ES256 key `es-2`.
    pub fn start(port: u16, keys: &Path, rotate: bool) -> Provider {
        let port = if port == 0 { free_port() } else { port };
        let script = repo_root().join("tests/oidc/provider.mjs");
        assert!(
            repo_root().join("tests/oidc/node_modules/oidc-provider").exists(),
            "oidc-provider missing: run scripts/test.sh (scripts/node-env.sh installs it)"
        );
        let mut cmd = Command::new("timeout");
        cmd.arg("300").arg("node").arg(script).arg(port.to_string()).arg(keys);
        if rotate {
            cmd.arg("rotate");
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("start node");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("provider output");
        let started: Value = serde_json::from_str(&line).unwrap_or_else(|_| panic!("provider said {line:?}"));
        Provider { child, port, keys: keys.to_path_buf(), issuer: started["issuer"].as_str().unwrap().into() }
    }

    /// SIGTERM to `timeout`, which passes it on to node (a SIGKILL would
    /// orphan node, still holding the port).
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }

    pub fn restart(&mut self, rotate: bool) {
        self.stop();
        *self = Provider::start(self.port, &self.keys.clone(), rotate);
    }

    /// A JWT access token for `resource` (client_credentials).
    pub async fn token(&self, resource: &str) -> String {
        let resp = reqwest::Client::new()
            .post(format!("{}/token", self.issuer))
            .basic_auth("backend", Some("backend-secret-0123456789"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=client_credentials&scope=orders%3Aread&resource={}",
                url::form_urlencoded::byte_serialize(resource.as_bytes()).collect::<String>()
            ))
            .send()
            .await
            .expect("token request");
        let body: Value = serde_json::from_slice(&resp.bytes().await.expect("token response")).unwrap();
        body["access_token"].as_str().unwrap_or_else(|| panic!("no token: {body}")).to_string()
    }

    /// The public JWKS as served.
    pub async fn jwks(&self) -> Value {
        let body = reqwest::get(format!("{}/jwks", self.issuer)).await.unwrap().bytes().await.unwrap();
        serde_json::from_slice(&body).unwrap()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}
