//! All reports over the year-long warehouse (the model figure's lake): `spotcost report` as a child,
//! against the 10 s a nightly run should spend on them, and the largest HTML page against 5 MB
//! (a page that size still opens at once; the pages aggregate before rendering, and a long table
//! shows its first rows).

use crate::common::{megabytes, run_measured, seconds, Bench, Figure, Target};
use crate::year_lake;
use anyhow::Context;

pub fn run(bench: &Bench) -> anyhow::Result<Vec<Figure>> {
    let data_dir = year_lake::year_warehouse(bench)?;
    let today = year_lake::last_day() + chrono::Duration::days(1);
    let measured = run_measured(
        bench
            .spotcost(&[
                "report",
                "--data-dir",
                &data_dir.to_string_lossy(),
                "--config",
                &year_lake::config_path(bench).to_string_lossy(),
            ])
            .env("SPOTCOST_NOW", format!("{today}T06:00:00Z")),
    )?;
    let folder = data_dir.join("reports").join(today.to_string());
    let mut pages = Vec::new();
    let mut csv_bytes = 0;
    for entry in
        std::fs::read_dir(&folder).with_context(|| format!("reading {}", folder.display()))?
    {
        let path = entry?.path();
        let size = std::fs::metadata(&path)?.len();
        match path.extension().and_then(|e| e.to_str()) {
            Some("html") => pages.push((
                size,
                path.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            )),
            Some("csv") => csv_bytes += size,
            _ => {}
        }
    }
    pages.sort();
    let (largest, largest_name) = pages.last().cloned().context("no HTML page was written")?;
    Ok(vec![
        Figure::new(
            "reports-time",
            seconds(measured.elapsed),
            " s",
            Target::AtMost(10.0),
            format!(
                "{} pages and {:.0} MB of CSV from the year-long warehouse; peak memory {:.0} MB",
                pages.len(),
                megabytes(csv_bytes),
                megabytes(measured.peak_rss_bytes)
            ),
        ),
        Figure::new(
            "reports-largest-page",
            megabytes(largest),
            " MB",
            Target::AtMost(5.0),
            format!("{largest_name}"),
        ),
    ])
}
