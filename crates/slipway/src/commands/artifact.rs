//! `slipway artifact push|list`: upload build outputs into the server's content-addressed cache;
//! `keygen|attest|show` (provenance) live in `provenance.rs`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use reqwest::Method;
use sha2::{Digest, Sha256};
use slipway_server::views::{ArtifactPushView, ArtifactView, Page};
use tokio::io::AsyncReadExt;

use super::{human_size, print_json, table};
use crate::Output;
use crate::client::Client;
use crate::failure::Failure;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Command {
    /// Upload FILE as VERSION of SERVICE. Pushing the same file again changes nothing; another
    /// file under an existing version is refused.
    Push(PushArgs),
    /// List artifacts, newest first.
    List(ListArgs),
    /// Show an artifact and its attestations: whether it is attested, by which key.
    Show(super::provenance::ShowArgs),
    /// Make CI's signing key: writes the private key, prints the [provenance] entry.
    Keygen(super::provenance::KeygenArgs),
    /// For CI: sign the build's provenance (in-toto statement, DSSE envelope) with the private
    /// key and upload it. The key never leaves the machine that runs this.
    Attest(super::provenance::AttestArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct PushArgs {
    file: PathBuf,
    #[arg(long)]
    service: String,
    /// The artifact's version (unique per service).
    #[arg(long = "version", id = "artifact_version", value_name = "VERSION")]
    version: String,
    /// The source commit it was built from.
    #[arg(long)]
    commit: Option<String>,
}

#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    #[arg(long)]
    service: Option<String>,
    #[command(flatten)]
    page: super::PageArgs,
}

pub(crate) async fn run(command: &Command, client: &Client, output: Output) -> Result<ExitCode> {
    match command {
        Command::Push(args) => push(args, client, output).await,
        Command::Show(args) => super::provenance::show(args, client, output).await,
        Command::Keygen(args) => super::provenance::keygen(args, output),
        Command::Attest(args) => super::provenance::attest(args, client, output).await,
        Command::List(args) => {
            let mut request = args
                .page
                .apply(client.request(Method::GET, "/api/v1/artifacts"));
            if let Some(service) = &args.service {
                request = request.query(&[("service", service)]);
            }
            let page: Page<ArtifactView> = client.send(request).await?;
            match output {
                Output::Json => print_json(&page),
                Output::Text => table(
                    &[
                        "SERVICE",
                        "VERSION",
                        "DIGEST",
                        "SIZE",
                        "COMMIT",
                        "PUSHED BY",
                        "PUSHED AT",
                    ],
                    page.items.iter().map(|a| {
                        vec![
                            a.service.clone(),
                            a.version.clone(),
                            short_digest(&a.digest),
                            human_size(a.size),
                            a.commit.clone().unwrap_or_default(),
                            a.pushed_by.clone(),
                            a.pushed_at.clone(),
                        ]
                    }),
                ),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `sha256:3f2a9c1d…` to its first 12 hex digits.
pub(crate) fn short_digest(digest: &str) -> String {
    digest.chars().take("sha256:".len() + 12).collect()
}

async fn push(args: &PushArgs, client: &Client, output: Output) -> Result<ExitCode> {
    let file = &args.file;
    let (digest, size) = hash_file(file).await?;
    // Ask first, so a refused version is not uploaded only to be refused.
    let existing = client
        .send::<ArtifactView>(client.request(
            Method::GET,
            &format!(
                "/api/v1/artifacts/{}/{}",
                encode(&args.service),
                encode(&args.version)
            ),
        ))
        .await;
    if let Ok(existing) = existing
        && existing.digest != digest
    {
        return Err(Failure::new(
            "version_taken",
            format!(
                "{} {} already exists with another file ({}); this file is {}",
                args.service, args.version, existing.digest, digest
            ),
        )
        .hint("versions are immutable: push the new build under a new version")
        .into());
    }

    let handle = tokio::fs::File::open(file)
        .await
        .with_context(|| format!("cannot open {}", file.display()))?;
    let stream = tokio_util::io::ReaderStream::new(handle);
    let mut query = vec![
        ("service", args.service.clone()),
        ("version", args.version.clone()),
    ];
    if let Some(commit) = &args.commit {
        query.push(("commit", commit.clone()));
    }
    let request = client
        .request(Method::POST, "/api/v1/artifacts")
        .query(&query)
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .header(reqwest::header::CONTENT_LENGTH, size)
        .body(reqwest::Body::wrap_stream(stream));
    let pushed: ArtifactPushView = client.send(request).await?;
    match output {
        Output::Json => print_json(&pushed),
        Output::Text => {
            let a = &pushed.artifact;
            let what = if pushed.created {
                "pushed"
            } else {
                "already stored (nothing changed):"
            };
            println!(
                "{what} {} {} {} ({})",
                a.service,
                a.version,
                a.digest,
                human_size(a.size)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The file's `sha256:` digest and size, read in 1 MiB chunks.
pub(crate) async fn hash_file(path: &std::path::Path) -> Result<(String, u64)> {
    let mut file = tokio::fs::File::open(path).await.map_err(|error| {
        Failure::new(
            "file_unreadable",
            format!("cannot read {}: {error}", path.display()),
        )
        .hint("pass the path of the build output to push")
    })?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer).await?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buffer[..n]);
    }
    Ok((format!("sha256:{}", hex::encode(hasher.finalize())), size))
}

/// Percent-encodes a path segment.
pub(crate) fn encode(segment: &str) -> String {
    let mut out = String::new();
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
