//! PNG latency plots: percentile curves of every pairing on one chart, HdrHistogram style
//! (x = percentile on a log scale of 1/(1-p), y = latency in µs).
//!
//! Text needs a font: plotters' default `ttf` backend links fontconfig, so we use its
//! `ab_glyph` backend with DejaVu Sans loaded from the Debian package fonts-dejavu-core. If that
//! file is missing, the chart is drawn without any text (the caller is told).

use crate::error::{format_err, Result};
use hdrhistogram::Histogram;
use plotters::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];
/// Right end of the x axis: 99.999 % (1/(1-p) = 10^5).
const MAX_NINES: f64 = 5.0;

/// Registers a font for plotters once; false when none was found (charts get no text).
pub fn font_available() -> bool {
    static OK: OnceLock<bool> = OnceLock::new();
    *OK.get_or_init(|| {
        for p in FONT_PATHS {
            if let Ok(bytes) = std::fs::read(p) {
                // Leaked once per process: plotters keeps a 'static reference.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

/// (x = log10(1/(1-p)), y = latency µs) points of one histogram recorded in ns.
pub fn curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    (0..=200)
        .map(|i| {
            let x = MAX_NINES * i as f64 / 200.0;
            let q = 1.0 - 10f64.powf(-x);
            (x, h.value_at_quantile(q) as f64 / 1000.0)
        })
        .collect()
}

/// Draws one chart with one curve per `(label, histogram)` into `path` (800×500 PNG).
pub fn latency_png(path: &Path, title: &str, series: &[(String, &Histogram<u64>)]) -> Result<()> {
    let text = font_available();
    // Log y: latencies span microseconds (median) to milliseconds (tail).
    let ymax = series
        .iter()
        .map(|(_, h)| h.value_at_quantile(1.0 - 10f64.powf(-MAX_NINES)) as f64 / 1000.0)
        .fold(1.0f64, f64::max)
        * 1.5;
    let ymin = series
        .iter()
        .map(|(_, h)| h.min() as f64 / 1000.0)
        .fold(ymax / 10.0, f64::min)
        .max(0.01)
        * 0.8;
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| format_err!("{e:?}"))?;
    let mut b = ChartBuilder::on(&root);
    b.margin(15).margin_right(40);
    if text {
        b.caption(title, ("sans-serif", 22))
            .x_label_area_size(40)
            .y_label_area_size(60);
    }
    let mut chart = b
        .build_cartesian_2d(0f64..MAX_NINES, (ymin..ymax).log_scale())
        .map_err(|e| format_err!("{e:?}"))?;
    let mut mesh = chart.configure_mesh();
    if text {
        mesh.x_desc("percentile")
            .y_desc("latency (us, log)")
            .y_label_formatter(&|y| crate::report::fmt_num(*y))
            .x_labels(6)
            .x_label_formatter(&|x| {
                let p = 100.0 * (1.0 - 10f64.powf(-x));
                format!("{}%", trim(p))
            });
    } else {
        mesh.disable_x_axis().disable_y_axis();
    }
    mesh.draw().map_err(|e| format_err!("{e:?}"))?;
    let colors = [RED, BLUE, GREEN, MAGENTA, CYAN, BLACK];
    for (i, (label, h)) in series.iter().enumerate() {
        let color = colors[i % colors.len()];
        let s = chart
            .draw_series(LineSeries::new(curve(h), color.stroke_width(2)))
            .map_err(|e| format_err!("{e:?}"))?;
        if text {
            s.label(label.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperLeft)
            .draw()
            .map_err(|e| format_err!("{e:?}"))?;
    }
    root.present().map_err(|e| format_err!("{e:?}"))?;
    Ok(())
}

fn trim(p: f64) -> String {
    let s = format!("{p:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_spans_percentiles() {
        let mut h = crate::client::new_hist();
        for v in 1..=100_000u64 {
            h.record(v * 10).unwrap();
        }
        let c = curve(&h);
        assert_eq!(c.len(), 201);
        assert_eq!(c[0].0, 0.0);
        // x = 1 is p90, x = 2 is p99: 900 µs and 990 µs within the histogram's precision.
        let at = |x: f64| c.iter().find(|(cx, _)| (cx - x).abs() < 1e-9).unwrap().1;
        assert!((at(1.0) - 900.0).abs() < 1.0);
        assert!((at(2.0) - 990.0).abs() < 1.0);
        assert!(c.windows(2).all(|w| w[0].1 <= w[1].1));
        assert_eq!(trim(99.9), "99.9");
        assert_eq!(trim(90.0), "90");
    }
}
