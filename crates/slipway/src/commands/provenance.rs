//! `slipway artifact keygen|attest|show`: CI's signing key, the signed provenance of a build
//! (`docs/provenance.md`), and an artifact with its attestations.
//!
//! `attest` signs on the machine that runs it: the private key never leaves CI. It uploads the
//! envelope by default (the server verifies it against `[provenance]` and the artifact's
//! digest); `--no-upload` only writes it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use rand::RngCore;
use reqwest::Method;
use slipway_core::provenance::{BuildFacts, PrivateKey, sign, statement};
use slipway_server::views::{ArtifactView, AttestationPushView, AttestationView};

use super::artifact::{encode, hash_file, short_digest};
use super::{human_size, print_json, table};
use crate::Output;
use crate::client::Client;
use crate::failure::Failure;

#[derive(Debug, clap::Args)]
pub(crate) struct KeygenArgs {
    /// Where to write the private key (PKCS#8 PEM, readable only by you). An existing file is
    /// never overwritten.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// The key's name in [provenance], shown in preflight results.
    #[arg(long, default_value = "ci")]
    name: String,
}

#[derive(Debug, clap::Args)]
pub(crate) struct AttestArgs {
    service: String,
    /// The artifact's version, as pushed.
    #[arg(id = "artifact_version", value_name = "VERSION")]
    version: String,
    /// CI's private key file (what `slipway artifact keygen` wrote).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The source commit the artifact was built from.
    #[arg(long)]
    commit: String,
    /// CI's id of the build run.
    #[arg(long, value_name = "ID")]
    build_id: String,
    /// A URI naming the builder, e.g. https://ci.example.com/pipelines/idp.
    #[arg(long, value_name = "URI")]
    builder: String,
    /// The artifact file: its SHA-256 is the statement's subject.
    #[arg(long, value_name = "FILE", required_unless_present = "digest")]
    file: Option<PathBuf>,
    /// The artifact's digest, instead of --file.
    #[arg(long, value_name = "sha256:HEX", conflicts_with = "file")]
    digest: Option<String>,
    /// Also write the envelope (JSON) to this file.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Only sign: write the envelope to --out (or stdout) without sending it to the server.
    #[arg(long)]
    no_upload: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    service: String,
    #[arg(id = "artifact_version", value_name = "VERSION")]
    version: String,
}

/// Writes a new private key, readable only by its owner, and prints its `[provenance]` entry.
pub(crate) fn keygen(args: &KeygenArgs, output: Output) -> Result<ExitCode> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let key = PrivateKey::from_seed(seed);
    let shown = args.out.display();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&args.out)
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::AlreadyExists => Failure::new(
                "key_exists",
                format!("{shown} already exists; slipway never overwrites a key"),
            )
            .hint("choose another --out, or remove the file once no [provenance] entry needs it"),
            _ => Failure::new("key_unwritable", format!("cannot create {shown}: {error}")),
        })?;
    file.write_all(key.to_pem().as_bytes())?;
    file.sync_all()?;
    let public_key = key.public_key();
    let entry = format!(
        "{{ name = \"{}\", public_key = \"{public_key}\" }}",
        args.name
    );
    match output {
        Output::Json => print_json(&serde_json::json!({
            "name": args.name,
            "public_key": public_key.to_string(),
            "key_id": public_key.key_id(),
            "file": args.out,
            "entry": entry,
        })),
        Output::Text => {
            println!("{entry}");
            eprintln!(
                "slipway: wrote the private key to {shown}; keep it in CI's secrets, never in \
                 the repository.\n  hint: add the line above to keys = [ … ] under [provenance] \
                 in slipway.toml, and restart the server"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_key(path: &Path) -> Result<PrivateKey> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        Failure::new(
            "key_unreadable",
            format!("cannot read the key {}: {error}", path.display()),
        )
        .hint("pass the file `slipway artifact keygen --out FILE` wrote, with --key FILE")
    })?;
    PrivateKey::from_pem(&text).map_err(|error| {
        Failure::new("invalid_key", format!("{}: {error}", path.display()))
            .hint(error.hint())
            .into()
    })
}

/// Signs the build's statement and uploads (or only writes) the envelope.
pub(crate) async fn attest(args: &AttestArgs, client: &Client, output: Output) -> Result<ExitCode> {
    let key = read_key(&args.key)?;
    let digest = match (&args.file, &args.digest) {
        (Some(file), _) => hash_file(file).await?.0,
        (None, Some(digest)) => digest.trim().to_owned(),
        (None, None) => unreachable!("clap requires --file or --digest"),
    };
    let facts = BuildFacts {
        service: args.service.clone(),
        version: args.version.clone(),
        digest,
        commit: args.commit.clone(),
        build_id: args.build_id.clone(),
        builder: args.builder.clone(),
    };
    let statement = statement(&facts).map_err(|error| {
        Failure::new("invalid_attestation", error.to_string()).hint(error.hint())
    })?;
    let envelope = sign(&statement, &key);
    let pretty = serde_json::to_string_pretty(&envelope)?;
    if let Some(out) = &args.out {
        std::fs::write(out, format!("{pretty}\n")).map_err(|error| {
            Failure::new(
                "envelope_unwritable",
                format!("cannot write {}: {error}", out.display()),
            )
        })?;
    }
    if args.no_upload {
        match (&args.out, output) {
            (None, _) => println!("{pretty}"),
            (Some(out), Output::Json) => print_json(&serde_json::json!({ "file": out })),
            (Some(out), Output::Text) => println!("wrote {}", out.display()),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let request = client
        .request(
            Method::POST,
            &attestations_path(&args.service, &args.version),
        )
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(envelope.to_json());
    let pushed: AttestationPushView = client.send(request).await?;
    match output {
        Output::Json => print_json(&pushed),
        Output::Text => {
            let a = &pushed.attestation;
            let what = if pushed.created {
                "attested"
            } else {
                "already attested (nothing changed):"
            };
            println!(
                "{what} {} {} {} signed by key {} (builder {}, build {}, commit {})",
                a.service,
                a.version,
                short_digest(&a.digest),
                a.key,
                a.builder,
                a.build_id,
                a.commit
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn attestations_path(service: &str, version: &str) -> String {
    format!(
        "/api/v1/artifacts/{}/{}/attestations",
        encode(service),
        encode(version)
    )
}

/// An artifact and its attestations.
pub(crate) async fn show(args: &ShowArgs, client: &Client, output: Output) -> Result<ExitCode> {
    let artifact: ArtifactView = client
        .get(&format!(
            "/api/v1/artifacts/{}/{}",
            encode(&args.service),
            encode(&args.version)
        ))
        .await?;
    let attestations: Vec<AttestationView> = client
        .get(&attestations_path(&args.service, &args.version))
        .await?;
    match output {
        Output::Json => print_json(&serde_json::json!({
            "artifact": artifact,
            "attestations": attestations,
        })),
        Output::Text => {
            let trusted: Vec<&str> = attestations
                .iter()
                .filter(|a| a.trusted)
                .map(|a| a.key.as_str())
                .collect();
            let attested = match (attestations.is_empty(), trusted.as_slice()) {
                (true, _) => "no".to_owned(),
                (false, []) => {
                    "no valid attestation: signed only by keys no longer trusted".to_owned()
                }
                (false, keys) => format!("yes, signed by key {}", keys.join(", ")),
            };
            println!("{} {}", artifact.service, artifact.version);
            println!("digest    {}", artifact.digest);
            println!("size      {}", human_size(artifact.size));
            println!(
                "commit    {}",
                artifact.commit.as_deref().unwrap_or("(not given)")
            );
            println!(
                "pushed    by {} at {}",
                artifact.pushed_by, artifact.pushed_at
            );
            println!("attested  {attested}");
            if !attestations.is_empty() {
                println!();
                table(
                    &[
                        "KEY",
                        "TRUSTED",
                        "BUILDER",
                        "BUILD",
                        "COMMIT",
                        "RECORDED BY",
                        "RECORDED AT",
                    ],
                    attestations.iter().map(|a| {
                        vec![
                            a.key.clone(),
                            if a.trusted { "yes" } else { "no" }.to_owned(),
                            a.builder.clone(),
                            a.build_id.clone(),
                            a.commit.clone(),
                            a.recorded_by.clone(),
                            a.recorded_at.clone(),
                        ]
                    }),
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
