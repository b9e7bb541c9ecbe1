//! `slipway.toml` parsing: the example file, defaults, and every kind of mistake with the
//! position, message and hint it is reported with.

use std::collections::BTreeMap;

use slipway_core::analysis::Metric;
use slipway_core::config::{
    ApprovalPolicy, CheckKind, CommandOperation, CommandTemplate, ConfigDelivery, ConfigErrorKind,
    ConfigErrors, FreezeKind, KeyRule, MetricSourceKind, Placeholder, Policy, Pool,
    ProvenanceRequirement, SecretsConfig, TemplatePart, Threshold, Uniqueness, ValueKind,
    parse_config,
};
use slipway_core::deploy::Role;
use slipway_core::time::Span;

const EXAMPLE: &str = include_str!("../../../../examples/slipway.toml");

/// A valid service, so a test can focus on one environment. Three lines and a blank one, so
/// the environment's header is line 5 and its first key line 6.
const SERVICE: &str = "[[service]]\nname = \"idp\"\nstart = \"bin/server --port $PORT\"\n\n";

fn with_env(body: &str) -> String {
    format!("{SERVICE}[environment.prod]\n{body}\n")
}

fn errors(text: &str) -> ConfigErrors {
    match parse_config("slipway.toml", text) {
        Ok(config) => panic!("expected errors, parsed:\n{config:#?}\nfrom:\n{text}"),
        Err(errors) => errors,
    }
}

/// Checks that each text gives exactly the rendered errors expected, and reports every case
/// that does not before failing.
fn assert_cases(cases: &[(&str, String, &str)]) {
    let mut failures = Vec::new();
    for (name, text, expected) in cases {
        let rendered = match parse_config("slipway.toml", text) {
            Ok(_) => "parsed without errors".to_owned(),
            Err(errors) => errors.to_string(),
        };
        if rendered != *expected {
            failures.push(format!(
                "case `{name}`:\n  expected:\n{expected}\n  got:\n{rendered}\n"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn example_file_parses_with_every_field() {
    let config = parse_config("examples/slipway.toml", EXAMPLE).unwrap();

    assert_eq!(config.server.listen, "127.0.0.1:7700");
    assert_eq!(config.server.data_dir, ".slipway");
    assert_eq!(config.server.database, None);

    let names: Vec<_> = config.services.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["idp", "pivcac"]);
    let idp = config.service("idp").unwrap();
    assert_eq!(idp.migrate.as_deref(), Some("bin/migrate"));
    assert_eq!(idp.health.healthy_threshold, 2);
    assert_eq!(
        idp.pools,
        BTreeMap::from([
            (
                "web".to_owned(),
                Pool {
                    count: 2,
                    traffic: true
                }
            ),
            (
                "worker".to_owned(),
                Pool {
                    count: 1,
                    traffic: false
                }
            ),
        ])
    );
    let pivcac = config.service("pivcac").unwrap();
    assert_eq!(pivcac.health.path, "/health");
    assert_eq!(pivcac.health.interval, Span::from_secs(2));
    assert_eq!(pivcac.pools["web"].count, 2);

    let order: Vec<_> = config
        .environments
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(order, ["dev", "int", "staging", "prod"]);

    let staging = config.environment("staging").unwrap();
    assert_eq!(staging.target, "command");
    let command = staging.command.as_ref().unwrap();
    assert!(
        command
            .launch
            .text()
            .starts_with("./bin/asg-recycle {environment} {service}")
    );
    assert!(command.traffic.is_some() && command.task.is_some());
    assert_eq!(command.timeout, Span::from_secs(10 * 60));
    assert_eq!(command.shell, "/bin/sh");
    assert_eq!(command.workdir.as_deref(), Some("deploy"));
    assert!(
        config
            .environments
            .iter()
            .all(|env| (env.target == "command") == env.command.is_some())
    );
    let canary = staging.policy.canary.as_ref().unwrap();
    assert_eq!(canary.header.as_deref(), Some("X-Tenant: internal"));
    assert_eq!(canary.share_bp, 0);

    let prod = config.environment("prod").unwrap();
    assert_eq!(prod.regions, ["us-east-1", "us-west-2"]);
    let policy = &prod.policy;
    assert!(policy.protected && policy.go_no_go && policy.confirm_scale_in);
    assert_eq!(
        policy.approvals,
        Some(ApprovalPolicy {
            required: 1,
            expires: Span::from_secs(30 * 60),
            ..ApprovalPolicy::default()
        })
    );
    assert_eq!(policy.windows.len(), 1);
    assert_eq!(policy.windows[0].time_zone, "America/New_York");
    assert_eq!(policy.freezes.len(), 3);
    assert_eq!(
        policy.freezes[2].kind,
        FreezeKind::Dates {
            first: "2026-12-21".to_owned(),
            last: "2027-01-04".to_owned()
        }
    );
    assert_eq!(policy.freezes[2].reason.as_deref(), Some("winter break"));
    assert_eq!(policy.canary.as_ref().unwrap().share_bp, 1000);
    assert_eq!(policy.bake, Span::from_secs(15 * 60));
    assert_eq!(policy.post_verify, Some(Span::from_secs(60 * 60)));
    let names: Vec<&str> = policy.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "error_rate",
            "latency_p99",
            "request_rate",
            "probe /login",
            "queue depth",
            "command bin/check-orders"
        ]
    );
    assert_eq!(policy.analysis.compare.len(), 2);
    assert_eq!(policy.analysis.confidence, 0.95);
    let prometheus = config.prometheus.as_ref().expect("[prometheus]");
    assert_eq!(prometheus.url, "http://127.0.0.1:9090");
    assert!(
        prometheus
            .query(Metric::ErrorRate)
            .contains("http_requests_total")
    );
    assert!(
        prometheus
            .query(Metric::LatencyP99)
            .contains("slipway_proxy_")
    );
    assert_eq!(config.markers.webhooks.len(), 1);
    assert_eq!(
        config
            .markers
            .grafana
            .as_ref()
            .unwrap()
            .token_env
            .as_deref(),
        Some("GRAFANA_TOKEN")
    );
}

#[test]
fn environments_keep_file_order_as_promotion_order() {
    let text = format!("{SERVICE}[environment.zeta]\n[environment.alpha]\n[environment.mid]\n");
    let config = parse_config("slipway.toml", &text).unwrap();
    let order: Vec<_> = config
        .environments
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(order, ["zeta", "alpha", "mid"]);
}

#[test]
fn protected_environment_gets_production_defaults() {
    let text = format!(
        "{SERVICE}[provenance]\nkeys = [{{ name = \"ci\", public_key = \
         \"ed25519:QmPUJ+gBHGZaoQKLDNnmv/N+IX2qcbi3ntcYNMbPoSM=\" }}]\n\
         [environment.prod]\nprotected = true\n"
    );
    let config = parse_config("slipway.toml", &text).unwrap();
    let policy = &config.environments[0].policy;
    assert_eq!(*policy, Policy::protected());
    assert_eq!(policy.provenance, ProvenanceRequirement::Required);
    assert_eq!(
        policy.approvals,
        Some(ApprovalPolicy {
            required: 1,
            expires: Span::from_secs(30 * 60),
            ..ApprovalPolicy::default()
        })
    );
    assert!(policy.go_no_go);
    assert_eq!(policy.bake, Span::from_secs(15 * 60));
    assert!(policy.confirm_scale_in);
    assert_eq!(policy.post_verify, Some(Span::from_secs(60 * 60)));
}

#[test]
fn protected_environment_fields_override_its_defaults() {
    let body = "protected = true\napprovals = { required = 2 }\npost_verify = false\n\
                bake = \"0s\"\ncanary = false\nprovenance = \"off\"";
    let config = parse_config("slipway.toml", &with_env(body)).unwrap();
    let policy = &config.environments[0].policy;
    assert_eq!(
        policy.approvals,
        Some(ApprovalPolicy {
            required: 2,
            expires: Span::from_secs(30 * 60),
            ..ApprovalPolicy::default()
        })
    );
    assert_eq!(policy.post_verify, None);
    assert_eq!(policy.bake, Span::ZERO);
    assert_eq!(policy.canary, None);
    assert!(policy.go_no_go, "unset fields keep the production default");
}

#[test]
fn unprotected_environment_and_server_get_plain_defaults() {
    let config = parse_config("slipway.toml", &with_env("")).unwrap();
    let env = &config.environments[0];
    assert_eq!(env.target, "local");
    assert!(env.regions.is_empty());
    assert_eq!(env.policy, Policy::default());
    assert_eq!(config.server.listen, "127.0.0.1:7700");
    assert_eq!(config.server.data_dir, ".slipway");
}

#[test]
fn service_without_pools_gets_one_web_pool_taking_traffic() {
    let config = parse_config("slipway.toml", &with_env("")).unwrap();
    let pools = &config.services[0].pools;
    assert_eq!(*pools, Pool::default_pools());
    assert_eq!(
        pools["web"],
        Pool {
            count: 1,
            traffic: true
        }
    );
}

#[test]
fn pool_traffic_defaults_to_false() {
    let text = "[[service]]\nname = \"jobs\"\nstart = \"bin/jobs\"\npools = { worker = { count = 3 } }\n\
                [environment.dev]\n";
    let config = parse_config("slipway.toml", text).unwrap();
    assert_eq!(
        config.services[0].pools["worker"],
        Pool {
            count: 3,
            traffic: false
        }
    );
}

#[test]
fn thresholds_resolve_their_unit() {
    let body = "checks = [\n  { metric = \"error_rate\", max = \"1%\" },\n  \
                { metric = \"latency_p99\", max = \"2s\", min = \"500ms\" },\n  \
                { metric = \"request_rate\", min = 10, max = 2.5e3 },\n]";
    let config = parse_config("slipway.toml", &with_env(body)).unwrap();
    let limits: Vec<_> = config.environments[0]
        .policy
        .checks
        .iter()
        .map(|check| match &check.kind {
            CheckKind::Metric { metric, min, max } => (*metric, *min, *max),
            other => panic!("expected a metric check, found {other:?}"),
        })
        .collect();
    assert_eq!(
        limits,
        [
            (Metric::ErrorRate, None, Some(Threshold::Ratio(0.01))),
            (
                Metric::LatencyP99,
                Some(Threshold::Millis(500.0)),
                Some(Threshold::Millis(2000.0))
            ),
            (
                Metric::RequestRate,
                Some(Threshold::Number(10.0)),
                Some(Threshold::Number(2500.0))
            ),
        ]
    );
}

#[test]
fn checks_may_be_written_as_an_array_of_tables() {
    let body = "[[environment.prod.checks]]\nmetric = \"error_rate\"\nmax = \"1%\"";
    let config = parse_config("slipway.toml", &with_env(body)).unwrap();
    assert_eq!(config.environments[0].policy.checks[0].name, "error_rate");
}

#[test]
fn windows_and_freezes_are_read_into_days_minutes_and_dates() {
    let body = "windows = [\"mon,wed,fri 9:30-17:00 europe/berlin\"]\n\
                freezes = [\"2026-12-25 christmas\", \"sat-sun\"]";
    let config = parse_config("slipway.toml", &with_env(body)).unwrap();
    let policy = &config.environments[0].policy;
    let window = &policy.windows[0];
    assert_eq!(window.days, [0, 2, 4]);
    assert_eq!((window.start_minute, window.end_minute), (570, 1020));
    assert_eq!(window.time_zone, "Europe/Berlin");
    assert_eq!(
        policy.freezes[0].kind,
        FreezeKind::Dates {
            first: "2026-12-25".to_owned(),
            last: "2026-12-25".to_owned()
        }
    );
    assert_eq!(policy.freezes[0].reason.as_deref(), Some("christmas"));
    assert_eq!(policy.freezes[1].kind, FreezeKind::Weekdays(vec![5, 6]));
}

#[test]
fn unknown_key_suggests_the_nearest_known_key() {
    assert_cases(&[
        (
            "environment key",
            with_env("bak = \"15m\""),
            "error: slipway.toml:6:1: unknown key `bak` in [environment.prod]\n  \
             hint: did you mean `bake`?",
        ),
        (
            "service key",
            "[[service]]\nname = \"idp\"\nstrat = \"x\"\nstart = \"x\"\n[environment.dev]\n"
                .to_owned(),
            "error: slipway.toml:3:1: unknown key `strat` in [[service]] `idp`\n  \
             hint: did you mean `start`?",
        ),
        (
            "inline table key",
            with_env("approvals = { requird = 2 }"),
            "error: slipway.toml:6:15: unknown key `requird` in `approvals` of [environment.prod]\n  \
             hint: did you mean `required`?",
        ),
        (
            "top-level key",
            format!("{SERVICE}[environments.prod]\n[environment.prod]\n"),
            "error: slipway.toml:5:2: unknown key `environments` at the top level\n  \
             hint: did you mean `environment`?",
        ),
    ]);
}

#[test]
fn unknown_key_far_from_any_known_key_lists_the_known_keys() {
    assert_cases(&[(
        "server key",
        format!("[server]\ncolour = \"red\"\n\n{SERVICE}[environment.dev]\n"),
        "error: slipway.toml:2:1: unknown key `colour` in [server]\n  \
         hint: known keys here: listen, data_dir, database, public_url",
    )]);
}

#[test]
fn durations_must_be_compact_and_hint_the_compact_form() {
    assert_cases(&[
        (
            "long spelling",
            with_env("bake = \"15 minutes\""),
            "error: slipway.toml:6:8: `bake` in [environment.prod]: \"15 minutes\" is not a duration\n  \
             hint: write `15m`",
        ),
        (
            "long spelling with two units",
            with_env("bake = \"1 hour and 30 mins\""),
            "error: slipway.toml:6:8: `bake` in [environment.prod]: \"1 hour and 30 mins\" is not a duration\n  \
             hint: write `1h30m`",
        ),
        (
            "nonsense",
            with_env("bake = \"soon\""),
            "error: slipway.toml:6:8: `bake` in [environment.prod]: \"soon\" is not a duration\n  \
             hint: write a number and a unit (ms, s, m, h, d) without spaces, e.g. \"15m\" or \"1h30m\"",
        ),
        (
            "integer",
            with_env("bake = 15"),
            "error: slipway.toml:6:8: `bake` in [environment.prod]: expected a string like \"15m\", found integer\n  \
             hint: durations are strings with a unit, e.g. bake = \"15m\"",
        ),
        (
            "zero where a wait is needed",
            with_env("launch_timeout = \"0s\""),
            "error: slipway.toml:6:18: `launch_timeout` in [environment.prod]: must be longer than 0s\n  \
             hint: write a number and a unit (ms, s, m, h, d) without spaces, e.g. \"15m\" or \"1h30m\"",
        ),
        (
            "post_verify true",
            with_env("post_verify = true"),
            "error: slipway.toml:6:15: `post_verify` in [environment.prod]: expected a duration or false, found boolean\n  \
             hint: write how long after scale-in to check again, e.g. post_verify = \"1h\"",
        ),
    ]);
}

#[test]
fn wrong_types_say_what_was_expected() {
    assert_cases(&[
        (
            "quoted boolean",
            with_env("protected = \"true\""),
            "error: slipway.toml:6:13: `protected` in [environment.prod]: expected true or false, found string\n  \
             hint: remove the quotes: protected = true",
        ),
        (
            "quoted count",
            "[[service]]\nname = \"idp\"\nstart = \"x\"\npools = { web = { count = \"2\" } }\n[environment.dev]\n".to_owned(),
            "error: slipway.toml:4:27: `count` in pool `web` of [[service]] `idp`: expected a whole number, found string\n  \
             hint: remove the quotes: count = 2",
        ),
        (
            "number for a string",
            "[[service]]\nname = \"idp\"\nstart = 7\n[environment.dev]\n".to_owned(),
            "error: slipway.toml:3:9: `start` in [[service]] `idp`: expected a string, found integer\n  \
             hint: put the value in quotes: start = \"7\"",
        ),
        (
            "string for a list",
            with_env("regions = \"us-east-1\""),
            "error: slipway.toml:6:11: `regions` in [environment.prod]: expected an array of strings, found string\n  \
             hint: write a list: regions = [\"us-east-1\"]",
        ),
        (
            "unquoted date",
            with_env("freezes = [2026-12-25]"),
            "error: slipway.toml:6:12: `freezes` in [environment.prod]: expected an array of strings, found date in it\n  \
             hint: put it in quotes: \"2026-12-25\"",
        ),
        (
            "pool count without a table",
            "[[service]]\nname = \"idp\"\nstart = \"x\"\npools = { web = 2 }\n[environment.dev]\n".to_owned(),
            "error: slipway.toml:4:17: `web` in `pools` of [[service]] `idp`: expected a table, found integer\n  \
             hint: write web = { count = 2 }",
        ),
        (
            "a single [service] table",
            "[service]\nname = \"idp\"\nstart = \"x\"\n[environment.dev]\n".to_owned(),
            "error: slipway.toml:1:1: `service` at the top level: expected an array of tables, found table\n  \
             hint: write [[service]] (two brackets), once for each service",
        ),
        (
            "an array of environments",
            format!("{SERVICE}[[environment]]\nname = \"prod\"\n"),
            "error: slipway.toml:5:1: `environment` at the top level: expected a table, found array of tables\n  \
             hint: write one [environment.NAME] table per environment, e.g. [environment.prod], in promotion order",
        ),
    ]);
}

#[test]
fn missing_required_keys_are_reported_at_their_table() {
    assert_cases(&[
        (
            "service without start",
            "[environment.dev]\n\n[[service]]\nname = \"idp\"\n".to_owned(),
            "error: slipway.toml:3:1: missing `start` in [[service]] `idp`\n  \
             hint: add the command that starts one instance, e.g. start = \"bin/server --port $PORT\"",
        ),
        (
            "service without name",
            "[[service]]\nstart = \"x\"\n[environment.dev]\n".to_owned(),
            "error: slipway.toml:1:1: missing `name` in [[service]] #1\n  \
             hint: add a name, e.g. name = \"idp\"",
        ),
        (
            "no service",
            "[environment.dev]\n".to_owned(),
            "error: slipway.toml:1:1: no [[service]] defined\n  \
             hint: add one: [[service]] with name = \"web\" and start = \"bin/server --port $PORT\"",
        ),
        (
            "no environment",
            SERVICE.to_owned(),
            "error: slipway.toml:1:1: no [environment.NAME] defined\n  \
             hint: add one, e.g. [environment.dev] with target = \"local\"; environments are promoted in the order they appear in the file",
        ),
    ]);
}

#[test]
fn names_must_be_unique_and_well_formed() {
    assert_cases(&[
        (
            "duplicate service",
            format!("{SERVICE}[[service]]\nname = \"idp\"\nstart = \"y\"\n[environment.dev]\n"),
            "error: slipway.toml:6:8: service `idp` is defined twice\n  \
             hint: the first is on line 2; service names must be unique",
        ),
        (
            "duplicate region",
            with_env("regions = [\"us-east-1\", \"us-east-1\"]"),
            "error: slipway.toml:6:25: `regions` in [environment.prod]: `us-east-1` is listed twice\n  \
             hint: each region is deployed once; remove the second `us-east-1`",
        ),
        (
            "service name with a space",
            "[[service]]\nname = \"my app\"\nstart = \"x\"\n[environment.dev]\n".to_owned(),
            "error: slipway.toml:2:8: `name` in [[service]] #1: `my app` is not a valid name\n  \
             hint: use letters, digits, `-` and `_`, starting with a letter or digit",
        ),
    ]);
}

#[test]
fn values_out_of_range_are_refused() {
    assert_cases(&[
        (
            "pool count zero",
            "[[service]]\nname = \"idp\"\nstart = \"x\"\npools = { web = { count = 0 } }\n[environment.dev]\n".to_owned(),
            "error: slipway.toml:4:27: `count` in pool `web` of [[service]] `idp`: must be at least 1, found 0",
        ),
        (
            "no pools",
            "[[service]]\nname = \"idp\"\nstart = \"x\"\npools = {}\n[environment.dev]\n".to_owned(),
            "error: slipway.toml:4:9: `pools` in [[service]] `idp`: needs at least one pool\n  \
             hint: write pools = { web = { count = 2, traffic = true }, worker = { count = 1 } }",
        ),
        (
            "approvals required zero",
            with_env("approvals = { required = 0 }"),
            "error: slipway.toml:6:26: `required` in `approvals` of [environment.prod]: must be at least 1, found 0",
        ),
        (
            "health path without a slash",
            "[[service]]\nname = \"idp\"\nstart = \"x\"\nhealth = { path = \"up\" }\n[environment.dev]\n".to_owned(),
            "error: slipway.toml:4:19: `path` in `health` of [[service]] `idp`: `up` is not an HTTP path\n  \
             hint: start it with a slash: \"/up\"",
        ),
        (
            "listen without a port",
            format!("[server]\nlisten = \"localhost\"\n{SERVICE}[environment.dev]\n"),
            "error: slipway.toml:2:10: `listen` in [server]: `localhost` is not an address and port\n  \
             hint: write listen = \"127.0.0.1:7700\"",
        ),
    ]);
}

#[test]
fn unknown_target_suggests_a_known_one() {
    assert_cases(&[
        (
            "typo",
            with_env("target = \"kubernets\""),
            "error: slipway.toml:6:10: `target` in [environment.prod]: unknown target `kubernets`\n  \
             hint: did you mean `kubernetes`?",
        ),
        (
            "stranger",
            with_env("target = \"k8s\""),
            "error: slipway.toml:6:10: `target` in [environment.prod]: unknown target `k8s`\n  \
             hint: known targets: local, command, aws-asg, kubernetes",
        ),
    ]);
}

#[test]
fn canary_share_must_be_a_part_of_the_traffic() {
    let outside = "must be more than 0% and less than 100%\n  hint: a canary takes a part of \
                   the traffic, e.g. share = \"10%\"; to skip it, write canary = false";
    assert_cases(&[
        (
            "zero",
            with_env("canary = { share = \"0%\" }"),
            &format!(
                "error: slipway.toml:6:20: `share` in `canary` of [environment.prod]: {outside}"
            ),
        ),
        (
            "all of it",
            with_env("canary = { share = \"100%\" }"),
            &format!(
                "error: slipway.toml:6:20: `share` in `canary` of [environment.prod]: {outside}"
            ),
        ),
        (
            "above 100",
            with_env("canary = { share = \"150%\" }"),
            "error: slipway.toml:6:20: `share` in `canary` of [environment.prod]: \"150%\" is more than 100%",
        ),
        (
            "no percent sign",
            with_env("canary = { share = \"10\" }"),
            "error: slipway.toml:6:20: `share` in `canary` of [environment.prod]: \"10\" is not a percentage\n  \
             hint: write `\"10%\"`",
        ),
        (
            "a number",
            with_env("canary = { share = 10 }"),
            "error: slipway.toml:6:20: `share` in `canary` of [environment.prod]: expected a percentage like \"10%\", found integer\n  \
             hint: write share = \"10%\"",
        ),
        (
            "share and header",
            with_env("canary = { share = \"10%\", header = \"X-Tenant: internal\" }"),
            "error: slipway.toml:6:27: `canary` in [environment.prod]: a canary takes either `share` or `header`, not both\n  \
             hint: `share` sends a sticky part of live traffic to the canary; `header` sends only requests that carry the header",
        ),
        (
            "neither",
            with_env("canary = { duration = \"5m\" }"),
            "error: slipway.toml:6:10: missing `share` in `canary` of [environment.prod]\n  \
             hint: write canary = { share = \"10%\", duration = \"10m\" }, or header = \"X-Tenant: internal\"",
        ),
        (
            "header without a value",
            with_env("canary = { header = \"X-Tenant\" }"),
            "error: slipway.toml:6:21: `header` in `canary` of [environment.prod]: `X-Tenant` is not a header\n  \
             hint: write the header name and value, e.g. header = \"X-Tenant: internal\"",
        ),
    ]);
}

#[test]
fn windows_are_checked_part_by_part() {
    let in_windows = "error: slipway.toml:6:12: `windows` in [environment.prod]:";
    assert_cases(&[
        (
            "time zone typo",
            with_env("windows = [\"mon-thu 09:00-16:00 America/New_Yrok\"]"),
            &format!(
                "{in_windows} unknown time zone `America/New_Yrok`\n  hint: did you mean `America/New_York`?"
            ),
        ),
        (
            "unknown time zone",
            with_env("windows = [\"mon-thu 09:00-16:00 Mars/Olympus_Mons\"]"),
            &format!(
                "{in_windows} unknown time zone `Mars/Olympus_Mons`\n  \
                      hint: use an IANA time zone name such as `America/New_York`, `Europe/Berlin` or `UTC`"
            ),
        ),
        (
            "no time zone",
            with_env("windows = [\"mon-thu 09:00-16:00\"]"),
            &format!(
                "{in_windows} \"mon-thu 09:00-16:00\" has no time zone\n  \
                      hint: add an IANA time zone, e.g. \"mon-thu 09:00-16:00 UTC\""
            ),
        ),
        (
            "day typo",
            with_env("windows = [\"mon-thur 09:00-16:00 UTC\"]"),
            &format!("{in_windows} `thur` is not a day of the week\n  hint: did you mean `thu`?"),
        ),
        (
            "crossing midnight",
            with_env("windows = [\"fri 22:00-02:00 UTC\"]"),
            &format!(
                "{in_windows} `22:00-02:00` ends before it starts\n  \
                      hint: a window cannot cross midnight: split it in two, e.g. \"mon 22:00-24:00 UTC\" and \"tue 00:00-02:00 UTC\""
            ),
        ),
        (
            "bad clock",
            with_env("windows = [\"mon 9am-5pm UTC\"]"),
            &format!(
                "{in_windows} `9am-5pm` is not a time range\n  \
                      hint: write hours as HH:MM-HH:MM on a 24-hour clock, e.g. \"mon-thu 09:00-16:00 America/New_York\""
            ),
        ),
        (
            "only days",
            with_env("windows = [\"weekdays\"]"),
            &format!(
                "{in_windows} \"weekdays\" is not a deploy window\n  \
                      hint: write days, hours and a time zone, e.g. \"mon-thu 09:00-16:00 America/New_York\""
            ),
        ),
    ]);
}

#[test]
fn freezes_need_real_days_or_ordered_dates() {
    let in_freezes = "error: slipway.toml:6:12: `freezes` in [environment.prod]:";
    assert_cases(&[
        (
            "reversed dates",
            with_env("freezes = [\"2027-01-04..2026-12-21 winter break\"]"),
            &format!(
                "{in_freezes} `2027-01-04..2026-12-21` ends before it starts\n  \
                      hint: write the earlier date first: `2026-12-21..2027-01-04`"
            ),
        ),
        (
            "impossible date",
            with_env("freezes = [\"2026-02-30\"]"),
            &format!(
                "{in_freezes} `2026-02-30` is not a date\n  hint: that day does not exist in the calendar"
            ),
        ),
        (
            "other date format",
            with_env("freezes = [\"12/21/2026..01/04/2027\"]"),
            &format!(
                "{in_freezes} `12/21/2026` is not a date\n  hint: write dates as YYYY-MM-DD, e.g. 2026-12-21"
            ),
        ),
        (
            "day typo",
            with_env("freezes = [\"friday-sundy\"]"),
            &format!("{in_freezes} `sundy` is not a day of the week\n  hint: did you mean `sun`?"),
        ),
        (
            "words",
            with_env("freezes = [\"christmas\"]"),
            &format!(
                "{in_freezes} `christmas` is not a day of the week\n  \
                      hint: write days (\"fri\", \"sat-sun\") or dates (\"2026-12-21..2027-01-04 winter break\"), then an optional reason"
            ),
        ),
    ]);
}

#[test]
fn checks_need_a_metric_and_a_bound() {
    assert_cases(&[
        (
            "no metric",
            with_env("checks = [{ max = \"1%\" }]"),
            "error: slipway.toml:6:11: missing `metric` in check #1 of [environment.prod]\n  \
             hint: e.g. { metric = \"error_rate\", max = \"1%\" }, { probe = \"/login\", \
             status = 200 }, { command = \"bin/check\" } or { name = \"jobs\", query = \"…\", \
             max = 10 }",
        ),
        (
            "empty metric",
            with_env("checks = [{ metric = \"\", max = \"1%\" }]"),
            "error: slipway.toml:6:22: `metric` in check #1 of [environment.prod]: must not be empty",
        ),
        (
            "no bound",
            with_env("checks = [{ metric = \"error_rate\" }]"),
            "error: slipway.toml:6:11: check `error_rate` of [environment.prod] needs `max` or `min`\n  \
             hint: e.g. { metric = \"error_rate\", max = \"1%\" } fails the check above 1%",
        ),
        (
            "min above max",
            with_env("checks = [{ metric = \"request_rate\", min = 10, max = 5 }]"),
            "error: slipway.toml:6:54: `max` in check `request_rate` of [environment.prod]: is below `min`, so the check can never pass\n  \
             hint: swap `min` and `max`",
        ),
        (
            "unreadable threshold",
            with_env("checks = [{ metric = \"latency_p99\", max = \"500 ms\" }]"),
            "error: slipway.toml:6:43: `max` in check `latency_p99` of [environment.prod]: \"500 ms\" is not a threshold\n  \
             hint: write `500ms`",
        ),
        (
            "quoted number",
            with_env("checks = [{ metric = \"request_rate\", min = \"10\" }]"),
            "error: slipway.toml:6:44: `min` in check `request_rate` of [environment.prod]: \"10\" is not a threshold\n  \
             hint: write plain numbers without quotes: 10",
        ),
    ]);
}

#[test]
fn toml_syntax_error_is_one_error_with_its_position() {
    let errors = errors("[[service]]\nname = \"idp\nstart = \"x\"\n");
    assert_eq!(errors.len(), 1);
    let error = &errors.errors[0];
    assert_eq!(error.kind, ConfigErrorKind::Syntax);
    assert_eq!((error.line, error.column), (2, 12));
    assert!(
        error.message.starts_with("invalid TOML: "),
        "{}",
        error.message
    );
}

#[test]
fn every_error_has_a_kind_for_programs() {
    let errors = errors(&with_env(
        "bak = \"15m\"\nbake = 15\nregions = [\"a\", \"a\"]",
    ));
    let kinds: Vec<_> = errors.iter().map(|error| error.kind).collect();
    assert_eq!(
        kinds,
        [
            ConfigErrorKind::UnknownKey,
            ConfigErrorKind::WrongType,
            ConfigErrorKind::Duplicate
        ]
    );
    assert_eq!(ConfigErrorKind::UnknownKey.code(), "unknown_key");
}

#[test]
fn all_errors_in_a_file_are_reported_at_once() {
    let text = r#"[server]
listen = "127.0.0.1:7700"

[[service]]
name = "idp"
migrate = "bin/migrate"
pools = { web = { count = 2, traffic = true } }

[[service]]
name = "pivcac"
start = "bin/pivcac --port $PORT"

[environment.dev]
target = "locl"

[environment.prod]
protected = true
bak = "15m"
bake = "15 minutes"
windows = ["mon-thu 09:00-16:00 America/New_Yrok"]
canary = { share = "100%", duration = "10m" }
checks = [{ metric = "error_rate", max = "1%" }, { metric = "latency_p99" }]
provenance = "off"
"#;
    let errors = errors(text);
    insta::assert_snapshot!(errors.to_string());
}

/// A `command` environment with the given command table body, in `[environment.prod.command]`.
/// The table's header is line 7 and its first key line 8.
fn with_commands(body: &str) -> String {
    with_env(&format!(
        "target = \"command\"\n[environment.prod.command]\n{body}"
    ))
}

const REQUIRED_COMMANDS: &str = "launch = \"./bin/launch {service} {version}\"\n\
                                 stop = \"./bin/stop {service} {label}\"\n\
                                 observe = \"./bin/observe {service}\"";

#[test]
fn command_table_is_read_with_its_defaults() {
    let config = parse_config("slipway.toml", &with_commands(REQUIRED_COMMANDS)).unwrap();
    let command = config.environments[0].command.as_ref().unwrap();
    assert_eq!(command.launch.text(), "./bin/launch {service} {version}");
    assert_eq!(
        command.launch.placeholders().collect::<Vec<_>>(),
        [Placeholder::Service, Placeholder::Version]
    );
    assert_eq!(command.traffic, None);
    assert_eq!(command.task, None);
    assert_eq!(command.timeout, Span::from_secs(600));
    assert_eq!(command.shell, "/bin/sh");
    assert_eq!(command.workdir, None);
    assert!(command.template(CommandOperation::Traffic).is_none());
}

#[test]
fn command_table_may_be_inline_and_set_every_key() {
    let body = "target = \"command\"\ncommand = { launch = \"l {key}\", stop = \"s\", \
                observe = \"o\", traffic = \"t {weights}\", task = \"k {task}\", \
                timeout = \"90s\", shell = \"/bin/bash\", workdir = \"ops\" }";
    let config = parse_config("slipway.toml", &with_env(body)).unwrap();
    let command = config.environments[0].command.as_ref().unwrap();
    assert_eq!(command.traffic.as_ref().unwrap().text(), "t {weights}");
    assert_eq!(command.task.as_ref().unwrap().text(), "k {task}");
    assert_eq!(command.timeout, Span::from_secs(90));
    assert_eq!(command.shell, "/bin/bash");
    assert_eq!(command.workdir.as_deref(), Some("ops"));
}

#[test]
fn command_target_without_a_command_table_is_refused_with_an_example() {
    assert_cases(&[(
        "no table",
        with_env("target = \"command\""),
        "error: slipway.toml:5:1: [environment.prod] has target = \"command\" but no [environment.prod.command] table\n  \
         hint: add a [environment.prod.command] table, e.g.\n    \
         [environment.prod.command]\n    \
         launch = \"./bin/launch {environment} {service} {version} {count}\"\n    \
         stop = \"./bin/stop {environment} {service} {label}\"\n    \
         observe = \"./bin/observe {environment} {service}\"\n  \
         (docs/targets.md describes every key)",
    )]);
}

#[test]
fn command_table_on_another_target_is_refused() {
    assert_cases(&[
        (
            "explicit local target",
            with_env(&format!(
                "target = \"local\"\n[environment.prod.command]\n{REQUIRED_COMMANDS}"
            )),
            "error: slipway.toml:7:19: `command` in [environment.prod]: only a `command` target runs commands, and this environment's target is `local`\n  \
             hint: write target = \"command\" in [environment.prod] to run these commands, or remove the command table",
        ),
        (
            "default target",
            with_env(&format!("[environment.prod.command]\n{REQUIRED_COMMANDS}")),
            "error: slipway.toml:6:19: `command` in [environment.prod]: only a `command` target runs commands, and this environment's target is `local` (the default)\n  \
             hint: write target = \"command\" in [environment.prod] to run these commands, or remove the command table",
        ),
        (
            "mistyped target is reported once",
            with_env(&format!(
                "target = \"comand\"\n[environment.prod.command]\n{REQUIRED_COMMANDS}"
            )),
            "error: slipway.toml:6:10: `target` in [environment.prod]: unknown target `comand`\n  \
             hint: did you mean `command`?",
        ),
    ]);
}

#[test]
fn command_table_needs_launch_stop_and_observe() {
    assert_cases(&[(
        "only launch",
        with_commands("launch = \"./bin/launch\""),
        "error: slipway.toml:7:1: missing `stop` and `observe` in `command` of [environment.prod]\n  \
         hint: launch, stop and observe are required; e.g. stop = \"./bin/stop {environment} {service} {label}\", \
         observe = \"./bin/observe {environment} {service}\"",
    )]);
}

#[test]
fn unknown_key_in_the_command_table_suggests_the_nearest() {
    assert_cases(&[
        (
            "typo",
            with_commands(&format!("{REQUIRED_COMMANDS}\nobserv = \"x\"")),
            "error: slipway.toml:11:1: unknown key `observ` in `command` of [environment.prod]\n  \
             hint: did you mean `observe`?",
        ),
        (
            "stranger",
            with_commands(&format!("{REQUIRED_COMMANDS}\nenv = {{ A = \"1\" }}")),
            "error: slipway.toml:11:1: unknown key `env` in `command` of [environment.prod]\n  \
             hint: known keys here: launch, traffic, stop, task, observe, timeout, shell, workdir, config",
        ),
    ]);
}

#[test]
fn unknown_placeholder_names_the_known_ones() {
    let launch_knows = "{service} {environment} {region} {label} {version} {digest} {artifact} \
                        {config} {config_file} {count} {pools} {key}";
    assert_cases(&[
        (
            "typo",
            with_commands(
                "launch = \"./bin/launch {service} {versoin}\"\nstop = \"s\"\nobserve = \"o\"",
            ),
            &format!(
                "error: slipway.toml:8:34: `launch` in `command` of [environment.prod]: unknown placeholder `{{versoin}}`\n  \
                 hint: did you mean `{{version}}`? `launch` knows {launch_knows}; write {{{{ and }}}} for literal braces"
            ),
        ),
        (
            "stranger",
            with_commands("launch = \"./bin/launch {build_id}\"\nstop = \"s\"\nobserve = \"o\""),
            &format!(
                "error: slipway.toml:8:24: `launch` in `command` of [environment.prod]: unknown placeholder `{{build_id}}`\n  \
                 hint: `launch` knows {launch_knows}; write {{{{ and }}}} for literal braces"
            ),
        ),
        (
            "known but without a value in that operation",
            with_commands("launch = \"l\"\nstop = \"./bin/stop {count}\"\nobserve = \"o {key}\""),
            "error: slipway.toml:9:20: `stop` in `command` of [environment.prod]: placeholder `{count}` has no value in `stop`\n  \
             hint: `stop` knows {service} {environment} {region} {label} {version} {digest} {artifact} {config} {key}\n\
             error: slipway.toml:10:14: `observe` in `command` of [environment.prod]: placeholder `{key}` has no value in `observe`\n  \
             hint: `observe` knows {service} {environment} {region}",
        ),
    ]);
}

#[test]
fn command_values_are_checked_like_any_other() {
    assert_cases(&[
        (
            "empty command",
            with_commands("launch = \"\"\nstop = \"s\"\nobserve = \"o\""),
            "error: slipway.toml:8:10: `launch` in `command` of [environment.prod]: must not be empty",
        ),
        (
            "zero timeout",
            with_commands(&format!("{REQUIRED_COMMANDS}\ntimeout = \"0s\"")),
            "error: slipway.toml:11:11: `timeout` in `command` of [environment.prod]: must be longer than 0s\n  \
             hint: write a number and a unit (ms, s, m, h, d) without spaces, e.g. \"15m\" or \"1h30m\"",
        ),
        (
            "command as a list",
            with_commands(
                "launch = [\"./bin/launch\", \"{version}\"]\nstop = \"s\"\nobserve = \"o\"",
            ),
            "error: slipway.toml:8:10: `launch` in `command` of [environment.prod]: expected a string, found array",
        ),
    ]);
}

#[test]
fn templates_leave_shell_braces_alone() {
    let template =
        CommandTemplate::parse("echo ${HOME} {{literal}} $(awk '{print $1}' f) {}{version}")
            .unwrap();
    assert_eq!(
        template.parts(),
        [
            TemplatePart::Text("echo ${HOME} {literal} $(awk '{print $1}' f) {}".to_owned()),
            TemplatePart::Placeholder(Placeholder::Version),
        ]
    );
    let unknown = CommandTemplate::parse("x {nope} {version} {also_not}").unwrap_err();
    assert_eq!(unknown.names, ["nope", "also_not"]);
}

#[test]
fn every_placeholder_is_available_to_some_operation() {
    for placeholder in Placeholder::ALL {
        assert!(
            CommandOperation::ALL
                .iter()
                .any(|op| op.placeholders().contains(&placeholder)),
            "{placeholder:?} is never available"
        );
        assert_eq!(
            Placeholder::from_name(placeholder.name()),
            Some(placeholder)
        );
    }
}

#[test]
fn command_table_mistakes_are_reported_at_once() {
    let text = r#"[[service]]
name = "idp"
start = "bin/server --port $PORT"

[environment.dev]
command = { launch = "./bin/launch", stop = "./bin/stop", observe = "./bin/observe" }

[environment.staging]
target = "command"

[environment.prod]
target = "command"
[environment.prod.command]
launch = "./bin/asg-recycle {environment} {service} {versoin} --count {count}"
stop = "./bin/scale-in-old-instances {environment} {service} {count}"
traffic = "./bin/set-weights {weights} {tag}"
timout = "5m"
"#;
    insta::assert_snapshot!(errors(text).to_string());
}

/// Two services and the environments of `body`, for the proxy listener tests.
fn two_services(body: &str) -> String {
    format!(
        "[[service]]\nname = \"idp\"\nstart = \"s\"\n\n[[service]]\nname = \"pivcac\"\nstart = \"s\"\n\n{body}\n"
    )
}

fn listeners(text: &str) -> Vec<String> {
    let config = parse_config("slipway.toml", text).unwrap();
    config
        .proxy_listeners
        .iter()
        .map(|l| {
            format!(
                "{} {} {} {}{}",
                l.environment,
                l.service,
                l.region.as_deref().unwrap_or("-"),
                l.address,
                if l.configured { " (configured)" } else { "" }
            )
        })
        .collect()
}

#[test]
fn proxy_listeners_get_ports_from_7800_in_file_order() {
    let text = two_services(
        "[environment.dev]\n\
         [environment.staging]\ntarget = \"command\"\ncommand = { launch = \"l\", stop = \"s\", observe = \"o\" }\n\
         [environment.prod]\nregions = [\"east\", \"west\"]\n",
    );
    assert_eq!(
        listeners(&text),
        [
            "dev idp - 127.0.0.1:7800",
            "dev pivcac - 127.0.0.1:7801",
            "prod idp east 127.0.0.1:7802",
            "prod idp west 127.0.0.1:7803",
            "prod pivcac east 127.0.0.1:7804",
            "prod pivcac west 127.0.0.1:7805",
        ]
    );
}

#[test]
fn proxy_listeners_keep_configured_addresses_and_defaults_skip_their_ports() {
    let text = two_services(
        "[server]\nlisten = \"127.0.0.1:7801\"\n\
         [environment.dev]\nlisten = { pivcac = \"0.0.0.0:7800\" }\n\
         [environment.prod]\nregions = [\"east\", \"west\"]\n\
         listen = { idp = { west = \"127.0.0.1:9000\" } }\n\
         [environment.solo]\nregions = [\"east\"]\nlisten = { idp = \"127.0.0.1:0\", pivcac = \"127.0.0.1:0\" }\n",
    );
    assert_eq!(
        listeners(&text),
        [
            "dev idp - 127.0.0.1:7802",
            "dev pivcac - 0.0.0.0:7800 (configured)",
            "prod idp east 127.0.0.1:7803",
            "prod idp west 127.0.0.1:9000 (configured)",
            "prod pivcac east 127.0.0.1:7804",
            "prod pivcac west 127.0.0.1:7805",
            "solo idp east 127.0.0.1:0 (configured)",
            "solo pivcac east 127.0.0.1:0 (configured)",
        ]
    );
}

#[test]
fn proxy_listen_mistakes_are_reported() {
    assert_cases(&[
        (
            "not a local target",
            with_env(&format!(
                "target = \"command\"\nlisten = {{ idp = \"127.0.0.1:8080\" }}\n[environment.prod.command]\n{REQUIRED_COMMANDS}"
            )),
            "error: slipway.toml:7:1: `listen` in [environment.prod]: only a `local` target has slipway's proxy, and this environment's target is `command`\n  \
             hint: remove `listen` from [environment.prod]; your own load balancer serves a `command` target",
        ),
        (
            "unknown service",
            with_env("listen = { ipd = \"127.0.0.1:8080\" }"),
            "error: slipway.toml:6:12: unknown service `ipd` in `listen` of [environment.prod]\n  \
             hint: did you mean `idp`?",
        ),
        (
            "not an address",
            with_env("listen = { idp = \"8080\" }"),
            "error: slipway.toml:6:18: `idp` in `listen` of [environment.prod]: `8080` is not an address and port\n  \
             hint: write idp = \"127.0.0.1:8080\"",
        ),
        (
            "one address for two regions",
            with_env("regions = [\"east\", \"west\"]\nlisten = { idp = \"127.0.0.1:8080\" }"),
            "error: slipway.toml:7:18: `idp` in `listen` of [environment.prod]: [environment.prod] has 2 regions, so `idp` needs an address for each\n  \
             hint: write idp = { east = \"127.0.0.1:8080\", west = \"127.0.0.1:8081\" }",
        ),
        (
            "regions without regions",
            with_env("listen = { idp = { east = \"127.0.0.1:8080\" } }"),
            "error: slipway.toml:6:18: `idp` in `listen` of [environment.prod]: [environment.prod] lists no regions, so `idp` takes one address\n  \
             hint: write idp = \"127.0.0.1:8080\"",
        ),
        (
            "unknown region",
            with_env(
                "regions = [\"east\", \"west\"]\nlisten = { idp = { esat = \"127.0.0.1:8080\" } }",
            ),
            "error: slipway.toml:7:20: unknown key `esat` in `idp` of `listen` of [environment.prod]\n  \
             hint: did you mean `east`?",
        ),
        (
            "an address taken twice",
            format!(
                "[server]\nlisten = \"127.0.0.1:7700\"\n{}",
                with_env("listen = { idp = \"127.0.0.1:7700\" }")
            ),
            "error: slipway.toml:8:18: `listen` in [environment.prod]: 127.0.0.1:7700 is already where [server] listen listens\n  \
             hint: give every service its own port (or leave it out to get a free one from 7800 up)",
        ),
    ]);
}

#[test]
fn example_file_places_the_proxy_of_its_local_environments() {
    assert_eq!(
        listeners(EXAMPLE),
        [
            "dev idp - 127.0.0.1:8080 (configured)",
            "dev pivcac - 127.0.0.1:7800",
            "int idp - 127.0.0.1:7801",
            "int pivcac - 127.0.0.1:7802",
            "prod idp us-east-1 127.0.0.1:7803",
            "prod idp us-west-2 127.0.0.1:7804",
            "prod pivcac us-east-1 127.0.0.1:7805",
            "prod pivcac us-west-2 127.0.0.1:7806",
        ]
    );
}

#[test]
fn verification_mistakes_are_named_with_a_way_to_fix_them() {
    assert_cases(&[
        (
            "misspelt metric",
            with_env("checks = [{ metric = \"errors_rate\", max = \"1%\" }]"),
            "error: slipway.toml:6:22: `metric` in check `errors_rate` of [environment.prod]: unknown metric `errors_rate`\n  \
             hint: did you mean `error_rate`?",
        ),
        (
            "limit in the wrong unit",
            with_env("checks = [{ metric = \"error_rate\", max = \"500ms\" }]"),
            "error: slipway.toml:6:42: `max` in check `error_rate` of [environment.prod]: `error_rate` is measured in percent, so `max` must be too\n  \
             hint: e.g. max = \"1%\"",
        ),
        (
            "two kinds in one check",
            with_env("checks = [{ metric = \"error_rate\", probe = \"/up\", max = \"1%\" }]"),
            "error: slipway.toml:6:11: check `error_rate` of [environment.prod] has both `metric` and `probe`; a check is one of metric, query, probe or command\n  \
             hint: split it into two checks",
        ),
        (
            "probe without a slash",
            with_env("checks = [{ probe = \"login\" }]"),
            "error: slipway.toml:6:21: `probe` in check `login` of [environment.prod]: `login` is not an HTTP path\n  \
             hint: start it with a slash: \"/login\"",
        ),
        (
            "limits on a probe",
            with_env("checks = [{ probe = \"/up\", max = 3 }]"),
            "error: slipway.toml:6:28: `max` in check `/up` of [environment.prod]: a probe check has no `max`\n  \
             hint: a probe check passes or fails by itself; limits belong to metric and query checks",
        ),
        (
            "query without prometheus",
            with_env("checks = [{ name = \"jobs\", query = \"sum(jobs)\", max = 3 }]"),
            "error: slipway.toml:6:28: `query` in check `jobs` of [environment.prod]: a query check needs a [prometheus] table to ask\n  \
             hint: add [prometheus] with url = \"http://127.0.0.1:9090\"",
        ),
        (
            "query without a name",
            format!(
                "{}[prometheus]\nurl = \"http://127.0.0.1:9090\"\n",
                with_env("checks = [{ query = \"sum(jobs)\", max = 3 }]")
            ),
            "error: slipway.toml:6:11: missing `name` in check #1 of [environment.prod]\n  \
             hint: name a query check, e.g. name = \"queue depth\"",
        ),
        (
            "unknown source",
            with_env("analysis = { source = \"graphite\" }"),
            "error: slipway.toml:6:23: `source` in `analysis` of [environment.prod]: unknown metric source `graphite`\n  \
             hint: write source = \"proxy\" (slipway's proxy, local targets) or source = \"prometheus\"",
        ),
        (
            "marginal above pass",
            with_env("analysis = { pass_score = 80, marginal_score = 90 }"),
            "error: slipway.toml:6:48: `marginal_score` in `analysis` of [environment.prod]: is above pass_score (80), so a marginal score could never happen\n  \
             hint: e.g. pass_score = 95, marginal_score = 75",
        ),
        (
            "step longer than window",
            with_env("analysis = { window = \"10s\", step = \"1m\" }"),
            "error: slipway.toml:6:37: `step` in `analysis` of [environment.prod]: step 1m is longer than the window 10s, so no comparison could ever have enough samples\n  \
             hint: a window holds many steps, e.g. window = \"5m\", step = \"10s\"",
        ),
        (
            "confidence out of range",
            with_env("analysis = { confidence = \"30%\" }"),
            "error: slipway.toml:6:27: `confidence` in `analysis` of [environment.prod]: must be between 50% and 99.99%\n  \
             hint: e.g. confidence = \"95%\"",
        ),
        (
            "compared twice",
            with_env(
                "analysis = { compare = [{ metric = \"error_rate\" }, { metric = \"error_rate\" }] }",
            ),
            "error: slipway.toml:6:52: `compare` in `analysis` of [environment.prod]: `error_rate` is compared twice\n  \
             hint: keep one of them",
        ),
        (
            "request rate compared",
            with_env("analysis = { compare = [{ metric = \"request_rate\" }] }"),
            "error: slipway.toml:6:36: `metric` in comparison #1 of `analysis` of [environment.prod]: request_rate cannot be compared: a canary gets a share of the traffic, so it always has fewer requests than the baseline\n  \
             hint: watch it with a check instead: { metric = \"request_rate\", min = 1 }",
        ),
        (
            "a check that may take too long",
            with_env("checks = [{ command = \"bin/slow\", timeout = \"5m\" }]"),
            "error: slipway.toml:6:45: `timeout` in check `bin/slow` of [environment.prod]: 5m is longer than a check may take (45s)\n  \
             hint: checks run every analysis interval and must answer quickly; a long job belongs in a command that reports a result it keeps (exit 75 until it has one)",
        ),
        (
            "prometheus with credentials",
            format!(
                "{}[prometheus]\nurl = \"http://admin:secret@prom:9090\"\n",
                with_env("")
            ),
            "error: slipway.toml:8:7: `url` in [prometheus]: must not carry a user or password: it is shown in check results\n  \
             hint: reach Prometheus without credentials from slipway's host, e.g. through a local proxy that adds them",
        ),
        (
            "bad marker URL",
            format!(
                "{}[markers]\nwebhooks = [\"hooks.internal\"]\n",
                with_env("")
            ),
            "error: slipway.toml:8:13: `webhooks` in [markers]: \"hooks.internal\" is not an http:// or https:// URL\n  \
             hint: write the full address, e.g. \"http://127.0.0.1:9090\"",
        ),
        (
            "prometheus without a URL",
            format!("{}[prometheus]\ntimeout = \"5s\"\n", with_env("")),
            "error: slipway.toml:7:1: missing `url` in [prometheus]\n  \
             hint: e.g. url = \"http://127.0.0.1:9090\"",
        ),
    ]);
}

#[test]
fn analysis_defaults_follow_the_target_and_settings_are_read() {
    let local = parse_config("slipway.toml", &with_env("")).unwrap();
    let analysis = &local.environments[0].policy.analysis;
    assert_eq!(analysis.source, MetricSourceKind::Proxy);
    assert_eq!(analysis.window, Span::from_secs(300));
    assert_eq!(analysis.step, Span::from_secs(10));
    let text = with_env(
        "analysis = { source = \"prometheus\", window = \"2m\", step = \"5s\", min_requests = 50, \
         min_samples = 6, confidence = \"99%\", pass_score = 90, marginal_score = 60, \
         compare = [{ metric = \"latency_p99\", allowed_increase = \"25%\" }] }",
    );
    let text = format!("{text}[prometheus]\nurl = \"http://127.0.0.1:9090/\"\n");
    let config = parse_config("slipway.toml", &text).unwrap();
    let analysis = &config.environments[0].policy.analysis;
    assert_eq!(analysis.source, MetricSourceKind::Prometheus);
    assert_eq!(
        (
            analysis.window,
            analysis.step,
            analysis.min_requests,
            analysis.min_samples
        ),
        (Span::from_secs(120), Span::from_secs(5), 50, 6)
    );
    assert!((analysis.confidence - 0.99).abs() < 1e-12);
    assert_eq!((analysis.pass_score, analysis.marginal_score), (90.0, 60.0));
    assert_eq!(analysis.compare[0].metric, Metric::LatencyP99);
    assert!((analysis.compare[0].allowed_increase - 0.25).abs() < 1e-12);
    assert_eq!(
        config.prometheus.unwrap().url,
        "http://127.0.0.1:9090",
        "a trailing slash is dropped so paths join cleanly"
    );
}

#[test]
fn approvals_name_their_roles_and_authors_rule_and_go_may_allow_the_runner() {
    let body = "protected = true\napprovals = { required = 2, roles = [\"admin\", \"approver\"], \
                not_authors = true }\ngo_no_go = { by_other = false }\nprovenance = \"off\"";
    let config = parse_config("slipway.toml", &with_env(body)).unwrap();
    let policy = &config.environments[0].policy;
    let approvals = policy.approvals.as_ref().unwrap();
    assert_eq!(approvals.roles, vec![Role::Approver, Role::Admin]);
    assert!(approvals.not_authors);
    assert!(policy.go_no_go);
    assert!(!policy.go_by_other);

    let defaults = parse_config(
        "slipway.toml",
        &with_env("protected = true\nprovenance = \"off\""),
    )
    .unwrap();
    assert!(defaults.environments[0].policy.go_by_other);
    assert!(
        defaults.environments[0]
            .policy
            .approvals
            .as_ref()
            .unwrap()
            .roles
            .is_empty()
    );
}

#[test]
fn unknown_approval_roles_and_go_keys_are_reported_with_a_hint() {
    let role = errors(&with_env("approvals = { roles = [\"aprover\"] }")).to_string();
    assert!(
        role.contains("`aprover` is not a role that may approve"),
        "{role}"
    );
    assert!(role.contains("did you mean `approver`?"), "{role}");
    let go = errors(&with_env("go_no_go = { by = false }")).to_string();
    assert!(go.contains("by_other"), "{go}");
    let go = errors(&with_env("go_no_go = \"yes\"")).to_string();
    assert!(go.contains("go_no_go = { by_other = false }"), "{go}");
}

// --- `[service.config]`, `[secrets]` and how a command target receives a config version.

/// `idp` with the given `[service.config]` body: the table's header is line 5, its first rule
/// line 6.
fn with_rules(body: &str) -> String {
    format!(
        "[[service]]\nname = \"idp\"\nstart = \"s\"\n\n[service.config]\n{body}\n\n\
         [environment.prod]\n"
    )
}

#[test]
fn service_config_rules_are_read_from_tables_and_inline_tables() {
    let text = r#"
[[service]]
name = "idp"
start = "s"
config = { QUEUE = { unique = "services" } }

[[service]]
name = "pivcac"
start = "s"

[service.config]
JOBS_QUEUE = { required = true, type = "url", pattern = 'https://.*', unique = "services", group = "queues" }
LOG_LEVEL = { allowed = ["debug", "info"] }
STRIPE_API_KEY = { secret = true, required = true }

[service.config.TIMEOUT]
type = "duration"
allowed = ["30s", "1m"]

[[service]]
name = "plain"
start = "s"

[environment.prod]
"#;
    let config = parse_config("slipway.toml", text).unwrap();
    let idp = &config.service("idp").unwrap().config;
    assert_eq!(
        idp.keys,
        BTreeMap::from([(
            "QUEUE".to_owned(),
            KeyRule {
                unique: Some(Uniqueness::Services),
                ..KeyRule::default()
            }
        )])
    );
    let pivcac = &config.service("pivcac").unwrap().config;
    assert_eq!(
        pivcac.keys.keys().collect::<Vec<_>>(),
        ["JOBS_QUEUE", "LOG_LEVEL", "STRIPE_API_KEY", "TIMEOUT"]
    );
    assert_eq!(
        pivcac.keys["JOBS_QUEUE"],
        KeyRule {
            required: true,
            kind: ValueKind::Url,
            pattern: Some("https://.*".to_owned()),
            allowed: Vec::new(),
            unique: Some(Uniqueness::Services),
            group: Some("queues".to_owned()),
            secret: None,
        }
    );
    assert_eq!(pivcac.keys["LOG_LEVEL"].allowed, ["debug", "info"]);
    assert_eq!(pivcac.keys["LOG_LEVEL"].kind, ValueKind::String);
    assert_eq!(pivcac.keys["STRIPE_API_KEY"].secret, Some(true));
    assert!(pivcac.keys["STRIPE_API_KEY"].required);
    assert_eq!(pivcac.keys["TIMEOUT"].kind, ValueKind::Duration);
    assert_eq!(pivcac.keys["TIMEOUT"].allowed, ["30s", "1m"]);
    assert!(config.service("plain").unwrap().config.is_empty());
    assert_eq!(config.secrets, SecretsConfig::default());
}

#[test]
fn config_keys_must_be_variables_the_targets_can_pass() {
    assert_cases(&[
        (
            "reserved",
            with_rules("PORT = { required = true }\nSLIPWAY_X = {}"),
            "error: slipway.toml:6:1: `config` of [[service]] `idp`: `PORT` is set by slipway itself (`PORT` and `SLIPWAY_*` are reserved)\n  \
             hint: rename it, e.g. APP_PORT: the targets set PORT and SLIPWAY_* for every instance\n\
             error: slipway.toml:7:1: `config` of [[service]] `idp`: `SLIPWAY_X` is set by slipway itself (`PORT` and `SLIPWAY_*` are reserved)\n  \
             hint: rename it, e.g. APP_PORT: the targets set PORT and SLIPWAY_* for every instance",
        ),
        (
            "not a variable name",
            with_rules("my-queue = {}\n\"9LIVES\" = {}"),
            "error: slipway.toml:6:1: `config` of [[service]] `idp`: `my-queue` is not a valid key: use letters, digits and `_`, not starting with a digit\n  \
             hint: config keys become environment variables: rename it, e.g. MY_QUEUE\n\
             error: slipway.toml:7:1: `config` of [[service]] `idp`: `9LIVES` is not a valid key: use letters, digits and `_`, not starting with a digit\n  \
             hint: config keys become environment variables: rename it, e.g. JOBS_QUEUE",
        ),
        (
            "a value instead of a rule",
            with_rules("QUEUE = \"events\"\nOTHER = 5"),
            "error: slipway.toml:6:9: `QUEUE` in `config` of [[service]] `idp`: expected a table, found string\n  \
             hint: a rule is a table; a value is set with `slipway config set`, not here: write QUEUE = { required = true }\n\
             error: slipway.toml:7:9: `OTHER` in `config` of [[service]] `idp`: expected a table, found integer\n  \
             hint: write OTHER = { required = true }",
        ),
        (
            "config not a table",
            format!("{SERVICE}config = \"QUEUE\"\n[environment.prod]\n"),
            "error: slipway.toml:5:10: `config` in [[service]] `idp`: expected a table, found string\n  \
             hint: write [service.config] below the [[service]], one rule per key, e.g. QUEUE = { required = true, type = \"url\", unique = \"services\" }",
        ),
    ]);
}

#[test]
fn rule_keys_and_their_types_are_checked_like_any_other() {
    assert_cases(&[
        (
            "typo",
            with_rules("QUEUE = { uniqe = \"services\" }"),
            "error: slipway.toml:6:11: unknown key `uniqe` in rule `QUEUE` of [[service]] `idp`\n  \
             hint: did you mean `unique`?",
        ),
        (
            "booleans in quotes",
            with_rules("QUEUE = { required = \"yes\", secret = \"true\" }"),
            "error: slipway.toml:6:22: `required` in rule `QUEUE` of [[service]] `idp`: expected true or false, found string\n  \
             hint: write required = true or required = false\n\
             error: slipway.toml:6:38: `secret` in rule `QUEUE` of [[service]] `idp`: expected true or false, found string\n  \
             hint: remove the quotes: secret = true",
        ),
        (
            "unknown types",
            with_rules("QUEUE = { type = \"integer\" }\nB = { type = \"number\" }"),
            "error: slipway.toml:6:18: `type` in rule `QUEUE` of [[service]] `idp`: \"integer\" is not one of \"string\", \"int\", \"bool\", \"url\" or \"duration\"\n  \
             hint: did you mean \"int\"?\n\
             error: slipway.toml:7:14: `type` in rule `B` of [[service]] `idp`: \"number\" is not one of \"string\", \"int\", \"bool\", \"url\" or \"duration\"\n  \
             hint: write one of \"string\", \"int\", \"bool\", \"url\" or \"duration\"",
        ),
        (
            "unknown uniqueness, and a group that needs one",
            with_rules(
                "QUEUE = { unique = \"service\", group = \"queues\" }\nB = { group = \"queues\" }\n\
                 C = { unique = \"everywhere\", group = \"no good\" }",
            ),
            "error: slipway.toml:6:20: `unique` in rule `QUEUE` of [[service]] `idp`: \"service\" is not one of \"services\", \"environments\" or \"everywhere\"\n  \
             hint: did you mean \"services\"?\n\
             error: slipway.toml:7:7: `group` in rule `B` of [[service]] `idp`: a group only matters to a key with `unique`\n  \
             hint: add unique = \"services\" (or \"environments\", \"everywhere\"), or remove group = \"queues\"\n\
             error: slipway.toml:8:38: `group` in rule `C` of [[service]] `idp`: `no good` is not a valid name\n  \
             hint: use letters, digits, `-` and `_`, starting with a letter or digit",
        ),
    ]);
}

#[test]
fn patterns_must_compile_and_errors_point_into_them() {
    assert_cases(&[
        (
            "unclosed group, written verbatim: the column is the parenthesis",
            with_rules("QUEUE = { pattern = '[a-z]+(-prod' }"),
            "error: slipway.toml:6:28: `pattern` in rule `QUEUE` of [[service]] `idp`: not a regular expression: unclosed group\n  \
             hint: write a regular expression the whole value must match, e.g. pattern = '[a-z][a-z0-9-]*' (in single quotes, TOML keeps backslashes as they are)",
        ),
        (
            "with escapes: the column is the value's",
            with_rules("C = { pattern = \"\\\\d+(\" }"),
            "error: slipway.toml:6:17: `pattern` in rule `C` of [[service]] `idp`: not a regular expression: unclosed group\n  \
             hint: write a regular expression the whole value must match, e.g. pattern = '[a-z][a-z0-9-]*' (in single quotes, TOML keeps backslashes as they are)",
        ),
        (
            "empty",
            with_rules("B = { pattern = \"\" }"),
            "error: slipway.toml:6:17: `pattern` in rule `B` of [[service]] `idp`: must not be empty",
        ),
    ]);
}

#[test]
fn allowed_values_must_fit_the_type_and_pattern_of_their_rule() {
    assert_cases(&[
        (
            "wrong type",
            with_rules("WORKERS = { type = \"int\", allowed = [\"1\", \"two\", 3] }"),
            "error: slipway.toml:6:43: `allowed` in rule `WORKERS` of [[service]] `idp`: \"two\" is not an int\n  \
             hint: `type` is \"int\": write a whole number, e.g. 42 or -1\n\
             error: slipway.toml:6:50: `allowed` in rule `WORKERS` of [[service]] `idp`: expected an array of strings, found integer in it",
        ),
        (
            "pattern, duplicates, empty, not a list",
            with_rules(
                "QUEUE = { pattern = '[a-z]+', allowed = [\"events\", \"Events\", \"events\"] }\n\
                 B = { allowed = [] }\nC = { allowed = \"x\" }",
            ),
            "error: slipway.toml:6:52: `allowed` in rule `QUEUE` of [[service]] `idp`: \"Events\" does not match `pattern` ([a-z]+)\n  \
             hint: no version could hold it: fix the value or the pattern\n\
             error: slipway.toml:6:62: `allowed` in rule `QUEUE` of [[service]] `idp`: \"events\" is listed twice\n  \
             hint: list each value once\n\
             error: slipway.toml:7:17: `allowed` in rule `B` of [[service]] `idp`: lists no value, so no version could pass\n  \
             hint: list the values, e.g. allowed = [\"debug\", \"info\"], or leave `allowed` out to accept any\n\
             error: slipway.toml:8:17: `allowed` in rule `C` of [[service]] `idp`: expected an array of strings, found string\n  \
             hint: write a list: allowed = [\"x\"]",
        ),
        (
            "a secret's values would be public",
            with_rules(
                "QUEUE = { secret = true, allowed = [\"a\"] }\nDB_PASSWORD = { allowed = [\"a\"] }\n\
                 API_TOKEN = { secret = false, allowed = [\"a\"] }",
            ),
            "error: slipway.toml:6:26: `allowed` in rule `QUEUE` of [[service]] `idp`: it is a secret, and its allowed values would be in slipway.toml for anyone to read\n  \
             hint: remove `allowed` (a `pattern` can still check the value's form), or write secret = false if the value is not a secret\n\
             error: slipway.toml:7:17: `allowed` in rule `DB_PASSWORD` of [[service]] `idp`: its name says it holds a secret, and its allowed values would be in slipway.toml for anyone to read\n  \
             hint: remove `allowed` (a `pattern` can still check the value's form), or write secret = false if the value is not a secret",
        ),
    ]);
}

#[test]
fn service_config_mistakes_are_reported_at_once() {
    let text = r#"[[service]]
name = "idp"
start = "bin/server --port $PORT"

[service.config]
QUEUE = { required = true, type = "url", unique = "service", group = "queues" }
PORT = { type = "int" }
LOG_LEVEL = { allowed = ["debug", "info", "debug"], pattern = '[a-z]+(' }

[service.config.WORKERS]
type = "integer"
allowed = ["1", "2"]
requird = true

[[service]]
name = "pivcac"
start = "bin/server --port $PORT"
config = { JOBS_QUEUE = { unique = "services", group = "queues", secret = "no" } }

[secrets]
key_file = "master.key"
previous_key_files = ["master.key"]

[environment.prod]
"#;
    insta::assert_snapshot!(errors(text).to_string());
}

#[test]
fn secrets_table_names_the_master_key_files() {
    let text = format!(
        "[secrets]\nkey_file = \"keys/master.key\"\nprevious_key_files = [\"keys/2025.key\", \
         \"keys/2024.key\"]\n\n{SERVICE}[environment.prod]\n"
    );
    let config = parse_config("slipway.toml", &text).unwrap();
    assert_eq!(
        config.secrets,
        SecretsConfig {
            key_file: Some("keys/master.key".to_owned()),
            previous_key_files: vec!["keys/2025.key".to_owned(), "keys/2024.key".to_owned()],
        }
    );
}

#[test]
fn secrets_table_mistakes_are_reported_with_a_hint() {
    assert_cases(&[
        (
            "current key listed as previous, twice, empty, and an unknown key",
            format!(
                "[secrets]\nkey_file = \"master.key\"\nprevious_key_files = [\"old.key\", \
                 \"master.key\", \"old.key\", \"\"]\nkey = \"x\"\n{SERVICE}[environment.prod]\n"
            ),
            "error: slipway.toml:3:34: `previous_key_files` in [secrets]: \"master.key\" is also `key_file`, the current key\n  \
             hint: list only keys used before; the current one is always read\n\
             error: slipway.toml:3:48: `previous_key_files` in [secrets]: \"old.key\" is listed twice\n  \
             hint: list each key file once\n\
             error: slipway.toml:3:59: `previous_key_files` in [secrets]: a path is empty\n  \
             hint: name a key file, e.g. \"master-2025.key\"\n\
             error: slipway.toml:4:1: unknown key `key` in [secrets]\n  \
             hint: known keys here: key_file, previous_key_files",
        ),
        (
            "wrong types",
            format!(
                "[secrets]\nkey_file = 5\nprevious_key_files = \"old.key\"\n{SERVICE}[environment.prod]\n"
            ),
            "error: slipway.toml:2:12: `key_file` in [secrets]: expected a string, found integer\n  \
             hint: put the value in quotes: key_file = \"5\"\n\
             error: slipway.toml:3:22: `previous_key_files` in [secrets]: expected an array of strings, found string\n  \
             hint: write a list: previous_key_files = [\"old.key\"]",
        ),
        (
            "not a table",
            format!("secrets = \"master.key\"\n{SERVICE}[environment.prod]\n"),
            "error: slipway.toml:1:11: `secrets` at the top level: expected a table, found string\n  \
             hint: write [secrets] with key_file = \"master.key\"",
        ),
    ]);
}

#[test]
fn command_target_receives_config_as_variables_unless_it_asks_for_a_file() {
    let config = parse_config("slipway.toml", &with_commands(REQUIRED_COMMANDS)).unwrap();
    let command = config.environments[0].command.as_ref().unwrap();
    assert_eq!(command.config, ConfigDelivery::Env);

    let body = "launch = \"./bin/launch --env-file {config_file} {version}\"\nstop = \"s\"\n\
                observe = \"o\"\ntask = \"./bin/task {task} {config_file}\"\nconfig = \"file\"";
    let config = parse_config("slipway.toml", &with_commands(body)).unwrap();
    let command = config.environments[0].command.as_ref().unwrap();
    assert_eq!(command.config, ConfigDelivery::File);
    assert_eq!(
        command.launch.placeholders().collect::<Vec<_>>(),
        [Placeholder::ConfigFile, Placeholder::Version]
    );
    assert!(
        command
            .task
            .as_ref()
            .unwrap()
            .placeholders()
            .any(|p| p == Placeholder::ConfigFile)
    );
    let explicit_env = parse_config(
        "slipway.toml",
        &with_commands(&format!("{REQUIRED_COMMANDS}\nconfig = \"env\"")),
    )
    .unwrap();
    assert_eq!(
        explicit_env.environments[0]
            .command
            .as_ref()
            .unwrap()
            .config,
        ConfigDelivery::Env
    );
}

#[test]
fn config_delivery_mistakes_are_reported_with_a_hint() {
    assert_cases(&[
        (
            "typo",
            with_commands(&format!("{REQUIRED_COMMANDS}\nconfig = \"files\"")),
            "error: slipway.toml:11:10: `config` in `command` of [environment.prod]: \"files\" is not one of \"env\" or \"file\"\n  \
             hint: did you mean \"file\"?",
        ),
        (
            "not a string",
            with_commands(&format!("{REQUIRED_COMMANDS}\nconfig = true")),
            "error: slipway.toml:11:10: `config` in `command` of [environment.prod]: expected a string, found boolean\n  \
             hint: write config = \"env\" (environment variables, the default) or config = \"file\" (an env file named by {config_file})",
        ),
        (
            "{config_file} without a file, and where it never has a value",
            with_commands(
                "launch = \"l {config_file}\"\nstop = \"s {config_file}\"\nobserve = \"o\"\n\
                 task = \"t --env {config_file}\"",
            ),
            "error: slipway.toml:8:13: `launch` in `command` of [environment.prod]: placeholder `{config_file}` has no value unless config = \"file\"\n  \
             hint: write config = \"file\" in this command table to hand the config version to `launch` and `task` as an env file, or read the environment variables they get by default\n\
             error: slipway.toml:9:11: `stop` in `command` of [environment.prod]: placeholder `{config_file}` has no value in `stop`\n  \
             hint: `stop` knows {service} {environment} {region} {label} {version} {digest} {artifact} {config} {key}\n\
             error: slipway.toml:11:17: `task` in `command` of [environment.prod]: placeholder `{config_file}` has no value unless config = \"file\"\n  \
             hint: write config = \"file\" in this command table to hand the config version to `launch` and `task` as an env file, or read the environment variables they get by default",
        ),
    ]);
}

// --- `[service.source]`: the service's git repository.

#[test]
fn service_source_names_the_repository_and_defaults_the_branch_to_main() {
    let text = "[[service]]\nname = \"idp\"\nstart = \"s\"\nsource = { repo = \"../idp\" }\n\n\
                [[service]]\nname = \"pivcac\"\nstart = \"s\"\n\n[service.source]\nrepo = \"/src/pivcac\"\n\
                branch = \"trunk\"\n\n[[service]]\nname = \"dashboard\"\nstart = \"s\"\n\n\
                [environment.prod]\n";
    let config = parse_config("slipway.toml", text).unwrap();
    let sources: Vec<_> = config
        .services
        .iter()
        .map(|service| service.source.clone().map(|s| (s.repo, s.branch)))
        .collect();
    assert_eq!(
        sources,
        vec![
            Some(("../idp".to_owned(), "main".to_owned())),
            Some(("/src/pivcac".to_owned(), "trunk".to_owned())),
            None,
        ]
    );
}

#[test]
fn service_source_mistakes_are_reported_with_a_hint() {
    let source = |body: &str| format!("{SERVICE}[service.source]\n{body}\n\n[environment.prod]\n");
    assert_cases(&[
        (
            "no repo, a bad branch and an unknown key",
            source("branch = \"rc..1\"\nrepository = \"../idp\""),
            "error: slipway.toml:5:1: missing `repo` in [service.source] of [[service]] `idp`\n  \
             hint: add the path of a local clone, e.g. repo = \"../idp\" (relative to this file)\n\
             error: slipway.toml:6:10: `branch` in [service.source] of [[service]] `idp`: `rc..1` is not a valid branch name\n  \
             hint: write the branch as git names it, e.g. branch = \"main\"\n\
             error: slipway.toml:7:1: unknown key `repository` in [service.source] of [[service]] `idp`\n  \
             hint: did you mean `repo`?",
        ),
        (
            "not a table",
            format!("{SERVICE}source = \"../idp\"\n[environment.prod]\n"),
            "error: slipway.toml:5:10: `source` in [[service]] `idp`: expected a table, found string\n  \
             hint: write [service.source] with repo = \"../idp\" and branch = \"main\" below the [[service]]",
        ),
    ]);
}

#[test]
fn service_source_takes_the_release_train_settings_with_defaults() {
    let text = "[[service]]\nname = \"idp\"\nstart = \"s\"\n\n[service.source]\nrepo = \"../idp\"\n\
                branch_pattern = \"release/{date}\"\nprod_branch = \"live\"\n\
                signing_key = \"keys/tag\"\nnotes_webhook = \"http://127.0.0.1:9/notes\"\n\n\
                [[service]]\nname = \"pivcac\"\nstart = \"s\"\nsource = { repo = \"../p\" }\n\n\
                [environment.prod]\n";
    let config = parse_config("slipway.toml", text).unwrap();
    let idp = config.services[0].source.clone().unwrap().train;
    assert_eq!(idp.branch_pattern, "release/{date}");
    assert_eq!(idp.prod_branch, "live");
    assert_eq!(idp.signing_key.as_deref(), Some("keys/tag"));
    assert_eq!(
        idp.notes_webhook.as_deref(),
        Some("http://127.0.0.1:9/notes")
    );
    let pivcac = config.services[1].source.clone().unwrap().train;
    assert_eq!(pivcac, slipway_core::config::TrainSettings::default());
    assert_eq!(pivcac.branch_pattern, "stages/rc-{date}");
    assert_eq!(pivcac.prod_branch, "stages/prod");

    let bad = "[[service]]\nname = \"idp\"\nstart = \"s\"\n\n[service.source]\nrepo = \"../idp\"\n\
               branch_pattern = \"rc {date}\"\nnotes_webhook = \"ftp://x\"\n\n[environment.prod]\n";
    let errors = parse_config("slipway.toml", bad).unwrap_err().to_string();
    assert!(errors.contains("`branch_pattern`"), "{errors}");
    assert!(errors.contains("`notes_webhook`"), "{errors}");
    assert!(errors.contains("hint: "), "{errors}");
}

#[test]
fn a_notes_secret_signs_the_notes_webhook_and_needs_one() {
    let base =
        "[[service]]\nname = \"idp\"\nstart = \"s\"\n\n[service.source]\nrepo = \"../idp\"\n";
    let text = format!(
        "{base}notes_webhook = \"http://127.0.0.1:9/notes\"\nnotes_secret_env = \"NOTES_KEY\"\n\n\
         [environment.prod]\n"
    );
    let config = parse_config("slipway.toml", &text).unwrap();
    assert_eq!(
        config.services[0]
            .source
            .as_ref()
            .unwrap()
            .train
            .notes_secret,
        Some(slipway_core::config::SecretSource::Env(
            "NOTES_KEY".to_owned()
        ))
    );
    let lonely = format!("{base}notes_secret_file = \"notes.secret\"\n\n[environment.prod]\n");
    let errors = parse_config("slipway.toml", &lonely)
        .unwrap_err()
        .to_string();
    assert!(errors.contains("no notes_webhook to sign for"), "{errors}");
    assert!(errors.contains("hint: add notes_webhook"), "{errors}");
    let both = format!(
        "{base}notes_webhook = \"http://127.0.0.1:9/n\"\nnotes_secret_file = \"a\"\n\
         notes_secret_env = \"B\"\n\n[environment.prod]\n"
    );
    let errors = parse_config("slipway.toml", &both).unwrap_err().to_string();
    assert!(
        errors.contains("both `notes_secret_file` and `notes_secret_env`"),
        "{errors}"
    );
}

#[test]
fn train_schedules_are_read_with_their_zone_and_mistakes_named() {
    let text = "[[service]]\nname = \"idp\"\nstart = \"s\"\n\n[service.source]\nrepo = \"../idp\"\n\n\
                [[service.source.schedule]]\ncron = \"0 6 * * *\"\naction = \"deploy-artifact\"\n\
                environment = \"staging\"\n\n\
                [[service.source.schedule]]\ncron = \"0 9 * * tue\"\nzone = \"America/New_York\"\n\
                action = \"cut\"\n\n\
                [[service.source.schedule]]\ncron = \"0 10 * * thu\"\nzone = \"America/New_York\"\n\
                action = \"deploy\"\nenvironment = \"prod\"\n\n[environment.staging]\n[environment.prod]\n";
    let config = parse_config("slipway.toml", text).unwrap();
    let schedules = &config.services[0].source.as_ref().unwrap().train.schedules;
    assert_eq!(schedules.len(), 3);
    assert_eq!(schedules[0].zone, "UTC");
    assert_eq!(
        schedules[0].action,
        slipway_core::config::TrainAction::DeployArtifact
    );
    assert_eq!(schedules[1].cron, "0 9 * * tue");
    assert_eq!(schedules[1].environment, None);
    assert_eq!(
        schedules[2].key("idp"),
        "idp:deploy:prod:0 10 * * thu@America/New_York"
    );

    let bad = "[[service]]\nname = \"idp\"\nstart = \"s\"\n\n[service.source]\nrepo = \"../idp\"\n\n\
               [[service.source.schedule]]\ncron = \"0 9 * *\"\naction = \"cut\"\n\n\
               [[service.source.schedule]]\ncron = \"0 9 * * 2\"\nzone = \"Mars/Olympus\"\naction = \"ship\"\n\n\
               [[service.source.schedule]]\ncron = \"0 9 * * 2\"\naction = \"deploy\"\n\n\
               [environment.prod]\n";
    let errors = parse_config("slipway.toml", bad).unwrap_err().to_string();
    for expected in [
        "has 4 fields",
        "`zone` in schedule #2",
        "unknown action `ship`",
        "missing `environment` in schedule #3",
        "hint: ",
    ] {
        assert!(errors.contains(expected), "{expected}: {errors}");
    }
}

#[test]
fn a_schedule_naming_an_unknown_environment_is_refused_with_the_near_name() {
    let text = "[[service]]\nname = \"idp\"\nstart = \"s\"\n\n[service.source]\nrepo = \"../idp\"\n\n\
                [[service.source.schedule]]\ncron = \"0 6 * * *\"\naction = \"deploy\"\n\
                environment = \"stagin\"\n\n[environment.staging]\n[environment.prod]\n";
    let errors = parse_config("slipway.toml", text).unwrap_err().to_string();
    assert!(errors.contains("unknown environment `stagin`"), "{errors}");
    assert!(errors.contains("did you mean `staging`?"), "{errors}");
    assert!(errors.contains("slipway.toml:11:15:"), "{errors}");
}

// --- `[service.compat]`: suppressions of the 50/50 compatibility check.

#[test]
fn service_compat_ignores_are_kept_with_the_source_and_their_reasons() {
    let text = "[[service]]\nname = \"idp\"\nstart = \"s\"\n\n[service.source]\nrepo = \"../idp\"\n\n\
                [service.compat]\nignore = [{ rule = \"rails-drop-column-in-use\", path = \"db/migrate/\", \
                reason = \"read through a cache only\" }]\n\n[environment.prod]\n";
    let config = parse_config("slipway.toml", text).unwrap();
    let compat = &config.services[0].source.as_ref().unwrap().compat;
    assert_eq!(compat.ignore.len(), 1);
    assert_eq!(compat.ignore[0].rule, "rails-drop-column-in-use");
    assert_eq!(compat.ignore[0].path, "db/migrate/");
    assert_eq!(compat.ignore[0].reason, "read through a cache only");
}

#[test]
fn service_compat_mistakes_are_reported_with_a_hint() {
    assert_cases(&[
        (
            "an ignore without a reason",
            format!(
                "{SERVICE}[service.source]\nrepo = \"../idp\"\n\n[service.compat]\n\
                 ignore = [{{ rule = \"*\", path = \"db/\" }}]\n\n[environment.prod]\n"
            ),
            "error: slipway.toml:9:11: missing `reason` in `ignore` #1 of [service.compat] of [[service]] `idp`\n  \
             hint: say why the change is safe anyway: it goes to the deploy's audit trail",
        ),
        (
            "compat without a source",
            format!("{SERVICE}[service.compat]\nignore = []\n\n[environment.prod]\n"),
            "error: slipway.toml:5:10: `compat` in [[service]] `idp`: the compatibility check reads the service's repository, which this service does not name\n  \
             hint: add [service.source] with repo = \"../idp\"",
        ),
    ]);
}
