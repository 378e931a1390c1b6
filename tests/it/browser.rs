//! A report page in a real headless browser (Debian's `chromium`): it loads with no console
//! messages and no network request, shows its chart, and shows a hostile namespace as text. CI
//! installs chromium (.ci/run); elsewhere the test says it skipped unless CI is set.

use chrono::TimeZone;
use spotcost::report::{self, ReportContext};
use std::path::{Path, PathBuf};
use std::process::Command;

const HOSTILE: &str = "<script>alert(1)</script>";
const FORMULA: &str = "=HYPERLINK(\"x\")";

pub(crate) fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Two days of a cluster whose namespace and cluster name came from the API as attacks.
fn hostile_batches() -> Vec<arrow::array::RecordBatch> {
    let db = duckdb::Connection::open_in_memory().unwrap();
    let sql = format!(
        "select d::date as day, 'act-1' as account_id, 'o-1' as cluster_id, {cluster} as cluster_name,
                ns as namespace, 'team-' || ns as team, 'cc-1' as cost_center,
                10.5::double as compute_cost_usd, 1.25::double as storage_cost_usd, 0.25::double as network_cost_usd,
                12.0::double as direct_cost_usd, 3.0::double as shared_cost_usd, 15.0::double as total_cost_usd,
                'proportional' as shared_cost_policy
         from (values ('2026-11-01'), ('2026-11-02')) days(d), (values ({ns}), ('payments')) names(ns)
         order by day, namespace",
        cluster = quote(FORMULA),
        ns = quote(HOSTILE),
    );
    let mut statement = db.prepare(&sql).unwrap();
    statement.query_arrow([]).unwrap().collect()
}

fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn render(dir: &Path) -> PathBuf {
    let definitions =
        report::load_definitions(&Path::new(env!("CARGO_MANIFEST_DIR")).join("reports")).unwrap();
    let definition = definitions
        .into_iter()
        .find(|d| d.name == "chargeback_namespace")
        .unwrap();
    let context = ReportContext {
        period_from: chrono::NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
        period_to: chrono::NaiveDate::from_ymd_opt(2026, 11, 2).unwrap(),
        data_fresh_until: chrono::NaiveDate::from_ymd_opt(2026, 11, 2),
        generated_at: chrono::Utc.with_ymd_and_hms(2026, 11, 3, 6, 0, 0).unwrap(),
        shared_cost_policy: "proportional".into(),
        organisation: None,
    };
    let (page, entry) = report::render_report(&definition, &hostile_batches(), &context).unwrap();
    let index = report::render_index(&[(definition, entry)], &context);
    let folder =
        report::write_reports(dir, context.generated_at.date_naive(), vec![page], index).unwrap();
    folder
}

#[test]
fn the_csv_neutralises_formulas() {
    let dir = tempfile::tempdir().unwrap();
    let folder = render(dir.path());
    let csv = std::fs::read_to_string(folder.join("chargeback_namespace.csv")).unwrap();
    assert!(csv.contains("'=HYPERLINK"), "{csv}");
    assert!(
        !csv.lines().any(|line| line
            .split(',')
            .any(|cell| cell.trim_start_matches('"').starts_with('='))),
        "{csv}"
    );
    assert!(csv.contains(HOSTILE), "CSV keeps the text as data: {csv}");
}

/// What headless chromium made of a page: its DOM, its log, and the URLs the page itself
/// requested (requests the browser makes for itself carry the initiator "not an origin").
pub(crate) struct Visit {
    pub(crate) dom: String,
    pub(crate) log: String,
    pub(crate) page_requests: Vec<String>,
}

pub(crate) fn visit(chromium: &Path, page: &Path, scratch: &Path) -> Visit {
    let net_log = scratch.join("net-log.json");
    let output = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=2000",
        ])
        .arg(format!(
            "--user-data-dir={}",
            scratch.join("profile").display()
        ))
        .arg(format!("--log-net-log={}", net_log.display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    let log = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "chromium failed: {log}");
    let net: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&net_log).unwrap())
        .expect("a complete net log");
    let start_job = net["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
        .as_i64()
        .unwrap();
    let page_requests = net["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["type"].as_i64() == Some(start_job))
        .filter(|event| event["params"]["initiator"].as_str() != Some("not an origin"))
        .filter_map(|event| event["params"]["url"].as_str().map(str::to_owned))
        .collect();
    Visit {
        dom: String::from_utf8_lossy(&output.stdout).into_owned(),
        log,
        page_requests,
    }
}

#[test]
fn a_report_page_loads_offline_in_a_real_browser_and_shows_its_chart() {
    let Some(chromium) = chromium() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "chromium is missing in CI: .ci/run must install it"
        );
        eprintln!("SKIPPED: chromium is not installed (apt-get install chromium to run this test)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();

    // The detector itself: a page that fetches an image is caught.
    let control = dir.path().join("control.html");
    std::fs::write(
        &control,
        "<html><body><img src=\"http://127.0.0.1:9/x.png\"><p>x</p></body></html>",
    )
    .unwrap();
    let control_scratch = dir.path().join("control");
    std::fs::create_dir_all(&control_scratch).unwrap();
    assert_eq!(
        visit(&chromium, &control, &control_scratch).page_requests,
        vec!["http://127.0.0.1:9/x.png"]
    );

    let folder = render(&dir.path().join("reports"));
    for page in ["chargeback_namespace.html", "index.html"] {
        let scratch = dir.path().join(page);
        std::fs::create_dir_all(&scratch).unwrap();
        let visit = visit(&chromium, &folder.join(page), &scratch);
        assert!(
            visit.page_requests.is_empty(),
            "{page} made requests: {:?}",
            visit.page_requests
        );
        let console: Vec<&str> = visit
            .log
            .lines()
            .filter(|l| l.contains("CONSOLE"))
            .collect();
        assert!(console.is_empty(), "{page} console messages: {console:#?}");
        assert!(visit.dom.contains("<table"), "{page}: no table");
        if page == "chargeback_namespace.html" {
            assert!(visit.dom.contains("<svg"), "no chart in the rendered page");
            assert!(
                visit.dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
                "the hostile namespace is not shown as text"
            );
            assert!(
                !visit.dom.contains(HOSTILE),
                "the hostile namespace became markup"
            );
        }
    }
}
