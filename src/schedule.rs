//! Cron schedules evaluated in an IANA time zone, and the foreground loop that runs a job at
//! each fire time. Invariant: the clock is always passed in (an instant argument or a
//! [`Clock`]); nothing in this module reads the wall clock.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{
    DateTime, LocalResult, NaiveDateTime, Offset, SecondsFormat, TimeDelta, TimeZone, Utc,
};
use chrono_tz::Tz;
use tokio_util::sync::CancellationToken;

/// Where the scheduler gets "now" from. Production passes `Arc::new(Utc::now)`; tests pass a
/// clock derived from tokio's paused time.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The forms [`CronSchedule::parse`] accepts, appended to syntax errors.
const EXPECTED_FORMS: &str = "expected a 5-field crontab expression (min hour dom mon dow) or \
                              the 6/7-field form with seconds (sec min hour dom mon dow [year])";

/// Parse rejects an expression with no fire time after this instant (2025-01-01T00:00:00Z).
/// A constant, so that parsing never reads the clock.
const NEVER_FIRES_REFERENCE_UNIX_SECONDS: i64 = 1_735_689_600;

/// The scheduler sleeps at most this long before re-reading the clock, so that a suspended
/// machine or a clock jump is noticed within a minute.
const LONGEST_SLEEP_BETWEEN_CLOCK_READS: std::time::Duration = std::time::Duration::from_secs(60);

/// Wider than any UTC offset difference (offsets lie within -12h..+14h), so the local reading
/// of `t - SEARCH_WINDOW` is below and that of `t + SEARCH_WINDOW` above any reading near `t`.
const SEARCH_WINDOW_SECONDS: i64 = 26 * 3600;

/// How many daylight-saving gaps in a row a wall-clock schedule may step over in one search.
const MOST_GAPS_CROSSED_IN_ONE_SEARCH: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("invalid schedule \"{expression}\": {message}")]
    InvalidExpression { expression: String, message: String },
    #[error("unknown time zone \"{name}\": expected an IANA name such as UTC or Europe/Berlin")]
    UnknownTimeZone { name: String },
}

/// How local times that a daylight-saving change skips or repeats are turned into instants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DaylightSavingHandling {
    /// The hour field names specific hours: each matching local time fires once. A local time
    /// inside a spring-forward gap fires at the first instant after the gap; a local time that
    /// a fall-back repeats fires at its first occurrence only.
    FixedLocalTime,
    /// The hour field is a wildcard (`*`, `*/n`, `@hourly`): the job fires whenever the wall
    /// clock shows a matching time. Local times inside a gap never show (they are skipped, the
    /// real-time cadence goes on); repeated local times show, and fire, twice.
    FollowWallClock,
}

/// A parsed cron expression bound to a time zone.
///
/// # Forms
///
/// * 5-field crontab, `min hour dom mon dow`, with Vixie cron semantics: day-of-week 0 and 7
///   are Sunday, 1 is Monday … 6 is Saturday (numbers, lists, ranges and steps), or names
///   (`sun`, `MON-FRI`, case-insensitive); months 1-12 or names (`jan`, `Dec`). When both
///   day-of-month and day-of-week are restricted (neither field starts with `*`), the job
///   fires on days matching EITHER field: `0 0 13 * 5` is every 13th and every Friday. As in
///   Vixie cron, a field written `*/n` counts as unrestricted for this rule, so
///   `0 0 */2 * 1` fires on odd days that are Mondays.
/// * `@hourly`, `@daily`, `@midnight`, `@weekly` (Sunday 00:00), `@monthly`, `@yearly`,
///   `@annually`.
/// * 6 or 7 fields, `sec min hour dom mon dow [year]`: handed to the `cron` crate as written,
///   so ITS rules apply: day-of-week 1 = Sunday … 7 = Saturday (0 is rejected), and when both
///   day-of-month and day-of-week are restricted a day must match BOTH. Years run 1970-2100.
///
/// # Time zones and daylight saving
///
/// Fire times are local times in the schedule's zone, so a daily `0 6 * * *` in Europe/Berlin
/// is 05:00 UTC in winter and 04:00 UTC in summer. On the days the clocks change:
///
/// * Hour field with specific hours (`30 2 * * *`, `0 1-5 * * *`): the schedule names fixed
///   local times. One that does not exist that day (02:30 on the spring-forward day) fires
///   once, at the first instant after the gap (03:00 local); several in the same gap fire once
///   together. One that occurs twice (02:30 on the fall-back day) fires once, at its first
///   occurrence.
/// * Hour field `*` or `*/n` (`*/15 * * * *`, `@hourly`): the job fires whenever the wall clock
///   shows a matching time, which keeps the real-time cadence: local times inside the gap are
///   never shown and do not fire, and the repeated hour fires again (every 15 real minutes
///   across both changes, in time order, without duplicates).
///
/// This follows what Debian's cron documents for fixed-time and wildcard jobs, except that
/// only the hour field decides (Debian also counts a `*` minute as a wildcard). The `cron`
/// crate on its own skips a nonexistent local time altogether (moving to the next day) and
/// yields both occurrences of a repeated one, out of time order for sub-hourly schedules; this
/// type only asks it for matching local times and maps them to instants itself.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expression: String,
    time_zone: Tz,
    /// The schedule's local times, evaluated by the `cron` crate on a naive (UTC-like)
    /// timeline; the union of their matches is the set of matching local times. Two entries
    /// when a crontab expression restricts both day-of-month and day-of-week.
    local_time_matchers: Vec<cron::Schedule>,
    daylight_saving_handling: DaylightSavingHandling,
}

/// A fall-back transition: local readings in `[repeated_from, repeated_until)` occur first
/// before `transition` (at the earlier, larger offset) and again from `transition` on.
#[derive(Debug, Clone, Copy)]
struct RepeatedLocalHour {
    transition: DateTime<Utc>,
    repeated_from: NaiveDateTime,
    repeated_until: NaiveDateTime,
    offset_after_transition: TimeDelta,
}

impl CronSchedule {
    /// Parses a crontab (5 fields, or @hourly/@daily/@midnight/@weekly/@monthly/@yearly/@annually)
    /// or cron-crate (6 or 7 fields, seconds first) expression, evaluated in `time_zone` (IANA
    /// name; "UTC" default by callers). See the type's documentation for the semantics.
    ///
    /// Rejects an empty expression, a wrong number of fields, values out of range, anything
    /// that is not cron syntax, and an expression that never fires (no fire time from
    /// 2025-01-01 to the end of 2100, e.g. `0 0 30 2 *`).
    pub fn parse(expression: &str, time_zone: &str) -> Result<CronSchedule, ScheduleError> {
        let invalid = |message: String| ScheduleError::InvalidExpression {
            expression: expression.to_string(),
            message,
        };
        let parsed_time_zone = parse_time_zone(time_zone)?;
        let translation = translate_expression(expression).map_err(invalid)?;
        let mut local_time_matchers = Vec::with_capacity(translation.cron_expressions.len());
        for cron_expression in &translation.cron_expressions {
            let matcher = cron::Schedule::try_from(cron_expression.as_str()).map_err(|error| {
                invalid(format!(
                    "its translation \"{cron_expression}\" was rejected by the cron crate ({}); {EXPECTED_FORMS}",
                    last_line_of_cron_error(&error)
                ))
            })?;
            local_time_matchers.push(matcher);
        }
        let schedule = CronSchedule {
            expression: expression.to_string(),
            time_zone: parsed_time_zone,
            local_time_matchers,
            daylight_saving_handling: translation.daylight_saving_handling,
        };
        let reference = DateTime::from_timestamp(NEVER_FIRES_REFERENCE_UNIX_SECONDS, 0)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        if schedule.next_after(reference).is_none() {
            return Err(invalid(
                "it never fires: no time from 2025-01-01 to the end of 2100 matches all of its \
                 fields (e.g. day 30 or 31 in February)"
                    .to_string(),
            ));
        }
        Ok(schedule)
    }

    /// The first fire time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let reading = self.local_reading(after);
        let repeated_hour = match self.time_zone.from_local_datetime(&reading) {
            LocalResult::Ambiguous(earlier, later) => self.repeated_local_hour(&earlier, &later),
            _ => None,
        };
        // Local readings at or below the highest one already shown have fired (or been
        // passed) at their first occurrence.
        let first_occurrence_threshold = match repeated_hour {
            Some(hour) if after >= hour.transition => hour
                .repeated_until
                .checked_sub_signed(TimeDelta::seconds(1))?,
            _ => reading,
        };
        let first_occurrence = self.next_first_occurrence(first_occurrence_threshold);
        let second_occurrence = match (self.daylight_saving_handling, repeated_hour) {
            (DaylightSavingHandling::FollowWallClock, Some(hour)) => {
                self.next_second_occurrence(after, reading, &hour)
            }
            _ => None,
        };
        [first_occurrence, second_occurrence]
            .into_iter()
            .flatten()
            .filter(|fire_time| *fire_time > after)
            .min()
    }

    /// The next `count` fire times strictly after `after`.
    pub fn upcoming(&self, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
        let mut fire_times = Vec::with_capacity(count.min(1024));
        let mut cursor = after;
        while fire_times.len() < count {
            match self.next_after(cursor) {
                Some(fire_time) if fire_time > cursor => {
                    fire_times.push(fire_time);
                    cursor = fire_time;
                }
                _ => break,
            }
        }
        fire_times
    }

    /// The expression as the user wrote it.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    pub fn time_zone(&self) -> Tz {
        self.time_zone
    }

    /// A fire time shown in the schedule's zone, e.g. "2026-03-29 03:00:00 CEST", for log lines.
    pub fn local_display(&self, at: DateTime<Utc>) -> String {
        at.with_timezone(&self.time_zone)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    }

    /// What the wall clock of the schedule's zone shows at `instant`.
    fn local_reading(&self, instant: DateTime<Utc>) -> NaiveDateTime {
        instant.with_timezone(&self.time_zone).naive_local()
    }

    fn local_reading_at_unix_seconds(&self, unix_seconds: i64) -> Option<NaiveDateTime> {
        DateTime::from_timestamp(unix_seconds, 0).map(|instant| self.local_reading(instant))
    }

    fn utc_offset_at_unix_seconds(&self, unix_seconds: i64) -> Option<i32> {
        DateTime::from_timestamp(unix_seconds, 0).map(|instant| {
            self.time_zone
                .offset_from_utc_datetime(&instant.naive_utc())
                .fix()
                .local_minus_utc()
        })
    }

    /// The first matching local time strictly after `threshold` (whole seconds).
    fn next_matching_local_time(&self, threshold: NaiveDateTime) -> Option<NaiveDateTime> {
        let threshold_on_naive_timeline = threshold.and_utc();
        self.local_time_matchers
            .iter()
            .filter_map(|matcher| matcher.after(&threshold_on_naive_timeline).next())
            .map(|matching| matching.naive_utc())
            .min()
    }

    /// The earliest fire time coming from the first (or only) occurrence of a matching local
    /// time strictly after `threshold`.
    fn next_first_occurrence(&self, threshold: NaiveDateTime) -> Option<DateTime<Utc>> {
        let mut threshold = threshold;
        for _ in 0..MOST_GAPS_CROSSED_IN_ONE_SEARCH {
            let local_time = self.next_matching_local_time(threshold)?;
            match self.time_zone.from_local_datetime(&local_time) {
                LocalResult::Single(instant) => return Some(instant.with_timezone(&Utc)),
                LocalResult::Ambiguous(earlier, _) => return Some(earlier.with_timezone(&Utc)),
                LocalResult::None => {
                    let end_of_gap = self.first_instant_showing_at_least(local_time)?;
                    match self.daylight_saving_handling {
                        DaylightSavingHandling::FixedLocalTime => return Some(end_of_gap),
                        DaylightSavingHandling::FollowWallClock => {
                            threshold = self
                                .local_reading(end_of_gap)
                                .checked_sub_signed(TimeDelta::seconds(1))?;
                        }
                    }
                }
            }
        }
        None
    }

    /// The earliest fire time coming from the second occurrence of a local time in the
    /// repeated hour that `after` lies in (either pass of it).
    fn next_second_occurrence(
        &self,
        after: DateTime<Utc>,
        reading: NaiveDateTime,
        repeated_hour: &RepeatedLocalHour,
    ) -> Option<DateTime<Utc>> {
        let threshold = if after >= repeated_hour.transition {
            reading
        } else {
            repeated_hour
                .repeated_from
                .checked_sub_signed(TimeDelta::seconds(1))?
        };
        let local_time = self.next_matching_local_time(threshold)?;
        if local_time >= repeated_hour.repeated_until {
            return None;
        }
        let instant = local_time.checked_sub_signed(repeated_hour.offset_after_transition)?;
        Some(instant.and_utc())
    }

    /// The first whole-second instant whose local reading is at or after `local_time`: for a
    /// local time inside a spring-forward gap, the instant the gap ends.
    fn first_instant_showing_at_least(&self, local_time: NaiveDateTime) -> Option<DateTime<Utc>> {
        let target = local_time.and_utc().timestamp();
        let mut below = target - SEARCH_WINDOW_SECONDS;
        let mut at_or_above = target + SEARCH_WINDOW_SECONDS;
        while at_or_above - below > 1 {
            let middle = below + (at_or_above - below) / 2;
            if self.local_reading_at_unix_seconds(middle)? >= local_time {
                at_or_above = middle;
            } else {
                below = middle;
            }
        }
        DateTime::from_timestamp(at_or_above, 0)
    }

    /// The fall-back transition between the two instants that show the same local reading.
    fn repeated_local_hour(
        &self,
        earlier: &DateTime<Tz>,
        later: &DateTime<Tz>,
    ) -> Option<RepeatedLocalHour> {
        let offset_before = earlier.offset().fix().local_minus_utc();
        let offset_after = later.offset().fix().local_minus_utc();
        let mut before_transition = earlier.timestamp();
        let mut from_transition = later.timestamp();
        while from_transition - before_transition > 1 {
            let middle = before_transition + (from_transition - before_transition) / 2;
            if self.utc_offset_at_unix_seconds(middle)? == offset_after {
                from_transition = middle;
            } else {
                before_transition = middle;
            }
        }
        let transition = DateTime::from_timestamp(from_transition, 0)?;
        let offset_before = TimeDelta::seconds(i64::from(offset_before));
        let offset_after = TimeDelta::seconds(i64::from(offset_after));
        Some(RepeatedLocalHour {
            transition,
            repeated_from: transition.naive_utc().checked_add_signed(offset_after)?,
            repeated_until: transition.naive_utc().checked_add_signed(offset_before)?,
            offset_after_transition: offset_after,
        })
    }
}

/// An IANA zone name; exact spelling first, then ignoring ASCII case ("europe/berlin").
fn parse_time_zone(name: &str) -> Result<Tz, ScheduleError> {
    let trimmed = name.trim();
    trimmed
        .parse::<Tz>()
        .ok()
        .or_else(|| {
            chrono_tz::TZ_VARIANTS
                .iter()
                .copied()
                .find(|zone| zone.name().eq_ignore_ascii_case(trimmed))
        })
        .ok_or_else(|| ScheduleError::UnknownTimeZone {
            name: name.to_string(),
        })
}

/// What an expression becomes before the `cron` crate sees it.
struct Translation {
    cron_expressions: Vec<String>,
    daylight_saving_handling: DaylightSavingHandling,
}

fn handling_for_hour_field(hour_field: &str) -> DaylightSavingHandling {
    if hour_field.starts_with('*') {
        DaylightSavingHandling::FollowWallClock
    } else {
        DaylightSavingHandling::FixedLocalTime
    }
}

fn translate_expression(expression: &str) -> Result<Translation, String> {
    let trimmed = expression.trim();
    if trimmed.is_empty() {
        return Err(format!("the expression is empty; {EXPECTED_FORMS}"));
    }
    if trimmed.starts_with('@') {
        let fields = crontab_fields_of_shorthand(trimmed)?;
        return translate_crontab(fields);
    }
    let fields: Vec<&str> = trimmed.split_whitespace().collect();
    match fields.as_slice() {
        [minute, hour, day_of_month, month, day_of_week] => {
            translate_crontab([*minute, *hour, *day_of_month, *month, *day_of_week])
        }
        [_, _, hour, ..] if fields.len() == 6 || fields.len() == 7 => {
            translate_cron_crate_form(trimmed, &fields, hour)
        }
        _ => Err(format!(
            "it has {} field{}; {EXPECTED_FORMS}",
            fields.len(),
            if fields.len() == 1 { "" } else { "s" }
        )),
    }
}

fn crontab_fields_of_shorthand(shorthand: &str) -> Result<[&'static str; 5], String> {
    match shorthand.to_ascii_lowercase().as_str() {
        "@hourly" => Ok(["0", "*", "*", "*", "*"]),
        "@daily" | "@midnight" => Ok(["0", "0", "*", "*", "*"]),
        "@weekly" => Ok(["0", "0", "*", "*", "0"]),
        "@monthly" => Ok(["0", "0", "1", "*", "*"]),
        "@yearly" | "@annually" => Ok(["0", "0", "1", "1", "*"]),
        "@reboot" => {
            Err("@reboot is not supported: the scheduler only runs jobs at clock times".to_string())
        }
        other => Err(format!(
            "\"{other}\" is not a known shorthand (use @hourly, @daily, @midnight, @weekly, \
             @monthly, @yearly or @annually); {EXPECTED_FORMS}"
        )),
    }
}

/// The 6/7-field form goes to the cron crate as written; our own field check only runs when
/// the crate rejects it, to say which field is wrong.
fn translate_cron_crate_form(
    expression: &str,
    fields: &[&str],
    hour_field: &str,
) -> Result<Translation, String> {
    if let Err(error) = cron::Schedule::try_from(expression) {
        let specs = [
            &SECOND,
            &MINUTE,
            &HOUR,
            &DAY_OF_MONTH,
            &MONTH,
            &CRON_CRATE_DAY_OF_WEEK,
            &YEAR,
        ];
        for (field_text, spec) in fields.iter().zip(specs) {
            parse_field(field_text, spec)
                .map_err(|message| format!("{message}; {EXPECTED_FORMS}"))?;
        }
        return Err(format!(
            "the cron crate rejected it ({}); {EXPECTED_FORMS}",
            last_line_of_cron_error(&error)
        ));
    }
    Ok(Translation {
        cron_expressions: vec![expression.to_string()],
        daylight_saving_handling: handling_for_hour_field(hour_field),
    })
}

fn translate_crontab(fields: [&str; 5]) -> Result<Translation, String> {
    let [minute_field, hour_field, day_of_month_field, month_field, day_of_week_field] = fields;
    let with_hint = |message: String| format!("{message}; {EXPECTED_FORMS}");
    let minutes = parse_field(minute_field, &MINUTE).map_err(with_hint)?;
    let hours = parse_field(hour_field, &HOUR).map_err(with_hint)?;
    let days_of_month = parse_field(day_of_month_field, &DAY_OF_MONTH).map_err(with_hint)?;
    let months = parse_field(month_field, &MONTH).map_err(with_hint)?;
    let crontab_days_of_week = parse_field(day_of_week_field, &DAY_OF_WEEK).map_err(with_hint)?;
    // crontab: 0 and 7 = Sunday, 1 = Monday … 6 = Saturday; cron crate: 1 = Sunday … 7 = Saturday.
    let cron_crate_days_of_week: BTreeSet<u32> = crontab_days_of_week
        .iter()
        .map(|day| (day % 7) + 1)
        .collect();

    let minute_text = render_field(&minutes, 0, 59);
    let hour_text = render_field(&hours, 0, 23);
    let day_of_month_text = render_field(&days_of_month, 1, 31);
    let month_text = render_field(&months, 1, 12);
    let day_of_week_text = render_field(&cron_crate_days_of_week, 1, 7);

    // Vixie cron: a day field counts as unrestricted when it starts with `*`.
    let day_of_month_unrestricted = is_unrestricted_day_field(day_of_month_field);
    let day_of_week_unrestricted = is_unrestricted_day_field(day_of_week_field);
    let cron_expressions = if day_of_month_unrestricted || day_of_week_unrestricted {
        vec![format!(
            "0 {minute_text} {hour_text} {day_of_month_text} {month_text} {day_of_week_text}"
        )]
    } else {
        vec![
            format!("0 {minute_text} {hour_text} {day_of_month_text} {month_text} *"),
            format!("0 {minute_text} {hour_text} * {month_text} {day_of_week_text}"),
        ]
    };
    Ok(Translation {
        cron_expressions,
        daylight_saving_handling: handling_for_hour_field(hour_field),
    })
}

fn is_unrestricted_day_field(field: &str) -> bool {
    field.starts_with('*') || field == "?"
}

fn render_field(values: &BTreeSet<u32>, first: u32, last: u32) -> String {
    if values.len() == (last - first + 1) as usize {
        return "*".to_string();
    }
    values
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn last_line_of_cron_error(error: &cron::error::Error) -> String {
    let text = error.to_string();
    text.lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty() && *line != "^")
        .map(str::to_string)
        .unwrap_or_else(|| "syntax error".to_string())
}

/// The range and names of one cron field.
struct FieldSpec {
    name: &'static str,
    first: u32,
    last: u32,
    names: &'static [(&'static str, u32)],
    /// Accepts `?` as a synonym of `*` (day fields, as in Quartz and the cron crate).
    accepts_question_mark: bool,
    /// Added to out-of-range messages.
    note: &'static str,
}

const MONTH_NAMES: &[(&str, u32)] = &[
    ("jan", 1),
    ("january", 1),
    ("feb", 2),
    ("february", 2),
    ("mar", 3),
    ("march", 3),
    ("apr", 4),
    ("april", 4),
    ("may", 5),
    ("jun", 6),
    ("june", 6),
    ("jul", 7),
    ("july", 7),
    ("aug", 8),
    ("august", 8),
    ("sep", 9),
    ("september", 9),
    ("oct", 10),
    ("october", 10),
    ("nov", 11),
    ("november", 11),
    ("dec", 12),
    ("december", 12),
];

const CRONTAB_DAY_NAMES: &[(&str, u32)] = &[
    ("sun", 0),
    ("sunday", 0),
    ("mon", 1),
    ("monday", 1),
    ("tue", 2),
    ("tues", 2),
    ("tuesday", 2),
    ("wed", 3),
    ("wednesday", 3),
    ("thu", 4),
    ("thurs", 4),
    ("thursday", 4),
    ("fri", 5),
    ("friday", 5),
    ("sat", 6),
    ("saturday", 6),
];

const CRON_CRATE_DAY_NAMES: &[(&str, u32)] = &[
    ("sun", 1),
    ("sunday", 1),
    ("mon", 2),
    ("monday", 2),
    ("tue", 3),
    ("tues", 3),
    ("tuesday", 3),
    ("wed", 4),
    ("wednesday", 4),
    ("thu", 5),
    ("thurs", 5),
    ("thursday", 5),
    ("fri", 6),
    ("friday", 6),
    ("sat", 7),
    ("saturday", 7),
];

const SECOND: FieldSpec = FieldSpec {
    name: "second",
    first: 0,
    last: 59,
    names: &[],
    accepts_question_mark: false,
    note: "",
};
const MINUTE: FieldSpec = FieldSpec {
    name: "minute",
    first: 0,
    last: 59,
    names: &[],
    accepts_question_mark: false,
    note: "",
};
const HOUR: FieldSpec = FieldSpec {
    name: "hour",
    first: 0,
    last: 23,
    names: &[],
    accepts_question_mark: false,
    note: "",
};
const DAY_OF_MONTH: FieldSpec = FieldSpec {
    name: "day-of-month",
    first: 1,
    last: 31,
    names: &[],
    accepts_question_mark: true,
    note: "",
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    first: 1,
    last: 12,
    names: MONTH_NAMES,
    accepts_question_mark: false,
    note: "",
};
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day-of-week",
    first: 0,
    last: 7,
    names: CRONTAB_DAY_NAMES,
    accepts_question_mark: true,
    note: ", 0 and 7 = Sunday",
};
const CRON_CRATE_DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day-of-week",
    first: 1,
    last: 7,
    names: CRON_CRATE_DAY_NAMES,
    accepts_question_mark: true,
    note: ", 1 = Sunday … 7 = Saturday in the 6/7-field form",
};
const YEAR: FieldSpec = FieldSpec {
    name: "year",
    first: 1970,
    last: 2100,
    names: &[],
    accepts_question_mark: false,
    note: "",
};

/// The values one field selects, in the field's own numbering.
fn parse_field(field: &str, spec: &FieldSpec) -> Result<BTreeSet<u32>, String> {
    let mut values = BTreeSet::new();
    for item in field.split(',') {
        if item.is_empty() {
            return Err(format!(
                "the {} field \"{field}\" has an empty list item",
                spec.name
            ));
        }
        values.extend(parse_field_item(item, spec)?);
    }
    Ok(values)
}

fn parse_field_item(item: &str, spec: &FieldSpec) -> Result<Vec<u32>, String> {
    let (base, step) = match item.split_once('/') {
        Some((base, step_text)) => (base, Some(parse_step(step_text, spec)?)),
        None => (item, None),
    };
    let (first, last) = if base == "*" || (base == "?" && spec.accepts_question_mark) {
        if base == "?" && step.is_some() {
            return Err(format!(
                "\"{item}\" in the {} field: `?` cannot take a step",
                spec.name
            ));
        }
        (spec.first, spec.last)
    } else if let Some((start_text, end_text)) = base.split_once('-') {
        let start = parse_value(start_text, spec)?;
        let end = parse_value(end_text, spec)?;
        if start > end {
            return Err(format!(
                "the {} range \"{base}\" runs backwards; write the lower value first",
                spec.name
            ));
        }
        (start, end)
    } else {
        let value = parse_value(base, spec)?;
        match step {
            Some(_) => (value, spec.last),
            None => (value, value),
        }
    };
    let step = step.unwrap_or(1) as usize;
    Ok((first..=last).step_by(step).collect())
}

fn parse_step(step_text: &str, spec: &FieldSpec) -> Result<u32, String> {
    let step: u32 = step_text.parse().map_err(|_| {
        format!(
            "the {} step \"{step_text}\" is not a whole number",
            spec.name
        )
    })?;
    let largest_step = spec.last.max(1);
    if step == 0 || step > largest_step {
        return Err(format!(
            "the {} step {step} is out of range (1-{largest_step})",
            spec.name
        ));
    }
    Ok(step)
}

fn parse_value(text: &str, spec: &FieldSpec) -> Result<u32, String> {
    if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) {
        let value: u32 = text.parse().unwrap_or(u32::MAX);
        if value < spec.first || value > spec.last {
            return Err(format!(
                "{} {text} is out of range ({}-{}{})",
                spec.name, spec.first, spec.last, spec.note
            ));
        }
        return Ok(value);
    }
    let lowercase = text.to_ascii_lowercase();
    if let Some((_, value)) = spec.names.iter().find(|(name, _)| *name == lowercase) {
        return Ok(*value);
    }
    let accepted = if spec.names.is_empty() {
        format!("a number {}-{}", spec.first, spec.last)
    } else {
        format!(
            "a number {}-{}{} or a name such as {}",
            spec.first, spec.last, spec.note, spec.names[0].0
        )
    };
    Err(format!(
        "\"{text}\" is not a valid {} (expected {accepted}, `*`, a list a,b, a range a-b or a \
         step */n)",
        spec.name
    ))
}

/// What a run of the scheduler did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SchedulerSummary {
    pub runs: u32,
    pub failed_runs: u32,
    pub skipped_fire_times: u64,
}

enum WaitOutcome {
    FireTimeReached,
    ShutdownRequested,
}

/// Sleeps until `clock()` reaches `fire_time`, in steps of at most a minute, re-reading the
/// clock after each step; gives up as soon as `shutdown` is cancelled.
async fn wait_until_fire_time(
    fire_time: DateTime<Utc>,
    clock: &Clock,
    shutdown: &CancellationToken,
) -> WaitOutcome {
    loop {
        if shutdown.is_cancelled() {
            return WaitOutcome::ShutdownRequested;
        }
        let now = clock();
        if now >= fire_time {
            return WaitOutcome::FireTimeReached;
        }
        let remaining = (fire_time - now)
            .to_std()
            .unwrap_or(std::time::Duration::ZERO);
        let step = remaining.min(LONGEST_SLEEP_BETWEEN_CLOCK_READS);
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => return WaitOutcome::ShutdownRequested,
            _ = tokio::time::sleep(step) => {}
        }
    }
}

fn utc_rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Waits for each fire time and runs `job(fire_time)`; never two at once (the job is awaited
/// before the next fire time is computed; fire times that passed while a job ran are skipped
/// and counted, with one WARN naming how many and the next fire time). Logs INFO
/// `next run at <utc rfc3339> (<local display>)` before each wait. A failed job (returns false) is logged
/// at ERROR ("run failed; the scheduler keeps going") and the loop continues. Returns when
/// `max_runs` jobs have run, or as soon as `shutdown` is cancelled while waiting (a job in
/// progress is not interrupted by this function: the job watches the same token itself).
///
/// Waiting sleeps at most a minute at a time and re-reads `clock` after each step, so a
/// suspended machine or a clock jump is noticed within a minute.
///
/// A fire time that was already reached when the wait ends (late wake-up after a suspend)
/// still runs, once; the fire times after it that passed before the job finished are the
/// skipped ones. If the schedule has no further fire time, the loop logs an error and returns.
pub async fn run_scheduler<Job, JobFuture>(
    schedule: &CronSchedule,
    clock: Clock,
    max_runs: Option<u32>,
    shutdown: CancellationToken,
    mut job: Job,
) -> SchedulerSummary
where
    Job: FnMut(DateTime<Utc>) -> JobFuture,
    JobFuture: std::future::Future<Output = bool>,
{
    let mut summary = SchedulerSummary::default();
    let mut next_fire_time = schedule.next_after(clock());
    loop {
        if max_runs.is_some_and(|most_runs| summary.runs >= most_runs) {
            return summary;
        }
        let Some(fire_time) = next_fire_time else {
            tracing::error!(
                schedule = schedule.expression(),
                time_zone = %schedule.time_zone(),
                "the schedule has no further fire time; the scheduler stops"
            );
            return summary;
        };
        tracing::info!(
            "next run at {} ({})",
            utc_rfc3339(fire_time),
            schedule.local_display(fire_time)
        );
        match wait_until_fire_time(fire_time, &clock, &shutdown).await {
            WaitOutcome::FireTimeReached => {}
            WaitOutcome::ShutdownRequested => {
                tracing::info!(
                    runs = summary.runs,
                    "shutdown requested while waiting; the scheduler stops"
                );
                return summary;
            }
        }

        let succeeded = job(fire_time).await;
        summary.runs = summary.runs.saturating_add(1);
        if !succeeded {
            summary.failed_runs = summary.failed_runs.saturating_add(1);
            tracing::error!(
                fire_time = %utc_rfc3339(fire_time),
                "run failed; the scheduler keeps going"
            );
        }
        if max_runs.is_some_and(|most_runs| summary.runs >= most_runs) {
            return summary;
        }

        let finished_at = clock();
        let mut skipped_now: u64 = 0;
        let mut candidate = schedule.next_after(fire_time);
        while let Some(passed) = candidate.filter(|fire| *fire <= finished_at) {
            skipped_now = skipped_now.saturating_add(1);
            candidate = schedule.next_after(passed);
        }
        if skipped_now > 0 {
            summary.skipped_fire_times = summary.skipped_fire_times.saturating_add(skipped_now);
            let next_display = candidate
                .map(|next| format!("{} ({})", utc_rfc3339(next), schedule.local_display(next)))
                .unwrap_or_else(|| "none".to_string());
            tracing::warn!(
                skipped = skipped_now,
                "skipped {skipped_now} fire time(s) that passed while the run for {} was in \
                 progress; next run at {next_display}",
                utc_rfc3339(fire_time)
            );
        }
        next_fire_time = candidate;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, Weekday};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    fn utc(year: i32, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(year, month, day, hour, minute, second)
            .single()
            .unwrap()
    }

    fn schedule(expression: &str, time_zone: &str) -> CronSchedule {
        CronSchedule::parse(expression, time_zone)
            .unwrap_or_else(|error| panic!("{expression} in {time_zone}: {error}"))
    }

    fn error_text(expression: &str, time_zone: &str) -> String {
        match CronSchedule::parse(expression, time_zone) {
            Ok(_) => panic!("{expression:?} should be rejected"),
            Err(error) => error.to_string(),
        }
    }

    fn weekdays(fire_times: &[DateTime<Utc>]) -> Vec<Weekday> {
        fire_times.iter().map(|fire| fire.weekday()).collect()
    }

    // ---- day of week -------------------------------------------------------------------

    #[test]
    fn crontab_one_to_five_is_monday_to_friday() {
        // 2026-03-01 is a Sunday.
        let fires = schedule("0 6 * * 1-5", "UTC").upcoming(utc(2026, 3, 1, 0, 0, 0), 6);
        assert_eq!(
            weekdays(&fires),
            [
                Weekday::Mon,
                Weekday::Tue,
                Weekday::Wed,
                Weekday::Thu,
                Weekday::Fri,
                Weekday::Mon
            ]
        );
        assert_eq!(fires[0], utc(2026, 3, 2, 6, 0, 0));
        assert_eq!(fires[5], utc(2026, 3, 9, 6, 0, 0));
    }

    #[test]
    fn crontab_zero_and_seven_are_sunday() {
        for expression in ["0 6 * * 0", "0 6 * * 7", "0 6 * * sun", "0 6 * * SUNDAY"] {
            let fires = schedule(expression, "UTC").upcoming(utc(2026, 3, 2, 0, 0, 0), 3);
            assert_eq!(weekdays(&fires), [Weekday::Sun; 3], "{expression}");
            assert_eq!(fires[0], utc(2026, 3, 8, 6, 0, 0), "{expression}");
        }
    }

    #[test]
    fn crontab_day_names_lists_ranges_and_steps() {
        let start = utc(2026, 3, 1, 0, 0, 0); // Sunday
        let named = schedule("0 6 * * MON-FRI", "UTC").upcoming(start, 10);
        let lower = schedule("0 6 * * mon-fri", "UTC").upcoming(start, 10);
        let numeric = schedule("0 6 * * 1-5", "UTC").upcoming(start, 10);
        assert_eq!(named, numeric);
        assert_eq!(lower, numeric);

        let weekend = schedule("0 6 * * Sat,sun", "UTC").upcoming(start, 3);
        assert_eq!(
            weekdays(&weekend),
            [Weekday::Sun, Weekday::Sat, Weekday::Sun]
        );

        let friday_to_sunday = schedule("0 6 * * 5-7", "UTC").upcoming(start, 4);
        assert_eq!(
            weekdays(&friday_to_sunday),
            [Weekday::Sun, Weekday::Fri, Weekday::Sat, Weekday::Sun]
        );

        let every_other = schedule("0 6 * * */2", "UTC").upcoming(start, 5);
        assert_eq!(
            weekdays(&every_other),
            [
                Weekday::Sun,
                Weekday::Tue,
                Weekday::Thu,
                Weekday::Sat,
                Weekday::Sun
            ]
        );

        let odd_weekdays = schedule("0 6 * * 1-5/2", "UTC").upcoming(start, 3);
        assert_eq!(
            weekdays(&odd_weekdays),
            [Weekday::Mon, Weekday::Wed, Weekday::Fri]
        );
    }

    #[test]
    fn six_field_form_uses_the_cron_crate_day_numbering() {
        // cron crate: 1 = Sunday, 2 = Monday.
        let fires = schedule("0 0 6 * * 2", "UTC").upcoming(utc(2026, 3, 1, 0, 0, 0), 2);
        assert_eq!(weekdays(&fires), [Weekday::Mon, Weekday::Mon]);
        let sundays = schedule("0 0 6 * * 1", "UTC").upcoming(utc(2026, 3, 2, 0, 0, 0), 1);
        assert_eq!(sundays, [utc(2026, 3, 8, 6, 0, 0)]);
        let named = schedule("0 0 6 * * Mon-Fri", "UTC").upcoming(utc(2026, 3, 1, 0, 0, 0), 5);
        assert_eq!(named[0], utc(2026, 3, 2, 6, 0, 0));
        assert_eq!(named[4], utc(2026, 3, 6, 6, 0, 0));
        let with_year = schedule("0 30 9 1 1 * 2027", "UTC");
        assert_eq!(
            with_year.upcoming(utc(2026, 1, 1, 0, 0, 0), 2),
            [utc(2027, 1, 1, 9, 30, 0)]
        );
    }

    // ---- day-of-month OR day-of-week ----------------------------------------------------

    #[test]
    fn day_of_month_and_day_of_week_both_restricted_fire_on_either() {
        let fires = schedule("0 0 13 * 5", "UTC").upcoming(utc(2026, 1, 1, 0, 0, 0), 9);
        assert_eq!(
            fires,
            [
                utc(2026, 1, 2, 0, 0, 0),  // Friday
                utc(2026, 1, 9, 0, 0, 0),  // Friday
                utc(2026, 1, 13, 0, 0, 0), // Tuesday the 13th
                utc(2026, 1, 16, 0, 0, 0),
                utc(2026, 1, 23, 0, 0, 0),
                utc(2026, 1, 30, 0, 0, 0),
                utc(2026, 2, 6, 0, 0, 0),
                utc(2026, 2, 13, 0, 0, 0), // Friday the 13th: once
                utc(2026, 2, 20, 0, 0, 0),
            ]
        );
    }

    #[test]
    fn day_field_starting_with_star_keeps_and_semantics_like_vixie_cron() {
        // Odd days of the month that are Mondays.
        let fires = schedule("0 0 */2 * 1", "UTC").upcoming(utc(2026, 1, 1, 0, 0, 0), 3);
        for fire in &fires {
            assert_eq!(fire.weekday(), Weekday::Mon);
            assert_eq!(fire.day() % 2, 1);
        }
        assert_eq!(fires[0], utc(2026, 1, 5, 0, 0, 0));
        // Restricted day-of-month, unrestricted day-of-week: only the 1st.
        let first_only = schedule("0 0 1 * *", "UTC").upcoming(utc(2026, 1, 1, 0, 0, 0), 2);
        assert_eq!(
            first_only,
            [utc(2026, 2, 1, 0, 0, 0), utc(2026, 3, 1, 0, 0, 0)]
        );
    }

    // ---- parse errors -------------------------------------------------------------------

    #[test]
    fn out_of_range_minute_is_reported_with_the_expected_forms() {
        assert_eq!(
            error_text("61 * * * *", "UTC"),
            "invalid schedule \"61 * * * *\": minute 61 is out of range (0-59); expected a \
             5-field crontab expression (min hour dom mon dow) or the 6/7-field form with \
             seconds (sec min hour dom mon dow [year])"
        );
    }

    #[test]
    fn rejects_bad_expressions_naming_what_is_wrong() {
        let cases = [
            ("", "the expression is empty"),
            ("   ", "the expression is empty"),
            ("* * * *", "it has 4 fields"),
            ("0 0 0 1 1 * 2027 x", "it has 8 fields"),
            ("0 24 * * *", "hour 24 is out of range (0-23)"),
            ("0 0 0 * *", "day-of-month 0 is out of range (1-31)"),
            ("0 0 1 13 *", "month 13 is out of range (1-12)"),
            ("0 0 * * 8", "day-of-week 8 is out of range (0-7, 0 and 7 = Sunday)"),
            ("abc * * * *", "\"abc\" is not a valid minute"),
            ("* * * * funday", "\"funday\" is not a valid day-of-week"),
            ("*/0 * * * *", "the minute step 0 is out of range"),
            ("5-1 * * * *", "the minute range \"5-1\" runs backwards"),
            ("1- * * * *", "\"\" is not a valid minute"),
            ("1,,2 * * * *", "empty list item"),
            ("0 0 * * fri-mon", "the day-of-week range \"fri-mon\" runs backwards"),
            ("@reboot", "@reboot is not supported"),
            ("@fortnightly", "not a known shorthand"),
            ("61 * * * * *", "second 61 is out of range (0-59)"),
            (
                "0 0 0 * * 0",
                "day-of-week 0 is out of range (1-7, 1 = Sunday … 7 = Saturday in the 6/7-field form)",
            ),
            ("0 0 0 1 1 * 1969", "year 1969 is out of range (1970-2100)"),
            ("x y z a b c", "\"x\" is not a valid second"),
        ];
        for (expression, expected) in cases {
            let text = error_text(expression, "UTC");
            assert!(
                text.starts_with(&format!("invalid schedule \"{expression}\": ")),
                "{text}"
            );
            assert!(text.contains(expected), "{expression:?}: {text}");
        }
    }

    #[test]
    fn rejects_expressions_that_never_fire() {
        for expression in [
            "0 0 30 2 *",
            "0 0 31 4 *",
            "0 0 0 30 2 *",
            "0 0 0 1 1 * 2020",
        ] {
            let text = error_text(expression, "UTC");
            assert!(text.contains("it never fires"), "{expression}: {text}");
        }
    }

    #[test]
    fn rejects_unknown_time_zones() {
        assert_eq!(
            error_text("0 6 * * *", "Europe/Berln"),
            "unknown time zone \"Europe/Berln\": expected an IANA name such as UTC or Europe/Berlin"
        );
        assert_eq!(
            schedule("0 6 * * *", "europe/berlin").time_zone(),
            chrono_tz::Europe::Berlin
        );
        assert_eq!(
            schedule("0 6 * * *", "Etc/UTC").time_zone(),
            chrono_tz::Etc::UTC
        );
        assert!(matches!(
            CronSchedule::parse("0 6 * * *", ""),
            Err(ScheduleError::UnknownTimeZone { .. })
        ));
    }

    #[test]
    fn shorthands_and_accessors() {
        let start = utc(2026, 1, 14, 10, 20, 0); // Wednesday
        let cases = [
            ("@hourly", utc(2026, 1, 14, 11, 0, 0)),
            ("@daily", utc(2026, 1, 15, 0, 0, 0)),
            ("@midnight", utc(2026, 1, 15, 0, 0, 0)),
            ("@weekly", utc(2026, 1, 18, 0, 0, 0)),
            ("@monthly", utc(2026, 2, 1, 0, 0, 0)),
            ("@yearly", utc(2027, 1, 1, 0, 0, 0)),
            ("@annually", utc(2027, 1, 1, 0, 0, 0)),
            ("@DAILY", utc(2026, 1, 15, 0, 0, 0)),
        ];
        for (expression, expected) in cases {
            assert_eq!(
                schedule(expression, "UTC").next_after(start),
                Some(expected),
                "{expression}"
            );
        }
        let berlin = schedule(" 0 6 * * * ", "Europe/Berlin");
        assert_eq!(berlin.expression(), " 0 6 * * * ");
        assert_eq!(berlin.time_zone(), chrono_tz::Europe::Berlin);
        assert_eq!(
            berlin.local_display(utc(2026, 3, 29, 1, 0, 0)),
            "2026-03-29 03:00:00 CEST"
        );
        assert_eq!(
            berlin.local_display(utc(2026, 1, 5, 5, 0, 0)),
            "2026-01-05 06:00:00 CET"
        );
    }

    #[test]
    fn next_after_is_strict_and_upcoming_counts() {
        let every_minute = schedule("* * * * *", "UTC");
        let on_the_minute = utc(2026, 5, 1, 12, 0, 0);
        assert_eq!(
            every_minute.next_after(on_the_minute),
            Some(utc(2026, 5, 1, 12, 1, 0))
        );
        let just_after = on_the_minute + TimeDelta::milliseconds(1);
        assert_eq!(
            every_minute.next_after(just_after),
            Some(utc(2026, 5, 1, 12, 1, 0))
        );
        let just_before = on_the_minute - TimeDelta::milliseconds(1);
        assert_eq!(every_minute.next_after(just_before), Some(on_the_minute));
        assert!(every_minute.upcoming(on_the_minute, 0).is_empty());
        assert_eq!(every_minute.upcoming(on_the_minute, 3).len(), 3);
        let once = schedule("0 0 0 1 1 * 2027", "UTC");
        assert_eq!(once.upcoming(on_the_minute, 5), [utc(2027, 1, 1, 0, 0, 0)]);
        assert_eq!(once.next_after(utc(2027, 1, 1, 0, 0, 0)), None);
    }

    // ---- daylight saving ----------------------------------------------------------------

    #[test]
    fn spring_forward_fixed_time_in_the_gap_fires_once_at_the_end_of_the_gap() {
        let berlin = schedule("30 2 * * *", "Europe/Berlin");
        let fires = berlin.upcoming(utc(2026, 3, 27, 12, 0, 0), 4);
        assert_eq!(
            fires,
            [
                utc(2026, 3, 28, 1, 30, 0), // 02:30 CET
                utc(2026, 3, 29, 1, 0, 0),  // 02:30 does not exist: 03:00 CEST
                utc(2026, 3, 30, 0, 30, 0), // 02:30 CEST
                utc(2026, 3, 31, 0, 30, 0),
            ]
        );
        assert_eq!(berlin.local_display(fires[1]), "2026-03-29 03:00:00 CEST");

        // Several local times inside the same gap fire once, together.
        let twice_in_gap = schedule("0,30 2 * * *", "Europe/Berlin");
        assert_eq!(
            twice_in_gap.upcoming(utc(2026, 3, 28, 12, 0, 0), 2),
            [utc(2026, 3, 29, 1, 0, 0), utc(2026, 3, 30, 0, 0, 0)]
        );

        // New York springs forward at 02:00 EST -> 03:00 EDT (07:00 UTC) on 2026-03-08.
        let new_york = schedule("30 2 * * *", "America/New_York");
        assert_eq!(
            new_york.upcoming(utc(2026, 3, 7, 12, 0, 0), 2),
            [utc(2026, 3, 8, 7, 0, 0), utc(2026, 3, 9, 6, 30, 0)]
        );
    }

    #[test]
    fn fall_back_fixed_time_that_occurs_twice_fires_once_at_the_first_occurrence() {
        let berlin = schedule("30 2 * * *", "Europe/Berlin");
        let fires = berlin.upcoming(utc(2026, 10, 24, 12, 0, 0), 3);
        assert_eq!(
            fires,
            [
                utc(2026, 10, 25, 0, 30, 0), // 02:30 CEST, not again at 02:30 CET
                utc(2026, 10, 26, 1, 30, 0),
                utc(2026, 10, 27, 1, 30, 0),
            ]
        );
        // Asked from inside the repeated hour's second pass, it does not fire again.
        assert_eq!(
            berlin.next_after(utc(2026, 10, 25, 1, 10, 0)),
            Some(utc(2026, 10, 26, 1, 30, 0))
        );
        // From inside the first pass, before 02:30 CEST.
        assert_eq!(
            berlin.next_after(utc(2026, 10, 25, 0, 10, 0)),
            Some(utc(2026, 10, 25, 0, 30, 0))
        );

        // New York falls back at 02:00 EDT -> 01:00 EST (06:00 UTC) on 2026-11-01.
        let new_york = schedule("30 1 * * *", "America/New_York");
        assert_eq!(
            new_york.upcoming(utc(2026, 10, 31, 12, 0, 0), 2),
            [utc(2026, 11, 1, 5, 30, 0), utc(2026, 11, 2, 6, 30, 0)]
        );
    }

    #[test]
    fn daily_job_follows_local_time_across_the_change() {
        let berlin = schedule("0 6 * * *", "Europe/Berlin");
        assert_eq!(
            berlin.upcoming(utc(2026, 3, 27, 12, 0, 0), 3),
            [
                utc(2026, 3, 28, 5, 0, 0),
                utc(2026, 3, 29, 4, 0, 0),
                utc(2026, 3, 30, 4, 0, 0),
            ]
        );
        assert_eq!(
            berlin.upcoming(utc(2026, 10, 24, 12, 0, 0), 2),
            [utc(2026, 10, 25, 5, 0, 0), utc(2026, 10, 26, 5, 0, 0)]
        );
    }

    fn assert_every_fifteen_real_minutes(fires: &[DateTime<Utc>]) {
        for pair in fires.windows(2) {
            assert_eq!(
                pair[1] - pair[0],
                TimeDelta::minutes(15),
                "{} -> {}",
                pair[0],
                pair[1]
            );
        }
    }

    #[test]
    fn sub_hourly_job_keeps_its_real_time_cadence_across_both_changes() {
        for (zone, spring_start, fall_start) in [
            (
                "Europe/Berlin",
                utc(2026, 3, 28, 22, 0, 0),
                utc(2026, 10, 24, 22, 0, 0),
            ),
            (
                "America/New_York",
                utc(2026, 3, 8, 4, 0, 0),
                utc(2026, 11, 1, 3, 0, 0),
            ),
        ] {
            let quarter_hourly = schedule("*/15 * * * *", zone);
            let spring = quarter_hourly.upcoming(spring_start, 6 * 4);
            assert_eq!(spring[0], spring_start + TimeDelta::minutes(15), "{zone}");
            assert_every_fifteen_real_minutes(&spring);
            let fall = quarter_hourly.upcoming(fall_start, 6 * 4);
            assert_eq!(fall[0], fall_start + TimeDelta::minutes(15), "{zone}");
            assert_every_fifteen_real_minutes(&fall);
        }
        // The repeated hour in Berlin fires at both passes, in time order.
        let berlin = schedule("*/15 * * * *", "Europe/Berlin");
        let fall = berlin.upcoming(utc(2026, 10, 24, 23, 50, 0), 9);
        let shown: Vec<String> = fall
            .iter()
            .map(|fire| berlin.local_display(*fire))
            .collect();
        assert_eq!(shown[0], "2026-10-25 02:00:00 CEST");
        assert_eq!(shown[3], "2026-10-25 02:45:00 CEST");
        assert_eq!(shown[4], "2026-10-25 02:00:00 CET");
        assert_eq!(shown[8], "2026-10-25 03:00:00 CET");
        // In spring the local times of the gap simply do not show.
        let spring = berlin.upcoming(utc(2026, 3, 29, 0, 40, 0), 2);
        let shown: Vec<String> = spring
            .iter()
            .map(|fire| berlin.local_display(*fire))
            .collect();
        assert_eq!(
            shown,
            ["2026-03-29 01:45:00 CET", "2026-03-29 03:00:00 CEST"]
        );
    }

    #[test]
    fn hourly_job_fires_every_real_hour_across_both_changes() {
        let hourly = schedule("30 * * * *", "Europe/Berlin");
        for start in [utc(2026, 3, 28, 22, 0, 0), utc(2026, 10, 24, 22, 0, 0)] {
            let fires = hourly.upcoming(start, 8);
            assert_eq!(fires[0], start + TimeDelta::minutes(30));
            for pair in fires.windows(2) {
                assert_eq!(pair[1] - pair[0], TimeDelta::hours(1), "{}", pair[0]);
            }
        }
    }

    const ZONES_WITH_ODD_CHANGES: [&str; 8] = [
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe", // half-hour change
        "America/Santiago",    // changes at midnight
        "Pacific/Chatham",     // +12:45 / +13:45
        "Asia/Kathmandu",      // +05:45, no daylight saving
        "Europe/London",
        "America/Sao_Paulo", // no daylight saving since 2019
    ];

    #[test]
    fn quarter_hourly_job_fires_every_fifteen_real_minutes_for_a_whole_year_everywhere() {
        let start = utc(2026, 1, 1, 0, 0, 0);
        for zone in ZONES_WITH_ODD_CHANGES {
            let fires = schedule("*/15 * * * *", zone).upcoming(start, 365 * 96);
            assert_eq!(fires.len(), 365 * 96, "{zone}");
            assert_eq!(fires[0], start + TimeDelta::minutes(15), "{zone}");
            assert_every_fifteen_real_minutes(&fires);
        }
    }

    #[test]
    fn fixed_time_job_fires_once_per_local_day_for_a_whole_year_everywhere() {
        let start = utc(2026, 1, 1, 12, 0, 0);
        for zone in ZONES_WITH_ODD_CHANGES {
            for expression in ["30 2 * * *", "0 0 * * *", "45 1 * * *"] {
                let daily = schedule(expression, zone);
                let fires = daily.upcoming(start, 365);
                assert_eq!(fires.len(), 365, "{zone} {expression}");
                let local_dates: Vec<chrono::NaiveDate> = fires
                    .iter()
                    .map(|fire| fire.with_timezone(&daily.time_zone()).date_naive())
                    .collect();
                for pair in local_dates.windows(2) {
                    assert_eq!(
                        pair[1] - pair[0],
                        TimeDelta::days(1),
                        "{zone} {expression}: {} -> {}",
                        pair[0],
                        pair[1]
                    );
                }
                for pair in fires.windows(2) {
                    let spacing = pair[1] - pair[0];
                    assert!(
                        spacing >= TimeDelta::hours(22) && spacing <= TimeDelta::hours(26),
                        "{zone} {expression}: {} -> {}",
                        pair[0],
                        pair[1]
                    );
                }
            }
        }
    }

    // ---- month ends ---------------------------------------------------------------------

    #[test]
    fn thirty_first_skips_months_without_one() {
        let fires = schedule("0 0 31 * *", "UTC").upcoming(utc(2026, 1, 1, 0, 0, 0), 4);
        assert_eq!(
            fires,
            [
                utc(2026, 1, 31, 0, 0, 0),
                utc(2026, 3, 31, 0, 0, 0),
                utc(2026, 5, 31, 0, 0, 0),
                utc(2026, 7, 31, 0, 0, 0),
            ]
        );
    }

    #[test]
    fn twenty_ninth_of_february_fires_only_in_leap_years() {
        let fires = schedule("0 0 29 2 *", "UTC").upcoming(utc(2026, 1, 1, 0, 0, 0), 2);
        assert_eq!(
            fires,
            [utc(2028, 2, 29, 0, 0, 0), utc(2032, 2, 29, 0, 0, 0)]
        );
    }

    #[test]
    fn first_of_month_rolls_over_month_and_year_ends() {
        let monthly = schedule("0 0 1 * *", "UTC");
        assert_eq!(
            monthly.next_after(utc(2026, 1, 31, 23, 59, 59)),
            Some(utc(2026, 2, 1, 0, 0, 0))
        );
        assert_eq!(
            monthly.next_after(utc(2026, 12, 31, 23, 59, 59)),
            Some(utc(2027, 1, 1, 0, 0, 0))
        );
        let last_minute_of_year = schedule("59 23 31 12 *", "UTC");
        assert_eq!(
            last_minute_of_year.upcoming(utc(2026, 12, 31, 23, 59, 0), 1),
            [utc(2027, 12, 31, 23, 59, 0)]
        );
    }

    #[test]
    fn late_evening_in_new_york_lands_on_the_next_utc_day() {
        let new_york = schedule("30 23 * * *", "America/New_York");
        assert_eq!(
            new_york.upcoming(utc(2026, 1, 15, 12, 0, 0), 2),
            [utc(2026, 1, 16, 4, 30, 0), utc(2026, 1, 17, 4, 30, 0)]
        );
        assert_eq!(
            new_york.next_after(utc(2026, 7, 15, 12, 0, 0)),
            Some(utc(2026, 7, 16, 3, 30, 0))
        );
        // New Year's Eve local is New Year's Day in UTC.
        let new_years_eve = schedule("30 23 31 12 *", "America/New_York");
        assert_eq!(
            new_years_eve.next_after(utc(2026, 6, 1, 0, 0, 0)),
            Some(utc(2027, 1, 1, 4, 30, 0))
        );
    }

    // ---- scheduler loop -----------------------------------------------------------------

    fn paused_clock(base: DateTime<Utc>) -> Clock {
        let start = tokio::time::Instant::now();
        Arc::new(move || base + chrono::Duration::from_std(start.elapsed()).unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn runs_max_runs_jobs_at_their_fire_times() {
        let base = utc(2026, 1, 1, 0, 0, 0);
        let clock = paused_clock(base);
        let every_second = schedule("* * * * * *", "UTC");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let job_clock = clock.clone();
        let job_seen = seen.clone();
        let summary = run_scheduler(
            &every_second,
            clock,
            Some(3),
            CancellationToken::new(),
            move |fire_time| {
                job_seen.lock().unwrap().push((fire_time, job_clock()));
                async { true }
            },
        )
        .await;
        assert_eq!(
            summary,
            SchedulerSummary {
                runs: 3,
                failed_runs: 0,
                skipped_fire_times: 0
            }
        );
        let seen = seen.lock().unwrap();
        let fire_times: Vec<_> = seen.iter().map(|(fire, _)| *fire).collect();
        assert_eq!(
            fire_times,
            [
                base + TimeDelta::seconds(1),
                base + TimeDelta::seconds(2),
                base + TimeDelta::seconds(3)
            ]
        );
        for (fire_time, started_at) in seen.iter() {
            assert!(*started_at >= *fire_time);
            assert!(*started_at - *fire_time < TimeDelta::milliseconds(10));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn slow_job_skips_fire_times_and_never_overlaps() {
        let base = utc(2026, 1, 1, 0, 0, 0);
        let clock = paused_clock(base);
        let every_second = schedule("* * * * * *", "UTC");
        let running = Arc::new(AtomicUsize::new(0));
        let most_running = Arc::new(AtomicUsize::new(0));
        let fire_times = Arc::new(Mutex::new(Vec::new()));
        let (job_running, job_most, job_fires) =
            (running.clone(), most_running.clone(), fire_times.clone());
        let summary = run_scheduler(
            &every_second,
            clock,
            Some(3),
            CancellationToken::new(),
            move |fire_time| {
                job_fires.lock().unwrap().push(fire_time);
                let running = job_running.clone();
                let most = job_most.clone();
                async move {
                    let now_running = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now_running, Ordering::SeqCst);
                    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    true
                }
            },
        )
        .await;
        assert_eq!(most_running.load(Ordering::SeqCst), 1);
        assert_eq!(
            summary,
            SchedulerSummary {
                runs: 3,
                failed_runs: 0,
                skipped_fire_times: 4
            }
        );
        // Runs at :01 (until :03.5), :04 (until :06.5), :07; :02, :03, :05, :06 skipped.
        assert_eq!(
            *fire_times.lock().unwrap(),
            [
                base + TimeDelta::seconds(1),
                base + TimeDelta::seconds(4),
                base + TimeDelta::seconds(7)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn failing_job_does_not_stop_the_loop() {
        let base = utc(2026, 1, 1, 0, 0, 0);
        let every_second = schedule("* * * * * *", "UTC");
        let mut calls = 0_u32;
        let summary = run_scheduler(
            &every_second,
            paused_clock(base),
            Some(4),
            CancellationToken::new(),
            move |_| {
                calls += 1;
                let succeed = calls.is_multiple_of(2);
                async move { succeed }
            },
        )
        .await;
        assert_eq!(
            summary,
            SchedulerSummary {
                runs: 4,
                failed_runs: 2,
                skipped_fire_times: 0
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn cancelling_while_waiting_returns_promptly_with_the_runs_so_far() {
        let base = utc(2026, 1, 1, 0, 0, 0);
        let every_ten_seconds = schedule("*/10 * * * * *", "UTC");
        let shutdown = CancellationToken::new();
        let canceller = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(25)).await;
            canceller.cancel();
        });
        let started = tokio::time::Instant::now();
        let summary = run_scheduler(
            &every_ten_seconds,
            paused_clock(base),
            None,
            shutdown,
            |_| async { true },
        )
        .await;
        assert_eq!(summary.runs, 2);
        assert_eq!(started.elapsed(), std::time::Duration::from_secs(25));

        // A long wait (hourly schedule) is cut short too, not slept out.
        let hourly = schedule("0 * * * *", "UTC");
        let shutdown = CancellationToken::new();
        let canceller = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(90)).await;
            canceller.cancel();
        });
        let started = tokio::time::Instant::now();
        let summary = run_scheduler(
            &hourly,
            paused_clock(base + TimeDelta::seconds(10)),
            None,
            shutdown,
            |_| async { true },
        )
        .await;
        assert_eq!(summary, SchedulerSummary::default());
        assert_eq!(started.elapsed(), std::time::Duration::from_secs(90));
    }

    #[tokio::test(start_paused = true)]
    async fn already_cancelled_token_returns_without_running() {
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let summary = run_scheduler(
            &schedule("* * * * * *", "UTC"),
            paused_clock(utc(2026, 1, 1, 0, 0, 0)),
            Some(5),
            shutdown,
            |_| async { true },
        )
        .await;
        assert_eq!(summary, SchedulerSummary::default());
    }

    #[tokio::test(start_paused = true)]
    async fn clock_jump_forward_is_noticed_within_a_minute() {
        // The clock jumps an hour ahead 30 s into a wait for a fire time 2 h away (a resumed
        // laptop): the job must run within one sleep step of the jump, not 2 h later.
        let base = utc(2026, 1, 1, 0, 0, 0);
        let start = tokio::time::Instant::now();
        let clock: Clock = Arc::new(move || {
            let elapsed = chrono::Duration::from_std(start.elapsed()).unwrap();
            let jump = if elapsed >= TimeDelta::seconds(30) {
                TimeDelta::minutes(119)
            } else {
                TimeDelta::zero()
            };
            base + elapsed + jump
        });
        let every_two_hours = schedule("0 */2 * * *", "UTC");
        let summary = run_scheduler(
            &every_two_hours,
            clock,
            Some(1),
            CancellationToken::new(),
            |fire_time| async move { fire_time == utc(2026, 1, 1, 2, 0, 0) },
        )
        .await;
        assert_eq!(summary.runs, 1);
        assert_eq!(summary.failed_runs, 0);
        assert!(start.elapsed() <= std::time::Duration::from_secs(90));
    }
}
