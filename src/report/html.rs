//! Self-contained HTML pages (a report, the index): inline CSS and SVG, no script, no external
//! resource (a Content-Security-Policy forbids them too), and every string HTML-escaped.

use std::fmt::Write as _;

use arrow::array::RecordBatch;

use super::chart::render_chart;
use super::definition::ReportDefinition;
use super::table::{format_cell_for_html, ReportTable};
use super::{IndexEntry, ReportContext, ReportError, ReportTotal};

/// Escapes `& < > " '`: safe in element content and in quoted attribute values. The Unicode
/// bidirectional formatting characters (embeddings, overrides and isolates U+202A–U+202E and
/// U+2066–U+2069; the marks U+200E, U+200F and U+061C) are shown as a visible `[U+202E]`
/// instead, so a name from the API can neither reorder the figures and text around it (a legend
/// entry, a tooltip's amount) nor disguise itself (`invoice`, U+202E, `fdp.exe` would read
/// "invoiceexe.pdf"). The CSV keeps them: there every cell is laid out on its own.
pub(crate) fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            '\u{061C}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}' => {
                escaped.push_str(&format!("[U+{:04X}]", u32::from(character)));
            }
            other => escaped.push(other),
        }
    }
    escaped
}

const STYLE: &str = r#"
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  margin: 0 auto; max-width: 1280px; padding: 24px; color: #1a1a1a; background: #fff; line-height: 1.4; }
a { color: #1f5f99; }
h1 { font-size: 1.6rem; margin: 0 0 4px; }
h2 { font-size: 1.1rem; margin: 24px 0 8px; }
.organisation { margin: 0; color: #555; font-size: .85rem; text-transform: uppercase; letter-spacing: .05em; }
.description { margin: 4px 0 12px; color: #333; max-width: 90ch; }
.note { color: #555; }
.facts { display: flex; flex-wrap: wrap; gap: 4px 28px; margin: 0 0 8px; font-size: .9rem; }
.facts div { display: flex; gap: 6px; }
.facts dt { color: #555; }
.facts dd { margin: 0; font-weight: 600; }
.stale { color: #a61b1b; }
.links { font-size: .9rem; margin: 0; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }
.card { border: 1px solid #d9d9d9; border-radius: 6px; padding: 10px 16px; min-width: 200px; }
.card-label { font-size: .85rem; color: #555; }
.card-value { font-size: 1.5rem; font-weight: 600; font-variant-numeric: tabular-nums; }
figure.chart { margin: 16px 0; }
figcaption { font-weight: 600; margin-bottom: 4px; }
.chart svg text { font-size: 11px; fill: #333; }
.chart .grid { stroke: #e6e6e6; }
.chart .zero { stroke: #888; }
.chart .category.other { font-style: italic; }
.legend { list-style: none; display: flex; flex-wrap: wrap; gap: 4px 18px; padding: 0; margin: 8px 0; font-size: .85rem; }
.legend li { display: flex; align-items: center; gap: 6px; }
.legend-value { color: #555; font-variant-numeric: tabular-nums; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: .85rem; }
th, td { padding: 4px 8px; border-bottom: 1px solid #e6e6e6; text-align: left; vertical-align: top; }
th { background: #f3f3f3; font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:nth-child(even) { background: #fafafa; }
.empty { padding: 32px; border: 1px dashed #bbb; border-radius: 6px; text-align: center; color: #444; font-size: 1.1rem; }
.totals-list { margin: 0; padding: 0; list-style: none; }
footer { margin-top: 32px; color: #666; font-size: .8rem; }
@page { size: A4 landscape; margin: 12mm; }
@media print {
  body { max-width: none; padding: 0; font-size: 9pt; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  a { color: inherit; text-decoration: none; }
  .links { display: none; }
  .table-wrap { overflow: visible; }
  thead { display: table-header-group; }
  tr, figure, .card { break-inside: avoid; }
  table { font-size: 8pt; }
}
"#;

/// `<!DOCTYPE html>` up to and including the header with the period, freshness and settings.
fn page_start(
    page_title: &str,
    description: &str,
    context: &ReportContext,
    show_shared_cost_policy: bool,
    links_html: &str,
) -> String {
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"spotcost\">\n\
         <title>{} · {} – {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<header>\n",
        escape_html(page_title),
        context.period_from,
        context.period_to
    );
    if let Some(organisation) = &context.organisation {
        let _ = writeln!(
            page,
            "<p class=\"organisation\">{}</p>",
            escape_html(organisation)
        );
    }
    let _ = writeln!(page, "<h1>{}</h1>", escape_html(page_title));
    if !description.trim().is_empty() {
        let _ = writeln!(
            page,
            "<p class=\"description\">{}</p>",
            escape_html(description)
        );
    }
    page.push_str("<dl class=\"facts\">\n");
    let _ = writeln!(
        page,
        "<div><dt>Period</dt><dd>{} – {}</dd></div>",
        context.period_from, context.period_to
    );
    let freshness = match context.data_fresh_until {
        Some(fresh_until) if fresh_until < context.period_to => format!(
            "<dd class=\"stale\">{fresh_until} (days after it are missing or incomplete)</dd>"
        ),
        Some(fresh_until) => format!("<dd>{fresh_until}</dd>"),
        None => "<dd class=\"stale\">unknown</dd>".to_owned(),
    };
    let _ = writeln!(page, "<div><dt>Data up to</dt>{freshness}</div>");
    if show_shared_cost_policy {
        let _ = writeln!(
            page,
            "<div><dt>Shared costs</dt><dd>{}</dd></div>",
            escape_html(&context.shared_cost_policy)
        );
    }
    let _ = writeln!(
        page,
        "<div><dt>Generated</dt><dd>{}</dd></div>\n</dl>",
        context.generated_at.format("%Y-%m-%d %H:%M UTC")
    );
    page.push_str(links_html);
    page.push_str("</header>\n<main>\n");
    page
}

fn page_end() -> &'static str {
    "</main>\n<footer>Generated by spotcost from Spot by NetApp data. Amounts in US dollars.</footer>\n</body>\n</html>\n"
}

fn cards_html(totals: &[ReportTotal]) -> String {
    if totals.is_empty() {
        return String::new();
    }
    let mut cards = String::from("<section class=\"cards\">\n");
    for total in totals {
        let _ = writeln!(
            cards,
            "<div class=\"card\"><div class=\"card-label\">{}</div><div class=\"card-value\">{}</div></div>",
            escape_html(&total.label),
            escape_html(&total.formatted_value())
        );
    }
    cards.push_str("</section>\n");
    cards
}

/// Renders one report page: header, totals cards, chart, table (or "No data for this period").
pub fn render_html(
    definition: &ReportDefinition,
    batches: &[RecordBatch],
    context: &ReportContext,
) -> Result<String, ReportError> {
    let report_table = ReportTable::from_batches(definition, batches)?;
    render_html_table(definition, &report_table, context)
}

pub(crate) fn render_html_table(
    definition: &ReportDefinition,
    report_table: &ReportTable,
    context: &ReportContext,
) -> Result<String, ReportError> {
    let links_html = format!(
        "<p class=\"links\"><a href=\"index.html\">All reports</a> · <a href=\"{}.csv\">Download CSV</a></p>\n",
        escape_html(&definition.name)
    );
    let mut page = page_start(
        &definition.title,
        &definition.description,
        context,
        definition.shows_shared_costs(),
        &links_html,
    );
    page.push_str(&cards_html(&report_table.totals(definition)?));
    if report_table.row_count() == 0 {
        page.push_str("<p class=\"empty\">No data for this period.</p>\n");
        page.push_str(page_end());
        return Ok(page);
    }
    if let Some(chart) = &definition.chart {
        if let Some(figure) = render_chart(definition, chart, report_table)? {
            page.push_str(&figure);
        }
    }
    let row_count = report_table.row_count();
    let shown_rows = row_count.min(definition.html_rows);
    let _ = writeln!(
        page,
        "<h2>{} {}</h2>",
        super::table::format_number(row_count as f64, 0),
        if row_count == 1 { "row" } else { "rows" }
    );
    if shown_rows < row_count {
        // The cards and the chart above cover every row; the page stays small enough to open at once.
        let _ = writeln!(
            page,
            "<p class=\"note\">The table shows the first {} rows in this order; <a href=\"{}.csv\">the CSV</a> holds all {}.</p>",
            super::table::format_number(shown_rows as f64, 0),
            escape_html(&definition.name),
            super::table::format_number(row_count as f64, 0),
        );
    }
    page.push_str("<div class=\"table-wrap\">\n<table>\n<thead>\n<tr>");
    for column in &definition.columns {
        let _ = write!(
            page,
            "<th{} title=\"{}\">{}</th>",
            if column.format.is_numeric() {
                " class=\"num\""
            } else {
                ""
            },
            escape_html(&column.name),
            escape_html(&column.label)
        );
    }
    page.push_str("</tr>\n</thead>\n<tbody>\n");
    for row in 0..shown_rows {
        page.push_str("<tr>");
        for (column, column_cells) in definition.columns.iter().zip(&report_table.columns) {
            let _ = write!(
                page,
                "<td{}>{}</td>",
                if column.format.is_numeric() {
                    " class=\"num\""
                } else {
                    ""
                },
                escape_html(&format_cell_for_html(column.format, &column_cells[row]))
            );
        }
        page.push_str("</tr>\n");
    }
    page.push_str("</tbody>\n</table>\n</div>\n");
    page.push_str(page_end());
    Ok(page)
}

/// The landing page of a run: every report with its row count, totals and links to both files.
pub fn render_index(reports: &[(ReportDefinition, IndexEntry)], context: &ReportContext) -> String {
    let mut page = page_start("Spot cost reports", "", context, true, "");
    if reports.is_empty() {
        page.push_str("<p class=\"empty\">No reports were rendered.</p>\n");
        page.push_str(page_end());
        return page;
    }
    page.push_str(
        "<div class=\"table-wrap\">\n<table class=\"index\">\n<thead>\n<tr><th>Report</th><th>What it shows</th>\
         <th class=\"num\">Rows</th><th>Totals</th><th>Files</th></tr>\n</thead>\n<tbody>\n",
    );
    for (definition, index_entry) in reports {
        let totals_html = if index_entry.totals.is_empty() {
            String::new()
        } else {
            let items: String = index_entry
                .totals
                .iter()
                .map(|total| {
                    format!(
                        "<li>{}: <span class=\"num\">{}</span></li>",
                        escape_html(&total.label),
                        escape_html(&total.formatted_value())
                    )
                })
                .collect();
            format!("<ul class=\"totals-list\">{items}</ul>")
        };
        let _ = writeln!(
            page,
            "<tr><td><a href=\"{html_file}\">{title}</a></td><td>{description}</td><td class=\"num\">{rows}</td>\
             <td>{totals_html}</td><td><a href=\"{html_file}\">HTML</a> · <a href=\"{csv_file}\">CSV</a></td></tr>",
            html_file = escape_html(&index_entry.html_file),
            csv_file = escape_html(&index_entry.csv_file),
            title = escape_html(&definition.title),
            description = escape_html(&definition.description),
            rows = super::table::format_number(index_entry.rows as f64, 0),
        );
    }
    page.push_str("</tbody>\n</table>\n</div>\n");
    page.push_str(page_end());
    page
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::test_batches::{
        batch, day, definition_with_columns, fixed_context, ColumnValues,
    };
    use crate::report::{load_definitions, ChartKind, ChartSpec, ColumnFormat, IndexEntry};

    const HOSTILE_NAMESPACE: &str = "<script>alert(1)</script>";

    /// No request may leave a page, and no script may run in it.
    fn assert_self_contained(page: &str) {
        for forbidden in [
            "http://", "https://", "src=", "<script", "url(", "@import", "<link", "<img", "<iframe",
        ] {
            assert!(
                !page.to_lowercase().contains(forbidden),
                "page contains `{forbidden}`"
            );
        }
    }

    fn cost_definition(kind: ChartKind, top: usize) -> ReportDefinition {
        let mut definition = definition_with_columns(&[
            ("day", ColumnFormat::Date),
            ("namespace", ColumnFormat::Text),
            ("total_cost_usd", ColumnFormat::Usd),
            ("event_count", ColumnFormat::Integer),
        ]);
        definition.totals = vec!["total_cost_usd".into(), "event_count".into()];
        definition.chart = Some(ChartSpec {
            kind,
            x: if kind == ChartKind::Bars {
                "namespace".into()
            } else {
                "day".into()
            },
            y: "total_cost_usd".into(),
            series: if kind == ChartKind::Bars {
                None
            } else {
                Some("namespace".into())
            },
            top,
            aggregate: Default::default(),
        });
        definition
    }

    fn cost_batch() -> RecordBatch {
        batch(vec![
            (
                "day",
                ColumnValues::Date(vec![day(1), day(1), day(2), day(2), day(3)]),
            ),
            (
                "namespace",
                ColumnValues::Text(vec![
                    Some(HOSTILE_NAMESPACE),
                    Some("web"),
                    Some("web"),
                    Some("batch"),
                    None,
                ]),
            ),
            (
                "total_cost_usd",
                ColumnValues::Float(vec![
                    Some(1000.10),
                    Some(2000.20),
                    Some(0.01),
                    None,
                    Some(-0.5),
                ]),
            ),
            (
                "event_count",
                ColumnValues::Int64(vec![Some(1000), Some(2000), Some(3), None, Some(1)]),
            ),
        ])
    }

    #[test]
    fn escapes_a_hostile_namespace_in_table_legend_and_tooltips() {
        let page = render_html(
            &cost_definition(ChartKind::StackedBars, 8),
            &[cost_batch()],
            &fixed_context(),
        )
        .unwrap();
        assert_self_contained(&page);
        let escaped = "&lt;script&gt;alert(1)&lt;/script&gt;";
        assert!(page.contains(&format!("<td>{escaped}</td>")), "table cell");
        assert!(
            page.contains(&format!("</svg> {escaped} <span class=\"legend-value\">")),
            "legend"
        );
        assert!(
            page.contains(&format!("<title>2026-11-01 · {escaped}: $1,000.10</title>")),
            "tooltip"
        );
        assert!(!page.contains(HOSTILE_NAMESPACE));
        assert!(
            page.contains("Acme &amp; Co"),
            "context strings are escaped too"
        );

        let bars_page = render_html(
            &cost_definition(ChartKind::Bars, 8),
            &[cost_batch()],
            &fixed_context(),
        )
        .unwrap();
        assert_self_contained(&bars_page);
        assert!(
            bars_page.contains(&format!(">{escaped}<title>{escaped}</title></text>")),
            "bar label"
        );
        assert!(!bars_page.contains(HOSTILE_NAMESPACE));
    }

    #[test]
    fn a_mean_chart_draws_each_bars_mean_leaving_out_empty_cells() {
        let mut definition = cost_definition(ChartKind::Bars, 1);
        definition.chart.as_mut().unwrap().aggregate = crate::report::ChartAggregate::Mean;
        let rows = batch(vec![
            ("day", ColumnValues::Date(vec![day(1); 5])),
            (
                "namespace",
                ColumnValues::Text(vec![Some("a"), Some("a"), Some("b"), Some("b"), Some("c")]),
            ),
            (
                "total_cost_usd",
                ColumnValues::Float(vec![Some(6.0), Some(2.0), Some(5.0), None, Some(1.0)]),
            ),
            ("event_count", ColumnValues::Int64(vec![Some(1); 5])),
        ]);
        let page = render_html(&definition, &[rows], &fixed_context()).unwrap();
        // b's mean is 5 (its empty cell left out) and beats a's 4, though a's sum (8) is larger;
        // the other bar is the mean of a's and c's rows, (6 + 2 + 1) / 3.
        assert!(page.contains(">$5.00</text>"), "the kept bar");
        assert!(page.contains(">$3.00</text>"), "the other bar");
        assert!(page.contains("Mean "), "the title says it is a mean");
    }

    #[test]
    fn bidi_controls_are_shown_not_obeyed() {
        assert_eq!(
            escape_html("invoice\u{202E}fdp.exe \u{200F}<b>\u{2066}\u{2069}\u{061C}"),
            "invoice[U+202E]fdp.exe [U+200F]&lt;b&gt;[U+2066][U+2069][U+061C]"
        );
        assert_eq!(
            escape_html("שלום مرحبا"),
            "שלום مرحبا",
            "RTL letters are text"
        );
    }

    #[test]
    fn a_long_table_shows_its_first_rows_and_the_cards_still_cover_all() {
        let mut definition = cost_definition(ChartKind::StackedBars, 8);
        definition.html_rows = 3;
        let page =
            render_html(&definition, &[cost_batch(), cost_batch()], &fixed_context()).unwrap();
        assert!(page.contains("<h2>10 rows</h2>"), "{page}");
        assert!(page.contains("The table shows the first 3 rows in this order; <a href=\"test_report.csv\">the CSV</a> holds all 10."));
        assert_eq!(page.matches("<tr><td>").count(), 3);
        assert!(page.contains("$5,999.62"), "the cards sum every row");
        definition.html_rows = 10;
        let page =
            render_html(&definition, &[cost_batch(), cost_batch()], &fixed_context()).unwrap();
        assert!(!page.contains("The table shows the first"));
        assert_eq!(page.matches("<tr><td>").count(), 10);
    }

    #[test]
    fn totals_cards_sum_each_column_in_its_own_format() {
        let page = render_html(
            &cost_definition(ChartKind::StackedBars, 8),
            &[cost_batch(), cost_batch()],
            &fixed_context(),
        )
        .unwrap();
        // (1000.10 + 2000.20 + 0.01 - 0.5) × 2 = 5999.62; nulls count as zero.
        assert!(page.contains("<div class=\"card-label\">total cost usd</div><div class=\"card-value\">$5,999.62</div>"));
        assert!(
            page.contains(
                "<div class=\"card-label\">event count</div><div class=\"card-value\">6,008</div>"
            ),
            "no $ on a count"
        );
        assert!(page.contains("<h2>10 rows</h2>"));
        assert!(page.contains("<td class=\"num\">$1,000.10</td>"));
        assert!(page.contains("<td class=\"num\">-$0.50</td>"));
    }

    #[test]
    fn empty_data_says_so_instead_of_drawing_an_empty_chart() {
        let empty_batch = batch(vec![
            ("day", ColumnValues::Date(vec![])),
            ("namespace", ColumnValues::Text(vec![])),
            ("total_cost_usd", ColumnValues::Float(vec![])),
            ("event_count", ColumnValues::Int64(vec![])),
        ]);
        for batches in [vec![empty_batch], vec![]] {
            let page = render_html(
                &cost_definition(ChartKind::StackedBars, 8),
                &batches,
                &fixed_context(),
            )
            .unwrap();
            assert!(page.contains("No data for this period"));
            assert!(!page.contains("<svg class="), "no chart");
            assert!(!page.contains("<table"), "no table");
            assert!(page.contains("<div class=\"card-value\">$0.00</div>"));
            assert_self_contained(&page);
        }
    }

    #[test]
    fn stacked_chart_groups_series_beyond_top_into_other() {
        let namespaces = ["a", "b", "c", "d", "e"];
        let costs = [50.0, 40.0, 30.0, 20.0, 10.0];
        let many_series_batch = batch(vec![
            ("day", ColumnValues::Date(vec![day(1); 5])),
            (
                "namespace",
                ColumnValues::Text(namespaces.iter().map(|name| Some(*name)).collect()),
            ),
            (
                "total_cost_usd",
                ColumnValues::Float(costs.iter().map(|cost| Some(*cost)).collect()),
            ),
            ("event_count", ColumnValues::Int64(vec![Some(1); 5])),
        ]);
        let page = render_html(
            &cost_definition(ChartKind::StackedBars, 3),
            &[many_series_batch],
            &fixed_context(),
        )
        .unwrap();
        let legend = &page[page.find("<ul class=\"legend\">").unwrap()..];
        let legend = &legend[..legend.find("</ul>").unwrap()];
        assert_eq!(
            legend.matches("<li>").count(),
            4,
            "three series and Other: {legend}"
        );
        for kept in ["</svg> a <", "</svg> b <", "</svg> c <"] {
            assert!(legend.contains(kept), "{kept} in {legend}");
        }
        assert!(
            legend.contains("</svg> Other (2 more) <span class=\"legend-value\">$30.00</span>"),
            "{legend}"
        );
        assert!(page.contains("<title>2026-11-01 · Other (2 more): $30.00</title>"));
        assert!(!page.contains("· d:") && !page.contains("· e:"));
    }

    #[test]
    fn bar_chart_keeps_the_top_categories_and_sums_the_rest() {
        let mut definition = cost_definition(ChartKind::Bars, 2);
        definition.chart.as_mut().unwrap().y = "event_count".into();
        let page = render_html(&definition, &[cost_batch()], &fixed_context()).unwrap();
        // By events: web 2003, <script> 1000, (none) 1, batch 0 → two kept, two in Other.
        assert!(page.contains(">web<title>web</title></text>"));
        assert!(page.contains(">Other (2 more)<title>Other (2 more)</title></text>"));
        assert!(page.contains("<text class=\"value\""));
        assert!(
            page.contains(">2,003</text>"),
            "value label in the column's format"
        );
        assert!(
            !page.contains("<ul class=\"legend\">"),
            "one series, no legend"
        );
    }

    #[test]
    fn every_shipped_report_renders_self_contained_pages() {
        let definitions = load_definitions(&ReportDefinition::shipped_folder()).unwrap();
        let mut index_rows = Vec::new();
        for definition in definitions {
            let columns = definition
                .columns
                .iter()
                .map(|column| {
                    let values = match column.format {
                        ColumnFormat::Text => {
                            ColumnValues::Text(vec![Some(HOSTILE_NAMESPACE), Some("=1+1"), None])
                        }
                        ColumnFormat::Date => ColumnValues::Date(vec![day(1), day(2), None]),
                        ColumnFormat::Integer => ColumnValues::Int64(vec![Some(3), Some(-1), None]),
                        _ => ColumnValues::Float(vec![Some(12.5), Some(-0.25), None]),
                    };
                    (column.name.as_str(), values)
                })
                .collect();
            let report_batch = batch(columns);
            let (rendered, index_entry) =
                crate::report::render_report(&definition, &[report_batch], &fixed_context())
                    .unwrap();
            assert_self_contained(&rendered.html);
            assert!(
                !rendered.html.contains(HOSTILE_NAMESPACE),
                "{}",
                definition.name
            );
            assert!(
                rendered.html.contains("<svg class="),
                "{} draws its chart",
                definition.name
            );
            assert_eq!(
                rendered.html.contains("proportional to direct cost"),
                definition.name == "chargeback_namespace",
                "{}: the shared-cost policy shows only where there are shared costs",
                definition.name
            );
            assert_eq!(index_entry.rows, 3);
            index_rows.push((definition, index_entry));
        }
        let index = render_index(&index_rows, &fixed_context());
        assert_self_contained(&index);
        assert!(index.contains("<a href=\"chargeback_namespace.html\">"));
        assert!(index.contains("<a href=\"chargeback_namespace.csv\">CSV</a>"));
        assert!(index.contains("proportional to direct cost"));
        assert!(index.contains("2026-11-01 – 2026-11-03"));
    }

    #[test]
    fn index_lists_rows_and_totals_in_their_formats() {
        let definition = cost_definition(ChartKind::StackedBars, 8);
        let index_entry = IndexEntry {
            html_file: "test_report.html".into(),
            csv_file: "test_report.csv".into(),
            rows: 12345,
            totals: crate::report::compute_totals(&definition, &[cost_batch()]).unwrap(),
        };
        let mut stale_context = fixed_context();
        stale_context.data_fresh_until = day(2);
        let index = render_index(&[(definition, index_entry)], &stale_context);
        assert!(index.contains("<td class=\"num\">12,345</td>"));
        assert!(index.contains("<li>total cost usd: <span class=\"num\">$2,999.81</span></li>"));
        assert!(index.contains("<li>event count: <span class=\"num\">3,004</span></li>"));
        assert!(
            index.contains("class=\"stale\">2026-11-02 (days after it are missing"),
            "a stale lake is flagged"
        );
        assert!(index.contains("2026-11-04 05:30 UTC"), "generated at");
    }

    #[test]
    fn escapes_all_five_characters() {
        assert_eq!(
            escape_html(r#"<a href="x" title='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
    }
}
