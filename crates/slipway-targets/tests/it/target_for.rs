//! Choosing the driver an environment names.

use slipway_core::config::{CommandOperation, CommandTemplate, EnvironmentConfig, Placeholder};
use slipway_targets::{
    CommandSettings, CommandTarget, Driver, LocalTiming, TargetContext, TargetError, target_for,
};

use crate::support::{environment, scope};

fn settings() -> CommandSettings {
    CommandSettings {
        artifact_dir: "/var/lib/slipway/artifacts".into(),
        workdir: "/srv/deploy".into(),
        data_dir: "/var/lib/slipway".into(),
        config: None,
    }
}

fn context() -> TargetContext {
    TargetContext {
        data_dir: "/var/lib/slipway".into(),
        artifact_dir: "/var/lib/slipway/artifacts".into(),
        workdir: "/srv/deploy".into(),
        services: Vec::new(),
        proxy: None,
        local: LocalTiming::default(),
        config: None,
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
    let mut context = context();
    context.workdir = std::env::temp_dir();
    let driver = target_for(&environment, &context).await.unwrap().unwrap();
    assert!(matches!(driver, Driver::Command(_)));
    // Observing runs the observe command.
    assert!(
        driver
            .target()
            .observe(&scope(None))
            .await
            .unwrap()
            .fleets
            .is_empty()
    );
}

#[tokio::test]
async fn targets_without_a_driver_yet_get_none() {
    for name in ["aws-asg", "kubernetes"] {
        let mut environment = local();
        environment.target = name.to_owned();
        assert!(
            target_for(&environment, &context())
                .await
                .unwrap()
                .is_none(),
            "{name}"
        );
    }
}

#[tokio::test]
async fn local_environment_gets_the_local_target_with_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let mut context = context();
    let error = target_for(&local(), &context).await.err().unwrap();
    assert_eq!(
        error.to_string(),
        "environment `staging` has target = \"local\", which needs slipway's proxy"
    );
    context.data_dir = dir.path().to_owned();
    context.proxy = Some(
        slipway_proxy::Proxy::open(dir.path().join("proxy.json"), Default::default()).unwrap(),
    );
    let driver = target_for(&local(), &context).await.unwrap().unwrap();
    let Driver::Local(target) = &driver else {
        panic!("not the local target");
    };
    assert!(target.instances().await.is_empty());
    assert!(target.state_file().ends_with("local/staging.json"));
}

#[tokio::test]
async fn unknown_target_is_an_error() {
    let mut environment = local();
    environment.target = "nomad".to_owned();
    let error = target_for(&environment, &context()).await.err().unwrap();
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
