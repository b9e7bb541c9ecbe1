//! Choosing the driver an environment names.

use slipway_core::config::{CommandOperation, CommandTemplate, EnvironmentConfig, Placeholder};
use slipway_targets::{CommandSettings, CommandTarget, TargetError, target_for};

use crate::support::{environment, scope};

fn settings() -> CommandSettings {
    CommandSettings {
        artifact_dir: "/var/lib/slipway/artifacts".into(),
        workdir: "/srv/deploy".into(),
    }
}

fn local() -> EnvironmentConfig {
    let mut environment = environment("launch = 'l'\nstop = 's'\nobserve = 'o'");
    environment.target = "local".to_owned();
    environment.command = None;
    environment
}

#[tokio::test]
async fn command_environment_gets_the_command_target() {
    let environment =
        environment("launch = 'l'\nstop = 's'\nobserve = '''echo '{\"fleets\":[]}' '''");
    let mut settings = settings();
    settings.workdir = std::env::temp_dir();
    let target = target_for(&environment, &settings).unwrap().unwrap();
    // Observing runs the observe command.
    assert!(
        target
            .observe(&scope(None))
            .await
            .unwrap()
            .fleets
            .is_empty()
    );
}

#[test]
fn targets_without_a_driver_yet_get_none() {
    for name in ["local", "aws-asg", "kubernetes"] {
        let mut environment = local();
        environment.target = name.to_owned();
        assert!(
            target_for(&environment, &settings()).unwrap().is_none(),
            "{name}"
        );
    }
}

#[test]
fn unknown_target_is_an_error() {
    let mut environment = local();
    environment.target = "nomad".to_owned();
    let error = target_for(&environment, &settings()).err().unwrap();
    assert_eq!(
        error.to_string(),
        "environment `staging` has unknown target `nomad` (known: local, command, aws-asg, kubernetes)"
    );
}

#[test]
fn command_target_refuses_configs_parse_config_would_refuse() {
    let error = CommandTarget::new(&local(), settings()).unwrap_err();
    assert_eq!(
        error,
        TargetError::WrongTarget {
            environment: "staging".to_owned(),
            target: "local".to_owned(),
            expected: "command",
        }
    );

    let mut without_table = local();
    without_table.target = "command".to_owned();
    let error = CommandTarget::new(&without_table, settings()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "environment `staging` has target = \"command\" but no [environment.staging.command] table"
    );

    let mut misplaced = environment("launch = 'l'\nstop = 's'\nobserve = 'o'");
    misplaced.command.as_mut().unwrap().observe = CommandTemplate::parse("o {version}").unwrap();
    let error = CommandTarget::new(&misplaced, settings()).unwrap_err();
    assert_eq!(
        error,
        TargetError::Placeholder {
            environment: "staging".to_owned(),
            operation: CommandOperation::Observe,
            placeholder: Placeholder::Version,
        }
    );
    assert_eq!(
        error.to_string(),
        "the `observe` command of environment `staging` uses `{version}`, which has no value there"
    );
}
