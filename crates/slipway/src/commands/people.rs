//! `slipway user` and `slipway token`: who may do what.

use std::process::ExitCode;

use anyhow::Result;
use reqwest::Method;
use slipway_server::views::{NewTokenView, TokenView, UserView};

use super::{print_json, table};
use crate::Output;
use crate::client::Client;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum Role {
    Viewer,
    Deployer,
    Approver,
    Admin,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Deployer => "deployer",
            Role::Approver => "approver",
            Role::Admin => "admin",
        }
    }
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum UserCommand {
    /// Add a user (admins only).
    Add {
        name: String,
        #[arg(long, value_enum)]
        role: Role,
    },
    /// List users (admins only).
    List,
    /// Change a user's role (admins only).
    SetRole {
        name: String,
        #[arg(value_enum)]
        role: Role,
    },
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a token, for yourself or (admins) for --user. It is shown once.
    Create {
        #[arg(long)]
        user: Option<String>,
        /// What it is for (`ci`, `laptop`).
        #[arg(long)]
        label: Option<String>,
    },
    /// List tokens (yours, or all for an admin). Never the tokens themselves.
    List,
    /// Revoke a token by id.
    Revoke { id: i64 },
}

pub(crate) async fn user(
    command: &UserCommand,
    client: &Client,
    output: Output,
) -> Result<ExitCode> {
    match command {
        UserCommand::Add { name, role } => {
            let body = serde_json::json!({ "name": name, "role": role.name() });
            let user: UserView = client.post("/api/v1/users", &body).await?;
            match output {
                Output::Json => print_json(&user),
                Output::Text => println!(
                    "added {} ({}); give them a token: slipway token create --user {}",
                    user.name, user.role, user.name
                ),
            }
        }
        UserCommand::List => {
            let users: Vec<UserView> = client.get("/api/v1/users").await?;
            match output {
                Output::Json => print_json(&users),
                Output::Text => table(
                    &["NAME", "ROLE", "CREATED AT"],
                    users
                        .iter()
                        .map(|u| vec![u.name.clone(), u.role.clone(), u.created_at.clone()]),
                ),
            }
        }
        UserCommand::SetRole { name, role } => {
            let body = serde_json::json!({ "role": role.name() });
            let path = format!("/api/v1/users/{}/role", super::artifact::encode(name));
            let user: UserView = client.put(&path, &body).await?;
            match output {
                Output::Json => print_json(&user),
                Output::Text => println!("{} is now a {}", user.name, user.role),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn token(
    command: &TokenCommand,
    client: &Client,
    output: Output,
) -> Result<ExitCode> {
    match command {
        TokenCommand::Create { user, label } => {
            let body = serde_json::json!({ "user": user, "label": label });
            let token: NewTokenView = client.post("/api/v1/tokens", &body).await?;
            match output {
                Output::Json => print_json(&token),
                Output::Text => {
                    // The token alone on stdout, so `$(slipway token create)` captures it.
                    println!("{}", token.token);
                    eprintln!(
                        "token {} for {}: shown once, store it now (slipway keeps only its hash)",
                        token.record.id, token.record.user
                    );
                }
            }
        }
        TokenCommand::List => {
            let tokens: Vec<TokenView> = client.get("/api/v1/tokens").await?;
            match output {
                Output::Json => print_json(&tokens),
                Output::Text => table(
                    &["ID", "USER", "LABEL", "CREATED AT", "REVOKED AT"],
                    tokens.iter().map(|t| {
                        vec![
                            t.id.to_string(),
                            t.user.clone(),
                            t.label.clone().unwrap_or_default(),
                            t.created_at.clone(),
                            t.revoked_at.clone().unwrap_or_default(),
                        ]
                    }),
                ),
            }
        }
        TokenCommand::Revoke { id } => {
            let request = client.request(Method::DELETE, &format!("/api/v1/tokens/{id}"));
            let (): () = client.send(request).await?;
            if output == Output::Text {
                println!("token {id} revoked");
            } else {
                print_json(&serde_json::json!({ "revoked": id }));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(crate) async fn whoami(client: &Client, output: Output) -> Result<ExitCode> {
    let me: UserView = client.get("/api/v1/me").await?;
    match output {
        Output::Json => print_json(&me),
        Output::Text => println!("{} ({})", me.name, me.role),
    }
    Ok(ExitCode::SUCCESS)
}
