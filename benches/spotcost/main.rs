//! spotcost's benchmarks: `cargo bench --bench spotcost [-- FIGURE…]`.
//!
//! Each figure is measured side by side with its bound or reference in the same run, because a
//! shared 2-core machine is noisy: the ratio is the figure, absolute times are context. Generated
//! inputs (the large CSV export, the year-long lake) are cached under the bench folder
//! (`SPOTCOST_BENCH_DIR`, default `<target>/tmp/spotcost-bench`) and reused by later runs.
//! The process exits 1 when a figure could not be measured; a missed target is printed, not fatal.

mod common;
mod csv_export;
mod demo;
mod extract;
mod model;
mod reports;
mod year_lake;

use common::Figure;

/// The allocator of the `spotcost` binary, so that the simulator this process serves the
/// extraction from costs the CPU `spotcost simulate` would (both share the machine's two cores
/// with the spotcost under measurement).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Bench = fn(&common::Bench) -> anyhow::Result<Vec<Figure>>;

const FIGURES: &[(&str, &str, Bench)] = &[
    ("demo", "`spotcost demo` at the default scale", demo::run),
    (
        "extract",
        "extraction at organisation scale against the API's bound",
        extract::run,
    ),
    (
        "csv",
        "the organisation CSV export into Parquet against DuckDB's COPY",
        csv_export::run,
    ),
    (
        "model",
        "a year of history: full and incremental model builds against a DuckDB scan",
        model::run,
    ),
    (
        "reports",
        "all reports over the year-long warehouse",
        reports::run,
    ),
];

fn main() {
    // cargo passes `--bench` to harness-less benchmarks; everything else names a figure.
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if let Some(unknown) = wanted
        .iter()
        .find(|w| !FIGURES.iter().any(|(n, _, _)| n == w))
    {
        let names: Vec<&str> = FIGURES.iter().map(|(n, _, _)| *n).collect();
        eprintln!(
            "unknown figure {unknown:?}; the figures are {}",
            names.join(", ")
        );
        std::process::exit(2);
    }
    let bench = match common::Bench::new() {
        Ok(bench) => bench,
        Err(error) => {
            eprintln!("benchmarks cannot start: {error:#}");
            std::process::exit(1);
        }
    };
    println!("{}", bench.header());
    let mut figures = Vec::new();
    let mut failed = false;
    for (name, what, run) in FIGURES {
        if !wanted.is_empty() && !wanted.iter().any(|w| w == name) {
            continue;
        }
        eprintln!("== {name}: {what}");
        match run(&bench) {
            Ok(measured) => {
                for figure in &measured {
                    println!("{figure}");
                }
                figures.extend(measured);
            }
            Err(error) => {
                println!("{name:<22} ERROR {error:#}");
                failed = true;
            }
        }
    }
    let missed = figures.iter().filter(|f| !f.met()).count();
    println!(
        "{} figure(s), {} met, {} missed{}",
        figures.len(),
        figures.len() - missed,
        missed,
        if failed {
            ", some could not be measured"
        } else {
            ""
        }
    );
    if failed {
        std::process::exit(1);
    }
}
