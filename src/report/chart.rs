//! Hand-built inline SVG charts (stacked vertical bars, horizontal bars) with `<title>` tooltips and
//! an HTML legend; every label that comes from the data is escaped, and nothing is fetched.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use chrono::{Datelike, NaiveDate};

use super::definition::{
    ChartAggregate, ChartKind, ChartSpec, ColumnFormat, ReportDefinition, MAX_SERIES,
};
use super::html::escape_html;
use super::table::{format_number, format_usd, format_value, Cell, ReportTable};
use super::ReportError;

/// Paul Tol's "muted" qualitative scheme: nine colours distinguishable with the common forms of
/// colour blindness, in the order meant for adjacent use.
const SERIES_COLOURS: [&str; MAX_SERIES] = [
    "#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255",
    "#AA4499",
];
/// "Other" is always grey, so it never reads as one more team.
const OTHER_COLOUR: &str = "#BBBBBB";
/// One series only (plain bars): Tol's bright blue.
const SINGLE_SERIES_COLOUR: &str = "#4477AA";
/// Series kept in a horizontal bar chart before the rest become "Other".
const BARS_MAX_SERIES: usize = 8;

const CHART_WIDTH: f64 = 960.0;

/// How a chart category sorts: dates and numbers in their order, text alphabetically, missing last.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum CategoryKey {
    Date(NaiveDate),
    Number(i64),
    Text(String),
    Missing,
}

impl CategoryKey {
    fn from_cell(cell: &Cell) -> Self {
        match cell {
            Cell::Null => CategoryKey::Missing,
            Cell::Date(date) => CategoryKey::Date(*date),
            Cell::Timestamp(timestamp) => CategoryKey::Date(timestamp.date_naive()),
            Cell::Integer(integer) => CategoryKey::Number(*integer),
            other => CategoryKey::Text(other.plain_text()),
        }
    }

    /// The full text (tooltips, bar labels).
    fn full_label(&self) -> String {
        match self {
            CategoryKey::Date(date) => date.format("%Y-%m-%d").to_string(),
            CategoryKey::Number(number) => number.to_string(),
            CategoryKey::Text(text) => text.clone(),
            CategoryKey::Missing => "(none)".to_owned(),
        }
    }
}

struct ChartCategory {
    /// What the axis shows (`Nov 3`, `Nov 2026`, a name cut to fit).
    axis_label: String,
    /// What the tooltip shows.
    full_label: String,
    is_other: bool,
}

struct ChartSeries {
    name: String,
    colour: &'static str,
    total: f64,
}

/// Categories × series of summed values, ready to draw.
struct ChartData {
    categories: Vec<ChartCategory>,
    series: Vec<ChartSeries>,
    /// `values[category][series]`.
    values: Vec<Vec<f64>>,
    value_format: ColumnFormat,
    has_series_column: bool,
}

/// The chart as an HTML `<figure>` (SVG plus legend), or `None` when the table has no rows.
pub(crate) fn render_chart(
    definition: &ReportDefinition,
    chart: &ChartSpec,
    report_table: &ReportTable,
) -> Result<Option<String>, ReportError> {
    if report_table.row_count() == 0 {
        return Ok(None);
    }
    let chart_data = aggregate(definition, chart, report_table)?;
    let svg = match chart.kind {
        ChartKind::StackedBars => stacked_bars_svg(&chart_data, &chart_title(definition, chart)),
        ChartKind::Bars => horizontal_bars_svg(&chart_data, &chart_title(definition, chart)),
    };
    let mut figure = String::new();
    let _ = write!(
        figure,
        "<figure class=\"chart\">\n<figcaption>{}</figcaption>\n{svg}",
        escape_html(&chart_title(definition, chart))
    );
    if chart_data.has_series_column {
        figure.push_str(&legend_html(&chart_data));
    }
    figure.push_str("</figure>\n");
    Ok(Some(figure))
}

fn label_of(definition: &ReportDefinition, column_name: &str) -> String {
    definition
        .column(column_name)
        .map(|column| column.label.clone())
        .unwrap_or_else(|| column_name.to_owned())
}

fn chart_title(definition: &ReportDefinition, chart: &ChartSpec) -> String {
    let y_label = label_of(definition, &chart.y);
    let mut title = format!(
        "{} by {}",
        match chart.aggregate {
            ChartAggregate::Sum => y_label,
            ChartAggregate::Mean => format!("Mean {}", y_label.to_lowercase()),
        },
        label_of(definition, &chart.x).to_lowercase()
    );
    if let Some(series_column) = &chart.series {
        let _ = write!(
            title,
            " and {}",
            label_of(definition, series_column).to_lowercase()
        );
    }
    if chart.kind == ChartKind::Bars {
        let _ = write!(title, " (top {})", chart.top);
    }
    title
}

fn aggregate(
    definition: &ReportDefinition,
    chart: &ChartSpec,
    report_table: &ReportTable,
) -> Result<ChartData, ReportError> {
    let y_values = report_table.numeric_column(definition, &chart.y, "the chart")?;
    let x_index = ReportTable::column_index(definition, &chart.x).expect("checked at load");
    let series_index = chart.series.as_ref().map(|series_column| {
        ReportTable::column_index(definition, series_column).expect("checked at load")
    });
    let single_series_name = label_of(definition, &chart.y);

    let y_index = ReportTable::column_index(definition, &chart.y).expect("checked at load");

    // Sum y per category and series, and count the rows with a value (for a mean).
    let mut sums: BTreeMap<CategoryKey, HashMap<String, f64>> = BTreeMap::new();
    let mut counts: HashMap<CategoryKey, usize> = HashMap::new();
    let mut series_magnitudes: HashMap<String, f64> = HashMap::new();
    for (row, y_value) in y_values.iter().enumerate() {
        let has_value =
            y_value.is_finite() && !matches!(report_table.columns[y_index][row], Cell::Null);
        let y_value = if has_value { *y_value } else { 0.0 };
        let category_key = CategoryKey::from_cell(&report_table.columns[x_index][row]);
        *counts.entry(category_key.clone()).or_default() += usize::from(has_value);
        let series_name = match series_index {
            Some(series_index) => match &report_table.columns[series_index][row] {
                Cell::Null => "(none)".to_owned(),
                other => other.plain_text(),
            },
            None => single_series_name.clone(),
        };
        *series_magnitudes.entry(series_name.clone()).or_default() += y_value.abs();
        *sums
            .entry(category_key)
            .or_default()
            .entry(series_name)
            .or_default() += y_value;
    }

    // Keep the largest series; the rest become one grey "Other".
    let series_limit = match chart.kind {
        ChartKind::StackedBars => chart.top,
        ChartKind::Bars => BARS_MAX_SERIES,
    };
    let mut ranked_series: Vec<(String, f64)> = series_magnitudes.into_iter().collect();
    ranked_series.sort_by(|left, right| {
        right
            .1
            .total_cmp(&left.1)
            .then_with(|| left.0.cmp(&right.0))
    });
    let kept_series_count = if ranked_series.len() > series_limit {
        series_limit
    } else {
        ranked_series.len()
    };
    let other_series_count = ranked_series.len() - kept_series_count;
    let series_position: HashMap<&str, usize> = ranked_series
        .iter()
        .enumerate()
        .map(|(rank, (name, _))| (name.as_str(), rank.min(kept_series_count)))
        .collect();
    let mut series: Vec<ChartSeries> = ranked_series[..kept_series_count]
        .iter()
        .enumerate()
        .map(|(rank, (name, _))| ChartSeries {
            name: name.clone(),
            colour: if series_index.is_some() {
                SERIES_COLOURS[rank % MAX_SERIES]
            } else {
                SINGLE_SERIES_COLOUR
            },
            total: 0.0,
        })
        .collect();
    if other_series_count > 0 {
        series.push(ChartSeries {
            name: format!("Other ({other_series_count} more)"),
            colour: OTHER_COLOUR,
            total: 0.0,
        });
    }

    let series_row = |series_sums: &HashMap<String, f64>| {
        let mut row = vec![0.0; series.len()];
        for (series_name, value) in series_sums {
            row[series_position[series_name.as_str()]] += value;
        }
        row
    };
    let mut categories = Vec::new();
    let mut values = Vec::new();
    match chart.kind {
        ChartKind::StackedBars => {
            let all_first_of_month = sums
                .keys()
                .all(|key| matches!(key, CategoryKey::Date(date) if date.day() == 1));
            for (category_key, series_sums) in &sums {
                let axis_label = match category_key {
                    CategoryKey::Date(date) if all_first_of_month => {
                        date.format("%b %Y").to_string()
                    }
                    CategoryKey::Date(date) => date.format("%b %-d").to_string(),
                    other => shorten(&other.full_label(), 12),
                };
                categories.push(ChartCategory {
                    axis_label,
                    full_label: category_key.full_label(),
                    is_other: false,
                });
                values.push(series_row(series_sums));
            }
        }
        ChartKind::Bars => {
            // What a bar draws from its sums and its number of rows with a value: the sums, or
            // their means.
            let bar = |sums: Vec<f64>, count: usize| match chart.aggregate {
                ChartAggregate::Sum => sums,
                ChartAggregate::Mean => sums
                    .into_iter()
                    .map(|sum| if count == 0 { 0.0 } else { sum / count as f64 })
                    .collect(),
            };
            let mut ranked_categories: Vec<(&CategoryKey, f64, Vec<f64>, usize)> = sums
                .iter()
                .map(|(category_key, series_sums)| {
                    let row = series_row(series_sums);
                    let count = counts.get(category_key).copied().unwrap_or(0);
                    let drawn: f64 = bar(row.clone(), count).iter().sum();
                    (category_key, drawn, row, count)
                })
                .collect();
            ranked_categories.sort_by(|left, right| {
                right.1.total_cmp(&left.1).then_with(|| left.0.cmp(right.0))
            });
            let other_category_count = ranked_categories.len().saturating_sub(chart.top);
            let mut other_row = vec![0.0; series.len()];
            let mut other_count = 0;
            for (rank, (category_key, _, row, count)) in ranked_categories.into_iter().enumerate() {
                if rank < chart.top {
                    categories.push(ChartCategory {
                        axis_label: shorten(&category_key.full_label(), 32),
                        full_label: category_key.full_label(),
                        is_other: false,
                    });
                    values.push(bar(row, count));
                } else {
                    for (other_value, value) in other_row.iter_mut().zip(row) {
                        *other_value += value;
                    }
                    other_count += count;
                }
            }
            if other_category_count > 0 {
                let other_label = format!("Other ({other_category_count} more)");
                categories.push(ChartCategory {
                    axis_label: other_label.clone(),
                    full_label: other_label,
                    is_other: true,
                });
                values.push(bar(other_row, other_count));
            }
        }
    }
    for row in &values {
        for (series_entry, value) in series.iter_mut().zip(row) {
            series_entry.total += value;
        }
    }
    let value_format = definition
        .column(&chart.y)
        .map(|column| column.format)
        .unwrap_or(ColumnFormat::Number);
    Ok(ChartData {
        categories,
        series,
        values,
        value_format,
        has_series_column: series_index.is_some(),
    })
}

/// Cuts a label to `max_characters` (on character boundaries), marking the cut with `…`.
fn shorten(label: &str, max_characters: usize) -> String {
    if label.chars().count() <= max_characters {
        label.to_owned()
    } else {
        let mut shortened: String = label
            .chars()
            .take(max_characters.saturating_sub(1))
            .collect();
        shortened.push('…');
        shortened
    }
}

/// Round tick values (1, 2, 2.5 or 5 × 10ⁿ apart) covering `minimum..=maximum` and zero.
fn nice_ticks(
    minimum: f64,
    maximum: f64,
    target_tick_count: usize,
    whole_numbers: bool,
) -> Vec<f64> {
    let minimum = minimum.min(0.0);
    let mut maximum = maximum.max(0.0);
    if maximum - minimum <= f64::EPSILON {
        maximum = minimum + 1.0;
    }
    let raw_step = (maximum - minimum) / target_tick_count.max(1) as f64;
    let magnitude = 10f64.powf(raw_step.log10().floor());
    let residual = raw_step / magnitude;
    let nice_residual = if residual <= 1.0 {
        1.0
    } else if residual <= 2.0 {
        2.0
    } else if residual <= 2.5 {
        2.5
    } else if residual <= 5.0 {
        5.0
    } else {
        10.0
    };
    let mut step = nice_residual * magnitude;
    if whole_numbers {
        step = step.max(1.0).round();
    }
    let first_tick = (minimum / step).floor();
    let last_tick = (maximum / step).ceil();
    (first_tick as i64..=last_tick as i64)
        .map(|tick_index| {
            // Rounded to nine decimals so 3 × 0.2 is 0.6, not 0.6000000000000001.
            let tick = (tick_index as f64 * step * 1e9).round() / 1e9;
            if tick == 0.0 {
                0.0
            } else {
                tick
            }
        })
        .collect()
}

/// An axis tick: money and counts without decimals unless the steps are fractions.
fn format_tick(format: ColumnFormat, value: f64, step: f64) -> String {
    let decimals = if step >= 1.0 { 0 } else { 2 };
    match format {
        ColumnFormat::Usd if decimals == 0 => {
            let grouped = format_number(value, 0);
            match grouped.strip_prefix('-') {
                Some(magnitude) => format!("-${magnitude}"),
                None => format!("${grouped}"),
            }
        }
        ColumnFormat::Usd => format_usd(value),
        ColumnFormat::Percent => format!(
            "{}%",
            format_number(value * 100.0, if step * 100.0 >= 1.0 { 0 } else { 1 })
        ),
        _ => format_number(value, decimals),
    }
}

fn tooltip(
    chart_data: &ChartData,
    category: &ChartCategory,
    series: &ChartSeries,
    value: f64,
) -> String {
    let value_text = format_value(chart_data.value_format, value);
    if chart_data.has_series_column {
        escape_html(&format!(
            "{} · {}: {}",
            category.full_label, series.name, value_text
        ))
    } else {
        escape_html(&format!("{}: {}", category.full_label, value_text))
    }
}

/// The lowest negative stack and the highest positive stack over all categories.
fn stack_extent(values: &[Vec<f64>]) -> (f64, f64) {
    values.iter().fold((0.0, 0.0), |(lowest, highest), row| {
        let negative_sum: f64 = row.iter().filter(|value| **value < 0.0).sum();
        let positive_sum: f64 = row.iter().filter(|value| **value > 0.0).sum();
        (
            f64::min(lowest, negative_sum),
            f64::max(highest, positive_sum),
        )
    })
}

/// The value axis of a chart: its ticks, the domain they span and the step between them.
fn value_axis(chart_data: &ChartData) -> (Vec<f64>, f64, f64, f64) {
    let (lowest, highest) = stack_extent(&chart_data.values);
    let whole_numbers = chart_data.value_format == ColumnFormat::Integer;
    let ticks = nice_ticks(lowest, highest, 5, whole_numbers);
    let (domain_low, domain_high) = (ticks[0], ticks[ticks.len() - 1]);
    let step = if ticks.len() > 1 {
        ticks[1] - ticks[0]
    } else {
        1.0
    };
    (ticks, domain_low, domain_high, step)
}

fn stacked_bars_svg(chart_data: &ChartData, title: &str) -> String {
    let (left, right, top, bottom) = (84.0, 16.0, 16.0, 40.0);
    let height = 360.0;
    let plot_width = CHART_WIDTH - left - right;
    let plot_height = height - top - bottom;
    let (ticks, domain_low, domain_high, step) = value_axis(chart_data);
    let y_of = |value: f64| top + plot_height * (domain_high - value) / (domain_high - domain_low);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg class=\"stacked-bars\" viewBox=\"0 0 {CHART_WIDTH} {height}\" width=\"100%\" role=\"img\" aria-label=\"{}\">",
        escape_html(title)
    );
    for tick in &ticks {
        let y = y_of(*tick);
        let _ = writeln!(
            svg,
            "<line class=\"{}\" x1=\"{left:.1}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/><text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            if *tick == 0.0 { "zero" } else { "grid" },
            left + plot_width,
            left - 8.0,
            y + 4.0,
            escape_html(&format_tick(chart_data.value_format, *tick, step))
        );
    }
    let category_count = chart_data.categories.len().max(1);
    let band_width = plot_width / category_count as f64;
    let bar_width = (band_width * 0.8).max(1.0);
    let max_labels = ((plot_width / 64.0).floor() as usize).max(1);
    let label_every = category_count.div_ceil(max_labels);
    for (category_position, (category, row)) in chart_data
        .categories
        .iter()
        .zip(&chart_data.values)
        .enumerate()
    {
        let bar_x = left + category_position as f64 * band_width + (band_width - bar_width) / 2.0;
        let _ = writeln!(svg, "<g>");
        let (mut positive_base, mut negative_base) = (0.0, 0.0);
        for (series, value) in chart_data.series.iter().zip(row) {
            if *value == 0.0 {
                continue;
            }
            let (segment_top, segment_bottom) = if *value > 0.0 {
                let segment = (y_of(positive_base + value), y_of(positive_base));
                positive_base += value;
                segment
            } else {
                let segment = (y_of(negative_base), y_of(negative_base + value));
                negative_base += value;
                segment
            };
            let _ = writeln!(
                svg,
                "<rect x=\"{bar_x:.1}\" y=\"{segment_top:.1}\" width=\"{bar_width:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}</title></rect>",
                (segment_bottom - segment_top).max(0.5),
                series.colour,
                tooltip(chart_data, category, series, *value)
            );
        }
        if category_position % label_every == 0 {
            let _ = writeln!(
                svg,
                "<text class=\"tick\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}<title>{}</title></text>",
                bar_x + bar_width / 2.0,
                top + plot_height + 18.0,
                escape_html(&category.axis_label),
                escape_html(&category.full_label)
            );
        }
        let _ = writeln!(svg, "</g>");
    }
    svg.push_str("</svg>\n");
    svg
}

fn horizontal_bars_svg(chart_data: &ChartData, title: &str) -> String {
    let (left, right, top, bottom) = (240.0, 120.0, 8.0, 32.0);
    let (row_height, bar_height) = (26.0, 18.0);
    let height = top + row_height * chart_data.categories.len() as f64 + bottom;
    let plot_width = CHART_WIDTH - left - right;
    let plot_bottom = height - bottom;
    let (ticks, domain_low, domain_high, step) = value_axis(chart_data);
    let x_of = |value: f64| left + plot_width * (value - domain_low) / (domain_high - domain_low);

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg class=\"bars\" viewBox=\"0 0 {CHART_WIDTH} {height}\" width=\"100%\" role=\"img\" aria-label=\"{}\">",
        escape_html(title)
    );
    for tick in &ticks {
        let x = x_of(*tick);
        let _ = writeln!(
            svg,
            "<line class=\"{}\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top:.1}\" y2=\"{plot_bottom:.1}\"/><text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            if *tick == 0.0 { "zero" } else { "grid" },
            plot_bottom + 18.0,
            escape_html(&format_tick(chart_data.value_format, *tick, step))
        );
    }
    for (category_position, (category, row)) in chart_data
        .categories
        .iter()
        .zip(&chart_data.values)
        .enumerate()
    {
        let bar_y = top + category_position as f64 * row_height + (row_height - bar_height) / 2.0;
        let _ = writeln!(
            svg,
            "<g>\n<text class=\"{}\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}<title>{}</title></text>",
            if category.is_other { "category other" } else { "category" },
            left - 8.0,
            bar_y + bar_height / 2.0 + 4.0,
            escape_html(&category.axis_label),
            escape_html(&category.full_label)
        );
        let (mut positive_base, mut negative_base) = (0.0, 0.0);
        for (series, value) in chart_data.series.iter().zip(row) {
            if *value == 0.0 {
                continue;
            }
            let (segment_left, segment_right) = if *value > 0.0 {
                let segment = (x_of(positive_base), x_of(positive_base + value));
                positive_base += value;
                segment
            } else {
                let segment = (x_of(negative_base + value), x_of(negative_base));
                negative_base += value;
                segment
            };
            let colour = if category.is_other && !chart_data.has_series_column {
                OTHER_COLOUR
            } else {
                series.colour
            };
            let _ = writeln!(
                svg,
                "<rect x=\"{segment_left:.1}\" y=\"{bar_y:.1}\" width=\"{:.1}\" height=\"{bar_height:.1}\" fill=\"{colour}\"><title>{}</title></rect>",
                (segment_right - segment_left).max(0.5),
                tooltip(chart_data, category, series, *value)
            );
        }
        let category_total: f64 = row.iter().sum();
        let _ = writeln!(
            svg,
            "<text class=\"value\" x=\"{:.1}\" y=\"{:.1}\">{}</text>\n</g>",
            x_of(positive_base) + 6.0,
            bar_y + bar_height / 2.0 + 4.0,
            escape_html(&format_value(chart_data.value_format, category_total))
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn legend_html(chart_data: &ChartData) -> String {
    let mut legend = String::from("<ul class=\"legend\">\n");
    for series in &chart_data.series {
        let _ = writeln!(
            legend,
            "<li><svg width=\"12\" height=\"12\" aria-hidden=\"true\"><rect width=\"12\" height=\"12\" fill=\"{}\"/></svg> {} <span class=\"legend-value\">{}</span></li>",
            series.colour,
            escape_html(&series.name),
            escape_html(&format_value(chart_data.value_format, series.total))
        );
    }
    legend.push_str("</ul>\n");
    legend
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_cover_the_data_and_zero() {
        assert_eq!(
            nice_ticks(0.0, 1234.0, 5, false),
            [0.0, 250.0, 500.0, 750.0, 1000.0, 1250.0]
        );
        assert_eq!(nice_ticks(-40.0, 90.0, 5, false), [-50.0, 0.0, 50.0, 100.0]);
        assert_eq!(
            nice_ticks(0.0, 0.0, 5, false),
            [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
        );
        assert_eq!(nice_ticks(0.0, 3.0, 5, true), [0.0, 1.0, 2.0, 3.0]);
        assert_eq!(format_tick(ColumnFormat::Usd, 1250.0, 250.0), "$1,250");
        assert_eq!(format_tick(ColumnFormat::Usd, -20.0, 20.0), "-$20");
        assert_eq!(format_tick(ColumnFormat::Usd, 0.2, 0.2), "$0.20");
    }

    #[test]
    fn shortens_on_character_boundaries() {
        assert_eq!(shorten("kube-system", 32), "kube-system");
        assert_eq!(shorten("ééééé", 3), "éé…");
    }
}
