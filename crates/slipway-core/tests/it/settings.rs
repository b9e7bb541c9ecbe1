//! Config versions as data: the rules of `[service.config]` (required keys, types, patterns,
//! allowed values, values unique across services or environments), secrets kept out of every
//! finding, and env files read and written.

use std::collections::BTreeMap;

use proptest::prelude::*;
use slipway_core::config::{ConfigRules, KeyRule, Uniqueness, ValueKind, parse_config};
use slipway_core::settings::{
    Entry, EnvFileError, Finding, Holder, Values, check_unique, format_env_file, looks_secret,
    parse_env_file, quote_env_value, validate,
};

/// A value that must never appear in a finding or an error.
const CANARY: &str = "canary-7f3b9d-never-shown";

fn plain(value: &str) -> Entry {
    Entry {
        value: value.to_owned(),
        secret: false,
    }
}

fn secret(value: &str) -> Entry {
    Entry {
        value: value.to_owned(),
        secret: true,
    }
}

fn values(entries: &[(&str, Entry)]) -> Values {
    entries
        .iter()
        .map(|(key, entry)| ((*key).to_owned(), entry.clone()))
        .collect()
}

fn rules(entries: &[(&str, KeyRule)]) -> ConfigRules {
    ConfigRules {
        keys: entries
            .iter()
            .map(|(key, rule)| ((*key).to_owned(), rule.clone()))
            .collect(),
    }
}

fn typed(kind: ValueKind) -> KeyRule {
    KeyRule {
        kind,
        ..KeyRule::default()
    }
}

fn messages(findings: &[Finding]) -> Vec<String> {
    findings.iter().map(|f| f.message.clone()).collect()
}

/// A fingerprint that shows which key it was computed for, never the value.
fn fingerprint(key: &str, _value: &str) -> String {
    format!("fp-{}", key.to_ascii_lowercase())
}

#[test]
fn names_that_usually_hold_secrets_look_secret() {
    for key in [
        "CLIENT_SECRET",
        "DB_PASSWORD",
        "smtp_passwd",
        "GITHUB_TOKEN",
        "PRIVATE_CERT",
        "AWS_CREDENTIALS",
        "STRIPE_API_KEY",
        "SIGNING_KEY",
        "SENTRY_DSN",
        "api_key",
    ] {
        assert!(looks_secret(key), "{key} should look secret");
    }
    for key in [
        "QUEUE",
        "LOG_LEVEL",
        "KEYBOARD",
        "PORT_RANGE",
        "DSN_HOST",
        "KEY",
    ] {
        assert!(!looks_secret(key), "{key} should not look secret");
    }
}

#[test]
fn required_key_missing_or_empty_is_a_finding_with_a_hint() {
    let rules = rules(&[(
        "QUEUE",
        KeyRule {
            required: true,
            ..KeyRule::default()
        },
    )]);
    let missing = validate(&rules, &Values::new());
    assert_eq!(
        missing,
        [Finding {
            key: "QUEUE".to_owned(),
            message: "QUEUE is required but not set".to_owned(),
            hint: "set QUEUE in this config version: [service.config] marks it required".to_owned(),
        }]
    );
    let empty = validate(&rules, &values(&[("QUEUE", plain(""))]));
    assert_eq!(messages(&empty), ["QUEUE is required but empty"]);
    assert!(validate(&rules, &values(&[("QUEUE", plain("events"))])).is_empty());
}

#[test]
fn every_type_accepts_its_values_and_refuses_others() {
    let cases: &[(ValueKind, &[&str], &[&str])] = &[
        (ValueKind::String, &["", "anything at all", "ünïcode"], &[]),
        (
            ValueKind::Int,
            &["0", "42", "-7", "9223372036854775807"],
            &["4.0", "four", " 4", "9223372036854775808", ""],
        ),
        (
            ValueKind::Bool,
            &["true", "false"],
            &["TRUE", "yes", "1", "", "false "],
        ),
        (
            ValueKind::Url,
            &[
                "https://sqs.us-east-1.example.com/123/events",
                "http://127.0.0.1:9090",
                "postgres://app@db.internal:5432/app",
                "redis://:pw@cache:6379/0",
                "amqp://queue-host",
            ],
            &[
                "events",
                "example.com/path",
                "http://",
                "file:///etc/passwd",
                "mailto:ops@example.com",
                "https://exa mple.com",
                "https://example.com/a b",
                "://host",
                "1http://host",
            ],
        ),
        (
            ValueKind::Duration,
            &["30s", "5m", "1h30m", "250ms", "2d", "0"],
            &["5 minutes", "1.5h", "5", "m", " 5m", ""],
        ),
    ];
    let mut failures = Vec::new();
    for (kind, good, bad) in cases {
        let rules = rules(&[("VALUE", typed(*kind))]);
        for value in *good {
            let findings = validate(&rules, &values(&[("VALUE", plain(value))]));
            if !findings.is_empty() {
                failures.push(format!("{kind:?} refused {value:?}: {findings:?}"));
            }
        }
        for value in *bad {
            let findings = validate(&rules, &values(&[("VALUE", plain(value))]));
            if findings.len() != 1 {
                failures.push(format!("{kind:?} accepted {value:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn type_findings_quote_a_plain_value_and_say_how_to_write_one() {
    let rules = rules(&[
        ("WORKERS", typed(ValueKind::Int)),
        ("QUEUE_URL", typed(ValueKind::Url)),
        ("TIMEOUT", typed(ValueKind::Duration)),
        ("VERBOSE", typed(ValueKind::Bool)),
    ]);
    let findings = validate(
        &rules,
        &values(&[
            ("WORKERS", plain("four")),
            ("QUEUE_URL", plain("events")),
            ("TIMEOUT", plain("5 minutes")),
            ("VERBOSE", plain("yes")),
        ]),
    );
    let rendered: Vec<String> = findings
        .iter()
        .map(|f| format!("{}: {} (hint: {})", f.key, f.message, f.hint))
        .collect();
    assert_eq!(
        rendered,
        [
            "QUEUE_URL: the value \"events\" of QUEUE_URL is not a url (hint: write a URL with a \
             scheme and a host, e.g. https://queue.example.org/events (`type` of QUEUE_URL in \
             [service.config]))",
            "TIMEOUT: the value \"5 minutes\" of TIMEOUT is not a duration (hint: write a number \
             and a unit (ms, s, m, h, d) without spaces, e.g. \"30s\" or \"1h30m\" (`type` of \
             TIMEOUT in [service.config]))",
            "VERBOSE: the value \"yes\" of VERBOSE is not a bool (hint: write true or false, in \
             lower case (`type` of VERBOSE in [service.config]))",
            "WORKERS: the value \"four\" of WORKERS is not an int (hint: write a whole number, \
             e.g. 42 or -1 (`type` of WORKERS in [service.config]))",
        ]
    );
}

#[test]
fn pattern_must_match_the_whole_value() {
    let rules = rules(&[(
        "QUEUE",
        KeyRule {
            pattern: Some("[a-z]+-(prod|staging)".to_owned()),
            ..KeyRule::default()
        },
    )]);
    let check = |value: &str| messages(&validate(&rules, &values(&[("QUEUE", plain(value))])));
    assert!(check("events-prod").is_empty());
    assert!(check("events-staging").is_empty());
    assert_eq!(
        check("events-prod-old"),
        [
            "the value \"events-prod-old\" of QUEUE does not match the pattern `[a-z]+-(prod|staging)`"
        ]
    );
    assert_eq!(check("1events-prod").len(), 1);
    assert_eq!(check("events-prod\n").len(), 1);
    // Alternatives are anchored as a whole, not only the first and last.
    let alternatives = rules_with_pattern("a|b");
    assert_eq!(
        validate(&alternatives, &values(&[("K", plain("ab"))])).len(),
        1
    );
}

fn rules_with_pattern(pattern: &str) -> ConfigRules {
    rules(&[(
        "K",
        KeyRule {
            pattern: Some(pattern.to_owned()),
            ..KeyRule::default()
        },
    )])
}

#[test]
fn a_pattern_that_does_not_compile_is_a_finding_not_a_panic() {
    let findings = validate(
        &rules_with_pattern("(unclosed"),
        &values(&[("K", plain("x"))]),
    );
    assert_eq!(
        messages(&findings),
        ["the pattern `(unclosed` of K is not a regular expression"]
    );
}

#[test]
fn allowed_values_are_the_only_ones_accepted() {
    let rules = rules(&[(
        "LOG_LEVEL",
        KeyRule {
            allowed: vec!["debug".to_owned(), "info".to_owned(), "warn".to_owned()],
            ..KeyRule::default()
        },
    )]);
    assert!(validate(&rules, &values(&[("LOG_LEVEL", plain("info"))])).is_empty());
    let findings = validate(&rules, &values(&[("LOG_LEVEL", plain("verbose"))]));
    assert_eq!(
        findings,
        [Finding {
            key: "LOG_LEVEL".to_owned(),
            message: "the value \"verbose\" of LOG_LEVEL is not one of the allowed values"
                .to_owned(),
            hint: "use one of \"debug\", \"info\", \"warn\"".to_owned(),
        }]
    );
}

#[test]
fn keys_without_rules_pass_but_reserved_keys_and_nul_values_do_not() {
    let findings = validate(
        &ConfigRules::default(),
        &values(&[
            ("FREE_FORM", plain("anything")),
            ("PORT", plain("8080")),
            ("SLIPWAY_SERVICE", plain("x")),
            ("WITH_NUL", plain("a\0b")),
        ]),
    );
    let keys: Vec<&str> = findings.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys, ["PORT", "SLIPWAY_SERVICE", "WITH_NUL"]);
}

#[test]
fn each_problem_of_a_value_is_its_own_finding_sorted_by_key() {
    let rules = rules(&[
        (
            "WORKERS",
            KeyRule {
                kind: ValueKind::Int,
                pattern: Some("[0-9]".to_owned()),
                allowed: vec!["1".to_owned(), "2".to_owned()],
                ..KeyRule::default()
            },
        ),
        (
            "A_REQUIRED",
            KeyRule {
                required: true,
                ..KeyRule::default()
            },
        ),
    ]);
    let findings = validate(&rules, &values(&[("WORKERS", plain("ten"))]));
    let keys: Vec<&str> = findings.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(keys, ["A_REQUIRED", "WORKERS", "WORKERS", "WORKERS"]);
}

#[test]
fn secret_values_never_appear_in_rule_findings() {
    let strict = KeyRule {
        kind: ValueKind::Int,
        pattern: Some("[0-9]{4}".to_owned()),
        allowed: vec!["1234".to_owned()],
        ..KeyRule::default()
    };
    let rules = rules(&[
        // Secret by its entry's flag.
        ("FLAGGED", strict.clone()),
        // Secret by its rule, though the entry says plain.
        (
            "RULED",
            KeyRule {
                secret: Some(true),
                ..strict.clone()
            },
        ),
        // Secret by its name.
        ("STRIPE_API_KEY", strict),
    ]);
    let findings = validate(
        &rules,
        &values(&[
            ("FLAGGED", secret(CANARY)),
            ("RULED", plain(CANARY)),
            ("STRIPE_API_KEY", plain(CANARY)),
        ]),
    );
    assert_eq!(findings.len(), 9, "{findings:?}");
    let shown = format!("{findings:?}");
    assert!(!shown.contains(CANARY), "a secret leaked: {shown}");
    assert!(
        !shown.contains("canary"),
        "part of a secret leaked: {shown}"
    );
    assert_eq!(
        findings[0].message,
        "the secret value of FLAGGED is not an int"
    );
}

/// Seed 003: two services whose queues must differ, read from the file as a team writes it.
const SEED_003: &str = r#"
[[service]]
name = "idp"
start = "bin/server"

[service.config]
QUEUE = { required = true, unique = "services", group = "queues" }

[[service]]
name = "pivcac"
start = "bin/server"

[service.config]
JOBS_QUEUE = { required = true, unique = "services", group = "queues" }

[environment.staging]
[environment.prod]
"#;

#[test]
fn two_services_consuming_one_queue_is_a_finding_naming_the_other_service() {
    let config = parse_config("slipway.toml", SEED_003).unwrap();
    let idp_rules = &config.service("idp").unwrap().config;
    let pivcac_rules = &config.service("pivcac").unwrap().config;
    let queue = "https://sqs.example/123/playbook-events";
    let idp = values(&[("QUEUE", plain(queue))]);
    let pivcac = values(&[("JOBS_QUEUE", plain(queue))]);
    let candidate = Holder {
        service: "idp",
        environment: "prod",
        rules: idp_rules,
        values: &idp,
    };
    let others = [Holder {
        service: "pivcac",
        environment: "prod",
        rules: pivcac_rules,
        values: &pivcac,
    }];
    assert_eq!(
        check_unique(&candidate, &others),
        [Finding {
            key: "QUEUE".to_owned(),
            message: format!(
                "QUEUE of idp in prod holds the same value as JOBS_QUEUE of pivcac in prod \
                 (\"{queue}\"); values of group `queues` must be unique across services"
            ),
            hint: "set another value for QUEUE of idp in prod, or change JOBS_QUEUE of pivcac \
                   in prod if that one is wrong"
                .to_owned(),
        }]
    );
    let other_queue = values(&[("JOBS_QUEUE", plain("https://sqs.example/123/jobs"))]);
    let apart = [Holder {
        values: &other_queue,
        ..others[0]
    }];
    assert!(check_unique(&candidate, &apart).is_empty());
}

fn unique(mode: Uniqueness, group: Option<&str>) -> KeyRule {
    KeyRule {
        unique: Some(mode),
        group: group.map(str::to_owned),
        ..KeyRule::default()
    }
}

/// Which (service, environment) pairs a candidate `idp` in `prod` clashes with, for a rule in
/// `mode`, when every holder has the same value.
fn clashes_in(mode: Uniqueness) -> Vec<String> {
    let rules = rules(&[("QUEUE", unique(mode, None))]);
    let same = values(&[("QUEUE", plain("events"))]);
    let holder = |service, environment| Holder {
        service,
        environment,
        rules: &rules,
        values: &same,
    };
    let candidate = holder("idp", "prod");
    let others = [
        holder("idp", "prod"),
        holder("idp", "staging"),
        holder("pivcac", "prod"),
        holder("pivcac", "staging"),
    ];
    check_unique(&candidate, &others)
        .into_iter()
        .map(|finding| {
            let (_, rest) = finding
                .message
                .split_once("same value as QUEUE of ")
                .unwrap();
            let (who, _) = rest.split_once(" (").unwrap();
            who.to_owned()
        })
        .collect()
}

#[test]
fn uniqueness_across_services_compares_other_services_in_the_same_environment() {
    assert_eq!(clashes_in(Uniqueness::Services), ["pivcac in prod"]);
}

#[test]
fn uniqueness_across_environments_compares_the_same_service_elsewhere() {
    assert_eq!(clashes_in(Uniqueness::Environments), ["idp in staging"]);
}

#[test]
fn uniqueness_everywhere_compares_every_other_service_and_environment() {
    assert_eq!(
        clashes_in(Uniqueness::Everywhere),
        ["idp in staging", "pivcac in prod", "pivcac in staging"]
    );
}

#[test]
fn uniqueness_messages_say_where_the_value_must_be_unique() {
    let rules = rules(&[("QUEUE", unique(Uniqueness::Environments, None))]);
    let same = values(&[("QUEUE", plain("events"))]);
    let candidate = Holder {
        service: "idp",
        environment: "prod",
        rules: &rules,
        values: &same,
    };
    let other = Holder {
        environment: "staging",
        ..candidate
    };
    let findings = check_unique(&candidate, &[other]);
    assert_eq!(
        messages(&findings),
        [
            "QUEUE of idp in prod holds the same value as QUEUE of idp in staging (\"events\"); \
             QUEUE must be unique across environments"
        ]
    );
    let everywhere = self::rules(&[("QUEUE", unique(Uniqueness::Everywhere, None))]);
    let candidate = Holder {
        rules: &everywhere,
        ..candidate
    };
    let findings = check_unique(&candidate, &[other]);
    assert!(
        findings[0]
            .message
            .ends_with("QUEUE must be unique across services and environments")
    );
}

#[test]
fn only_keys_of_the_same_group_with_a_unique_rule_are_compared() {
    let candidate_rules = rules(&[
        ("QUEUE", unique(Uniqueness::Services, Some("queues"))),
        ("REGION", unique(Uniqueness::Services, None)),
    ]);
    let candidate_values = values(&[("QUEUE", plain("events")), ("REGION", plain("events"))]);
    let candidate = Holder {
        service: "idp",
        environment: "prod",
        rules: &candidate_rules,
        values: &candidate_values,
    };
    let other_rules = rules(&[
        // Same name, but no group: its group is `QUEUE`, not `queues`.
        ("QUEUE", unique(Uniqueness::Services, None)),
        // In the group, but not unique: not compared.
        (
            "DEAD_LETTERS",
            KeyRule {
                group: Some("queues".to_owned()),
                ..KeyRule::default()
            },
        ),
        // In the group and unique (in another mode: the candidate's rule decides where).
        (
            "WORK_QUEUE",
            unique(Uniqueness::Environments, Some("queues")),
        ),
        // No rule at all.
        ("OTHER", KeyRule::default()),
    ]);
    let other_values = values(&[
        ("QUEUE", plain("events")),
        ("DEAD_LETTERS", plain("events")),
        ("WORK_QUEUE", plain("events")),
        ("OTHER", plain("events")),
        ("UNRULED", plain("events")),
    ]);
    let other = Holder {
        service: "pivcac",
        environment: "prod",
        rules: &other_rules,
        values: &other_values,
    };
    let findings = check_unique(&candidate, &[other]);
    let pairs: Vec<String> = findings
        .iter()
        .map(|f| {
            let (_, rest) = f.message.split_once("same value as ").unwrap();
            format!("{} ~ {}", f.key, rest.split(' ').next().unwrap())
        })
        .collect();
    assert_eq!(pairs, ["QUEUE ~ WORK_QUEUE"]);
}

#[test]
fn uniqueness_skips_the_candidate_itself_and_empty_values() {
    let rules = rules(&[("QUEUE", unique(Uniqueness::Everywhere, None))]);
    let empty = values(&[("QUEUE", plain(""))]);
    let full = values(&[("QUEUE", plain("events"))]);
    let candidate = Holder {
        service: "idp",
        environment: "prod",
        rules: &rules,
        values: &full,
    };
    // An older version of the candidate's own service and environment is not another holder.
    assert!(check_unique(&candidate, &[candidate]).is_empty());
    let blank = Holder {
        values: &empty,
        ..candidate
    };
    let other_blank = Holder {
        service: "pivcac",
        ..blank
    };
    assert!(check_unique(&blank, &[other_blank]).is_empty());
}

#[test]
fn uniqueness_findings_come_in_the_same_order_whatever_the_order_of_others() {
    let rules = rules(&[
        ("A_QUEUE", unique(Uniqueness::Everywhere, Some("q"))),
        ("B_QUEUE", unique(Uniqueness::Everywhere, Some("q"))),
    ]);
    let same = values(&[("A_QUEUE", plain("x")), ("B_QUEUE", plain("x"))]);
    let holder = |service, environment| Holder {
        service,
        environment,
        rules: &rules,
        values: &same,
    };
    let candidate = holder("idp", "prod");
    let forward = [holder("a", "prod"), holder("b", "dev"), holder("b", "prod")];
    let backward = [holder("b", "prod"), holder("b", "dev"), holder("a", "prod")];
    let first = check_unique(&candidate, &forward);
    assert_eq!(first.len(), 12);
    assert_eq!(first, check_unique(&candidate, &backward));
    let order: Vec<String> = first
        .iter()
        .take(3)
        .map(|f| f.message.split(';').next().unwrap().to_owned())
        .collect();
    assert_eq!(
        order,
        [
            "A_QUEUE of idp in prod holds the same value as A_QUEUE of a in prod (\"x\")",
            "A_QUEUE of idp in prod holds the same value as B_QUEUE of a in prod (\"x\")",
            "A_QUEUE of idp in prod holds the same value as A_QUEUE of b in dev (\"x\")",
        ]
    );
}

#[test]
fn secret_values_never_appear_in_uniqueness_findings() {
    let rules = rules(&[
        ("QUEUE", unique(Uniqueness::Services, Some("q"))),
        ("WEBHOOK_TOKEN", unique(Uniqueness::Services, Some("q"))),
    ]);
    // Secret on the candidate's side, on the other's side, and by name.
    let candidate_values = values(&[("QUEUE", secret(CANARY)), ("WEBHOOK_TOKEN", plain(CANARY))]);
    let other_values = values(&[("QUEUE", plain(CANARY))]);
    let candidate = Holder {
        service: "idp",
        environment: "prod",
        rules: &rules,
        values: &candidate_values,
    };
    let other = Holder {
        service: "pivcac",
        values: &other_values,
        ..candidate
    };
    let findings = check_unique(&candidate, &[other]);
    assert_eq!(findings.len(), 2);
    let shown = format!("{findings:?}");
    assert!(!shown.contains("canary"), "a secret leaked: {shown}");
    assert_eq!(
        findings[0].message,
        "QUEUE of idp in prod holds the same value as QUEUE of pivcac in prod; values of group \
         `q` must be unique across services"
    );
    // The other side's secret flag hides a value the candidate holds as plain.
    let reversed_values = values(&[("QUEUE", plain(CANARY))]);
    let secret_other = values(&[("QUEUE", secret(CANARY))]);
    let candidate = Holder {
        values: &reversed_values,
        ..candidate
    };
    let other = Holder {
        values: &secret_other,
        ..other
    };
    let shown = format!("{:?}", check_unique(&candidate, &[other]));
    assert!(
        shown.contains("pivcac") && !shown.contains("canary"),
        "{shown}"
    );
}

#[test]
fn env_file_is_read_with_comments_exports_quotes_and_escapes() {
    let text = "# queues of idp\n\
                \n\
                QUEUE=https://sqs.example/123/events\n\
                export LOG_LEVEL=info\n\
                \tGREETING = 'hello $USER \\n'  # single quotes are literal\n\
                MOTD=\"line one\\nline \\\"two\\\" costs \\$5 \\\\ \\`x\\`\"\n\
                PEM=\"-----BEGIN-----\n\
                abc\n\
                -----END-----\"\n\
                BARE=a b  # a comment\n\
                HASH=a#b\n\
                EMPTY=\n\
                EMPTY_QUOTED=\"\"\n\
                KEEP=\"\\d\\w\"\n\
                WINDOWS=crlf\r\n";
    let pairs = parse_env_file(text).unwrap();
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("QUEUE", "https://sqs.example/123/events"),
            ("LOG_LEVEL", "info"),
            ("GREETING", "hello $USER \\n"),
            ("MOTD", "line one\nline \"two\" costs $5 \\ `x`"),
            ("PEM", "-----BEGIN-----\nabc\n-----END-----"),
            ("BARE", "a b"),
            ("HASH", "a#b"),
            ("EMPTY", ""),
            ("EMPTY_QUOTED", ""),
            ("KEEP", "\\d\\w"),
            ("WINDOWS", "crlf"),
        ]
    );
    assert_eq!(
        parse_env_file("\u{feff}BOM=1\r\nNEXT='2'\r\n").unwrap(),
        [
            ("BOM".to_owned(), "1".to_owned()),
            ("NEXT".to_owned(), "2".to_owned())
        ]
    );
}

#[test]
fn env_file_mistakes_are_all_reported_with_their_line() {
    let text = "QUEUE=events\n\
                just some words\n\
                1BAD=x\n\
                PORT=8080\n\
                QUEUE=again\n\
                TRAILING=\"quoted\" extra\n\
                export 9X=x\n\
                OPEN='never closed\n\
                more\n";
    let errors = parse_env_file(text).unwrap_err();
    assert_eq!(
        errors,
        [
            EnvFileError {
                line: 2,
                message: "expected KEY=value, a `# comment` or a blank line (a value that spans \
                          lines must be in quotes)"
                    .to_owned(),
            },
            EnvFileError {
                line: 3,
                message: "the name before `=` is not a valid key: use letters, digits and `_`, \
                          not starting with a digit"
                    .to_owned(),
            },
            EnvFileError {
                line: 4,
                message: "`PORT` is set by slipway itself (`PORT` and `SLIPWAY_*` are reserved)"
                    .to_owned(),
            },
            EnvFileError {
                line: 5,
                message: "QUEUE is set twice; the first is on line 1".to_owned(),
            },
            EnvFileError {
                line: 6,
                message: "unexpected text after the closing quote of TRAILING's value; put the \
                          whole value in the quotes"
                    .to_owned(),
            },
            EnvFileError {
                line: 7,
                message: "the name before `=` is not a valid key: use letters, digits and `_`, \
                          not starting with a digit"
                    .to_owned(),
            },
            EnvFileError {
                line: 8,
                message: "the single quote of OPEN's value is never closed".to_owned(),
            },
        ]
    );
    assert_eq!(
        errors[0].to_string(),
        format!("line 2: {}", errors[0].message)
    );
}

#[test]
fn env_file_errors_never_repeat_a_value() {
    let text = format!(
        "A=\"{CANARY}\" {CANARY}\n{CANARY}\n{CANARY} x={CANARY}\nB=\"{CANARY}\0\"\nC=\"{CANARY}"
    );
    let errors = parse_env_file(&text).unwrap_err();
    let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
    assert_eq!(lines, [1, 2, 3, 4, 5]);
    let shown = format!("{errors:?}");
    assert!(!shown.contains("canary"), "a value leaked: {shown}");
}

#[test]
fn env_file_lines_count_from_the_line_a_multi_line_value_ends_on() {
    let text = "PEM=\"a\nb\nc\"\nBAD LINE\n";
    let errors = parse_env_file(text).unwrap_err();
    assert_eq!(errors.iter().map(|e| e.line).collect::<Vec<_>>(), [4]);
}

#[test]
fn formatted_env_file_shows_secrets_only_by_fingerprint_and_reads_back() {
    let versions = values(&[
        ("QUEUE", plain("https://sqs.example/123/events")),
        ("GREETING", plain("hello \"world\" $HOME\nbye")),
        ("EMPTY", plain("")),
        ("DB_PASSWORD", secret(CANARY)),
    ]);
    let text = format_env_file(&versions, &fingerprint);
    assert_eq!(
        text,
        "# DB_PASSWORD: secret fp-db_password\n\
         EMPTY=\"\"\n\
         GREETING=\"hello \\\"world\\\" \\$HOME\nbye\"\n\
         QUEUE=https://sqs.example/123/events\n"
    );
    assert!(!text.contains("canary"));
    let read: BTreeMap<String, String> = parse_env_file(&text).unwrap().into_iter().collect();
    let plain_values: BTreeMap<String, String> = versions
        .iter()
        .filter(|(_, entry)| !entry.secret)
        .map(|(key, entry)| (key.clone(), entry.value.clone()))
        .collect();
    assert_eq!(read, plain_values);
}

#[test]
fn quoting_keeps_simple_values_bare() {
    assert_eq!(
        quote_env_value("events-prod_1.2:3/4@5+6,7"),
        "events-prod_1.2:3/4@5+6,7"
    );
    assert_eq!(quote_env_value(""), "\"\"");
    assert_eq!(quote_env_value("a b"), "\"a b\"");
    assert_eq!(quote_env_value("#x"), "\"#x\"");
    assert_eq!(quote_env_value("~/x"), "\"~/x\"");
    assert_eq!(
        quote_env_value("$(rm -rf /)`id`"),
        "\"\\$(rm -rf /)\\`id\\`\""
    );
}

#[test]
fn a_shell_reads_quoted_values_as_the_env_file_parser_does() {
    let samples = [
        "plain",
        "with space",
        "quote \" and backslash \\ and \\n",
        "dollar $HOME ${HOME} $(id) `id`",
        "multi\nline\n",
        "single ' quote",
        "tab\tand ünïcode and !bang",
        "\\",
        "ends with backslash \\",
        "",
        "# not a comment",
    ];
    for sample in samples {
        let line = format!("VALUE={}\n", quote_env_value(sample));
        let output = std::process::Command::new("sh")
            .arg("-c")
            .arg("eval \"$1\"; printf '%s' \"$VALUE\"")
            .arg("sh")
            .arg(&line)
            .output()
            .expect("sh runs");
        assert!(output.status.success(), "sh failed on {line:?}");
        assert_eq!(
            String::from_utf8(output.stdout).unwrap(),
            sample,
            "sh read {line:?} differently"
        );
        assert_eq!(
            parse_env_file(&line).unwrap(),
            [("VALUE".to_owned(), sample.to_owned())]
        );
    }
}

proptest! {
    #[test]
    fn quoted_values_read_back_unchanged(value in "[^\u{0}]{0,64}") {
        let text = format!("KEY={}\n", quote_env_value(&value));
        prop_assert_eq!(parse_env_file(&text), Ok(vec![("KEY".to_owned(), value)]));
    }

    #[test]
    fn formatted_files_read_back_their_plain_values(
        entries in proptest::collection::btree_map("[A-Z][A-Z0-9_]{0,8}", ("[^\u{0}]{0,24}", any::<bool>()), 0..6)
    ) {
        let versions: Values = entries
            .iter()
            .filter(|(key, _)| *key != "PORT" && !key.starts_with("SLIPWAY_"))
            .map(|(key, (value, secret))| {
                (key.clone(), Entry { value: value.clone(), secret: *secret })
            })
            .collect();
        let read = parse_env_file(&format_env_file(&versions, &fingerprint)).unwrap();
        let expected: Vec<(String, String)> = versions
            .iter()
            .filter(|(_, entry)| !entry.secret)
            .map(|(key, entry)| (key.clone(), entry.value.clone()))
            .collect();
        prop_assert_eq!(read, expected);
    }
}

/// The user documentation of rules and env files, whose examples must stay true.
const DOCS: &str = include_str!("../../../../docs/config.md");

/// The first fenced block of `language` after `heading` in [`DOCS`].
fn docs_block(heading: &str, language: &str) -> &'static str {
    let (_, section) = DOCS.split_once(heading).expect("the docs have the section");
    let (_, block) = section
        .split_once(&format!("```{language}\n"))
        .expect("the section has the block");
    block.split_once("```").expect("the block is closed").0
}

#[test]
fn documented_rules_parse_and_catch_seed_003s_incident() {
    // The example shows services only; any environment completes the file.
    let text = format!("{}\n[environment.prod]\n", docs_block("## Rules", "toml"));
    let config = parse_config("docs/config.md", &text).unwrap();
    let queue = values(&[("QUEUE", plain("https://sqs.example/123/playbook-events"))]);
    let jobs = values(&[(
        "JOBS_QUEUE",
        plain("https://sqs.example/123/playbook-events"),
    )]);
    let candidate = Holder {
        service: "idp",
        environment: "prod",
        rules: &config.service("idp").unwrap().config,
        values: &queue,
    };
    let other = Holder {
        service: "pivcac",
        environment: "prod",
        rules: &config.service("pivcac").unwrap().config,
        values: &jobs,
    };
    let findings = check_unique(&candidate, &[other]);
    assert_eq!(findings.len(), 1);
    let shown = format!("{}\n  hint: {}", findings[0].message, findings[0].hint);
    assert!(DOCS.contains(&shown), "the docs do not show:\n{shown}");
}

#[test]
fn documented_env_files_read_as_the_docs_say() {
    let read = parse_env_file(docs_block("## Env files", "sh")).unwrap();
    let read: BTreeMap<String, String> = read.into_iter().collect();
    assert_eq!(read["GREETING"], "hello $USER");
    assert_eq!(read["MOTD"], "line one\nline \"two\" costs $5");
    assert_eq!(read["EMPTY"], "");
    assert_eq!(read.len(), 6);
    let written = docs_block("Writing one", "sh");
    let versions = values(&[
        ("SMTP_PASSWORD", secret(CANARY)),
        ("LOG_LEVEL", plain("info")),
        ("MOTD", plain("it costs $5\nand more")),
        ("QUEUE", plain("https://sqs.example/123/events")),
    ]);
    assert_eq!(
        format_env_file(&versions, &|_, _| "3f9a1c2e".to_owned()),
        written
    );
}
