//! `spotcost demo` at its default scale (the simulator in-process, 30 days, 4 accounts), against
//! the 30 s a newcomer should wait after the build. Three runs; the slowest one is the figure.

use crate::common::{run_measured, seconds, Bench, Figure, Target};

pub fn run(bench: &Bench) -> anyhow::Result<Vec<Figure>> {
    let mut times = Vec::new();
    let mut peak = 0;
    for attempt in 0..3 {
        let dir = bench.scratch(&format!("demo-{attempt}"))?;
        let measured = run_measured(
            bench
                .spotcost(&["demo", "--data-dir", &dir.to_string_lossy()])
                .current_dir(&dir),
        )?;
        times.push(seconds(measured.elapsed));
        peak = peak.max(measured.peak_rss_bytes);
    }
    let slowest = times.iter().cloned().fold(0.0, f64::max);
    Ok(vec![Figure::new(
        "demo",
        slowest,
        " s",
        Target::AtMost(30.0),
        format!(
            "slowest of 3 runs ({}); peak memory {:.0} MB",
            times
                .iter()
                .map(|t| format!("{t:.1} s"))
                .collect::<Vec<_>>()
                .join(", "),
            crate::common::megabytes(peak)
        ),
    )])
}
