//! Feature flags and config defaults changed together with code that depends on them.

use crate::support::{compare, of};

const FLAGS: &str = "defaults:\n  new_checkout: false\n  page_size: 20\n";
const FLAGS_ON: &str = "defaults:\n  new_checkout: true\n  page_size: 20\n";

#[test]
fn a_flag_flipped_with_code_that_reads_it_is_a_warning() {
    let code = "class CheckoutController < ApplicationController\n  def show\n    render :new if Flags.enabled?(:new_checkout)\n  end\nend\n";
    let report = compare(
        &[
            ("config/flags.yml", Some(FLAGS)),
            (
                "app/controllers/checkout_controller.rb",
                Some("class CheckoutController\nend\n"),
            ),
        ],
        &[
            ("config/flags.yml", Some(FLAGS_ON)),
            ("app/controllers/checkout_controller.rb", Some(code)),
        ],
    );
    let found = of(&report, "config-default-changed-with-code");
    assert_eq!(found.len(), 1, "{report:#?}");
    assert_eq!(
        found[0].base.as_ref().unwrap().to_string(),
        "config/flags.yml:2"
    );
    assert_eq!(
        found[0].head.as_ref().unwrap().to_string(),
        "app/controllers/checkout_controller.rb:3"
    );
    assert!(report.passed(), "a warning does not fail the check");
}

#[test]
fn a_flag_flipped_alone_is_safe() {
    let report = compare(
        &[
            ("config/flags.yml", Some(FLAGS)),
            (
                "app/controllers/checkout_controller.rb",
                Some("class CheckoutController\nend\n"),
            ),
        ],
        &[
            ("config/flags.yml", Some(FLAGS_ON)),
            (
                "app/controllers/home_controller.rb",
                Some("class HomeController\nend\n"),
            ),
        ],
    );
    assert!(report.findings.is_empty(), "{report:#?}");
}
