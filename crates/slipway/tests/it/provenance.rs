//! Provenance end to end, as CI and an operator would use it: a key made with `artifact
//! keygen`, an artifact pushed and attested with `artifact attest`, and deploys to a protected
//! environment — the attested artifact passes preflight with the key named in its event; an
//! unsigned artifact and one signed by a key the server does not trust are refused with the
//! reason and a hint.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use slipway_testkit::server::SpawnedServer;

use crate::support::{BIN, api_get, json, push_and_release, wait_until};

const COMMIT: &str = "3f2a9c1";
const BUILDER: &str = "https://ci.example.com/pipelines/idp";

/// `slipway artifact keygen` run as CI's administrator would, before any server exists: the
/// `[provenance]` entry it prints.
fn keygen(dir: &Path, name: &str) -> String {
    let out = dir.join(format!("{name}.key"));
    let output = Command::new(BIN)
        .args(["artifact", "keygen", "--name", name, "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&out).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

fn config(entry: &str) -> String {
    format!(
        r#"
[server]
data_dir = "data"

[[service]]
name = "idp"
start = "bin/server --port $PORT"

[environment.prod]
target = "command"
protected = true
go_no_go = false
[environment.prod.command]
launch = "true"
stop = "true"
observe = "echo '{{\"fleets\":[]}}'"

[provenance]
keys = [{entry}]
"#
    )
}

fn attest(
    server: &SpawnedServer,
    token: &str,
    key: &Path,
    version: &str,
    file: &str,
) -> slipway_testkit::server::CliOutput {
    server.cli(
        token,
        &[
            "artifact",
            "attest",
            "idp",
            version,
            "--key",
            key.to_str().unwrap(),
            "--commit",
            COMMIT,
            "--build-id",
            "4812",
            "--builder",
            BUILDER,
            "--file",
            file,
        ],
    )
}

/// The provenance finding of deploy `id`'s preflight, once recorded.
fn provenance_finding(server: &SpawnedServer, token: &str, id: &str) -> serde_json::Value {
    let mut found = None;
    wait_until(
        Duration::from_secs(30),
        "the provenance preflight finding",
        || {
            let events = api_get(server, token, &format!("/api/v1/deploys/{id}/events"));
            found = events["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|e| e["kind"] == "preflight_checked")
                .find(|e| e.to_string().contains("\"provenance\""))
                .cloned();
            found.is_some()
        },
    );
    found.unwrap()
}

/// Starts a deploy of RC `number` to prod and follows it; its id and what `--follow` printed.
fn deploy(server: &SpawnedServer, token: &str, number: &str) -> (String, String) {
    let started = server
        .cli(
            token,
            &[
                "--output",
                "json",
                "deploy",
                "idp",
                "--env",
                "prod",
                "--release",
                number,
            ],
        )
        .success();
    let id = json(&started.stdout)["id"].as_i64().unwrap().to_string();
    let followed = server.cli(token, &["status", &id, "--follow", "--timeout", "30s"]);
    (id, format!("{}\n{}", followed.stdout, followed.stderr))
}

#[test]
fn attested_artifact_passes_preflight_and_unsigned_or_untrusted_ones_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let entry = keygen(root, "ci");
    assert!(
        entry.starts_with("{ name = \"ci\", public_key = \"ed25519:"),
        "{entry}"
    );
    keygen(root, "rogue");
    let config_path = root.join("slipway.toml");
    std::fs::write(&config_path, config(&entry)).unwrap();
    let check = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&config_path)
        .output()
        .unwrap();
    assert!(check.status.success(), "{check:?}");
    let server = SpawnedServer::start(Path::new(BIN), &config_path, &root.join("data"));
    let admin = server.admin_token.clone();

    // CI pushes and attests 1.0.0; the artifact shows the key that signed it.
    let file = push_and_release(&server, &admin, root, "1.0.0");
    let file = file.to_str().unwrap();
    let attested = attest(&server, &admin, &root.join("ci.key"), "1.0.0", file).success();
    assert!(
        attested.stdout.starts_with("attested idp 1.0.0 sha256:")
            && attested.stdout.trim_end().ends_with(&format!(
                "signed by key ci (builder {BUILDER}, build 4812, commit {COMMIT})"
            )),
        "{}",
        attested.stdout
    );
    let again = attest(&server, &admin, &root.join("ci.key"), "1.0.0", file).success();
    assert!(
        again.stdout.starts_with("already attested"),
        "{}",
        again.stdout
    );
    let shown = server
        .cli(&admin, &["artifact", "show", "idp", "1.0.0"])
        .success();
    assert!(
        shown.stdout.contains("attested  yes, signed by key ci"),
        "{}",
        shown.stdout
    );

    // Its deploy to the protected environment passes preflight, which names the key, and waits
    // for its approval.
    let started = server
        .cli(
            &admin,
            &[
                "--output",
                "json",
                "deploy",
                "idp",
                "--env",
                "prod",
                "--release",
                "1",
            ],
        )
        .success();
    let first = json(&started.stdout)["id"].as_i64().unwrap().to_string();
    let finding = provenance_finding(&server, &admin, &first);
    let finding = finding.to_string();
    assert!(finding.contains("\"passed\":true"), "{finding}");
    assert!(
        finding.contains(&format!(
            "signed by key ci (builder {BUILDER}, build 4812, commit {COMMIT})"
        )),
        "{finding}"
    );
    server
        .cli(
            &admin,
            &["abort", &first, "--reason", "testing the next artifacts"],
        )
        .success();
    wait_until(Duration::from_secs(30), "the first deploy to end", || {
        !api_get(&server, &admin, &format!("/api/v1/deploys/{first}"))["ended_at"].is_null()
    });

    // An unsigned artifact is refused, saying why and what CI should run.
    push_and_release(&server, &admin, root, "1.1.0");
    let (second, followed) = deploy(&server, &admin, "2");
    let finding = provenance_finding(&server, &admin, &second).to_string();
    assert!(finding.contains("\"passed\":false"), "{finding}");
    assert!(
        followed.contains("of idp 1.1.0 (RC 2) has no provenance attestation; prod requires one"),
        "{followed}"
    );
    assert!(
        followed.contains("slipway artifact attest idp 1.1.0 --key ci.key"),
        "{followed}"
    );

    // An envelope signed by a key the server does not trust is refused at upload, naming the
    // trusted keys, so the artifact stays unattested and its deploy is refused too.
    let file = push_and_release(&server, &admin, root, "1.2.0");
    let file = file.to_str().unwrap();
    let rogue = attest(&server, &admin, &root.join("rogue.key"), "1.2.0", file);
    assert_eq!(rogue.code(), 1, "{rogue:?}");
    assert!(
        rogue
            .stderr
            .contains("error: no signature of the envelope is by a trusted key"),
        "{}",
        rogue.stderr
    );
    assert!(
        rogue.stderr.contains(
            "hint: sign with a key [provenance] trusts (ci), or add this key's public key there"
        ),
        "{}",
        rogue.stderr
    );
    let (_, followed) = deploy(&server, &admin, "3");
    assert!(
        followed.contains("of idp 1.2.0 (RC 3) has no provenance attestation"),
        "{followed}"
    );
}
