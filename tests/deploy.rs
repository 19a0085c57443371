//! The deployment examples stay valid: the example config passes the same
//! validation the server runs, and the Kubernetes manifest passes
//! kubernetes-validate --strict (offline schemas).

mod common;

use common::{authgate_command, repo_root};
use std::process::Command;

#[test]
fn example_config_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let netlify = dir.path().join("n");
    let functions = dir.path().join("f");
    std::fs::write(&netlify, "netlify-jwt-secret-0123456789\n").unwrap();
    std::fs::write(&functions, "functions-secret-0123456789\n").unwrap();
    let (cert, key, ca) = (dir.path().join("tls.crt"), dir.path().join("tls.key"), dir.path().join("ca.crt"));
    let key_pair = rcgen::KeyPair::generate().unwrap();
    let self_signed =
        rcgen::CertificateParams::new(vec!["authgate".to_string()]).unwrap().self_signed(&key_pair).unwrap();
    std::fs::write(&cert, self_signed.pem()).unwrap();
    std::fs::write(&key, key_pair.serialize_pem()).unwrap();
    std::fs::write(&ca, self_signed.pem()).unwrap();
    let out = authgate_command()
        .args(["check-config", "--config"])
        .arg(repo_root().join("deploy/authgate.example.toml"))
        .env("AUTHGATE_TLS_CERT_FILE", &cert)
        .env("AUTHGATE_TLS_KEY_FILE", &key)
        .env("AUTHGATE_TLS_CLIENT_CA_FILE", &ca)
        .env("AUTHGATE_ISSUER_NETLIFY_SECRET_FILE", &netlify)
        .env("AUTHGATE_ISSUER_FUNCTIONS_SECRET_FILE", &functions)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("name = \"functions\"") && !stdout.contains("0123456789"), "{stdout}");
    assert!(stdout.contains("name = \"supabase\"") && stdout.contains("kind = \"jwks\""), "{stdout}");
}

/// Each Kustomize overlay of deploy/k8s renders (`kubectl kustomize`) and
/// passes kubernetes-validate --strict; production has every kind operators
/// rely on, dev the core; the settings that matter are in the sources.
#[test]
fn kubernetes_manifests_are_valid() {
    let bin = repo_root().join(".venv/bin/kubernetes-validate");
    assert!(bin.exists(), "{} missing: run scripts/test.sh", bin.display());
    let dir = tempfile::tempdir().unwrap();
    let mut rendered = Vec::new();
    for overlay in ["production", "dev"] {
        let out = Command::new("kubectl")
            .args(["kustomize"])
            .arg(repo_root().join("deploy/k8s/overlays").join(overlay))
            .output()
            .expect("kubectl (scripts/kubectl-env.sh installs it)");
        assert!(
            out.status.success(),
            "kubectl kustomize {overlay}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let file = dir.path().join(format!("{overlay}.yaml"));
        std::fs::write(&file, &out.stdout).unwrap();
        rendered.push((overlay, String::from_utf8(out.stdout).unwrap(), file));
    }
    let files: Vec<_> = rendered.iter().map(|(_, _, f)| f.clone()).collect();
    let out = Command::new(bin).arg("--strict").args(&files).output().unwrap();
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{report}");
    let kinds = |overlay: &str| -> Vec<&str> {
        match overlay {
            "production" => vec![
                "Deployment",
                "Service",
                "ConfigMap",
                "PodDisruptionBudget",
                "HorizontalPodAutoscaler",
                "NetworkPolicy",
                "Ingress",
            ],
            _ => vec!["Deployment", "Service", "ConfigMap", "NetworkPolicy"],
        }
    };
    for (overlay, text, _) in &rendered {
        for kind in kinds(overlay) {
            assert!(text.contains(&format!("kind: {kind}\n")), "no {kind} in the {overlay} overlay");
            assert!(
                report.contains(&format!("resource {}/", kind.to_lowercase())),
                "{kind} not validated: {report}"
            );
        }
    }
    let (_, production, _) = &rendered[0];
    let (_, dev, _) = &rendered[1];
    assert!(production.contains("replicas: 3") && production.contains("image: authgate:0.1.0"));
    assert!(dev.contains("replicas: 1") && !dev.contains("kind: Ingress"), "dev exposes no webhook route");
    let mut sources = String::new();
    for sub in ["base", "overlays/production", "overlays/dev"] {
        for entry in std::fs::read_dir(repo_root().join("deploy/k8s").join(sub)).unwrap() {
            sources += &std::fs::read_to_string(entry.unwrap().path()).unwrap();
        }
    }
    for needle in [
        "runAsNonRoot: true",
        "readOnlyRootFilesystem: true",
        "capabilities: {drop: [ALL]}",
        "httpGet: {path: /healthz, port: http, scheme: HTTPS}",
        "httpGet: {path: /readyz, port: http, scheme: HTTPS}",
        "secretName: authgate-tls",
        "replicas: 2",
    ] {
        assert!(sources.contains(needle), "deploy/k8s lacks {needle:?}");
    }
}

/// The config inside the ConfigMap passes the server's own validation
/// (with the Secret's files as the Deployment mounts them).
#[test]
fn configmap_config_is_valid() {
    let manifest = std::fs::read_to_string(repo_root().join("deploy/k8s/base/configmap.yaml")).unwrap();
    let toml: String = manifest
        .split_once("authgate.toml: |\n")
        .unwrap()
        .1
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    std::fs::write(secrets.join("netlify-jwt-secret"), "netlify-jwt-secret-0123456789\n").unwrap();
    std::fs::write(secrets.join("netlify-webhook-secret"), "netlify-webhook-secret-0123456789\n").unwrap();
    std::fs::write(secrets.join("store-url"), "postgres://authgate:pw@postgres.db.svc:5432/app\n").unwrap();
    std::fs::write(
        secrets.join("exchange-2026-11.pem"),
        authgate::testing::generate_pkcs8_pem(authgate::config::MintAlg::EdDSA).unwrap(),
    )
    .unwrap();
    // The TLS Secret as cert-manager writes it: tls.crt, tls.key, ca.crt.
    let tls = dir.path().join("tls");
    std::fs::create_dir(&tls).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["authgate.default.svc".to_string()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(tls.join("tls.crt"), cert.pem()).unwrap();
    std::fs::write(tls.join("tls.key"), key.serialize_pem()).unwrap();
    std::fs::write(tls.join("ca.crt"), cert.pem()).unwrap();
    let cfg = dir.path().join("authgate.toml");
    let toml = toml.replace("/var/run/secrets/authgate-tls", tls.to_str().unwrap());
    std::fs::write(&cfg, toml.replace("/var/run/secrets/authgate", secrets.to_str().unwrap())).unwrap();
    let out = authgate_command().args(["check-config", "--config"]).arg(&cfg).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// deploy/Dockerfile is built by .ci/run where a Docker engine runs; this
/// machine kind has none, so its structure is checked everywhere: two
/// stages, a locked release build of files that exist and are enough (the
/// package resolves, locked and offline, from the copied files alone), a
/// non-root user in the final stage, both ports, exec-form entrypoint, and
/// a .dockerignore that keeps local secrets out.
#[test]
fn dockerfile_structure() {
    let text = std::fs::read_to_string(repo_root().join("deploy/Dockerfile")).unwrap();
    // Instructions with continuation lines joined, comments dropped.
    let joined = text.replace("\\\n", " ");
    let lines: Vec<&str> =
        joined.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    let stages: Vec<&str> = lines.iter().filter(|l| l.starts_with("FROM ")).copied().collect();
    assert_eq!(stages.len(), 2, "{stages:?}");
    assert!(stages.iter().all(|s| s.contains(" AS ")), "every stage is named: {stages:?}");
    let final_start = lines.iter().rposition(|l| l.starts_with("FROM ")).unwrap();
    let (build, runtime) = lines.split_at(final_start);
    assert!(build.iter().any(|l| l.starts_with("RUN cargo build --release --locked")), "{build:?}");
    let context = tempfile::tempdir().unwrap();
    for l in build.iter().filter(|l| l.starts_with("COPY ")) {
        let parts: Vec<&str> = l.split_whitespace().collect();
        for src in &parts[1..parts.len() - 1] {
            assert!(repo_root().join(src).exists(), "COPY of a missing path {src}");
            assert!(![".authgate", "target", ".venv"].contains(src), "COPY of {src}");
            let copied = Command::new("cp").arg("-r").arg(repo_root().join(src)).arg(context.path()).status();
            assert!(copied.unwrap().success(), "copy {src}");
        }
    }
    let metadata = Command::new(env!("CARGO"))
        .args(["metadata", "--locked", "--offline", "--no-deps", "--format-version", "1"])
        .current_dir(context.path())
        .output()
        .unwrap();
    assert!(
        metadata.status.success(),
        "the build stage's files do not make a package: {}",
        String::from_utf8_lossy(&metadata.stderr)
    );
    let user = runtime.iter().find_map(|l| l.strip_prefix("USER ")).expect("final stage sets USER");
    let uid = user.split(':').next().unwrap();
    assert!(uid.parse::<u32>().is_ok_and(|u| u != 0), "final stage runs as {user}");
    assert!(
        !runtime.iter().any(|l| l.starts_with("FROM rust")),
        "runtime stage must not be the toolchain image"
    );
    assert!(
        runtime.iter().any(|l| l.starts_with("COPY --from=build ")),
        "binary copied from the build stage"
    );
    let expose = runtime.iter().find_map(|l| l.strip_prefix("EXPOSE ")).expect("EXPOSE");
    for port in ["50051", "8080"] {
        assert!(expose.split_whitespace().any(|p| p == port), "port {port} not exposed");
        assert!(joined.contains(&format!("0.0.0.0:{port}")), "not listening on all interfaces at {port}");
    }
    let entry = runtime.iter().find_map(|l| l.strip_prefix("ENTRYPOINT ")).expect("ENTRYPOINT");
    assert!(serde_json::from_str::<Vec<String>>(entry).is_ok(), "ENTRYPOINT is not exec form: {entry}");
    let ignore = std::fs::read_to_string(repo_root().join(".dockerignore")).unwrap();
    for path in ["target", ".authgate", ".venv"] {
        assert!(ignore.lines().any(|l| l.trim() == path), ".dockerignore lacks {path}");
    }
}
