//! `[[notify]]`, `[chat]` and `[server] public_url`: what they parse into, and each mistake
//! with its position and hint.

use std::collections::BTreeMap;

use slipway_core::config::{NotifyKind, SecretSource, parse_config};
use slipway_core::plan::ReleaseKind::{Config, Full, OffCycle, Patch};

const BASE: &str = "[[service]]\nname = \"idp\"\nstart = \"bin/server --port $PORT\"\n\n\
                    [environment.staging]\n\n[environment.prod]\n\n";

fn rendered_errors(extra: &str) -> String {
    match parse_config("slipway.toml", &format!("{BASE}{extra}")) {
        Ok(config) => panic!("expected errors, parsed {config:#?}"),
        Err(errors) => errors.to_string(),
    }
}

#[test]
fn notify_destinations_chat_and_public_url_parse_with_their_defaults() {
    let text = format!(
        "[server]\npublic_url = \"https://slipway.example.org/\"\n\n{BASE}\
         [[notify]]\nkind = \"slack\"\nurl = \"https://hooks.slack.com/services/T0/B0/XYZ\"\n\
         environments = [\"prod\"]\n\n\
         [[notify]]\nkind = \"webhook\"\nname = \"audit\"\nurl = \"http://127.0.0.1:9000/hook\"\n\
         secret_env = \"AUDIT_SECRET\"\n\n\
         [chat]\nsigning_secret_file = \"slack.secret\"\n[chat.users]\nU024BE7LH = \"alice\"\n"
    );
    let config = parse_config("slipway.toml", &text).unwrap();
    assert_eq!(
        config.server.public_url.as_deref(),
        Some("https://slipway.example.org")
    );
    let [slack, webhook] = &config.notify[..] else {
        panic!("{:?}", config.notify);
    };
    assert_eq!(slack.name, "slack-1");
    assert_eq!(slack.kind, NotifyKind::Slack);
    assert_eq!(slack.environments, ["prod"]);
    assert!(slack.routes("prod", Full) && !slack.routes("staging", Full));
    assert_eq!(slack.secret, None);
    assert_eq!(slack.origin(), "https://hooks.slack.com");
    let mut with_credentials =
        webhook_with_url(slack, "https://bot:pa55@hooks.example:8443?token=x");
    assert_eq!(with_credentials.origin(), "https://hooks.example:8443");
    with_credentials.url = "http://user@127.0.0.1/hook#frag".to_owned();
    assert_eq!(with_credentials.origin(), "http://127.0.0.1");
    assert!(
        !format!("{slack:?}").contains("XYZ"),
        "the URL's credential stays out of Debug"
    );
    assert_eq!(webhook.name, "audit");
    assert_eq!(webhook.kind, NotifyKind::Webhook);
    assert!(webhook.routes("staging", Full) && webhook.routes("prod", OffCycle));
    assert_eq!(
        webhook.secret,
        Some(SecretSource::Env("AUDIT_SECRET".to_owned()))
    );
    assert_eq!(
        config.chat.signing_secret,
        Some(SecretSource::File("slack.secret".to_owned()))
    );
    assert_eq!(
        config.chat.users,
        BTreeMap::from([("U024BE7LH".to_owned(), "alice".to_owned())])
    );
}

#[test]
fn a_destination_with_kinds_hears_only_deploys_of_those_release_kinds() {
    let text = format!(
        "{BASE}[[notify]]\nname = \"company\"\nkind = \"slack\"\nurl = \"https://x\"\n\
         environments = [\"prod\"]\nkinds = [\"off-cycle\", \"patch\"]\n"
    );
    let config = parse_config("slipway.toml", &text).unwrap();
    let company = &config.notify[0];
    assert_eq!(company.kinds, [OffCycle, Patch]);
    assert!(company.routes("prod", OffCycle) && company.routes("prod", Patch));
    assert!(!company.routes("prod", Full) && !company.routes("prod", Config));
    assert!(!company.routes("staging", OffCycle));
}

#[test]
fn notify_mistakes_are_reported_where_they_are_written_with_a_hint() {
    let cases = [
        (
            "[[notify]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/\"\n",
            "error: slipway.toml:9:1: missing `secret_file` in [[notify]] #1\n  \
             hint: webhooks are signed: add secret_file = \"webhook.secret\" (relative to this \
             file) or secret_env = \"SLIPWAY_WEBHOOK_SECRET\"",
        ),
        (
            "[[notify]]\nkind = \"slack\"\nurl = \"http://x\"\nenvironments = [\"prd\"]\n",
            "error: slipway.toml:12:17: unknown environment `prd` in [[notify]] #1\n  \
             hint: did you mean `prod`?",
        ),
        (
            "[[notify]]\nkind = \"slack\"\nurl = \"http://x\"\nkinds = [\"offcycle\"]\n",
            "error: slipway.toml:12:10: unknown release kind `offcycle` in [[notify]] #1\n  \
             hint: did you mean `off-cycle`?",
        ),
        (
            "[[notify]]\nkind = \"slak\"\nurl = \"http://x\"\n",
            "error: slipway.toml:10:8: `kind` in [[notify]] #1: \"slak\" is not one of \
             \"slack\" or \"webhook\"\n  hint: did you mean \"slack\"?",
        ),
        (
            "[[notify]]\nkind = \"slack\"\nurl = \"http://x\"\nsecret_env = \"S\"\n",
            "error: slipway.toml:9:1: [[notify]] #1: a Slack destination takes no secret; its \
             URL is its credential\n  hint: remove secret_file / secret_env, or use kind = \
             \"webhook\" for a signed JSON webhook",
        ),
        (
            "[[notify]]\nkind = \"slack\"\n",
            "error: slipway.toml:9:1: missing `url` in [[notify]] #1\n  hint: write url = \
             \"https://hooks.slack.com/services/…\" (Slack) or the receiver's address",
        ),
        (
            "[chat]\n[chat.users]\nU1 = 3\n",
            "error: slipway.toml:9:1: missing `signing_secret_file` in [chat]\n  hint: add \
             signing_secret_file = \"slack-signing.secret\" or signing_secret_env = \
             \"SLACK_SIGNING_SECRET\" (the Slack app's Signing Secret)\n\
             error: slipway.toml:11:6: `U1` in [chat.users]: expected a slipway user name, found \
             integer\n  hint: write U1 = \"alice\" (a slipway user)",
        ),
    ];
    let mut failures = Vec::new();
    for (extra, expected) in cases {
        let got = rendered_errors(extra);
        if got != expected {
            failures.push(format!("{extra}\n expected:\n{expected}\n got:\n{got}\n"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_example_file_routes_slack_to_prod_and_maps_a_chat_user() {
    let example = include_str!("../../../../examples/slipway.toml");
    let config = parse_config("examples/slipway.toml", example).unwrap();
    let kinds: Vec<(&str, NotifyKind)> = config
        .notify
        .iter()
        .map(|d| (d.name.as_str(), d.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            ("slack-1", NotifyKind::Slack),
            ("incidents", NotifyKind::Webhook)
        ]
    );
    assert_eq!(config.notify[0].environments, ["prod"]);
    assert_eq!(
        config.chat.signing_secret,
        Some(SecretSource::Env("SLACK_SIGNING_SECRET".to_owned()))
    );
    assert_eq!(config.chat.users["U024BE7LH"], "alice");
}

/// `destination` with another URL.
fn webhook_with_url(
    destination: &slipway_core::config::NotifyDestination,
    url: &str,
) -> slipway_core::config::NotifyDestination {
    let mut destination = destination.clone();
    destination.url = url.to_owned();
    destination
}
