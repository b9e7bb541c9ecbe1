//! What a deploy's charts show, derived from its events, and the charts as inline SVG.
//!
//! The traffic split over time comes from the traffic operations that succeeded
//! (`effect_succeeded` with op `traffic`, or `traffic-back:…` while unwinding) and the plan step
//! each belongs to: a canary gives the new fleet its share, the surge spreads traffic over both
//! fleets by instance count (the 50/50 state), scale-in sends it all to the new fleet, and an
//! unwind sends it all back. The check numbers are the `measured` events. Every chart is
//! followed on its page by a table of the same numbers, so nothing depends on seeing the SVG.

use std::collections::BTreeMap;

use maud::{Markup, PreEscaped, html};
use slipway_core::analysis::{Classification, Measurement, Unit};
use slipway_core::deploy::{Deploy, Event};
use slipway_core::plan::StepKind;
use slipway_core::time::Time;
use slipway_store::StoredEvent;

/// The new release's share of traffic from `at` on.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TrafficPoint {
    pub(crate) at: Time,
    /// 0–100.
    pub(crate) new_percent: f64,
    /// The step that set it.
    pub(crate) step: String,
}

/// One measurement of a check at a point in time.
#[derive(Clone, Debug)]
pub(crate) struct MeasurePoint {
    pub(crate) at: Time,
    pub(crate) measurement: Measurement,
}

/// The traffic split over time in one region (`None`: a single-region environment).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RegionTraffic {
    pub(crate) region: Option<String>,
    pub(crate) points: Vec<TrafficPoint>,
}

/// The traffic split of `deploy` over time, one series per region in the plan's order, from
/// its events (oldest first). A step's traffic operation counts in the step's region; an
/// unwind's `traffic-back:{region}` in the region it names.
pub(crate) fn traffic(deploy: &Deploy, events: &[StoredEvent]) -> Vec<RegionTraffic> {
    let spec = &deploy.spec;
    let mut series: Vec<RegionTraffic> = Vec::new();
    let mut regions = spec.plan.regions();
    if regions.is_empty() {
        regions.push(None);
    }
    for region in regions {
        series_of(&mut series, region, spec.requested_at);
    }
    for stored in events.iter().filter(|e| e.kind == "effect_succeeded") {
        let Ok(Event::EffectSucceeded { key, .. }) = serde_json::from_str(&stored.payload) else {
            continue;
        };
        let mut parts = key.splitn(4, '/');
        let (Some(_), Some(step), Some(_), Some(op)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let point = if let Some(region) = op.strip_prefix("traffic-back") {
            let region = region.trim_start_matches(':');
            let region = (!region.is_empty()).then(|| region.to_owned());
            Some((region, 0.0, "rollback".to_owned()))
        } else if op == "traffic" {
            step.parse::<usize>()
                .ok()
                .and_then(|index| spec.plan.steps.get(index))
                .and_then(|step| {
                    let share = match &step.kind {
                        // Without an old fleet the canary's weight is the only one there is.
                        StepKind::Canary { share_bp, .. } if spec.previous.is_some() => {
                            f64::from(*share_bp) / 100.0
                        }
                        StepKind::Surge if spec.previous.is_some() => 50.0,
                        StepKind::Canary { .. } | StepKind::Surge | StepKind::ScaleIn { .. } => {
                            100.0
                        }
                        _ => return None,
                    };
                    Some((step.region.clone(), share, step.kind.name().to_owned()))
                })
        } else {
            None
        };
        if let Some((region, new_percent, step)) = point {
            let index = series_of(&mut series, region, spec.requested_at);
            series[index].points.push(TrafficPoint {
                at: stored.at,
                new_percent,
                step,
            });
        }
    }
    series
}

/// The index of `region`'s series, added (all traffic on the old fleet from `start`) if new.
fn series_of(series: &mut Vec<RegionTraffic>, region: Option<String>, start: Time) -> usize {
    if let Some(index) = series.iter().position(|s| s.region == region) {
        return index;
    }
    series.push(RegionTraffic {
        region,
        points: vec![TrafficPoint {
            at: start,
            new_percent: 0.0,
            step: "before".to_owned(),
        }],
    });
    series.len() - 1
}

/// The check numbers of a deploy, by measurement name, from its events.
pub(crate) fn measurements(events: &[StoredEvent]) -> BTreeMap<String, Vec<MeasurePoint>> {
    let mut series: BTreeMap<String, Vec<MeasurePoint>> = BTreeMap::new();
    for stored in events.iter().filter(|e| e.kind == "measured") {
        if let Ok(Event::Measured { measurement, .. }) = serde_json::from_str(&stored.payload) {
            series
                .entry(measurement.name.clone())
                .or_default()
                .push(MeasurePoint {
                    at: stored.at,
                    measurement,
                });
        }
    }
    series
}

/// A value in its unit, for people.
pub(crate) fn show_value(value: f64, unit: Unit) -> String {
    match unit {
        Unit::Ratio => format!("{:.2}%", value * 100.0),
        Unit::Millis => format!("{value:.0} ms"),
        Unit::PerSecond => format!("{value:.2}/s"),
        Unit::Number => format!("{value:.3}"),
    }
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// Maps times and values into the plot area.
struct Frame {
    start: i64,
    end: i64,
    max: f64,
}

impl Frame {
    fn x(&self, at: Time) -> f64 {
        let span = (self.end - self.start).max(1) as f64;
        LEFT + (at.0 - self.start) as f64 / span * (WIDTH - LEFT - RIGHT)
    }

    fn y(&self, value: f64) -> f64 {
        let max = if self.max > 0.0 { self.max } else { 1.0 };
        TOP + (1.0 - value / max) * (HEIGHT - TOP - BOTTOM)
    }
}

fn svg_open(id: &str, title: &str, description: &str) -> Markup {
    html! {
        (PreEscaped(format!(
            r#"<svg class="chart" id="{id}" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-labelledby="{id}-title {id}-desc" xmlns="http://www.w3.org/2000/svg">"#
        )))
        title id={ (id) "-title" } { (title) }
        desc id={ (id) "-desc" } { (description) }
    }
}

fn axes(top_label: &str) -> String {
    let bottom = HEIGHT - BOTTOM;
    format!(
        r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{bottom}" stroke="#57606a"/><line x1="{LEFT}" y1="{bottom}" x2="{}" y2="{bottom}" stroke="#57606a"/><text x="4" y="{}">{}</text><text x="4" y="{bottom}">0</text><text x="{LEFT}" y="{}">start</text><text x="{}" y="{}" text-anchor="end">now</text>"##,
        WIDTH - RIGHT,
        TOP + 10.0,
        escape(top_label),
        HEIGHT - 8.0,
        WIDTH - RIGHT,
        HEIGHT - 8.0,
    )
}

/// Escapes text for SVG written by hand.
fn escape(text: &str) -> String {
    maud::html! { (text) }.into_string()
}

/// The traffic split as a step chart: the new release's share (solid) and the old one's
/// (dashed), from the deploy's start to `end`. `id` names the chart's element; `region`, when
/// given, is named in its title.
pub(crate) fn traffic_chart(
    id: &str,
    region: Option<&str>,
    points: &[TrafficPoint],
    (new, old): (&str, &str),
    end: Time,
) -> Markup {
    let start = points.first().map_or(end.0, |p| p.at.0);
    let frame = Frame {
        start,
        end: end.0.max(start + 1000),
        max: 100.0,
    };
    let mut new_path = String::new();
    let mut old_path = String::new();
    let mut last: Option<&TrafficPoint> = None;
    for point in points {
        let x = frame.x(point.at);
        if let Some(previous) = last {
            new_path.push_str(&format!(" L{x:.1},{:.1}", frame.y(previous.new_percent)));
            old_path.push_str(&format!(
                " L{x:.1},{:.1}",
                frame.y(100.0 - previous.new_percent)
            ));
            new_path.push_str(&format!(" L{x:.1},{:.1}", frame.y(point.new_percent)));
            old_path.push_str(&format!(
                " L{x:.1},{:.1}",
                frame.y(100.0 - point.new_percent)
            ));
        } else {
            new_path.push_str(&format!("M{x:.1},{:.1}", frame.y(point.new_percent)));
            old_path.push_str(&format!(
                "M{x:.1},{:.1}",
                frame.y(100.0 - point.new_percent)
            ));
        }
        last = Some(point);
    }
    if let Some(previous) = last {
        let x = frame.x(Time(frame.end));
        new_path.push_str(&format!(" L{x:.1},{:.1}", frame.y(previous.new_percent)));
        old_path.push_str(&format!(
            " L{x:.1},{:.1}",
            frame.y(100.0 - previous.new_percent)
        ));
    }
    let now = points.last().map_or(0.0, |p| p.new_percent);
    let description = format!(
        "{new} has {now:.0}% of the traffic now, {old} {:.0}%; the table below lists every change.",
        100.0 - now
    );
    let title = match region {
        Some(region) => format!("Traffic split in {region}: {new} and {old}"),
        None => format!("Traffic split: {new} and {old}"),
    };
    html! {
        (svg_open(id, &title, &description))
        (PreEscaped(axes("100%")))
        (PreEscaped(format!(r##"<path d="{new_path}" fill="none" stroke="#0550ae" stroke-width="2.5"/>"##)))
        (PreEscaped(format!(r##"<path d="{old_path}" fill="none" stroke="#9a6700" stroke-width="2" stroke-dasharray="6 4"/>"##)))
        (PreEscaped(format!(r##"<text x="{}" y="{}" text-anchor="end">"##, WIDTH - RIGHT - 4.0, TOP + 12.0)))
        "solid: " (new) " · dashed: " (old)
        (PreEscaped("</text></svg>"))
    }
}

/// One measurement's values over time, on the same time axis as the traffic chart (from
/// `start` to `end`): a line through the points, a circle for a pass and a cross for anything
/// else.
pub(crate) fn measurement_chart(
    index: usize,
    name: &str,
    points: &[MeasurePoint],
    (start, end): (Time, Time),
) -> Markup {
    let values: Vec<(Time, f64, Classification)> = points
        .iter()
        .filter_map(|p| {
            p.measurement
                .value
                .map(|v| (p.at, v, p.measurement.outcome))
        })
        .collect();
    let unit = points.first().map_or(Unit::Number, |p| p.measurement.unit);
    let start = start.0;
    let max = values.iter().map(|(_, v, _)| *v).fold(0.0_f64, f64::max) * 1.2;
    let frame = Frame {
        start,
        end: end.0.max(start + 1000),
        max,
    };
    let mut line = String::new();
    let mut marks = String::new();
    for (at, value, outcome) in &values {
        let (x, y) = (frame.x(*at), frame.y(*value));
        line.push_str(&format!(
            "{}{x:.1},{y:.1}",
            if line.is_empty() { "M" } else { " L" }
        ));
        if *outcome == Classification::Pass {
            marks.push_str(&format!(
                r##"<circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="#1a7f37"/>"##
            ));
        } else {
            marks.push_str(&format!(
                r##"<path d="M{:.1},{:.1} l8,8 m0,-8 l-8,8" stroke="#cf222e" stroke-width="2.5"/>"##,
                x - 4.0,
                y - 4.0
            ));
        }
    }
    let limit = points
        .iter()
        .rev()
        .find_map(|p| p.measurement.limit.clone())
        .unwrap_or_else(|| "no limit".to_owned());
    let last = values
        .last()
        .map_or("no data".to_owned(), |(_, v, _)| show_value(*v, unit));
    let id = format!("check-chart-{index}");
    let description = format!(
        "{} measurements; the latest is {last}, the limit {limit}. Circles passed, crosses did not.",
        points.len()
    );
    html! {
        (svg_open(&id, &format!("Check: {name}"), &description))
        (PreEscaped(axes(&show_value(frame.max, unit))))
        (PreEscaped(format!(r##"<path d="{line}" fill="none" stroke="#0550ae" stroke-width="1.5"/>"##)))
        (PreEscaped(marks))
        (PreEscaped("</svg>"))
    }
}
