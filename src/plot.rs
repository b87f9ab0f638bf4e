//! Pictures: a forecast fan chart and an anomaly view, as PNG or SVG (by the file extension).
//!
//! Text is drawn with the bundled DejaVu Sans (`assets/fonts`, Bitstream Vera licence), so no
//! system fonts are needed.

use particast_ingest::{PreparedSeries, TimeKind};
use particast_pipeline::{SeriesForecast, SeriesScores};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

use crate::error::Error;

/// History steps a fan chart shows before the forecast, unless told otherwise.
pub const DEFAULT_HISTORY: usize = 336;

static FONT: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        // The bundled font is valid; a failure would only mean text is not drawn.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

mod bearing {
    use plotters_backend::{
        BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend,
        DrawingErrorKind,
    };

    /// A bitmap backend whose text is drawn with each glyph at its own side bearing.
    ///
    /// plotters 0.3.7's ab_glyph renderer places every glyph's ink at the pen position, dropping its
    /// left side bearing, so a glyph with a wide bearing (the digit 1 of DejaVu Sans) is followed by
    /// a gap: `2014-1 2-31`. This wrapper draws text itself (same font, size, colour, anchor,
    /// rotation and layout box as plotters) and hands everything else to the inner backend.
    pub(super) struct BearingText<B> {
        pub(super) inner: B,
        pub(super) font: ab_glyph::FontRef<'static>,
    }

    impl<B: DrawingBackend> DrawingBackend for BearingText<B> {
        type ErrorType = B::ErrorType;

        fn get_size(&self) -> (u32, u32) {
            self.inner.get_size()
        }
        fn ensure_prepared(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.inner.ensure_prepared()
        }
        fn present(&mut self) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.inner.present()
        }
        fn draw_pixel(
            &mut self,
            point: BackendCoord,
            color: BackendColor,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.inner.draw_pixel(point, color)
        }
        fn draw_line<S: BackendStyle>(
            &mut self,
            from: BackendCoord,
            to: BackendCoord,
            style: &S,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.inner.draw_line(from, to, style)
        }
        fn draw_rect<S: BackendStyle>(
            &mut self,
            upper_left: BackendCoord,
            bottom_right: BackendCoord,
            style: &S,
            fill: bool,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.inner.draw_rect(upper_left, bottom_right, style, fill)
        }
        fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
            &mut self,
            path: I,
            style: &S,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.inner.draw_path(path, style)
        }
        fn draw_circle<S: BackendStyle>(
            &mut self,
            center: BackendCoord,
            radius: u32,
            style: &S,
            fill: bool,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.inner.draw_circle(center, radius, style, fill)
        }
        fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
            &mut self,
            vert: I,
            style: &S,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            self.inner.fill_polygon(vert, style)
        }
        fn draw_text<TStyle: BackendTextStyle>(
            &mut self,
            text: &str,
            style: &TStyle,
            pos: BackendCoord,
        ) -> Result<(), DrawingErrorKind<Self::ErrorType>> {
            use ab_glyph::{Font, ScaleFont};
            use plotters_backend::text_anchor::{HPos, VPos};
            let color = style.color();
            if color.alpha == 0.0 {
                return Ok(());
            }
            // The same layout box and anchoring as plotters' own text drawing.
            let ((min_x, min_y), (max_x, max_y)) = style
                .layout_box(text)
                .map_err(|e| DrawingErrorKind::FontError(Box::new(e)))?;
            let (width, height) = (max_x - min_x, max_y - min_y);
            let dx = match style.anchor().h_pos {
                HPos::Left => 0,
                HPos::Right => -width,
                HPos::Center => -width / 2,
            };
            let dy = match style.anchor().v_pos {
                VPos::Top => 0,
                VPos::Center => -height / 2,
                VPos::Bottom => -height,
            };
            let trans = style.transform();
            let (w, h) = self.get_size();
            let size = style.size() as f32;
            let font = self.font.as_scaled(size);
            let mut pen = 0f32;
            let mut prev = None;
            for c in text.chars() {
                let id = font.glyph_id(c);
                if let Some(p) = prev {
                    pen += font.kern(p, id);
                }
                prev = Some(id);
                let glyph = id.with_scale_and_position(size, ab_glyph::point(pen, 0.0));
                if let Some(outline) = self.font.outline_glyph(glyph) {
                    let rect = outline.px_bounds();
                    let (gx, gy) = (rect.min.x as i32, (size / 2.0 + rect.min.y) as i32);
                    let mut pixels = Vec::new();
                    outline.draw(|x, y, coverage| pixels.push((x as i32, y as i32, coverage)));
                    for (x, y, coverage) in pixels {
                        let (x, y) = trans.transform(x + gx + dx - min_x, y + gy + dy - min_y);
                        let (x, y) = (pos.0 + x, pos.1 + y);
                        if x >= 0 && x < w as i32 && y >= 0 && y < h as i32 {
                            self.inner.draw_pixel(
                                (x, y),
                                BackendColor {
                                    alpha: color.alpha * coverage as f64,
                                    rgb: color.rgb,
                                },
                            )?;
                        }
                    }
                }
                pen += font.h_advance(id);
            }
            Ok(())
        }
    }
}
use bearing::BearingText;

fn plot_err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    }
}

/// Anomaly windows (NAB labels) for one series: `(start, end)` physical timestamps.
pub type Windows = Vec<(i64, i64)>;

/// Reads NAB's `combined_windows.json` and returns the windows of `id` in `kind` units.
pub fn nab_windows(path: &Path, id: &str, kind: &TimeKind) -> Result<Windows, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let all: std::collections::HashMap<String, Vec<Vec<String>>> = serde_json::from_str(&text)
        .map_err(|e| Error::Spec {
            file: path.to_path_buf(),
            message: format!("not a NAB windows file: {e}"),
        })?;
    let parse = |s: &str| {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
            .ok()
            .and_then(|d| kind.from_datetime(d))
    };
    // Label keys are NAB's relative paths; a series read from one file is named by its file name.
    let suffix = format!("/{id}");
    let found = all.get(id).or_else(|| {
        all.iter()
            .find(|(k, _)| k.ends_with(&suffix))
            .map(|(_, v)| v)
    });
    Ok(found
        .map(|ws| {
            ws.iter()
                .filter_map(|w| Some((parse(w.first()?)?, parse(w.get(1)?)?)))
                .collect()
        })
        .unwrap_or_default())
}

fn seconds(kind: &TimeKind, v: i64) -> f64 {
    match kind {
        TimeKind::Datetime { unit, .. } => v as f64 / unit.per_second() as f64,
        TimeKind::Date => v as f64 * 86_400.0,
        TimeKind::Integer => v as f64,
    }
}

/// The date format of tick labels for an axis spanning `span` seconds: whole years, months,
/// days or times, short enough never to be broken.
fn tick_format(span: f64) -> &'static str {
    const DAY: f64 = 86_400.0;
    if span >= 3.0 * 365.0 * DAY {
        "%Y"
    } else if span >= 90.0 * DAY {
        "%Y-%m"
    } else if span >= 4.0 * DAY {
        "%Y-%m-%d"
    } else if span >= DAY {
        "%m-%d %H:%M"
    } else {
        "%H:%M"
    }
}

fn label(kind: &TimeKind, secs: f64, span: f64) -> String {
    match kind {
        TimeKind::Integer => format!("{secs:.0}"),
        _ => chrono::DateTime::from_timestamp(secs as i64, 0)
            .map(|d| d.format(tick_format(span)).to_string())
            .unwrap_or_default(),
    }
}

fn with_backend(
    path: &Path,
    size: (u32, u32),
    draw: impl FnOnce(DrawingArea<BearingText<BitMapBackend<'_>>, Shift>) -> Result<(), String>,
    draw_svg: impl FnOnce(DrawingArea<SVGBackend<'_>, Shift>) -> Result<(), String>,
) -> Result<(), Error> {
    register_font();
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    // Drawn into a private temporary folder (the image encoder goes by the extension, so the
    // file keeps it), then handed to the output layer, which writes it atomically or through
    // to a pipe and never over an input.
    let scratch = tempfile::Builder::new()
        .prefix(".particast-plot-")
        .tempdir()
        .map_err(|e| Error::Io {
            path: std::env::temp_dir(),
            source: e,
        })?;
    let tmp = scratch.path().join(format!("picture.{ext}"));
    let result = match ext.as_str() {
        "png" => {
            let font = ab_glyph::FontRef::try_from_slice(FONT).map_err(|e| plot_err(path, e))?;
            draw(
                BearingText {
                    inner: BitMapBackend::new(&tmp, size),
                    font,
                }
                .into_drawing_area(),
            )
        }
        "svg" => draw_svg(SVGBackend::new(&tmp, size).into_drawing_area()),
        other => {
            return Err(plot_err(
                path,
                format!("unknown picture type `{other}` (use .png or .svg)"),
            ))
        }
    };
    result.map_err(|e| plot_err(path, e))?;
    let bytes = std::fs::read(&tmp).map_err(|e| Error::Io {
        path: tmp.clone(),
        source: e,
    })?;
    Ok(particast_pipeline::sink::write_bytes(path, &bytes)?)
}

/// A fan chart: the last `history` steps, the median, the 80/95% (or configured) bands and, for
/// particle-mode forecasts, each particle's mean.
pub fn forecast_chart(
    series: &PreparedSeries,
    forecast: &SeriesForecast,
    levels: &[f64],
    history: usize,
    path: &Path,
) -> Result<(), Error> {
    let kind = series.axis.kind.clone();
    let from = series.len().saturating_sub(history);
    let hist: Vec<(f64, f64)> = (from..series.len())
        .filter_map(|t| {
            series
                .value(t as i64, 0)
                .map(|v| (seconds(&kind, series.timestamp(t as i64)), v))
        })
        .collect();
    let steps = &forecast.steps;
    let xs: Vec<f64> = steps.iter().map(|s| seconds(&kind, s.ds)).collect();
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for (_, v) in &hist {
        lo = lo.min(*v);
        hi = hi.max(*v);
    }
    for s in steps {
        for (a, b) in &s.intervals {
            lo = lo.min(*a);
            hi = hi.max(*b);
        }
        lo = lo.min(s.median);
        hi = hi.max(s.median);
    }
    if !lo.is_finite() || !hi.is_finite() {
        return Err(plot_err(path, "nothing to draw"));
    }
    let pad = (hi - lo).max(1e-9) * 0.05;
    let x0 = hist
        .first()
        .map(|p| p.0)
        .or(xs.first().copied())
        .unwrap_or(0.0);
    let x1 = xs.last().copied().unwrap_or(x0 + 1.0).max(x0 + 1.0);
    let span = x1 - x0;
    let levels: Vec<String> = levels.iter().map(|l| format!("{l}%")).collect();
    let title = format!(
        "{}: forecast of {} steps, median with {} intervals",
        forecast.id,
        steps.len(),
        if levels.is_empty() {
            "no".to_string()
        } else {
            levels.join(" and ")
        }
    );
    macro_rules! draw_fan {
        ($root:expr) => {{
            let root = $root;
            root.fill(&WHITE).map_err(|e| e.to_string())?;
            let mut chart = ChartBuilder::on(&root)
                .caption(&title, ("sans-serif", 22))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(70)
                .build_cartesian_2d(x0..x1, (lo - pad)..(hi + pad))
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_labels(6)
                .x_label_formatter(&|x| label(&kind, *x, span))
                .draw()
                .map_err(|e| e.to_string())?;
            let colors = [RGBColor(160, 190, 235), RGBColor(100, 150, 220)];
            for k in (0..steps.first().map(|s| s.intervals.len()).unwrap_or(0)).rev() {
                let mut poly: Vec<(f64, f64)> = xs
                    .iter()
                    .zip(steps)
                    .map(|(x, s)| (*x, s.intervals[k].1))
                    .collect();
                poly.extend(
                    xs.iter()
                        .zip(steps)
                        .rev()
                        .map(|(x, s)| (*x, s.intervals[k].0)),
                );
                let c = colors[k.min(1)];
                let band = chart
                    .draw_series(std::iter::once(Polygon::new(poly, c.mix(0.6).filled())))
                    .map_err(|e| e.to_string())?;
                if let Some(name) = levels.get(k) {
                    band.label(format!("{name} interval"))
                        .legend(move |(x, y)| {
                            Rectangle::new([(x, y - 5), (x + 16, y + 5)], c.mix(0.6).filled())
                        });
                }
            }
            let particles = steps.first().map(|s| s.mixture.len()).unwrap_or(0);
            let grey = RGBColor(120, 120, 120).mix(0.5);
            for p in 0..particles {
                let drawn = chart
                    .draw_series(LineSeries::new(
                        xs.iter().zip(steps).map(|(x, s)| (*x, s.mixture[p].mu)),
                        grey.stroke_width(1),
                    ))
                    .map_err(|e| e.to_string())?;
                if p == 0 {
                    drawn.label("particle means").legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], grey.stroke_width(1))
                    });
                }
            }
            let history_color = RGBColor(40, 40, 40);
            chart
                .draw_series(LineSeries::new(
                    hist.iter().copied(),
                    history_color.stroke_width(1),
                ))
                .map_err(|e| e.to_string())?
                .label("history")
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], history_color.stroke_width(1))
                });
            let median_color = RGBColor(20, 60, 160);
            chart
                .draw_series(LineSeries::new(
                    xs.iter().zip(steps).map(|(x, s)| (*x, s.median)),
                    median_color.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label("median")
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], median_color.stroke_width(2))
                });
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| e.to_string())?;
            root.present().map_err(|e| e.to_string())
        }};
    }
    with_backend(path, (1200, 600), |r| draw_fan!(r), |r| draw_fan!(r))
}

/// The anomaly view: the series with flagged points, labelled windows shaded, and the anomaly
/// score below.
pub fn anomaly_chart(
    scores: &SeriesScores,
    kind: &TimeKind,
    windows: &Windows,
    threshold: f64,
    path: &Path,
) -> Result<(), Error> {
    let n = scores.ds.len();
    let xs: Vec<f64> = scores.ds.iter().map(|&d| seconds(kind, d)).collect();
    let ys: Vec<Option<f64>> = (0..n).map(|t| scores.y.get(t).copied().flatten()).collect();
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in ys.iter().flatten() {
        lo = lo.min(*v);
        hi = hi.max(*v);
    }
    if n == 0 || !lo.is_finite() {
        return Err(plot_err(path, "nothing to draw"));
    }
    let pad = (hi - lo).max(1e-9) * 0.05;
    let (x0, x1) = (xs[0], xs[n - 1].max(xs[0] + 1.0));
    let span = x1 - x0;
    let flagged = scores.flag.iter().filter(|f| **f == Some(true)).count();
    let title = format!(
        "{}: observations ({} flagged at anomaly score >= {threshold}{})",
        scores.id,
        flagged,
        if windows.is_empty() {
            ""
        } else {
            "; shaded: labelled anomaly windows"
        }
    );
    let wins: Vec<(f64, f64)> = windows
        .iter()
        .map(|(a, b)| (seconds(kind, *a), seconds(kind, *b)))
        .collect();
    macro_rules! draw_view {
        ($root:expr) => {{
            let root = $root;
            root.fill(&WHITE).map_err(|e| e.to_string())?;
            let (top, bottom) = root.split_vertically(420);
            let mut chart = ChartBuilder::on(&top)
                .caption(&title, ("sans-serif", 22))
                .margin(12)
                .x_label_area_size(30)
                .y_label_area_size(70)
                .build_cartesian_2d(x0..x1, (lo - pad)..(hi + pad))
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_labels(6)
                .x_label_formatter(&|x| label(kind, *x, span))
                .draw()
                .map_err(|e| e.to_string())?;
            for (a, b) in &wins {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(*a, lo - pad), (*b, hi + pad)],
                        RGBColor(250, 210, 120).mix(0.5).filled(),
                    )))
                    .map_err(|e| e.to_string())?;
            }
            let line = RGBColor(40, 40, 40);
            chart
                .draw_series(LineSeries::new(
                    xs.iter().zip(&ys).filter_map(|(x, y)| y.map(|y| (*x, y))),
                    line.stroke_width(1),
                ))
                .map_err(|e| e.to_string())?
                .label("observed")
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], line));
            chart
                .draw_series(
                    (0..n)
                        .filter(|&t| scores.flag[t] == Some(true))
                        .filter_map(|t| ys[t].map(|y| Circle::new((xs[t], y), 3, RED.filled()))),
                )
                .map_err(|e| e.to_string())?
                .label("flagged")
                .legend(|(x, y)| Circle::new((x + 8, y), 3, RED.filled()));
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| e.to_string())?;
            let mut lower = ChartBuilder::on(&bottom)
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(70)
                .build_cartesian_2d(x0..x1, 0.0..1.0f64)
                .map_err(|e| e.to_string())?;
            lower
                .configure_mesh()
                .x_labels(6)
                .y_desc("anomaly score")
                .x_label_formatter(&|x| label(kind, *x, span))
                .draw()
                .map_err(|e| e.to_string())?;
            let score_color = RGBColor(180, 40, 40);
            lower
                .draw_series(LineSeries::new(
                    xs.iter()
                        .zip(&scores.anomaly)
                        .filter_map(|(x, a)| a.map(|a| (*x, a))),
                    score_color.stroke_width(1),
                ))
                .map_err(|e| e.to_string())?
                .label("anomaly score")
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], score_color));
            let threshold_color = BLUE.mix(0.6);
            lower
                .draw_series(LineSeries::new(
                    vec![(x0, threshold), (x1, threshold)],
                    threshold_color.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(format!("flag threshold {threshold}"))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], threshold_color.stroke_width(2))
                });
            lower
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerLeft)
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(|e| e.to_string())?;
            root.present().map_err(|e| e.to_string())
        }};
    }
    with_backend(path, (1400, 700), |r| draw_view!(r), |r| draw_view!(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ab_glyph::{Font, ScaleFont};

    /// The first inked column of `text` drawn at `size` px from x = 10 through [`BearingText`].
    fn first_ink(text: &str, size: f64) -> usize {
        register_font();
        let (w, h) = (240u32, 120u32);
        let mut buf = vec![255u8; (w * h * 3) as usize];
        {
            let root = BearingText {
                inner: BitMapBackend::with_buffer(&mut buf, (w, h)),
                font: ab_glyph::FontRef::try_from_slice(FONT).unwrap(),
            }
            .into_drawing_area();
            root.draw(&Text::new(text, (10, 10), ("sans-serif", size).into_font()))
                .unwrap();
            root.present().unwrap();
        }
        (0..w as usize)
            .find(|&x| (0..h as usize).any(|y| buf[(y * w as usize + x) * 3] < 200))
            .unwrap()
    }

    #[test]
    fn glyphs_keep_their_left_side_bearing() {
        // plotters' own renderer puts every glyph's ink at the pen, so a digit 1 (wide left
        // bearing) is followed by a gap: `2014-1 2`. Here the ink starts one bearing in.
        let font = ab_glyph::FontRef::try_from_slice(FONT).unwrap();
        let size = 80.0;
        let bearing = font
            .as_scaled(size as f32)
            .h_side_bearing(font.glyph_id('1'));
        assert!(
            bearing >= 5.0,
            "the test needs a visible bearing: {bearing}"
        );
        let ink = first_ink("1", size) as f32;
        assert!(
            (ink - (10.0 + bearing)).abs() <= 1.5,
            "ink of `1` starts at {ink}, expected 10 + {bearing}"
        );
    }
}
