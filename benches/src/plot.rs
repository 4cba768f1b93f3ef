//! PNG charts of a scenario drawn with `plotters`: CPU per forwarded packet and loss against the
//! number of subscribers, every measured system (and the floor) on one chart.

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::prelude::*;
use plotters::style::FontStyle;

/// One line on a chart.
pub struct Series {
    pub label: String,
    /// (subscribers, value)
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
}

const FONT_PATHS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

/// Registers a system TrueType font for the charts' text (plotters' `ab_glyph` backend has
/// none built in). Fails if no font is installed.
pub fn load_font() -> Result<()> {
    for path in FONT_PATHS {
        if let Ok(bytes) = std::fs::read(path) {
            // The font must live as long as the process: leak it once.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            return plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| anyhow!("{path} is not a usable font"));
        }
    }
    Err(anyhow!(
        "no TrueType font found (apt-get install fonts-dejavu-core)"
    ))
}

const COLORS: [RGBColor; 5] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0xff, 0x7f, 0x0e),
];

/// Draws `series` against `x_label` (subscribers or participants) on a log x axis into `path`.
pub fn chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
) -> Result<()> {
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let x_max = xs.fold(1.0f64, f64::max).max(2.0) * 1.2;
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.15;
    let root = BitMapBackend::new(path, (1000, 620)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let mut c = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 26))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(70)
        .build_cartesian_2d((0.8f64..x_max).log_scale(), 0.0f64..y_max)
        .map_err(|e| anyhow!("{e}"))?;
    c.configure_mesh()
        .x_desc(format!("{x_label} (log scale)"))
        .y_desc(y_label)
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    for (i, s) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let style = ShapeStyle::from(&color).stroke_width(if s.dashed { 2 } else { 3 });
        c.draw_series(LineSeries::new(s.points.iter().copied(), style))
            .map_err(|e| anyhow!("{e}"))?
            .label(s.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
            });
        if !s.dashed {
            c.draw_series(s.points.iter().map(|&p| Circle::new(p, 4, color.filled())))
                .map_err(|e| anyhow!("{e}"))?;
        }
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}
