//! `slipway schedule SERVICE --env ENV`: whether a deploy may start now, why not, the next
//! allowed slot, the slots of the coming days, freezes and holidays coming up and who is out —
//! in the environment's time zone and in UTC. Also reads the calendar files a config names, for
//! `serve` and `check-config`.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use slipway_core::config::{Config, ConfigErrors};
use slipway_server::views::{ScheduleView, SlotView};

use super::artifact::encode;
use crate::Output;
use crate::client::Client;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    service: String,
    #[arg(long = "env", value_name = "ENV")]
    environment: String,
}

pub(crate) async fn run(args: &Args, client: &Client, output: Output) -> Result<ExitCode> {
    let path = format!(
        "/api/v1/schedule?service={}&environment={}",
        encode(&args.service),
        encode(&args.environment)
    );
    let view: ScheduleView = client.get(&path).await?;
    match output {
        Output::Json => println!("{:#}", serde_json::to_value(&view)?),
        Output::Text => print!("{}", render(&view)),
    }
    Ok(ExitCode::SUCCESS)
}

/// The schedule for people.
fn render(view: &ScheduleView) -> String {
    let mut text = String::new();
    let mut line = |s: String| {
        text.push_str(&s);
        text.push('\n');
    };
    let environment = &view.environment;
    line(format!(
        "{} in {environment} (time zone {})",
        view.service, view.time_zone
    ));
    if view.open {
        let window = view
            .window
            .as_ref()
            .map(|w| format!(" (window {w})"))
            .unwrap_or_default();
        line(format!("open now{window}"));
    } else {
        line("closed now:".to_owned());
        for reason in &view.reasons {
            line(format!("  - {}", reason.message));
        }
    }
    match &view.next_slot {
        Some(slot) if view.open => line(format!("open until {}", until(slot))),
        Some(slot) => line(format!(
            "next slot: {} until {}",
            slot.start_local,
            until(slot)
        )),
        None => line("next slot: none within a year".to_owned()),
    }
    if !view.windows.is_empty() {
        line(format!("windows: {}", view.windows.join(", ")));
    }
    if let Some(staffing) = &view.staffing {
        let of = staffing
            .team
            .map(|t| format!(" of {t}"))
            .unwrap_or_default();
        let who = if staffing.out.is_empty() {
            String::new()
        } else {
            format!(": {}", staffing.out.join(", "))
        };
        line(format!(
            "out now: {}{of} (at most {} may be out){who}",
            staffing.out.len(),
            staffing.max_out
        ));
    }
    if !view.slots.is_empty() {
        line(String::new());
        line("slots in the next 14 days:".to_owned());
        for slot in &view.slots {
            line(format!("  {} until {}", slot.start_local, until(slot)));
        }
    }
    if !view.closures.is_empty() {
        line(String::new());
        line("freezes, holidays and absences coming up:".to_owned());
        for closure in &view.closures {
            line(format!(
                "  {} until {}: {}",
                closure.start_local, closure.end_local, closure.message
            ));
        }
    }
    text
}

fn until(slot: &SlotView) -> String {
    slot.end_local
        .clone()
        .unwrap_or_else(|| "further than a year ahead".to_owned())
}

/// Reads the calendar files `config` names (relative to the config file's directory) and
/// attaches them; every file that is missing or malformed is reported with its file and line.
pub(crate) fn attach_calendars(
    config: &mut Config,
    config_path: &Path,
) -> Result<(), ConfigErrors> {
    let directory = config_path.parent().unwrap_or(Path::new(""));
    let texts: BTreeMap<String, Result<String, String>> = config
        .calendar_files()
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(directory.join(&file.path)).map_err(|error| {
                match error.kind() {
                    std::io::ErrorKind::NotFound => "no such file".to_owned(),
                    std::io::ErrorKind::InvalidData => "not UTF-8 text".to_owned(),
                    _ => error.to_string(),
                }
            });
            (file.path, text)
        })
        .collect();
    config.attach_calendars(&config_path.display().to_string(), &texts)
}
