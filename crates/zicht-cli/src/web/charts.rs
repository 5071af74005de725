//! Server-rendered SVG charts: horizontal bars, stacked bars, a heat map and lines. Colours
//! come from one blue ramp whose steps differ in lightness, so they stay apart in greyscale;
//! lines also differ in marker and dash. Every chart is an `img` with its title for screen
//! readers, and its page puts the same numbers in a table under it. Colours are SVG
//! attributes, never inline styles (the monitor's Content-Security-Policy forbids those).

use maud::{html, Markup};

/// Eight steps of one blue ramp, dark to light (ColorBrewer "Blues").
const RAMP: [&str; 8] = [
    "#08306b", "#08519c", "#2171b5", "#4292c6", "#6baed6", "#9ecae1", "#c6dbef", "#deebf7",
];

/// Whether text on `colour` (a ramp step) should be light.
fn light_text(step: usize) -> bool {
    step < 4
}

/// One bar: its label, its length and the text written at its end (`57 ±9`, `83%`).
pub struct Bar {
    /// The category.
    pub label: String,
    /// The bar's length in the chart's unit.
    pub value: f64,
    /// What is written next to it.
    pub text: String,
}

const LABEL_WIDTH: f64 = 210.0;
const PLOT_WIDTH: f64 = 430.0;
const ROW: f64 = 24.0;

fn scale(max: f64) -> f64 {
    if max > 0.0 {
        PLOT_WIDTH / max
    } else {
        0.0
    }
}

/// Horizontal bars, one per category, longest scaled to the plot width (`max`: a fixed
/// maximum such as 100 for percentages, or none for the largest bar).
pub fn bars(id: &str, title: &str, bars: &[Bar], max: Option<f64>) -> Markup {
    let largest = max.unwrap_or_else(|| bars.iter().map(|b| b.value).fold(0.0, f64::max));
    let k = scale(largest);
    let height = ROW * bars.len() as f64 + 10.0;
    let width = LABEL_WIDTH + PLOT_WIDTH + 90.0;
    html! {
        svg class="chart" role="img" aria-labelledby=(format!("{id}-title"))
            viewBox=(format!("0 0 {width} {height}")) width=(width) height=(height)
            xmlns="http://www.w3.org/2000/svg" {
            title id=(format!("{id}-title")) { (title) }
            @for (i, bar) in bars.iter().enumerate() {
                @let y = 5.0 + ROW * i as f64;
                text x=(LABEL_WIDTH - 6.0) y=(y + 16.0) text-anchor="end" { (bar.label) }
                rect x=(LABEL_WIDTH) y=(y + 3.0) width=(format!("{:.1}", (bar.value * k).max(0.0)))
                    height=(ROW - 6.0) fill=(RAMP[1]) {
                    title { (bar.label) ": " (bar.text) }
                }
                text x=(LABEL_WIDTH + (bar.value * k).max(0.0) + 6.0) y=(y + 16.0) { (bar.text) }
            }
        }
    }
}

/// Stacked horizontal bars: per category, one segment per series, with a legend.
pub fn stacked(id: &str, title: &str, series: &[String], rows: &[(String, Vec<f64>)]) -> Markup {
    let largest = rows
        .iter()
        .map(|(_, values)| values.iter().sum::<f64>())
        .fold(0.0, f64::max);
    let k = scale(largest);
    let height = ROW * rows.len() as f64 + 10.0;
    let width = LABEL_WIDTH + PLOT_WIDTH + 90.0;
    let step = |s: usize| (s * (RAMP.len() - 1)) / series.len().saturating_sub(1).max(1);
    html! {
        ul class="legend" aria-hidden="true" {
            @for (s, name) in series.iter().enumerate() {
                li {
                    svg width="14" height="14" viewBox="0 0 14 14" xmlns="http://www.w3.org/2000/svg" {
                        rect x="0.5" y="0.5" width="13" height="13" fill=(RAMP[step(s)]) stroke="#111" {}
                    }
                    " " (name)
                }
            }
        }
        svg class="chart" role="img" aria-labelledby=(format!("{id}-title"))
            viewBox=(format!("0 0 {width} {height}")) width=(width) height=(height)
            xmlns="http://www.w3.org/2000/svg" {
            title id=(format!("{id}-title")) { (title) }
            @for (i, (label, values)) in rows.iter().enumerate() {
                @let y = 5.0 + ROW * i as f64;
                @let segments = segments(values, k);
                text x=(LABEL_WIDTH - 6.0) y=(y + 16.0) text-anchor="end" { (label) }
                @for (s, (value, (x, w))) in values.iter().zip(&segments).enumerate() {
                    rect x=(format!("{x:.1}")) y=(y + 3.0) width=(format!("{w:.1}")) height=(ROW - 6.0)
                        fill=(RAMP[step(s)]) stroke="#fff" stroke-width="1" {
                        title { (label) ", " (series.get(s).map_or("", String::as_str)) ": " (value) }
                    }
                }
                @let end = segments.last().map_or(LABEL_WIDTH, |(x, w)| x + w);
                text x=(end + 6.0) y=(y + 16.0) { (values.iter().sum::<f64>()) }
            }
        }
    }
}

/// Where each stacked segment starts and how wide it is, at `k` pixels per unit.
fn segments(values: &[f64], k: f64) -> Vec<(f64, f64)> {
    let mut x = LABEL_WIDTH;
    values
        .iter()
        .map(|value| {
            let w = (value * k).max(0.0);
            let at = x;
            x += w;
            (at, w)
        })
        .collect()
}

/// A heat map: rows x columns, each cell shaded by its value and labelled with its text;
/// `None` cells (not asked or not answered) are left white and marked `·`.
pub fn heatmap(
    id: &str,
    title: &str,
    rows: &[String],
    columns: &[String],
    cells: &[Vec<Option<(f64, String)>>],
) -> Markup {
    const CELL_W: f64 = 62.0;
    const CELL_H: f64 = 26.0;
    const TOP: f64 = 120.0;
    let largest = cells
        .iter()
        .flatten()
        .flatten()
        .map(|(v, _)| *v)
        .fold(0.0, f64::max);
    // Room on the right for the last column's slanted label.
    let width = LABEL_WIDTH + CELL_W * columns.len() as f64 + 90.0;
    let height = TOP + CELL_H * rows.len() as f64 + 10.0;
    // Larger values darker: step 0 is the darkest.
    let step = |value: f64| {
        if largest <= 0.0 {
            RAMP.len() - 1
        } else {
            let share = (value / largest).clamp(0.0, 1.0);
            ((1.0 - share) * (RAMP.len() - 1) as f64).round() as usize
        }
    };
    html! {
        svg class="chart" role="img" aria-labelledby=(format!("{id}-title"))
            viewBox=(format!("0 0 {width} {height}")) width=(width) height=(height)
            xmlns="http://www.w3.org/2000/svg" {
            title id=(format!("{id}-title")) { (title) }
            @for (c, column) in columns.iter().enumerate() {
                @let x = LABEL_WIDTH + CELL_W * c as f64 + CELL_W / 2.0;
                text x=(x) y=(TOP - 6.0) transform=(format!("rotate(-50 {x} {})", TOP - 6.0)) { (column) }
            }
            @for (r, row) in rows.iter().enumerate() {
                @let y = TOP + CELL_H * r as f64;
                text x=(LABEL_WIDTH - 6.0) y=(y + 17.0) text-anchor="end" { (row) }
                @for (c, cell) in cells.get(r).map_or(&[][..], Vec::as_slice).iter().enumerate() {
                    @let x = LABEL_WIDTH + CELL_W * c as f64;
                    @match cell {
                        Some((value, text)) => {
                            @let s = step(*value);
                            rect x=(x) y=(y) width=(CELL_W) height=(CELL_H) fill=(RAMP[s]) stroke="#fff" {
                                title { (row) " → " (columns.get(c).map_or("", String::as_str)) ": " (text) }
                            }
                            text x=(x + CELL_W / 2.0) y=(y + 17.0) text-anchor="middle"
                                class=[light_text(s).then_some("light")] { (text) }
                        }
                        None => {
                            rect x=(x) y=(y) width=(CELL_W) height=(CELL_H) fill="#ffffff" stroke="#bbb" {}
                            text x=(x + CELL_W / 2.0) y=(y + 17.0) text-anchor="middle" { "·" }
                        }
                    }
                }
            }
        }
    }
}

/// Marker shapes and dash patterns, so lines stay apart without colour.
const MARKERS: [&str; 4] = ["circle", "square", "triangle", "diamond"];
const DASHES: [&str; 4] = ["", "6 3", "2 3", "8 3 2 3"];

fn marker(kind: &str, x: f64, y: f64, fill: &str) -> Markup {
    match kind {
        "square" => html! { rect x=(x - 4.0) y=(y - 4.0) width="8" height="8" fill=(fill) {} },
        "triangle" => html! {
            polygon points=(format!("{x},{} {},{} {},{}", y - 5.0, x - 5.0, y + 4.0, x + 5.0, y + 4.0)) fill=(fill) {}
        },
        "diamond" => html! {
            polygon points=(format!("{x},{} {},{y} {x},{} {},{y}", y - 5.0, x + 5.0, y + 5.0, x - 5.0)) fill=(fill) {}
        },
        _ => html! { circle cx=(x) cy=(y) r="4" fill=(fill) {} },
    }
}

/// Lines over `x` labels, one per series (`None`: no value there), on a y axis from
/// `range.0` to `range.1` with a tick every quarter of it.
pub fn lines(
    id: &str,
    title: &str,
    x: &[String],
    series: &[(String, Vec<Option<f64>>)],
    range: (f64, f64),
) -> Markup {
    const LEFT: f64 = 50.0;
    const PLOT_H: f64 = 220.0;
    const TOP: f64 = 10.0;
    let (low, high) = range;
    let span = (high - low).max(f64::EPSILON);
    let step_x = if x.len() > 1 {
        PLOT_WIDTH / (x.len() - 1) as f64
    } else {
        0.0
    };
    let to_y = |value: f64| TOP + PLOT_H - ((value - low) / span).clamp(0.0, 1.0) * PLOT_H;
    let width = LEFT + PLOT_WIDTH + 60.0;
    let height = TOP + PLOT_H + 40.0;
    let colour = |s: usize| RAMP[(s * 2).min(RAMP.len() - 3)];
    let ticks: Vec<f64> = (0..=4).map(|i| low + span * f64::from(i) / 4.0).collect();
    html! {
        ul class="legend" aria-hidden="true" {
            @for (s, (name, _)) in series.iter().enumerate() {
                li {
                    svg width="24" height="14" viewBox="0 0 24 14" xmlns="http://www.w3.org/2000/svg" {
                        line x1="0" y1="7" x2="24" y2="7" stroke=(colour(s)) stroke-width="2"
                            stroke-dasharray=(DASHES[s % DASHES.len()]) {}
                        (marker(MARKERS[s % MARKERS.len()], 12.0, 7.0, colour(s)))
                    }
                    " " (name)
                }
            }
        }
        svg class="chart" role="img" aria-labelledby=(format!("{id}-title"))
            viewBox=(format!("0 0 {width} {height}")) width=(width) height=(height)
            xmlns="http://www.w3.org/2000/svg" {
            title id=(format!("{id}-title")) { (title) }
            @for tick in &ticks {
                line x1=(LEFT) y1=(to_y(*tick)) x2=(LEFT + PLOT_WIDTH) y2=(to_y(*tick)) stroke="#ddd" {}
                text x=(LEFT - 6.0) y=(to_y(*tick) + 4.0) text-anchor="end" { (format!("{tick:.0}")) }
            }
            line x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(TOP + PLOT_H) stroke="#111" {}
            @for (i, label) in x.iter().enumerate() {
                text x=(LEFT + step_x * i as f64) y=(TOP + PLOT_H + 18.0) text-anchor="middle" { (label) }
            }
            @for (s, (name, values)) in series.iter().enumerate() {
                @let points: Vec<String> = values.iter().enumerate()
                    .filter_map(|(i, v)| v.map(|v| format!("{:.1},{:.1}", LEFT + step_x * i as f64, to_y(v))))
                    .collect();
                polyline points=(points.join(" ")) fill="none" stroke=(colour(s)) stroke-width="2"
                    stroke-dasharray=(DASHES[s % DASHES.len()]) {}
                @for (i, value) in values.iter().enumerate() {
                    @if let Some(value) = value {
                        g {
                            title { (name) ", " (x.get(i).map_or("", String::as_str)) ": " (format!("{value:.1}")) }
                            (marker(MARKERS[s % MARKERS.len()], LEFT + step_x * i as f64, to_y(*value), colour(s)))
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_and_write_their_text() {
        let svg = bars(
            "b",
            "Places",
            &[
                Bar {
                    label: "drenthe".into(),
                    value: 50.0,
                    text: "50".into(),
                },
                Bar {
                    label: "friesland".into(),
                    value: 100.0,
                    text: "100 ±3".into(),
                },
            ],
            None,
        )
        .into_string();
        assert!(svg.contains("role=\"img\""), "{svg}");
        assert!(
            svg.contains("<title id=\"b-title\">Places</title>"),
            "{svg}"
        );
        assert!(svg.contains("width=\"215.0\""), "half the plot: {svg}");
        assert!(svg.contains("width=\"430.0\""), "the whole plot: {svg}");
        assert!(svg.contains(">100 ±3</text>"), "{svg}");
        assert!(!svg.contains("style="), "no inline styles under the CSP");
    }

    #[test]
    fn heat_map_cells_darken_with_their_value_and_mark_gaps() {
        let svg = heatmap(
            "h",
            "Herkomst",
            &["drenthe".into()],
            &["drenthe".into(), "groningen".into()],
            &[vec![Some((40.0, "40 ±3".into())), None]],
        )
        .into_string();
        assert!(svg.contains(&format!("fill=\"{}\"", RAMP[0])), "{svg}");
        assert!(svg.contains(">·</text>"), "{svg}");
        assert!(
            svg.contains("class=\"light\""),
            "light text on the dark cell"
        );
    }

    #[test]
    fn the_ramp_stays_apart_in_greyscale() {
        let luminance = |hex: &str| {
            let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap() as f64;
            0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
        };
        for pair in RAMP.windows(2) {
            assert!(
                luminance(pair[1]) - luminance(pair[0]) > 12.0,
                "{} and {} are too close in grey",
                pair[0],
                pair[1]
            );
        }
    }
}
