//! Deploy windows and freezes through the real binary: `check-config` and `serve` load the
//! calendar files, `slipway schedule` prints the next slot, and a deploy into a closed
//! environment waits for it with the reason.
//!
//! The engine reads the system clock here, so the freezes are chosen relative to today: every
//! day of the week is frozen except the day after tomorrow (UTC), which makes "closed now, open
//! the day after tomorrow at 00:00 UTC" true whenever the test runs.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use slipway_testkit::server::SpawnedServer;

use super::support::{BIN, json, push_and_release};

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

const HOLIDAYS: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20261225\r\n\
                        SUMMARY:Christmas Day\r\nRRULE:FREQ=YEARLY\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

const ABSENCES: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20200101\r\n\
                        RRULE:FREQ=DAILY\r\nSUMMARY:Out\r\nATTENDEE;CN=Dana:mailto:dana@example.com\r\n\
                        END:VEVENT\r\nEND:VCALENDAR\r\n";

/// Monday = 0 of the day `days` from today, in UTC.
fn weekday_in(days: u64) -> usize {
    let today = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
        / 86_400;
    // 1 January 1970 was a Thursday.
    ((today + days + 3) % 7) as usize
}

fn config(frozen: &str) -> String {
    format!(
        r#"
[[service]]
name = "idp"
start = "bin/server"

[environment.prod]
target = "command"
approvals = false
go_no_go = false
bake = "0s"
confirm_scale_in = false
post_verify = false
time_zone = "UTC"
freezes = ["{frozen} release freeze"]
freeze_calendars = ["calendars/holidays.ics"]
staffing = {{ calendar = "calendars/absences.ics", max_out = 2, team = 5 }}
[environment.prod.command]
launch = "true"
stop = "true"
observe = "echo '{{\"fleets\":[]}}'"
"#
    )
}

#[test]
fn schedule_shows_the_next_slot_and_a_deploy_in_a_freeze_waits_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let open_day = weekday_in(2);
    let frozen: Vec<&str> = (0..7)
        .filter(|d| *d != open_day)
        .map(|d| DAY_NAMES[d])
        .collect();
    let frozen = frozen.join(",");
    std::fs::write(root.join("slipway.toml"), config(&frozen)).unwrap();

    // A missing calendar is a config error naming the place that names it, with a hint.
    let checked = std::process::Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(root.join("slipway.toml"))
        .output()
        .unwrap();
    assert_eq!(checked.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert!(
        stderr.contains("slipway.toml:15:21: cannot read calendar `calendars/holidays.ics`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: check the path: it is relative to the directory of the config file"),
        "{stderr}"
    );

    std::fs::create_dir(root.join("calendars")).unwrap();
    std::fs::write(root.join("calendars/holidays.ics"), HOLIDAYS).unwrap();
    std::fs::write(root.join("calendars/absences.ics"), ABSENCES).unwrap();
    let server = SpawnedServer::start(
        Path::new(BIN),
        &root.join("slipway.toml"),
        &root.join("data"),
    );
    let admin = server.admin_token.clone();

    // `slipway schedule` names the freeze and the next slot, in the zone and in UTC.
    let schedule = server
        .cli(&admin, &["schedule", "idp", "--env", "prod"])
        .success()
        .stdout;
    assert!(
        schedule.contains("idp in prod (time zone UTC)"),
        "{schedule}"
    );
    assert!(schedule.contains("closed now:"), "{schedule}");
    assert!(
        schedule.contains(&format!(
            "frozen: release freeze (`{frozen} release freeze`)"
        )),
        "{schedule}"
    );
    let open_name = DAY_NAMES[open_day];
    let capitalised = format!("{}{}", open_name[..1].to_uppercase(), &open_name[1..]);
    assert!(
        schedule.contains(&format!("next slot: {capitalised} ")),
        "{schedule}"
    );
    assert!(schedule.contains("00:00 UTC until"), "{schedule}");
    assert!(
        schedule.contains("out now: 1 of 5 (at most 2 may be out): Dana"),
        "{schedule}"
    );
    let view = json(
        &server
            .cli(
                &admin,
                &["--output", "json", "schedule", "idp", "--env", "prod"],
            )
            .success()
            .stdout,
    );
    assert_eq!(view["open"], false);
    assert_eq!(view["reasons"][0]["rule"], "freeze");
    let next = view["next_slot"]["start"].as_str().unwrap().to_owned();
    assert!(next.ends_with("T00:00:00Z"), "{next}");
    assert_eq!(
        view["next_slot"]["end"]
            .as_str()
            .map(|e| e.ends_with("T00:00:00Z")),
        Some(true)
    );

    // A deploy into the freeze waits for that slot, with the reason.
    push_and_release(&server, &admin, root, "1.0.0");
    let deployed = json(
        &server
            .cli(
                &admin,
                &["--output", "json", "deploy", "idp", "--env", "prod"],
            )
            .success()
            .stdout,
    );
    let id = deployed["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("{deployed}"))
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let status = json(
            &server
                .cli(&admin, &["--output", "json", "status", &id])
                .success()
                .stdout,
        );
        if status["phase"]["waiting_for"] == "slot" {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the deploy never waited for a slot: {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let reason = status["phase"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("prod is closed to deploys: frozen: release freeze"),
        "{status}"
    );
    assert!(reason.contains("next slot"), "{status}");
    let text = server.cli(&admin, &["status", &id]).success().stdout;
    assert!(text.contains("waiting slot"), "{text}");
}
