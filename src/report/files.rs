//! Publishing a run's reports: `DIR/reports/<run day>/{<name>.csv,<name>.html,index.html}`, each file
//! written to a temporary file in the same folder and renamed (a reader never sees half a file),
//! then `DIR/reports/latest` switched atomically to the newest dated folder.

use std::collections::HashSet;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use super::definition::is_file_stem;
use super::ReportError;

/// One report's rendered files, named after its definition.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedReport {
    pub name: String,
    pub csv: Vec<u8>,
    pub html: String,
}

/// Prefix of the temporary files a writer renames into place; leftovers of a crashed run are
/// removed by the next run.
const TEMPORARY_PREFIX: &str = ".tmp-";

/// Writes the run's files into `output_root/<run_day>/` and points `output_root/latest` at the
/// newest dated folder (which is `run_day` unless an older day is being re-run). Re-running a day
/// replaces its files; report files of that day that this run did not produce are removed, so the
/// folder always holds exactly one run's reports. Returns the dated folder.
pub fn write_reports(
    output_root: &Path,
    run_day: NaiveDate,
    rendered: Vec<RenderedReport>,
    index_html: String,
) -> Result<PathBuf, ReportError> {
    let mut written_file_names = HashSet::from(["index.html".to_owned()]);
    for rendered_report in &rendered {
        if !is_file_stem(&rendered_report.name) || rendered_report.name == "index" {
            return Err(ReportError::InvalidReportName {
                name: rendered_report.name.clone(),
                reason: "use lowercase letters, digits, `_` or `-` (and not `index`)",
            });
        }
        let csv_name = format!("{}.csv", rendered_report.name);
        if !written_file_names.insert(csv_name) {
            return Err(ReportError::InvalidReportName {
                name: rendered_report.name.clone(),
                reason: "two reports of one run have this name",
            });
        }
        written_file_names.insert(format!("{}.html", rendered_report.name));
    }

    let day_folder_name = run_day.format("%Y-%m-%d").to_string();
    let day_folder = output_root.join(&day_folder_name);
    fs::create_dir_all(&day_folder).map_err(|source| ReportError::Write {
        path: day_folder.clone(),
        source,
    })?;
    for rendered_report in &rendered {
        write_file_atomically(
            &day_folder.join(format!("{}.csv", rendered_report.name)),
            &rendered_report.csv,
        )?;
        write_file_atomically(
            &day_folder.join(format!("{}.html", rendered_report.name)),
            rendered_report.html.as_bytes(),
        )?;
    }
    write_file_atomically(&day_folder.join("index.html"), index_html.as_bytes())?;
    remove_stale_files(&day_folder, &written_file_names)?;
    sync_folder(&day_folder);

    let newest_folder_name = newest_dated_folder(output_root)?.unwrap_or(day_folder_name);
    point_latest_at(output_root, &newest_folder_name)?;
    tracing::info!(
        folder = %day_folder.display(),
        reports = rendered.len(),
        latest = %newest_folder_name,
        "wrote reports"
    );
    Ok(day_folder)
}

/// Writes `contents` to a temporary file beside `path`, syncs it and renames it over `path`.
fn write_file_atomically(path: &Path, contents: &[u8]) -> Result<(), ReportError> {
    let write_error = |source| ReportError::Write {
        path: path.to_path_buf(),
        source,
    };
    let folder = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("report");
    let temporary_path = folder.join(format!(
        "{TEMPORARY_PREFIX}{}-{file_name}",
        std::process::id()
    ));
    let result = (|| {
        let mut temporary_file = fs::File::create(&temporary_path)?;
        temporary_file.write_all(contents)?;
        temporary_file.sync_all()?;
        drop(temporary_file);
        fs::rename(&temporary_path, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary_path);
    }
    result.map_err(write_error)
}

/// Removes `.csv`/`.html` files this run did not write, and temporary files left by a crash.
fn remove_stale_files(
    day_folder: &Path,
    written_file_names: &HashSet<String>,
) -> Result<(), ReportError> {
    let read_error = |source| ReportError::Write {
        path: day_folder.to_path_buf(),
        source,
    };
    for directory_entry in fs::read_dir(day_folder).map_err(read_error)? {
        let directory_entry = directory_entry.map_err(read_error)?;
        let file_name = directory_entry.file_name().to_string_lossy().into_owned();
        let is_report_file = file_name.ends_with(".csv") || file_name.ends_with(".html");
        let is_leftover = file_name.starts_with(TEMPORARY_PREFIX);
        if (is_report_file && !written_file_names.contains(&file_name)) || is_leftover {
            let stale_path = directory_entry.path();
            if stale_path.is_file() {
                tracing::debug!(path = %stale_path.display(), "removing a stale report file");
                fs::remove_file(&stale_path).map_err(|source| ReportError::Write {
                    path: stale_path.clone(),
                    source,
                })?;
            }
        }
    }
    Ok(())
}

/// Makes the renames durable (best effort: not every platform can sync a folder).
fn sync_folder(folder: &Path) {
    if let Ok(folder_handle) = fs::File::open(folder) {
        let _ = folder_handle.sync_all();
    }
}

/// The greatest `YYYY-MM-DD` folder name in `output_root`.
fn newest_dated_folder(output_root: &Path) -> Result<Option<String>, ReportError> {
    let read_error = |source| ReportError::Write {
        path: output_root.to_path_buf(),
        source,
    };
    let mut newest: Option<NaiveDate> = None;
    for directory_entry in fs::read_dir(output_root).map_err(read_error)? {
        let directory_entry = directory_entry.map_err(read_error)?;
        let file_name = directory_entry.file_name().to_string_lossy().into_owned();
        let is_real_folder = directory_entry
            .file_type()
            .map(|file_type| file_type.is_dir())
            .unwrap_or(false);
        if file_name.len() != 10 || !is_real_folder {
            continue;
        }
        if let Ok(folder_day) = NaiveDate::parse_from_str(&file_name, "%Y-%m-%d") {
            newest = newest.max(Some(folder_day));
        }
    }
    Ok(newest.map(|day| day.format("%Y-%m-%d").to_string()))
}

/// `latest -> <folder>` as a relative symlink, swapped in by renaming a fresh symlink over it;
/// where symlinks are not available, `latest.txt` holds the folder name instead.
fn point_latest_at(output_root: &Path, folder_name: &str) -> Result<(), ReportError> {
    let latest_text_path = output_root.join("latest.txt");
    if create_latest_symlink(output_root, folder_name)? {
        if latest_text_path.exists() {
            let _ = fs::remove_file(&latest_text_path);
        }
        return Ok(());
    }
    write_file_atomically(&latest_text_path, format!("{folder_name}\n").as_bytes())
}

/// Returns `Ok(false)` when the platform or file system cannot make symlinks.
#[cfg(unix)]
fn create_latest_symlink(output_root: &Path, folder_name: &str) -> Result<bool, ReportError> {
    let latest_path = output_root.join("latest");
    let temporary_link_path = output_root.join(format!(".latest.tmp-{}", std::process::id()));
    let _ = fs::remove_file(&temporary_link_path);
    if let Err(symlink_error) = std::os::unix::fs::symlink(folder_name, &temporary_link_path) {
        tracing::warn!(error = %symlink_error, "cannot create a symlink; writing latest.txt instead");
        return Ok(false);
    }
    fs::rename(&temporary_link_path, &latest_path).map_err(|source| {
        let _ = fs::remove_file(&temporary_link_path);
        ReportError::Write {
            path: latest_path.clone(),
            source,
        }
    })?;
    sync_folder(output_root);
    Ok(true)
}

#[cfg(not(unix))]
fn create_latest_symlink(_output_root: &Path, _folder_name: &str) -> Result<bool, ReportError> {
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(name: &str, marker: &str) -> RenderedReport {
        RenderedReport {
            name: name.into(),
            csv: format!("a\n{marker}\n").into_bytes(),
            html: format!("<p>{marker}</p>"),
        }
    }

    fn file_names(folder: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(folder)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn latest_folder(output_root: &Path) -> String {
        let latest_path = output_root.join("latest");
        if latest_path.exists() {
            fs::read_link(&latest_path)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        } else {
            fs::read_to_string(output_root.join("latest.txt"))
                .unwrap()
                .trim()
                .to_owned()
        }
    }

    #[test]
    fn rerunning_a_day_replaces_its_files_and_latest_follows_the_newest_day() {
        let output = tempfile::tempdir().unwrap();
        let output_root = output.path().join("reports");
        let first_day = NaiveDate::from_ymd_opt(2026, 11, 3).unwrap();
        let second_day = NaiveDate::from_ymd_opt(2026, 11, 4).unwrap();

        let first_folder = write_reports(
            &output_root,
            first_day,
            vec![rendered("costs", "one"), rendered("dropped_later", "one")],
            "index one".into(),
        )
        .unwrap();
        assert_eq!(first_folder, output_root.join("2026-11-03"));
        let second_run_folder = write_reports(
            &output_root,
            first_day,
            vec![rendered("costs", "two")],
            "index two".into(),
        )
        .unwrap();
        assert_eq!(second_run_folder, first_folder);
        assert_eq!(
            file_names(&first_folder),
            ["costs.csv", "costs.html", "index.html"]
        );
        assert_eq!(
            fs::read_to_string(first_folder.join("costs.csv")).unwrap(),
            "a\ntwo\n"
        );
        assert_eq!(
            fs::read_to_string(first_folder.join("index.html")).unwrap(),
            "index two"
        );
        assert_eq!(latest_folder(&output_root), "2026-11-03");

        write_reports(
            &output_root,
            second_day,
            vec![rendered("costs", "three")],
            "index three".into(),
        )
        .unwrap();
        assert_eq!(latest_folder(&output_root), "2026-11-04");
        // Re-running an older day does not move `latest` backwards.
        write_reports(
            &output_root,
            first_day,
            vec![rendered("costs", "four")],
            "index four".into(),
        )
        .unwrap();
        assert_eq!(latest_folder(&output_root), "2026-11-04");
        assert_eq!(
            fs::read_to_string(output_root.join("latest").join("costs.csv")).unwrap(),
            "a\nthree\n",
            "latest resolves to the newest folder's files"
        );
        let mut root_names = file_names(&output_root);
        root_names.retain(|name| name != "latest.txt");
        assert_eq!(
            root_names,
            ["2026-11-03", "2026-11-04", "latest"],
            "no temporary links left"
        );
    }

    #[test]
    fn removes_temporary_leftovers_and_rejects_unsafe_names() {
        let output = tempfile::tempdir().unwrap();
        let output_root = output.path().join("reports");
        let run_day = NaiveDate::from_ymd_opt(2026, 11, 3).unwrap();
        fs::create_dir_all(output_root.join("2026-11-03")).unwrap();
        fs::write(
            output_root.join("2026-11-03").join(".tmp-999-costs.csv"),
            "half",
        )
        .unwrap();
        write_reports(
            &output_root,
            run_day,
            vec![rendered("costs", "x")],
            "index".into(),
        )
        .unwrap();
        assert_eq!(
            file_names(&output_root.join("2026-11-03")),
            ["costs.csv", "costs.html", "index.html"]
        );

        for bad_name in ["../escape", "index", "Costs", ""] {
            let error = write_reports(
                &output_root,
                run_day,
                vec![rendered(bad_name, "x")],
                "index".into(),
            )
            .unwrap_err();
            assert!(
                matches!(error, ReportError::InvalidReportName { .. }),
                "{bad_name}: {error}"
            );
        }
        let error = write_reports(
            &output_root,
            run_day,
            vec![rendered("costs", "x"), rendered("costs", "y")],
            "index".into(),
        )
        .unwrap_err();
        assert!(
            matches!(error, ReportError::InvalidReportName { .. }),
            "{error}"
        );
    }
}
