//! `slipway config`: the settings and secrets of a service in an environment, as immutable
//! versions — set, unset, get, diff, history, review, import and export of env files, config
//! recycle, master key generation and rotation. A secret's value is only ever sent to the
//! server (read from stdin, never from the command line); it comes back as a fingerprint.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use slipway_core::settings::{check_key, looks_secret, parse_env_file};

use super::artifact::encode;
use super::deploy::{FollowArgs, start};
use super::{print_json, table, text};
use crate::Output;
use crate::client::Client;
use crate::failure::Failure;

#[derive(Debug, clap::Args)]
pub(crate) struct Place {
    service: String,
    #[arg(long = "env", value_name = "ENV")]
    environment: String,
}

impl Place {
    fn path(&self, rest: &str) -> String {
        format!(
            "/api/v1/config/{}/{}{rest}",
            encode(&self.service),
            encode(&self.environment)
        )
    }
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Set keys: `KEY=VALUE` for a plain setting; a bare `KEY` reads its value from stdin
    /// (use that for secrets: nothing secret on the command line or in shell history).
    Set {
        #[command(flatten)]
        place: Place,
        #[arg(required = true, value_name = "KEY=VALUE|KEY")]
        assignments: Vec<String>,
        /// The keys set are secrets (by default slipway.toml's rule decides, else a name
        /// like `*_KEY`, `*TOKEN*`, `*PASSWORD*` is a secret).
        #[arg(long, conflicts_with = "plain")]
        secret: bool,
        /// The keys set are plain settings, shown to reviewers in full.
        #[arg(long)]
        plain: bool,
        /// Why, for the history and the reviewers.
        #[arg(long, short)]
        message: Option<String>,
    },
    /// Remove keys (a new version without them).
    Unset {
        #[command(flatten)]
        place: Place,
        #[arg(required = true)]
        keys: Vec<String>,
        #[arg(long, short)]
        message: Option<String>,
    },
    /// Show a version (the newest by default); secrets by fingerprint. With KEY, print only
    /// that plain value.
    Get {
        #[command(flatten)]
        place: Place,
        key: Option<String>,
        #[arg(long)]
        version: Option<u64>,
    },
    /// How two versions differ (by default: what runs, to the newest).
    Diff {
        #[command(flatten)]
        place: Place,
        #[arg(long)]
        from: Option<u64>,
        #[arg(long)]
        to: Option<u64>,
    },
    /// Every version, newest first.
    History {
        #[command(flatten)]
        place: Place,
    },
    /// Approve a version of a protected environment (approvers other than its author).
    Approve {
        #[command(flatten)]
        place: Place,
        #[arg(long)]
        version: u64,
    },
    /// Set the keys of an env file (`KEY=value` lines) as one new version.
    Import {
        #[command(flatten)]
        place: Place,
        file: PathBuf,
        /// Keys of the file that are secrets (besides those slipway.toml or their names mark).
        #[arg(long = "secret", value_name = "KEY")]
        secrets: Vec<String>,
        /// Drop the keys the file does not have.
        #[arg(long)]
        replace: bool,
        #[arg(long, short)]
        message: Option<String>,
    },
    /// Print a version as an env file; secrets appear only as comments with their fingerprint.
    Export {
        #[command(flatten)]
        place: Place,
        #[arg(long)]
        version: Option<u64>,
    },
    /// The fingerprint of a value read from stdin, to compare with one a diff shows.
    Fingerprint,
    /// Roll the newest config version out with the artifact that runs ("config recycle"): a
    /// `config` release, no migration, the environment's usual plan.
    Recycle {
        #[command(flatten)]
        place: Place,
        #[arg(long)]
        version: Option<u64>,
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        follow: FollowArgs,
    },
    /// Write a new random master key (base64) to a file readable only by you.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Re-wrap every stored data key under the current master key (admins). Start the server
    /// with the new key in `[secrets] key_file` and the old one in `previous_key_files` first.
    RotateKey,
}

/// Runs a `config` command; only `keygen` works without a server.
pub(crate) async fn run(
    command: &Command,
    client: impl FnOnce() -> Result<Client>,
    output: Output,
) -> Result<ExitCode> {
    if let Command::Keygen { out } = command {
        return keygen(out, output);
    }
    let client = &client()?;
    match command {
        Command::Set {
            place,
            assignments,
            secret,
            plain,
            message,
        } => {
            let flag = match (secret, plain) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            };
            let set = read_assignments(assignments, flag)?;
            let body = json!({ "set": set, "message": message });
            change(client, place, &body, output).await
        }
        Command::Unset {
            place,
            keys,
            message,
        } => {
            let body = json!({ "unset": keys, "message": message });
            change(client, place, &body, output).await
        }
        Command::Get {
            place,
            key,
            version,
        } => get(client, place, key.as_deref(), *version, output).await,
        Command::Diff { place, from, to } => {
            let mut query = Vec::new();
            if let Some(from) = from {
                query.push(format!("from={from}"));
            }
            if let Some(to) = to {
                query.push(format!("to={to}"));
            }
            let path = place.path(&format!("/diff?{}", query.join("&")));
            let answer: Value = client.get(&path).await?;
            match output {
                Output::Json => print_json(&answer),
                Output::Text => print_diff(&answer),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::History { place } => history(client, place, output).await,
        Command::Approve { place, version } => {
            let path = place.path(&format!("/versions/{version}/approve"));
            let answer: Value = client.post(&path, &json!({})).await?;
            match output {
                Output::Json => print_json(&answer),
                Output::Text => println!(
                    "approved config version {version} of {} in {}; it can be deployed \
                     (`slipway config recycle {} --env {}`)",
                    place.service, place.environment, place.service, place.environment
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Import {
            place,
            file,
            secrets,
            replace,
            message,
        } => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let pairs = parse_env_file(&text).map_err(|errors| {
                let lines: Vec<String> = errors
                    .iter()
                    .map(|e| format!("{}:{}: {}", file.display(), e.line, e.message))
                    .collect();
                Failure::new("invalid_env_file", lines.join("\n"))
                    .hint("write one KEY=value per line; quote values with spaces")
            })?;
            let set: BTreeMap<String, Value> = pairs
                .into_iter()
                .map(|(key, value)| {
                    let secret = secrets.contains(&key).then_some(true);
                    (key, json!({ "value": value, "secret": secret }))
                })
                .collect();
            let body = json!({ "set": set, "replace": replace, "message": message });
            change(client, place, &body, output).await
        }
        Command::Export { place, version } => {
            let query = version.map(|v| format!("?version={v}")).unwrap_or_default();
            let request = client.request(
                reqwest::Method::GET,
                &place.path(&format!("/export{query}")),
            );
            print!("{}", client.send_text(request).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Fingerprint => {
            let value = read_stdin("the value")?;
            let answer: Value = client
                .post("/api/v1/config/fingerprint", &json!({ "value": value }))
                .await?;
            match output {
                Output::Json => print_json(&answer),
                Output::Text => println!("{}", text(&answer, "fingerprint")),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Recycle {
            place,
            version,
            reason,
            follow,
        } => {
            let body = json!({ "version": version, "reason": reason });
            start(client, &place.path("/recycle"), &body, follow, output).await
        }
        Command::Keygen { out } => keygen(out, output),
        Command::RotateKey => {
            let answer: Value = client.post("/api/v1/config/rotate-key", &json!({})).await?;
            match output {
                Output::Json => print_json(&answer),
                Output::Text => println!(
                    "re-wrapped {} data key(s) under master key {}; the old key can now be \
                     removed from [secrets] previous_key_files",
                    answer.get("rewrapped").and_then(Value::as_u64).unwrap_or(0),
                    text(&answer, "key_id")
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `slipway config keygen --out FILE`: a new key in a file only the owner can read; refuses
/// to overwrite one (that would lose every version sealed under it).
fn keygen(out: &std::path::Path, output: Output) -> Result<ExitCode> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let (key, text) = slipway_secrets::MasterKey::generate();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .map_err(|error| {
            let hint = if error.kind() == std::io::ErrorKind::AlreadyExists {
                "a master key is never overwritten (the versions sealed under it would be lost); choose another file"
            } else {
                "choose a file in a directory you can write"
            };
            Failure::new("cannot_write_key", format!("cannot create {}: {error}", out.display()))
                .hint(hint)
        })?;
    writeln!(file, "{}", *text)?;
    match output {
        Output::Json => print_json(&json!({ "key_id": key.id(), "file": out })),
        Output::Text => println!(
            "wrote master key {} to {} (mode 0600); keep a copy somewhere safe: without it no \
             config version can be read.\nuse it: [secrets] key_file = \"{}\" in slipway.toml",
            key.id(),
            out.display(),
            out.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}

/// `KEY=VALUE` pairs, and a bare `KEY` whose value is read from stdin (only one may be). A
/// secret's value is refused on the command line (`ps` and shell history would keep it), and an
/// argument that is not a key is not repeated back (it may be a value typed in the wrong place).
fn read_assignments(
    assignments: &[String],
    secret: Option<bool>,
) -> Result<BTreeMap<String, Value>> {
    let stdin_hint = "pipe it in: printf %s \"$VALUE\" | slipway config set SERVICE --env ENV KEY";
    let bare = assignments.iter().filter(|a| !a.contains('=')).count();
    if bare > 1 {
        return Err(Failure::new(
            "invalid_arguments",
            format!("only one key can read its value from stdin; got {bare}"),
        )
        .hint("set secrets one at a time: printf %s \"$VALUE\" | slipway config set SERVICE --env ENV KEY")
        .into());
    }
    let mut set = BTreeMap::new();
    for (index, assignment) in assignments.iter().enumerate() {
        let (key, value) = match assignment.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (assignment.as_str(), None),
        };
        // Only a bare argument may be a value typed in the wrong place; a KEY=VALUE's key is
        // checked (and named) by the server.
        if value.is_none() && check_key(key).is_err() {
            return Err(Failure::new(
                "invalid_arguments",
                format!("argument {} is neither KEY=VALUE nor a KEY", index + 1),
            )
            .hint("keys are environment variable names (QUEUE_NAME); a secret's value goes on stdin, never on the command line")
            .into());
        }
        let value = match value {
            Some(value) => {
                let secret = secret.unwrap_or_else(|| looks_secret(key));
                if secret {
                    return Err(Failure::new(
                        "secret_on_command_line",
                        format!(
                            "`{key}` is a secret: its value is not taken from the command line"
                        ),
                    )
                    .hint(stdin_hint)
                    .into());
                }
                value.to_owned()
            }
            None => read_stdin(&format!("the value of {key}"))?,
        };
        set.insert(key.to_owned(), json!({ "value": value, "secret": secret }));
    }
    Ok(set)
}

/// One value from stdin (not a terminal: a pipe or a file), without its final newline.
fn read_stdin(what: &str) -> Result<String> {
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(
            Failure::new("invalid_arguments", format!("{what} is read from stdin"))
                .hint("pipe it in: printf %s \"$VALUE\" | slipway config set SERVICE --env ENV KEY")
                .into(),
        );
    }
    let mut value = String::new();
    stdin.read_to_string(&mut value)?;
    let trimmed = value.strip_suffix('\n').unwrap_or(&value);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
    Ok(trimmed.to_owned())
}

/// How a shown value reads: a plain value quoted, a secret as `<secret FINGERPRINT>`.
fn shown(value: &Value) -> String {
    match text(value, "kind") {
        "secret" => format!("<secret {}>", text(value, "fingerprint")),
        _ => format!("{:?}", text(value, "value")),
    }
}

async fn change(client: &Client, place: &Place, body: &Value, output: Output) -> Result<ExitCode> {
    let answer: Value = client.post(&place.path(""), body).await?;
    if output == Output::Json {
        print_json(&answer);
        return Ok(ExitCode::SUCCESS);
    }
    let version = answer.get("version").and_then(Value::as_u64).unwrap_or(0);
    println!(
        "config version {version} of {} in {}:",
        place.service, place.environment
    );
    print_changes(answer.get("changes"));
    if answer.get("awaiting_review").and_then(Value::as_bool) == Some(true) {
        println!(
            "it awaits review: another engineer runs `slipway config diff {} --env {}` and \
             `slipway config approve {} --env {} --version {version}`",
            place.service, place.environment, place.service, place.environment
        );
    } else {
        println!(
            "roll it out with `slipway config recycle {} --env {}` (or with the next deploy)",
            place.service, place.environment
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_changes(changes: Option<&Value>) {
    let changes = changes
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if changes.is_empty() {
        println!("  (no change)");
    }
    for change in &changes {
        let key = text(change, "key");
        match (
            change.get("before").filter(|v| !v.is_null()),
            change.get("after").filter(|v| !v.is_null()),
        ) {
            (None, Some(after)) => println!("  + {key} = {}", shown(after)),
            (Some(before), None) => println!("  - {key} (was {})", shown(before)),
            (Some(before), Some(after)) => {
                println!("  ~ {key}: {} -> {}", shown(before), shown(after))
            }
            (None, None) => {}
        }
    }
}

fn print_diff(answer: &Value) {
    let from = answer
        .get("from")
        .and_then(Value::as_u64)
        .map_or_else(|| "nothing".to_owned(), |v| format!("version {v}"));
    let to = answer.get("to").and_then(Value::as_u64).unwrap_or(0);
    println!(
        "{} in {}: {from} -> version {to}",
        text(answer, "service"),
        text(answer, "environment")
    );
    print_changes(answer.get("changes"));
    print_findings(answer);
}

fn print_findings(answer: &Value) {
    for finding in answer
        .get("findings")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        println!(
            "  ! {}\n    hint: {}",
            text(finding, "message"),
            text(finding, "hint")
        );
    }
}

async fn get(
    client: &Client,
    place: &Place,
    key: Option<&str>,
    version: Option<u64>,
    output: Output,
) -> Result<ExitCode> {
    let query = version.map(|v| format!("?version={v}")).unwrap_or_default();
    let answer: Value = client.get(&place.path(&query)).await?;
    let values = answer.get("values").cloned().unwrap_or(Value::Null);
    if let Some(key) = key {
        let Some(value) = values.get(key) else {
            let keys: Vec<&String> = values
                .as_object()
                .map(|o| o.keys().collect())
                .unwrap_or_default();
            return Err(Failure::new(
                "unknown_key",
                format!(
                    "{} has no key `{key}` in {}",
                    place.service, place.environment
                ),
            )
            .hint(format!(
                "keys: {}",
                keys.iter()
                    .map(|k| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            .into());
        };
        match (output, text(value, "kind")) {
            (Output::Json, _) => print_json(value),
            (Output::Text, "secret") => println!("<secret {}>", text(value, "fingerprint")),
            (Output::Text, _) => println!("{}", text(value, "value")),
        }
        return Ok(ExitCode::SUCCESS);
    }
    if output == Output::Json {
        print_json(&answer);
        return Ok(ExitCode::SUCCESS);
    }
    let review = match answer.get("approved_by").and_then(Value::as_str) {
        Some(by) => format!("approved by {by}"),
        None if answer.get("awaiting_review").and_then(Value::as_bool) == Some(true) => {
            "awaits review".to_owned()
        }
        None => "not reviewed".to_owned(),
    };
    println!(
        "{} in {}: config version {} by {} at {} ({review})",
        place.service,
        place.environment,
        answer.get("version").and_then(Value::as_u64).unwrap_or(0),
        text(&answer, "created_by"),
        text(&answer, "created_at"),
    );
    let rows: Vec<Vec<String>> = values
        .as_object()
        .into_iter()
        .flatten()
        .map(|(key, value)| vec![key.clone(), shown(value)])
        .collect();
    table(&["KEY", "VALUE"], rows);
    print_findings(&answer);
    Ok(ExitCode::SUCCESS)
}

async fn history(client: &Client, place: &Place, output: Output) -> Result<ExitCode> {
    let versions: Vec<Value> = client.get(&place.path("/versions")).await?;
    match output {
        Output::Json => print_json(&versions),
        Output::Text if versions.is_empty() => println!(
            "{} has no config in {} yet (`slipway config set`)",
            place.service, place.environment
        ),
        Output::Text => table(
            &["VERSION", "BY", "AT", "CHANGED", "REVIEW", "MESSAGE"],
            versions.iter().map(|v| {
                let mut version = v
                    .get("version")
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
                    .to_string();
                if v.get("running").and_then(Value::as_bool) == Some(true) {
                    version.push_str(" (running)");
                }
                let changed: Vec<&str> = v
                    .get("changed")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                let review = match v.get("approved_by").and_then(Value::as_str) {
                    Some(by) => format!("approved by {by}"),
                    None if v.get("awaiting_review").and_then(Value::as_bool) == Some(true) => {
                        "awaits review".to_owned()
                    }
                    None => "-".to_owned(),
                };
                vec![
                    version,
                    text(v, "created_by").to_owned(),
                    text(v, "created_at").to_owned(),
                    changed.join(", "),
                    review,
                    text(v, "message").to_owned(),
                ]
            }),
        ),
    }
    Ok(ExitCode::SUCCESS)
}
