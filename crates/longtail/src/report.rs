//! Run reports: Markdown and HTML pages with PNG and SVG plots of the class frequency against
//! per-class accuracy, the group accuracies, the learning curves, the reliability diagram and
//! the confusion matrix.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::{Context, Result};
use longtail_train::run_dir::EpochRecord;
use longtail_train::{FinalReport, RunDir};
use plotters::coord::Shift;
use plotters::prelude::*;

static FONT: Once = Once::new();

/// Registers the embedded font (Ubuntu Light) used for every PNG.
fn register_font() {
    FONT.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, epaint_default_fonts::UBUNTU_LIGHT);
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, epaint_default_fonts::UBUNTU_LIGHT);
    });
}

type PlotResult = std::result::Result<(), Box<dyn std::error::Error>>;

const BLUE: RGBColor = RGBColor(46, 110, 180);
const ORANGE: RGBColor = RGBColor(230, 120, 30);
const GREY: RGBColor = RGBColor(150, 150, 150);

fn short(name: &str, n: usize) -> String {
    if name.chars().count() <= n { name.to_string() } else { format!("{}…", name.chars().take(n - 1).collect::<String>()) }
}

/// Per-class accuracy (bars) and training images (line, right axis), classes by frequency.
fn class_plot<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, r: &FinalReport) -> PlotResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let mut classes = r.metrics.per_class.clone();
    classes.sort_by(|a, b| b.train_count.cmp(&a.train_count).then(a.class.cmp(&b.class)));
    let n = classes.len();
    let max_count = classes.iter().map(|c| c.train_count).max().unwrap_or(1) as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption("Per-class accuracy vs. training images (classes by frequency)", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(if n <= 30 { 90 } else { 40 })
        .y_label_area_size(55)
        .right_y_label_area_size(70)
        .build_cartesian_2d((0..n.saturating_sub(1)).into_segmented(), 0.0..100.0)?
        .set_secondary_coord((0..n.saturating_sub(1)).into_segmented(), 0.0..max_count * 1.05);
    let labels: Vec<String> = classes.iter().map(|c| short(&c.name, 12)).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc("test accuracy (%)")
        .x_labels(n.min(30))
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) if n <= 30 => labels.get(*i).cloned().unwrap_or_default(),
            SegmentValue::CenterOf(i) => format!("{i}"),
            _ => String::new(),
        })
        .x_label_style(("sans-serif", if n <= 12 { 14 } else { 11 }))
        .label_style(("sans-serif", 14))
        .draw()?;
    chart.configure_secondary_axes().y_desc("training images").label_style(("sans-serif", 14)).draw()?;
    chart
        .draw_series(classes.iter().enumerate().map(|(i, c)| {
            let mut bar = Rectangle::new([(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), c.accuracy)], BLUE.mix(0.75).filled());
            bar.set_margin(0, 0, 3, 3);
            bar
        }))?
        .label("accuracy")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], BLUE.filled()));
    chart
        .draw_secondary_series(LineSeries::new(
            classes.iter().enumerate().map(|(i, c)| (SegmentValue::CenterOf(i), c.train_count as f64)),
            ORANGE.stroke_width(3),
        ))?
        .label("training images")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], ORANGE.stroke_width(3)));
    chart.configure_series_labels().background_style(WHITE.mix(0.85)).border_style(GREY).label_font(("sans-serif", 14)).draw()?;
    root.present()?;
    Ok(())
}

/// Many / medium / few and rank-third accuracies.
fn group_plot<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, r: &FinalReport) -> PlotResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let m = &r.metrics;
    let mut bars: Vec<(String, f64)> = vec![("overall".into(), m.accuracy)];
    for (g, name) in m.shots.names.iter().enumerate() {
        if let Some(v) = m.shots.accuracy[g] {
            bars.push((format!("{name} ({})", m.shots.classes[g]), v));
        }
    }
    for (g, name) in m.thirds.names.iter().enumerate() {
        if let Some(v) = m.thirds.accuracy[g] {
            bars.push((format!("{name} ({})", m.thirds.classes[g]), v));
        }
    }
    let n = bars.len();
    let mut chart = ChartBuilder::on(&root)
        .caption("Accuracy by class group (classes per group)", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d((0..n.saturating_sub(1)).into_segmented(), 0.0..100.0)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc("test accuracy (%)")
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => bars.get(*i).map(|b| b.0.clone()).unwrap_or_default(),
            _ => String::new(),
        })
        .label_style(("sans-serif", 14))
        .draw()?;
    chart.draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
        let color = if i == 0 { GREY } else { BLUE };
        let mut rect = Rectangle::new([(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), *v)], color.mix(0.8).filled());
        rect.set_margin(0, 0, 8, 8);
        rect
    }))?;
    chart.draw_series(
        bars.iter()
            .enumerate()
            .map(|(i, (_, v))| Text::new(format!("{v:.1}"), (SegmentValue::CenterOf(i), (v + 4.0).min(97.0)), ("sans-serif", 15).into_font())),
    )?;
    root.present()?;
    Ok(())
}

/// Training loss and test accuracy per epoch.
fn curves_plot<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, history: &[EpochRecord]) -> PlotResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let n = history.len().max(1);
    let max_loss = history.iter().map(|r| r.train_loss).fold(0.0, f64::max).max(1e-3) * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption("Learning curves", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .right_y_label_area_size(60)
        .build_cartesian_2d(1..n + 1, 0.0..max_loss)?
        .set_secondary_coord(1..n + 1, 0.0..100.0);
    chart.configure_mesh().x_desc("epoch (all stages)").y_desc("training loss").label_style(("sans-serif", 14)).draw()?;
    chart.configure_secondary_axes().y_desc("accuracy (%)").label_style(("sans-serif", 14)).draw()?;
    chart
        .draw_series(LineSeries::new(history.iter().enumerate().map(|(i, r)| (i + 1, r.train_loss)), ORANGE.stroke_width(3)))?
        .label("training loss")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], ORANGE.stroke_width(3)));
    chart
        .draw_secondary_series(LineSeries::new(history.iter().enumerate().map(|(i, r)| (i + 1, r.train_accuracy)), GREY.stroke_width(2)))?
        .label("training accuracy")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], GREY.stroke_width(2)));
    chart
        .draw_secondary_series(LineSeries::new(
            history.iter().enumerate().filter_map(|(i, r)| r.test.as_ref().map(|t| (i + 1, t.accuracy))),
            BLUE.stroke_width(3),
        ))?
        .label("test accuracy")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], BLUE.stroke_width(3)));
    // markers, so runs of a single epoch still show their values
    chart.draw_series(history.iter().enumerate().map(|(i, r)| Circle::new((i + 1, r.train_loss), 4, ORANGE.filled())))?;
    chart.draw_secondary_series(history.iter().enumerate().filter_map(|(i, r)| r.test.as_ref().map(|t| Circle::new((i + 1, t.accuracy), 4, BLUE.filled()))))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::MiddleRight)
        .background_style(WHITE.mix(0.85))
        .border_style(GREY)
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(())
}

/// Reliability diagram: accuracy per confidence bin against the diagonal.
fn reliability_plot<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, r: &FinalReport) -> PlotResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("Reliability diagram (ECE {:.2}%)", r.metrics.ece), ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..1.0, 0.0..1.0)?;
    chart.configure_mesh().x_desc("confidence").y_desc("accuracy").label_style(("sans-serif", 14)).draw()?;
    chart
        .draw_series(
            r.metrics.reliability.iter().filter(|b| b.count > 0).map(|b| Rectangle::new([(b.lower, 0.0), (b.upper, b.accuracy)], BLUE.mix(0.7).filled())),
        )?
        .label("accuracy of the bin")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], BLUE.filled()));
    chart
        .draw_series(
            r.metrics
                .reliability
                .iter()
                .filter(|b| b.count > 0)
                .map(|b| Rectangle::new([(b.lower, b.accuracy.min(b.confidence)), (b.upper, b.accuracy.max(b.confidence))], RED.mix(0.25).filled())),
        )?
        .label("gap to confidence")
        .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], RED.mix(0.4).filled()));
    chart.draw_series(LineSeries::new(vec![(0.0, 0.0), (1.0, 1.0)], BLACK.stroke_width(2)))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(GREY)
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(())
}

/// Row-normalised confusion matrix as a heat map.
fn confusion_plot<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, r: &FinalReport) -> PlotResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let cm = &r.metrics.confusion;
    let n = cm.len();
    let names: Vec<String> = r.metrics.per_class.iter().map(|c| short(&c.name, 12)).collect();
    let label_area = if n <= 30 { 100 } else { 30 };
    let mut chart = ChartBuilder::on(&root)
        .caption("Confusion matrix (rows: true class, normalised)", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(label_area / 2)
        .y_label_area_size(label_area)
        .build_cartesian_2d((0..n.saturating_sub(1)).into_segmented(), (0..n.saturating_sub(1)).into_segmented())?;
    let label = |v: &SegmentValue<usize>, flip: bool| match v {
        SegmentValue::CenterOf(i) if n <= 30 => (if flip { (n - 1).checked_sub(*i) } else { Some(*i) }).and_then(|j| names.get(j).cloned()).unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("predicted")
        .y_desc("true")
        .x_labels(n.min(30))
        .y_labels(n.min(30))
        .x_label_formatter(&|v| label(v, false))
        .y_label_formatter(&|v| label(v, true))
        .label_style(("sans-serif", if n <= 12 { 13 } else { 10 }))
        .draw()?;
    let cell = |t: usize, p: usize| cm[t][p] as f64 / cm[t].iter().sum::<usize>().max(1) as f64;
    chart.draw_series((0..n).flat_map(|t| (0..n).map(move |p| (t, p))).map(|(t, p)| {
        let shade = (255.0 * (1.0 - 0.85 * cell(t, p))) as u8;
        let y = n - 1 - t;
        Rectangle::new(
            [(SegmentValue::Exact(p), SegmentValue::Exact(y)), (SegmentValue::Exact(p + 1), SegmentValue::Exact(y + 1))],
            RGBColor(shade, shade, 255).filled(),
        )
    }))?;
    if n <= 12 {
        let centred = ("sans-serif", 14).into_font().style(FontStyle::Normal);
        chart.draw_series((0..n).flat_map(|t| (0..n).map(move |p| (t, p))).map(|(t, p)| {
            let v = cell(t, p);
            let style = centred
                .clone()
                .color(if v > 0.5 { &WHITE } else { &BLACK })
                .pos(plotters::style::text_anchor::Pos::new(plotters::style::text_anchor::HPos::Center, plotters::style::text_anchor::VPos::Center));
            Text::new(format!("{v:.2}"), (SegmentValue::CenterOf(p), SegmentValue::CenterOf(n - 1 - t)), style)
        }))?;
    }
    root.present()?;
    Ok(())
}

/// Draws one plot as `<stem>.png` and `<stem>.svg` in `$dir`; evaluates to the PNG path.
macro_rules! render {
    ($dir:expr, $stem:expr, $size:expr, $f:expr) => {{
        let png = $dir.join(format!("{}.png", $stem));
        let svg = $dir.join(format!("{}.svg", $stem));
        $f(BitMapBackend::new(&png, $size).into_drawing_area()).map_err(|e| anyhow::anyhow!("drawing {}: {e}", png.display()))?;
        $f(SVGBackend::new(&svg, $size).into_drawing_area()).map_err(|e| anyhow::anyhow!("drawing {}: {e}", svg.display()))?;
        png
    }};
}

/// Writes `report.md`, `report.html` and `plots/*.{png,svg}` into the run folder; returns the
/// Markdown path.
pub fn write_report(run: &Path) -> Result<PathBuf> {
    register_font();
    let dir = RunDir::new(run);
    let report = dir.read_final()?;
    let history: Vec<EpochRecord> = std::fs::read_to_string(run.join("metrics.json")).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    let plots = run.join("plots");
    std::fs::create_dir_all(&plots).with_context(|| format!("creating {}", plots.display()))?;
    let classes = render!(plots, "class_accuracy", (1100, 600), |a| class_plot(a, &report));
    let groups = render!(plots, "groups", (900, 500), |a| group_plot(a, &report));
    let curves = render!(plots, "learning_curves", (900, 500), |a| curves_plot(a, &history));
    let reliability = render!(plots, "reliability", (600, 600), |a| reliability_plot(a, &report));
    let confusion = render!(plots, "confusion", (800, 800), |a| confusion_plot(a, &report));
    let images = [
        ("Class frequency and per-class accuracy", &classes),
        ("Accuracy by class group", &groups),
        ("Learning curves", &curves),
        ("Reliability diagram", &reliability),
        ("Confusion matrix", &confusion),
    ];
    let md = markdown(&report, &history, &images);
    let md_path = run.join("report.md");
    std::fs::write(&md_path, &md).with_context(|| format!("writing {}", md_path.display()))?;
    let html_path = run.join("report.html");
    std::fs::write(&html_path, html(&report, &md, &images)).with_context(|| format!("writing {}", html_path.display()))?;
    Ok(md_path)
}

fn rel(p: &Path) -> String {
    format!("plots/{}", p.file_name().unwrap().to_string_lossy())
}

fn summary_rows(r: &FinalReport) -> Vec<(String, String)> {
    let m = &r.metrics;
    let mut rows = vec![("overall top-1".to_string(), format!("{:.2}%", m.accuracy))];
    for (g, name) in m.shots.names.iter().enumerate() {
        rows.push((format!("{name} ({} classes)", m.shots.classes[g]), m.shots.accuracy[g].map(|v| format!("{v:.2}%")).unwrap_or_else(|| "- (empty)".into())));
    }
    for (g, name) in m.thirds.names.iter().enumerate() {
        rows.push((format!("{name} ({} classes)", m.thirds.classes[g]), m.thirds.accuracy[g].map(|v| format!("{v:.2}%")).unwrap_or_else(|| "-".into())));
    }
    rows.push(("ECE (15 bins)".into(), format!("{:.2}%", m.ece)));
    if let Some(h) = &m.hierarchical {
        rows.push(("TIE".into(), format!("{:.4}", h.tie)));
        rows.push(("F_H".into(), format!("{:.2}%", h.f_h)));
        rows.push(("coarse accuracy".into(), format!("{:.2}%", h.coarse_accuracy)));
    }
    if let Some(b) = &r.best {
        rows.push((
            "best test epoch (selection on test, as the papers' code)".into(),
            format!("{:.2}% (stage {}, epoch {})", b.accuracy, b.stage, b.epoch + 1),
        ));
    }
    for e in &r.metrics.experts {
        let shots: Vec<String> =
            (0..3).map(|g| e.shots.accuracy[g].map(|v| format!("{} {v:.2}", e.shots.names[g])).unwrap_or_else(|| format!("{} -", e.shots.names[g]))).collect();
        rows.push((format!("expert {} alone", e.expert + 1), format!("{:.2}% ({})", e.accuracy, shots.join(", "))));
    }
    if let Some(g) = &r.metrics.routing {
        let counts: Vec<String> = g.experts_used.iter().enumerate().map(|(k, n)| format!("{}: {n}", k + 1)).collect();
        rows.push(("experts per sample (routers)".into(), format!("{:.3} (samples using 1, 2, ...: {})", g.at_threshold.mean_experts, counts.join(", "))));
        let gmacs = |p: &longtail_train::metrics::RoutingPoint| p.gmacs.map(|v| format!(" at {v:.4} GMACs per image")).unwrap_or_default();
        rows.push((format!("routed (threshold {})", g.at_threshold.threshold), format!("{:.2}%{}", g.at_threshold.accuracy, gmacs(&g.at_threshold))));
        rows.push(("every expert (no routing)".into(), format!("{:.2}%{}", g.all_experts.accuracy, gmacs(&g.all_experts))));
    }
    rows.push(("training time".into(), longtail_train::progress::format_duration(r.total_seconds)));
    rows.push(("device".into(), r.device.clone()));
    rows
}

fn markdown(r: &FinalReport, history: &[EpochRecord], images: &[(&str, &PathBuf)]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# {} ({})\n", r.name, r.method);
    let _ = writeln!(s, "| metric | value |\n|---|---|");
    for (k, v) in summary_rows(r) {
        let _ = writeln!(s, "| {k} | {v} |");
    }
    let _ = writeln!(s, "\n## The three rarest classes\n\n| class | training images | test accuracy |\n|---|---|---|");
    for c in &r.metrics.rarest {
        let _ = writeln!(s, "| {} | {} | {:.2}% |", c.name, c.train_count, c.accuracy);
    }
    if let Some(g) = &r.metrics.routing {
        let _ = writeln!(s, "\n## {ROUTING_TITLE}\n\n| {} |\n|---|---|---|---|", ROUTING_COLUMNS.join(" | "));
        for row in routing_rows(g) {
            let _ = writeln!(s, "| {} |", row.join(" | "));
        }
    }
    for (title, path) in images {
        let _ = writeln!(s, "\n## {title}\n\n![{title}]({})", rel(path));
    }
    let _ = writeln!(s, "\n## Per-class accuracy\n\n| class | name | training images | test images | accuracy |\n|---|---|---|---|---|");
    for c in &r.metrics.per_class {
        let _ = writeln!(s, "| {} | {} | {} | {} | {:.2}% |", c.class, c.name, c.train_count, c.test_count, c.accuracy);
    }
    if !history.is_empty() {
        let _ = writeln!(s, "\n## Epochs\n\n| stage | epoch | lr | loss | train acc | test acc | s |\n|---|---|---|---|---|---|---|");
        for h in history {
            let test = h.test.as_ref().map(|t| format!("{:.2}", t.accuracy)).unwrap_or_else(|| "-".into());
            let _ = writeln!(
                s,
                "| {} | {} | {:.5} | {:.4} | {:.2} | {} | {:.0} |",
                h.stage_name,
                h.epoch + 1,
                h.lr,
                h.train_loss,
                h.train_accuracy,
                test,
                h.seconds
            );
        }
    }
    s
}

const ROUTING_TITLE: &str = "Computation versus accuracy (expert routers)";
const ROUTING_COLUMNS: [&str; 4] = ["router threshold", "accuracy", "experts per sample", "GMACs per image"];

/// The routed model's computation-versus-accuracy rows: every expert, then thresholds 0.1 to 0.9.
fn routing_rows(g: &longtail_train::metrics::RoutingResult) -> Vec<[String; 4]> {
    std::iter::once(&g.all_experts)
        .chain(&g.curve)
        .map(|p| {
            let t = if p.threshold == 0.0 { "every expert".to_string() } else { format!("{:.1}", p.threshold) };
            let gmacs = p.gmacs.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into());
            [t, format!("{:.2}%", p.accuracy), format!("{:.3}", p.mean_experts), gmacs]
        })
        .collect()
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn html(r: &FinalReport, _md: &str, images: &[(&str, &PathBuf)]) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{0}</title><style>body{{font-family:sans-serif;max-width:1150px;margin:2em auto;color:#222}}table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:left}}img{{max-width:100%;border:1px solid #eee;margin:0.5em 0}}</style></head><body><h1>{0} <small>({1})</small></h1><table><tr><th>metric</th><th>value</th></tr>",
        escape(&r.name),
        escape(&r.method)
    );
    for (k, v) in summary_rows(r) {
        let _ = write!(s, "<tr><td>{}</td><td>{}</td></tr>", escape(&k), escape(&v));
    }
    let _ = write!(s, "</table><h2>The three rarest classes</h2><table><tr><th>class</th><th>training images</th><th>test accuracy</th></tr>");
    for c in &r.metrics.rarest {
        let _ = write!(s, "<tr><td>{}</td><td>{}</td><td>{:.2}%</td></tr>", escape(&c.name), c.train_count, c.accuracy);
    }
    s.push_str("</table>");
    if let Some(g) = &r.metrics.routing {
        let _ = write!(s, "<h2>{ROUTING_TITLE}</h2><table><tr><th>{}</th></tr>", ROUTING_COLUMNS.join("</th><th>"));
        for row in routing_rows(g) {
            let _ = write!(s, "<tr><td>{}</td></tr>", row.join("</td><td>"));
        }
        s.push_str("</table>");
    }
    for (title, path) in images {
        let svg = rel(path).replace(".png", ".svg");
        let _ = write!(s, "<h2>{}</h2><img src=\"{}\" alt=\"{}\">", escape(title), svg, escape(title));
    }
    let _ = write!(s, "<h2>Per-class accuracy</h2><table><tr><th>class</th><th>name</th><th>training images</th><th>test images</th><th>accuracy</th></tr>");
    for c in &r.metrics.per_class {
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2}%</td></tr>",
            c.class,
            escape(&c.name),
            c.train_count,
            c.test_count,
            c.accuracy
        );
    }
    s.push_str("</table></body></html>\n");
    s
}
