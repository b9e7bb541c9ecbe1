//! Guard rails end to end: every way around a production rule is tried through the real CLI
//! and API, in one table, and each is refused with a message that says why and a hint that
//! says what to do — while the allowed paths (a proper approval and go, a rollback, a
//! break-glass confirmed by a second person) go through. Each refused row also checks that
//! nothing moved: the deploy it tried to touch still waits where it did.

use std::path::Path;
use std::time::Duration;

use slipway_testkit::server::{CliOutput, SpawnedServer};

use crate::support::{BIN, FLEET_SCRIPT, api_get, api_post, json, phase, push_build, wait_until};

/// The server, the service and the trusted CI key; the environments follow (`config`).
const HEAD: &str = r#"
[server]
data_dir = "data"

[[service]]
name = "idp"
start = "bin/server --port $PORT"
pools = { web = { count = 1, traffic = true } }

[provenance]
keys = [#PROVENANCE#]

"#;

/// Every environment of the table, with the policy that sets it apart; all run `fleet.sh`.
const ENVIRONMENTS: &[(&str, &str)] = &[
    ("staging", ""),
    (
        "prod",
        r#"protected = true
approvals = { required = 1, expires = "30m", not_authors = true }
bake = "0s"
confirm_scale_in = false
post_verify = false"#,
    ),
    (
        "frozen",
        r#"approvals = false
go_no_go = false
bake = "0s"
confirm_scale_in = false
post_verify = false
time_zone = "UTC"
freezes = ["mon-sun all-hands offsite"]"#,
    ),
    (
        "shortstaffed",
        r#"approvals = false
go_no_go = false
bake = "0s"
confirm_scale_in = false
post_verify = false
time_zone = "UTC"
staffing = { calendar = "absences.ics", max_out = 1, team = 4 }"#,
    ),
    ("secure", "protected = true"),
    ("launch", ""),
    (
        "hotfix",
        r#"protected = true
approvals = { required = 1, expires = "2s" }
bake = "0s"
confirm_scale_in = false
post_verify = false"#,
    ),
];

/// The item that `launch` deploys must have ticked.
const CHECKLIST: &str = r#"
[[checklist]]
name = "agreement signed"
environment = "launch"
evidence = "link"
"#;

/// `slipway.toml` trusting `provenance_entry`: every environment on the command target.
fn config(provenance_entry: &str) -> String {
    let mut text = HEAD.replace("#PROVENANCE#", provenance_entry);
    for (name, policy) in ENVIRONMENTS {
        text.push_str(&format!(
            "\n[environment.{name}]\ntarget = \"command\"\n{policy}\n[environment.{name}.command]\n\
             launch = \"sh fleet.sh launch\"\ntraffic = \"sh fleet.sh traffic\"\n\
             stop = \"sh fleet.sh stop\"\nobserve = \"sh fleet.sh observe\"\n"
        ));
    }
    text + CHECKLIST
}

/// Two of the team are out every day since 2020: more than the one `shortstaffed` allows.
const ABSENCES: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n\
BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20200101\r\nRRULE:FREQ=DAILY\r\nSUMMARY:Out\r\n\
ATTENDEE;CN=Dana:mailto:dana@example.com\r\nEND:VEVENT\r\n\
BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20200101\r\nRRULE:FREQ=DAILY\r\nSUMMARY:Out\r\n\
ATTENDEE;CN=Sam:mailto:sam@example.com\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

/// The people of the table: alice and erin deploy, bob, carol and dave approve. carol wrote
/// RC 1's commits.
struct Team {
    server: SpawnedServer,
    alice: String,
    erin: String,
    bob: String,
    carol: String,
    dave: String,
}

impl Team {
    fn start(root: &Path) -> Team {
        std::fs::write(root.join("fleet.sh"), FLEET_SCRIPT).unwrap();
        // CI's key is trusted; a rogue key exists but is not.
        let trusted = keygen(root, "ci");
        keygen(root, "rogue");
        let config = config(&trusted);
        std::fs::write(root.join("slipway.toml"), config).unwrap();
        std::fs::write(root.join("absences.ics"), ABSENCES).unwrap();
        let server = SpawnedServer::start(
            Path::new(BIN),
            &root.join("slipway.toml"),
            &root.join("data"),
        );
        let admin = server.admin_token.clone();
        let token = |name: &str, role: &str| {
            server
                .cli(&admin, &["user", "add", name, "--role", role])
                .success();
            let out = server
                .cli(&admin, &["token", "create", "--user", name])
                .success();
            out.stdout.trim().to_owned()
        };
        let (alice, erin) = (token("alice", "deployer"), token("erin", "deployer"));
        let (bob, carol, dave) = (
            token("bob", "approver"),
            token("carol", "approver"),
            token("dave", "approver"),
        );
        Team {
            server,
            alice,
            erin,
            bob,
            carol,
            dave,
        }
    }

    fn cli(&self, token: &str, args: &[&str]) -> CliOutput {
        self.server.cli(token, args)
    }

    /// Pushes version `1.N.0` (commit `c0ffeeN`), has CI attest it with `key` (`ci.key`,
    /// `rogue.key`) if given, and releases it as `RC N`. Returns how the attestation went.
    fn release(
        &self,
        root: &Path,
        n: u32,
        authors: &[&str],
        key: Option<&str>,
    ) -> Option<CliOutput> {
        let version = format!("1.{n}.0");
        let commit = format!("c0ffee{n}");
        let file = push_build(&self.server, &self.alice, root, &version, Some(&commit));
        let attested = key.map(|key| {
            let key = root.join(key);
            self.cli(
                &self.alice,
                &[
                    "artifact",
                    "attest",
                    "idp",
                    &version,
                    "--key",
                    key.to_str().unwrap(),
                    "--commit",
                    &commit,
                    "--build-id",
                    &format!("build-{n}"),
                    "--builder",
                    "https://ci.invalid/slipway-tests",
                    "--file",
                    file.to_str().unwrap(),
                ],
            )
        });
        let mut args = vec!["release", "create", "idp", "--version", &version];
        for author in authors {
            args.extend(["--author", author]);
        }
        self.cli(&self.alice, &args).success();
        attested
    }

    /// Starts a deploy and returns its id.
    fn deploy(&self, token: &str, args: &[&str]) -> String {
        let mut all = vec!["--output", "json", "deploy", "idp"];
        all.extend(args);
        let out = self.cli(token, &all).success();
        json(&out.stdout)["id"].to_string()
    }

    /// `slipway receipt ID`'s text.
    fn receipt(&self, id: &str) -> String {
        self.cli(&self.alice, &["receipt", id]).success().stdout
    }

    fn wait_for(&self, id: &str, what: &str) {
        wait_until(Duration::from_secs(30), what, || {
            let phase = phase(&self.server, &self.alice, id);
            phase["waiting_for"] == what || phase["result"] == what
        });
    }
}

/// `deploy idp RELEASE 3 ARGS --follow`: a deploy followed until it ends.
fn follow_to_end<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["deploy", "idp", "--release", "3"];
    all.extend(args);
    all.extend(["--follow", "--timeout", "30s"]);
    all
}

/// `slipway artifact keygen --name NAME`, as CI's administrator runs it: the `[provenance]`
/// entry it prints.
fn keygen(root: &Path, name: &str) -> String {
    let out = std::process::Command::new(BIN)
        .args(["artifact", "keygen", "--name", name, "--out"])
        .arg(root.join(format!("{name}.key")))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The command failed and its error output says each of `words`.
#[track_caller]
fn assert_refused(out: &CliOutput, words: &[&str]) {
    assert_ne!(out.code(), 0, "{}", out.stdout);
    let missing: Vec<&&str> = words.iter().filter(|w| !out.stderr.contains(**w)).collect();
    assert!(
        missing.is_empty(),
        "missing {missing:?} in:\n{}",
        out.stderr
    );
}

/// One bypass: what is tried, and words its refusal must contain (message and hint).
struct Bypass<'t> {
    name: &'static str,
    attempt: Box<dyn Fn() -> CliOutput + 't>,
    says: &'static [&'static str],
}

#[test]
fn every_bypass_of_the_production_rules_is_refused_and_the_allowed_paths_succeed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let team = Team::start(root);
    team.release(root, 1, &["carol"], Some("ci.key"))
        .unwrap()
        .success();
    team.release(root, 2, &[], None);
    team.release(root, 3, &[], Some("ci.key"))
        .unwrap()
        .success();
    // An envelope signed by a key slipway does not trust is refused at upload, naming the
    // trusted keys; RC 4 stays unattested.
    let rogue = team.release(root, 4, &[], Some("rogue.key")).unwrap();
    assert_refused(
        &rogue,
        &[
            "no signature of the envelope is by a trusted key",
            "hint: sign with a key [provenance] trusts (ci)",
        ],
    );
    let staged = team.deploy(&team.alice, &["--env", "staging", "--release", "2"]);
    team.wait_for(&staged, "succeeded");

    // dave (an approver) starts a production deploy of RC 1: it waits for someone else's
    // approval.
    let first = team.deploy(&team.dave, &["--env", "prod", "--release", "1"]);
    team.wait_for(&first, "approval");
    let rc2_digest = api_get(&team.server, &team.alice, "/api/v1/releases/idp/2")["artifact"]
        .as_str()
        .unwrap()
        .to_owned();

    let bypasses = vec![
        Bypass {
            name: "self-approval",
            attempt: Box::new(|| team.cli(&team.dave, &["approve", &first])),
            says: &[
                "dave requested deploy",
                "cannot approve it",
                "another engineer",
            ],
        },
        Bypass {
            name: "approval    by an author of the release",
            attempt: Box::new(|| team.cli(&team.carol, &["approve", &first])),
            says: &[
                "carol wrote commits of RC 1",
                "wrote none of the release's commits",
            ],
        },
        Bypass {
            name: "approval    of another artifact than the deploy ships",
            attempt: Box::new(|| {
                team.cli(&team.bob, &["approve", &first, "--artifact", &rc2_digest])
            }),
            says: &["given for artifact sha256:", "review deploy"],
        },
        Bypass {
            name: "approval    of another config than the deploy pins",
            attempt: Box::new(|| {
                team.cli(&team.bob, &["approve", &first, "--config", "sha256:0ld"])
            }),
            says: &["given for config sha256:0ld", "review deploy"],
        },
        Bypass {
            name: "a second concurrent deploy",
            attempt: Box::new(|| {
                team.cli(
                    &team.alice,
                    &["deploy", "idp", "--env", "prod", "--release", "2"],
                )
            }),
            says: &[
                "is still running",
                "one deploy per service and environment",
                "abort",
            ],
        },
        Bypass {
            name: "an older release than the one running",
            attempt: Box::new(|| {
                team.cli(
                    &team.alice,
                    &["deploy", "idp", "--env", "staging", "--release", "1"],
                )
            }),
            says: &[
                "RC 1 is older than RC 2",
                "slipway rollback idp --env staging --to RC 1",
            ],
        },
        Bypass {
            name: "go before the approval",
            attempt: Box::new(|| team.cli(&team.dave, &["go", &first])),
            says: &["is not waiting for go"],
        },
        Bypass {
            name: "an unsigned artifact to a protected environment",
            attempt: Box::new(|| {
                team.cli(
                    &team.alice,
                    &[
                        "deploy",
                        "idp",
                        "--env",
                        "secure",
                        "--release",
                        "2",
                        "--follow",
                        "--timeout",
                        "30s",
                    ],
                )
            }),
            says: &[
                "has no provenance attestation",
                "slipway artifact attest idp 1.2.0",
            ],
        },
        Bypass {
            name: "an artifact signed by an untrusted key",
            attempt: Box::new(|| {
                team.cli(
                    &team.alice,
                    &[
                        "deploy",
                        "idp",
                        "--env",
                        "secure",
                        "--release",
                        "4",
                        "--follow",
                        "--timeout",
                        "30s",
                    ],
                )
            }),
            says: &[
                "has no provenance attestation",
                "slipway artifact attest idp 1.4.0",
            ],
        },
        Bypass {
            name: "a checklist item not ticked",
            attempt: Box::new(|| team.cli(&team.alice, &follow_to_end(&["--env", "launch"]))),
            says: &[
                "1 of 1 checklist item(s) of idp in launch not done for RC 3",
                "`agreement signed`",
                "slipway checklist tick idp --env launch --release \"RC 3\" \"agreement signed\" --link URL",
            ],
        },
        Bypass {
            name: "a deploy during a freeze",
            attempt: Box::new(|| {
                team.cli(
                    &team.alice,
                    &follow_to_end(&["--env", "frozen", "--no-wait"]),
                )
            }),
            says: &[
                "frozen is closed to deploys",
                "frozen: all-hands offsite",
                "hint:",
                "break-glass",
            ],
        },
        Bypass {
            name: "a deploy during a staffing shortfall",
            attempt: Box::new(|| {
                team.cli(
                    &team.alice,
                    &follow_to_end(&["--env", "shortstaffed", "--no-wait"]),
                )
            }),
            says: &[
                "2 of 4 people out (Dana, Sam), more than the 1 allowed",
                "hint:",
            ],
        },
        Bypass {
            name: "break-glass confirmed for a deploy that did not ask for it",
            attempt: Box::new(|| team.cli(&team.bob, &["break-glass", &first])),
            says: &["not waiting for a break-glass confirmation"],
        },
    ];
    let mut failures = Vec::new();
    for bypass in &bypasses {
        let out = (bypass.attempt)();
        // A refusal at the API is an error on stderr; one in preflight ends the followed
        // deploy, with its reason, on stdout.
        let said = format!("{}{}", out.stdout, out.stderr);
        let missing: Vec<&&str> = bypass
            .says
            .iter()
            .filter(|word| !said.contains(**word))
            .collect();
        if out.code() == 0 || !missing.is_empty() || !said.contains("hint") {
            failures.push(format!(
                "{}: exit {}, missing {missing:?}\nstdout: {}\nstderr: {}",
                bypass.name,
                out.code(),
                out.stdout,
                out.stderr
            ));
        }
        // Nothing moved: the production deploy still waits for its approval.
        let now = phase(&team.server, &team.alice, &first);
        assert_eq!(
            now["waiting_for"], "approval",
            "after {}: {now}",
            bypass.name
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    // The allowed path: bob approves, the runner cannot say go, erin can.
    team.cli(&team.bob, &["approve", &first]).success();
    team.wait_for(&first, "go");
    let own_go = team.cli(&team.dave, &["go", &first]);
    assert_refused(&own_go, &["cannot acknowledge its own go/no-go", "hint:"]);
    let status = team.cli(&team.alice, &["status", &first]).success().stdout;
    assert!(
        status.contains(
            "go/no-go: PROD: about to deploy idp RC 1 (1.1.0, commit c0ffee1), run by dave — clear to go?"
        ),
        "{status}"
    );
    assert!(status.contains("approved by bob at"), "{status}");

    // An approval cannot be replayed onto another deploy: abort, deploy the same release
    // again, and the new deploy waits for an approval of its own; bob's earlier one, sent to
    // the new deploy, is refused.
    team.cli(&team.dave, &["abort", &first, "--reason", "replay test"])
        .success();
    team.wait_for(&first, "aborted");
    let second = team.deploy(&team.dave, &["--env", "prod", "--release", "1"]);
    team.wait_for(&second, "approval");
    let earlier = api_get(&team.server, &team.bob, &format!("/api/v1/deploys/{first}"));
    let replay = serde_json::json!({
        "deploy": first.parse::<i64>().unwrap(),
        "artifact": earlier["binding"]["artifact"],
        "config": earlier["binding"]["config"],
        "plan": earlier["binding"]["plan"],
    });
    let (status, answer) = api_post(
        &team.server,
        &team.bob,
        &format!("/api/v1/deploys/{second}/approve"),
        &replay,
    );
    assert_eq!(status, 400, "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(&format!("given for deploy {first}, not deploy {second}")),
        "{answer}"
    );
    assert!(answer["error"]["hint"].is_string(), "{answer}");
    assert_eq!(
        phase(&team.server, &team.alice, &second)["waiting_for"],
        "approval"
    );

    // Properly approved and acknowledged, the deploy succeeds.
    team.cli(&team.bob, &["approve", &second]).success();
    team.wait_for(&second, "go");
    team.cli(&team.erin, &["go", &second]).success();
    team.wait_for(&second, "succeeded");

    // Its receipt: commit, artifact, preflight findings, approval, go, outcome, each with its
    // event's hash, and the chain intact.
    let receipt = team.receipt(&second);
    for line in [
        "commit      c0ffee1",
        "artifact    sha256:",
        "preflight   lock passed",
        "preflight   order passed: RC 1 replaces nothing",
        "preflight   provenance passed: artifact sha256:",
        "signed by key ci (builder https://ci.invalid/slipway-tests, build build-1, commit c0ffee1)",
        "approval    by bob",
        "go          announced: PROD: about to deploy idp RC 1",
        "go          acknowledged by erin",
        "outcome     succeeded",
        "audit chain intact",
    ] {
        assert!(receipt.contains(line), "no `{line}` in:\n{receipt}");
    }
    assert!(receipt.contains("[#"), "{receipt}");

    // An approval that expires while go is awaited is void: the deploy asks for approval
    // again, and a go given now is refused.
    let hotfix = team.deploy(&team.alice, &["--env", "hotfix", "--release", "3"]);
    team.wait_for(&hotfix, "approval");
    team.cli(&team.bob, &["approve", &hotfix]).success();
    team.wait_for(&hotfix, "go");
    team.wait_for(&hotfix, "approval");
    let late = team.cli(&team.erin, &["go", &hotfix]);
    assert_refused(&late, &["not waiting for go"]);
    let events = api_get(
        &team.server,
        &team.alice,
        &format!("/api/v1/deploys/{hotfix}/events"),
    );
    assert!(
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "approvals_expired"),
        "{events}"
    );
    team.cli(&team.alice, &["abort", &hotfix, "--reason", "done"])
        .success();

    // A lock stops new deploys until it is lifted; a rollback is still allowed.
    team.cli(
        &team.erin,
        &["lock", "idp", "--env", "staging", "--reason", "incident 42"],
    )
    .success();
    let listed = team.cli(&team.alice, &["locks"]).success().stdout;
    assert!(listed.contains("incident 42"), "{listed}");
    let locked = team.cli(
        &team.alice,
        &["deploy", "idp", "--env", "staging", "--release", "3"],
    );
    assert_refused(
        &locked,
        &[
            "idp is locked in staging by erin",
            "incident 42",
            "hint: ask erin to unlock it",
        ],
    );
    let again = team.cli(
        &team.alice,
        &["lock", "idp", "--env", "staging", "--reason", "twice"],
    );
    assert!(again.stderr.contains("already locked"), "{}", again.stderr);
    team.cli(&team.alice, &["unlock", "idp", "--env", "staging"])
        .success();
    let third = team.deploy(&team.alice, &["--env", "staging", "--release", "3"]);
    team.wait_for(&third, "succeeded");

    // A rollback goes back only: bringing the newer release back through the fast track would
    // skip its approvals, go, windows and checklists.
    let back = team.cli(
        &team.alice,
        &[
            "rollback",
            "idp",
            "--env",
            "staging",
            "--reason",
            "bad",
            "--to",
            "RC 2",
            "--follow",
            "--timeout",
            "30s",
        ],
    );
    assert_eq!(back.code(), 0, "{}\n{}", back.stdout, back.stderr);
    let forward = team.cli(
        &team.alice,
        &[
            "rollback", "idp", "--env", "staging", "--reason", "again", "--to", "RC 3",
        ],
    );
    assert_refused(
        &forward,
        &[
            "RC 3 is not older than RC 2, which runs in staging",
            "hint: deploy it with its approvals and checks",
        ],
    );

    // Break-glass: a reason and a second person let a deploy through the freeze, loudly and on
    // the record; the requester cannot be the second person.
    let urgent = team.deploy(
        &team.dave,
        &[
            "--env",
            "frozen",
            "--release",
            "3",
            "--break-glass",
            "--reason",
            "INC-42 login outage",
        ],
    );
    team.wait_for(&urgent, "break_glass");
    let alone = team.cli(&team.dave, &["break-glass", &urgent]);
    assert_refused(&alone, &["dave asked for break-glass on deploy"]);
    team.cli(&team.bob, &["break-glass", &urgent]).success();
    team.wait_for(&urgent, "succeeded");
    let receipt = team.receipt(&urgent);
    for line in [
        "break-glass confirmed by bob: INC-42 login outage",
        "preflight   schedule OVERRIDDEN by break-glass: frozen is closed to deploys",
        "outcome     succeeded",
    ] {
        assert!(receipt.contains(line), "no `{line}` in:\n{receipt}");
    }

    // Ticked with evidence, the checklist lets the deploy through and says who ticked it.
    team.cli(
        &team.erin,
        &[
            "checklist",
            "tick",
            "idp",
            "agreement signed",
            "--env",
            "launch",
            "--release",
            "RC 3",
            "--link",
            "https://contracts.invalid/idp/42",
        ],
    )
    .success();
    let launched = team.deploy(&team.alice, &["--env", "launch", "--release", "3"]);
    team.wait_for(&launched, "succeeded");
    let receipt = team.receipt(&launched);
    assert!(
        receipt
            .contains("preflight   checklist passed: checklist of idp in launch for RC 3 complete"),
        "{receipt}"
    );
    assert!(
        receipt.contains("https://contracts.invalid/idp/42"),
        "{receipt}"
    );
}
