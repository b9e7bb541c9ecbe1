//! Route rules: removed while BASE links to it, linked in the change that adds it.

use crate::support::{compare, of};

const ROUTES: &str = "Rails.application.routes.draw do\n  resources :users\n  get \"/legacy/report\", to: \"reports#legacy\", as: :legacy_report\nend\n";
const WITHOUT_LEGACY: &str = "Rails.application.routes.draw do\n  resources :users\nend\n";
const WITH_EXPORT: &str = "Rails.application.routes.draw do\n  resources :users\n  get \"/legacy/report\", to: \"reports#legacy\", as: :legacy_report\n  get \"/export\", to: \"reports#export\"\nend\n";
const LINKING_VIEW: &str = "<%= link_to \"Report\", legacy_report_path %>\n";

#[test]
fn removing_a_route_base_still_links_to_is_unsafe() {
    let report = compare(
        &[
            ("config/routes.rb", Some(ROUTES)),
            ("app/views/home/index.html.erb", Some(LINKING_VIEW)),
        ],
        &[("config/routes.rb", Some(WITHOUT_LEGACY))],
    );
    let found = of(&report, "route-removed-in-use");
    assert_eq!(found.len(), 1, "{report:#?}");
    assert_eq!(
        found[0].base.as_ref().unwrap().to_string(),
        "config/routes.rb:3"
    );
    assert!(found[0].message.contains("app/views/home/index.html.erb:1"));
}

#[test]
fn removing_a_route_base_redirects_to_from_ruby_is_unsafe() {
    let controller = "class HomeController < ApplicationController\n  def show\n    redirect_to legacy_report_url\n  end\nend\n";
    let report = compare(
        &[
            ("config/routes.rb", Some(ROUTES)),
            ("app/controllers/home_controller.rb", Some(controller)),
        ],
        &[("config/routes.rb", Some(WITHOUT_LEGACY))],
    );
    assert_eq!(of(&report, "route-removed-in-use").len(), 1, "{report:#?}");
}

#[test]
fn removing_a_route_nothing_links_to_is_safe() {
    let report = compare(
        &[
            ("config/routes.rb", Some(ROUTES)),
            ("app/views/home/index.html.erb", Some("<p>hi</p>\n")),
        ],
        &[("config/routes.rb", Some(WITHOUT_LEGACY))],
    );
    assert!(report.findings.is_empty(), "{report:#?}");
}

#[test]
fn linking_to_a_route_in_the_change_that_adds_it_is_unsafe() {
    let view = "<%= link_to \"Export\", export_path %>\n";
    let report = compare(
        &[
            ("config/routes.rb", Some(ROUTES)),
            ("app/views/home/index.html.erb", Some("<p>hi</p>\n")),
        ],
        &[
            ("config/routes.rb", Some(WITH_EXPORT)),
            ("app/views/home/index.html.erb", Some(view)),
        ],
    );
    let found = of(&report, "route-linked-on-introduction");
    assert_eq!(found.len(), 1, "{report:#?}");
    assert_eq!(
        found[0].head.as_ref().unwrap().to_string(),
        "app/views/home/index.html.erb:1"
    );
}

#[test]
fn adding_a_route_without_linking_to_it_is_safe() {
    let report = compare(
        &[
            ("config/routes.rb", Some(ROUTES)),
            ("app/views/home/index.html.erb", Some(LINKING_VIEW)),
        ],
        &[("config/routes.rb", Some(WITH_EXPORT))],
    );
    assert!(report.findings.is_empty(), "{report:#?}");
}
