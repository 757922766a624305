//! The benchmark chart: one row per workload, a bar for our filter and one for its native twin
//! (what each adds to Envoy's CPU time per request), whiskers for the spread of the rounds, and
//! vertical lines for the wasm floors. Drawn with plotters' SVG backend.

use plotters::prelude::*;
use std::path::Path;

/// A median and the range it came from.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    /// The median.
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

/// One row of the chart.
#[derive(Debug, Clone)]
pub struct Row {
    /// The workload, e.g. `jwt-auth: repeated token`.
    pub label: String,
    /// Our filter's cost.
    pub ours: Option<Spread>,
    /// The native twin's cost.
    pub native: Option<Spread>,
}

/// Height of one row in y units.
const ROW: i32 = 100;
const OURS: RGBColor = RGBColor(31, 119, 180);
const NATIVE: RGBColor = RGBColor(230, 120, 20);
const FLOOR_COLORS: [RGBColor; 3] = [
    RGBColor(90, 90, 90),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
];

/// Writes the chart to `path` as SVG. `floors` are drawn as vertical lines (name, µs).
pub fn write_svg(
    path: &Path,
    title: &str,
    x_label: &str,
    rows: &[Row],
    floors: &[(String, f64)],
) -> Result<(), String> {
    draw(path, title, x_label, rows, floors).map_err(|error| format!("{}: {error}", path.display()))
}

fn draw(
    path: &Path,
    title: &str,
    x_label: &str,
    rows: &[Row],
    floors: &[(String, f64)],
) -> Result<(), Box<dyn std::error::Error>> {
    let count = rows.len().max(1);
    let height = 140 + 30 * count as u32;
    let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE)?;
    let widest = rows
        .iter()
        .flat_map(|row| [row.ours, row.native])
        .flatten()
        .map(|spread| spread.max)
        .chain(floors.iter().map(|(_, micros)| *micros))
        .fold(1.0, f64::max);
    // Row i (from the top) spans ROW units from (count-1-i)*ROW; its label sits at the middle.
    let top = (count as i32) * ROW;
    let centers: Vec<i32> = (0..count as i32).map(|i| i * ROW + ROW / 2).collect();
    let labels: Vec<String> = rows.iter().map(|row| row.label.clone()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(290)
        .build_cartesian_2d(0f64..widest * 1.08, (0..top).with_key_points(centers))?;
    let label_of = |y: &i32| {
        let from_top = count as i32 - 1 - *y / ROW;
        usize::try_from(from_top)
            .ok()
            .and_then(|index| labels.get(index).cloned())
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_label_formatter(&label_of)
        .x_desc(x_label)
        .label_style(("sans-serif", 13))
        .draw()?;
    for (index, row) in rows.iter().enumerate() {
        let base = (count - 1 - index) as i32 * ROW;
        for (spread, low, high, color) in [(row.ours, 52, 88, OURS), (row.native, 12, 48, NATIVE)] {
            let Some(spread) = spread else { continue };
            let (bottom, ceiling) = (base + low, base + high);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(0.0, bottom), (spread.median.max(0.0), ceiling)],
                color.filled(),
            )))?;
            let middle = (bottom + ceiling) / 2;
            let whisker = BLACK.stroke_width(1);
            chart.draw_series([
                PathElement::new(vec![(spread.min, middle), (spread.max, middle)], whisker),
                PathElement::new(
                    vec![(spread.min, bottom + 8), (spread.min, ceiling - 8)],
                    whisker,
                ),
                PathElement::new(
                    vec![(spread.max, bottom + 8), (spread.max, ceiling - 8)],
                    whisker,
                ),
            ])?;
            chart.draw_series(std::iter::once(Text::new(
                format!("{:.1}", spread.median),
                (spread.max.max(spread.median) + widest * 0.01, ceiling - 5),
                ("sans-serif", 11),
            )))?;
        }
    }
    for ((name, micros), color) in floors.iter().zip(FLOOR_COLORS.iter().cycle()) {
        let color = *color;
        chart
            .draw_series(LineSeries::new(
                vec![(*micros, 0), (*micros, top)],
                color.stroke_width(2),
            ))?
            .label(format!("{name}: {micros:.1} µs"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(0.0, 0), (0.0, 0)],
            OURS.filled(),
        )))?
        .label("our wasm filter")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], OURS.filled()));
    chart
        .draw_series(std::iter::once(Rectangle::new(
            [(0.0, 0), (0.0, 0)],
            NATIVE.filled(),
        )))?
        .label("native twin")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 18, y + 5)], NATIVE.filled()));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .draw()?;
    root.present()?;
    Ok(())
}
