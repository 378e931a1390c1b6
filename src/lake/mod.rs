//! The Parquet lake: the only code that writes Parquet. Dataset-agnostic: it checks each batch
//! against the schema it was given, lays files out Hive-style by the data's own day
//! (`lake/<dataset>/day=YYYY-MM-DD/part-<scope>.parquet`) and replaces a file atomically
//! (temporary file in the same folder, fsync, rename), so a reader never sees half a partition.
//! `state` keeps the data dir's watermarks, run records and run lock the same way.

pub mod state;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use chrono::NaiveDate;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    #[error("{dataset}: a batch does not match the declared schema of {path}: {detail}")]
    SchemaMismatch {
        dataset: String,
        path: PathBuf,
        detail: String,
    },
    #[error("{dataset}: cannot write {path}: {source}")]
    Io {
        dataset: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{dataset}: Parquet error writing {path}: {source}")]
    Parquet {
        dataset: String,
        path: PathBuf,
        source: parquet::errors::ParquetError,
    },
}

/// The one set of Parquet writer properties: zstd, and a created-by stamp naming spotcost.
pub fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
        .set_created_by(format!("spotcost {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A lake rooted at `DIR/lake`.
#[derive(Debug, Clone)]
pub struct Lake {
    root: PathBuf,
}

/// A partition file that is on disk, complete and durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    pub path: PathBuf,
    pub rows: u64,
    pub bytes: u64,
}

impl Lake {
    pub fn new(data_dir: &Path) -> Lake {
        Lake {
            root: data_dir.join("lake"),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `lake/<dataset>/day=YYYY-MM-DD/part-<scope>.parquet`; `scope` is an account id or `org`,
    /// percent-encoded by `file_safe` so that any id maps to its own file inside the day folder.
    pub fn partition_path(&self, dataset: &str, day: NaiveDate, scope: &str) -> PathBuf {
        self.root
            .join(dataset)
            .join(format!("day={}", day.format("%Y-%m-%d")))
            .join(format!("part-{}.parquet", file_safe(scope)))
    }

    /// Writes (or replaces) one partition file from whole batches.
    pub fn write_partition(
        &self,
        dataset: &str,
        day: NaiveDate,
        scope: &str,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<WrittenFile, LakeError> {
        let mut writer = self.partition_writer(dataset, day, scope, schema)?;
        for batch in batches {
            writer.write(batch)?;
        }
        writer.commit()
    }

    /// Opens a streaming writer for one partition file; nothing is visible until `commit`.
    pub fn partition_writer(
        &self,
        dataset: &str,
        day: NaiveDate,
        scope: &str,
        schema: &SchemaRef,
    ) -> Result<PartitionWriter, LakeError> {
        let final_path = self.partition_path(dataset, day, scope);
        PartitionWriter::create(dataset, final_path, schema.clone())
    }
}

/// Writes one Parquet file outside the dataset layout (the run records), with the same atomicity.
pub fn write_file(
    label: &str,
    path: &Path,
    schema: &SchemaRef,
    batch: &RecordBatch,
) -> Result<WrittenFile, LakeError> {
    let mut writer = PartitionWriter::create(label, path.to_owned(), schema.clone())?;
    writer.write(batch)?;
    writer.commit()
}

/// A scope (an account id or `org`) as the `<scope>` of `part-<scope>.parquet`: lowercase
/// letters, digits, `-` and `_` pass through (so `act-1a2b3c4d` and `org` are unchanged); every
/// other byte of the UTF-8 text, `%` and uppercase letters included, becomes `%XX` (uppercase
/// hex). The encoding is injective (two scopes never share a file, so one account can never
/// silently replace another's partition) and reversible; even compared case-insensitively (macOS,
/// Windows) two encodings differ, because the only uppercase letters in one are hex digits after
/// `%`. No encoding contains `/`, `\`, NUL or a dot, so with the `part-` prefix a file name can
/// neither leave its folder nor be `.`/`..`.
fn file_safe(scope: &str) -> String {
    let mut encoded = String::with_capacity(scope.len());
    for byte in scope.bytes() {
        if byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'_' {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes one partition into a hidden temporary file beside its final path; `commit` makes it
/// durable and renames it into place, dropping without `commit` removes it.
pub struct PartitionWriter {
    dataset: String,
    final_path: PathBuf,
    temp_path: PathBuf,
    schema: SchemaRef,
    writer: Option<ArrowWriter<File>>,
    rows: u64,
}

impl PartitionWriter {
    fn create(
        dataset: &str,
        final_path: PathBuf,
        schema: SchemaRef,
    ) -> Result<PartitionWriter, LakeError> {
        let io_error = |path: &Path, source| LakeError::Io {
            dataset: dataset.to_owned(),
            path: path.to_owned(),
            source,
        };
        let folder = final_path.parent().unwrap_or(Path::new(".")).to_owned();
        std::fs::create_dir_all(&folder).map_err(|e| io_error(&folder, e))?;
        let file_name = final_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp_path = folder.join(format!(
            ".{file_name}.tmp-{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = File::create(&temp_path).map_err(|e| io_error(&temp_path, e))?;
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(writer_properties()))
            .map_err(|source| {
                let _ = std::fs::remove_file(&temp_path);
                LakeError::Parquet {
                    dataset: dataset.to_owned(),
                    path: final_path.clone(),
                    source,
                }
            })?;
        Ok(PartitionWriter {
            dataset: dataset.to_owned(),
            final_path,
            temp_path,
            schema,
            writer: Some(writer),
            rows: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.final_path
    }

    /// Appends a batch after checking it against the declared schema.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), LakeError> {
        check_schema(&self.schema, batch).map_err(|detail| LakeError::SchemaMismatch {
            dataset: self.dataset.clone(),
            path: self.final_path.clone(),
            detail,
        })?;
        let Some(writer) = self.writer.as_mut() else {
            return Err(self.parquet_error(parquet::errors::ParquetError::General(
                "writer already closed".into(),
            )));
        };
        if let Err(source) = writer.write(batch) {
            return Err(self.parquet_error(source));
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    fn parquet_error(&self, source: parquet::errors::ParquetError) -> LakeError {
        LakeError::Parquet {
            dataset: self.dataset.clone(),
            path: self.final_path.clone(),
            source,
        }
    }

    /// Finishes the file, fsyncs it, renames it over the final path and fsyncs the folder.
    pub fn commit(mut self) -> Result<WrittenFile, LakeError> {
        let writer = self.writer.take().ok_or_else(|| {
            self.parquet_error(parquet::errors::ParquetError::General(
                "writer already closed".into(),
            ))
        })?;
        // From here on `Drop` no longer sees a writer, so every failure removes the file itself.
        let finished = (|| {
            let file = writer.into_inner().map_err(|e| self.parquet_error(e))?;
            let io_error = |path: &Path, source| LakeError::Io {
                dataset: self.dataset.clone(),
                path: path.to_owned(),
                source,
            };
            file.sync_all().map_err(|e| io_error(&self.temp_path, e))?;
            let bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
            drop(file);
            std::fs::rename(&self.temp_path, &self.final_path)
                .map_err(|e| io_error(&self.final_path, e))?;
            Ok(bytes)
        })();
        let bytes = match finished {
            Ok(bytes) => bytes,
            Err(error) => {
                let _ = std::fs::remove_file(&self.temp_path);
                return Err(error);
            }
        };
        if let Some(folder) = self.final_path.parent() {
            // Make the rename itself durable; not every platform can open a directory.
            if let Ok(dir) = File::open(folder) {
                let _ = dir.sync_all();
            }
        }
        Ok(WrittenFile {
            path: self.final_path.clone(),
            rows: self.rows,
            bytes,
        })
    }
}

impl Drop for PartitionWriter {
    fn drop(&mut self) {
        if self.writer.is_some() {
            self.writer = None;
            let _ = std::fs::remove_file(&self.temp_path);
        }
    }
}

/// Field by field: names, types and nullability must match the declared schema exactly.
fn check_schema(declared: &SchemaRef, batch: &RecordBatch) -> Result<(), String> {
    let actual = batch.schema();
    if declared.fields().len() != actual.fields().len() {
        return Err(format!(
            "expected {} columns, got {}",
            declared.fields().len(),
            actual.fields().len()
        ));
    }
    for (want, got) in declared.fields().iter().zip(actual.fields().iter()) {
        if want.name() != got.name() {
            return Err(format!(
                "expected column {:?}, got {:?}",
                want.name(),
                got.name()
            ));
        }
        if want.data_type() != got.data_type() {
            return Err(format!(
                "column {:?}: expected {}, got {}",
                want.name(),
                want.data_type(),
                got.data_type()
            ));
        }
        if !want.is_nullable()
            && got.is_nullable()
            && batch
                .column_by_name(got.name())
                .is_some_and(|c| c.null_count() > 0)
        {
            return Err(format!("column {:?} must not contain nulls", want.name()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    use std::sync::Arc;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("account_id", DataType::Utf8, false),
            Field::new("cost_usd", DataType::Float64, true),
        ]))
    }

    fn batch(ids: &[&str], costs: &[f64]) -> RecordBatch {
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(StringArray::from(ids.to_vec())),
                Arc::new(Float64Array::from(costs.to_vec())),
            ],
        )
        .unwrap()
    }

    fn read_rows(path: &Path) -> usize {
        let file = File::open(path).unwrap();
        ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap()
            .map(|b| b.unwrap().num_rows())
            .sum()
    }

    #[test]
    fn a_rewrite_replaces_the_partition_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::new(dir.path());
        let day = NaiveDate::from_ymd_opt(2024, 3, 6).unwrap();
        let first = lake
            .write_partition(
                "costs",
                day,
                "act-1",
                &schema(),
                &[batch(&["a", "b"], &[1.0, 2.0])],
            )
            .unwrap();
        assert!(first
            .path
            .ends_with("lake/costs/day=2024-03-06/part-act-1.parquet"));
        assert_eq!(read_rows(&first.path), 2);
        let second = lake
            .write_partition("costs", day, "act-1", &schema(), &[batch(&["a"], &[1.5])])
            .unwrap();
        assert_eq!(second.rows, 1);
        assert_eq!(read_rows(&second.path), 1);
        let names: Vec<_> = std::fs::read_dir(first.path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["part-act-1.parquet"]);
    }

    #[test]
    fn an_abandoned_writer_leaves_the_old_partition_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::new(dir.path());
        let day = NaiveDate::from_ymd_opt(2024, 3, 6).unwrap();
        let kept = lake
            .write_partition("costs", day, "org", &schema(), &[batch(&["a"], &[1.0])])
            .unwrap();
        {
            let mut writer = lake
                .partition_writer("costs", day, "org", &schema())
                .unwrap();
            writer
                .write(&batch(&["x", "y", "z"], &[1.0, 2.0, 3.0]))
                .unwrap();
        }
        assert_eq!(read_rows(&kept.path), 1);
        assert_eq!(
            std::fs::read_dir(kept.path.parent().unwrap())
                .unwrap()
                .count(),
            1
        );
    }

    /// The inverse of `file_safe`, to show that nothing is lost.
    fn decode(encoded: &str) -> String {
        let bytes = encoded.as_bytes();
        let mut decoded = Vec::new();
        let mut position = 0;
        while position < bytes.len() {
            if bytes[position] == b'%' {
                let hex = std::str::from_utf8(&bytes[position + 1..position + 3]).unwrap();
                decoded.push(u8::from_str_radix(hex, 16).unwrap());
                position += 3;
            } else {
                decoded.push(bytes[position]);
                position += 1;
            }
        }
        String::from_utf8(decoded).unwrap()
    }

    #[test]
    fn plain_scopes_keep_their_names_and_others_are_percent_encoded() {
        for plain in ["act-1a2b3c4d", "org", "act_9", "-"] {
            assert_eq!(file_safe(plain), plain);
        }
        assert_eq!(file_safe("a/b"), "a%2Fb");
        assert_eq!(file_safe("a_b"), "a_b");
        assert_eq!(file_safe(".."), "%2E%2E");
        assert_eq!(file_safe("."), "%2E");
        assert_eq!(file_safe("nul\0"), "nul%00");
        assert_eq!(file_safe("100%"), "100%25");
        assert_eq!(file_safe("a\\b"), "a%5Cb");
        assert_eq!(file_safe("Act"), "%41ct");
        assert_eq!(file_safe("\u{202E}"), "%E2%80%AE");
        assert_eq!(file_safe(""), "");
    }

    #[test]
    fn the_scope_encoding_is_injective_reversible_and_stays_in_its_folder() {
        // Every string of up to three characters over an alphabet of troublemakers.
        let alphabet = [
            "a", "A", "f", "F", "2", "/", "\\", "_", "-", "%", ".", "\0", "\n", "\"", "é",
            "\u{202E}",
        ];
        let mut scopes = vec![String::new()];
        let mut frontier = vec![String::new()];
        for _ in 0..3 {
            let mut next = Vec::new();
            for prefix in &frontier {
                for symbol in alphabet {
                    next.push(format!("{prefix}{symbol}"));
                }
            }
            scopes.extend(next.iter().cloned());
            frontier = next;
        }
        let lake = Lake::new(Path::new("/data"));
        let day = NaiveDate::from_ymd_opt(2024, 3, 6).unwrap();
        let folder = lake.partition_path("costs", day, "org");
        let folder = folder.parent().unwrap();
        let mut seen = std::collections::HashMap::new();
        let mut seen_folded = std::collections::HashSet::new();
        for scope in &scopes {
            let encoded = file_safe(scope);
            assert_eq!(&decode(&encoded), scope, "{encoded} does not decode");
            assert!(
                !encoded.contains(['/', '\\', '\0', '.']),
                "{scope:?} encodes to {encoded:?}"
            );
            assert!(encoded
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '%' | '-' | '_')));
            if let Some(other) = seen.insert(encoded.clone(), scope.clone()) {
                panic!("{scope:?} and {other:?} share the file name {encoded:?}");
            }
            // Case-insensitive file systems (macOS, Windows) must not merge two scopes either.
            assert!(
                seen_folded.insert(encoded.to_lowercase()),
                "{scope:?} collides case-insensitively"
            );
            let path = lake.partition_path("costs", day, scope);
            assert_eq!(path.parent(), Some(folder), "{scope:?} left its folder");
            let name = path.file_name().unwrap().to_str().unwrap();
            assert_eq!(name, format!("part-{encoded}.parquet"));
            assert!(name != "." && name != "..");
        }
        assert_eq!(seen.len(), scopes.len());
    }

    #[test]
    fn scopes_that_used_to_share_a_file_land_in_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::new(dir.path());
        let day = NaiveDate::from_ymd_opt(2024, 3, 6).unwrap();
        let slash = lake
            .write_partition("costs", day, "a/b", &schema(), &[batch(&["x"], &[1.0])])
            .unwrap();
        let underscore = lake
            .write_partition(
                "costs",
                day,
                "a_b",
                &schema(),
                &[batch(&["y", "z"], &[2.0, 3.0])],
            )
            .unwrap();
        let parent_escape = lake
            .write_partition("costs", day, "../../x", &schema(), &[batch(&["w"], &[4.0])])
            .unwrap();
        assert_ne!(slash.path, underscore.path);
        assert_eq!(read_rows(&slash.path), 1);
        assert_eq!(read_rows(&underscore.path), 2);
        assert!(parent_escape
            .path
            .ends_with("lake/costs/day=2024-03-06/part-%2E%2E%2F%2E%2E%2Fx.parquet"));
        let mut names: Vec<_> = std::fs::read_dir(slash.path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "part-%2E%2E%2F%2E%2E%2Fx.parquet",
                "part-a%2Fb.parquet",
                "part-a_b.parquet"
            ]
        );
    }

    #[test]
    fn a_batch_of_another_schema_is_refused_with_the_column_named() {
        let dir = tempfile::tempdir().unwrap();
        let lake = Lake::new(dir.path());
        let day = NaiveDate::from_ymd_opt(2024, 3, 6).unwrap();
        let other = Arc::new(Schema::new(vec![
            Field::new("account_id", DataType::Utf8, false),
            Field::new("cost_usd", DataType::Utf8, true),
        ]));
        let wrong = RecordBatch::try_new(
            other,
            vec![
                Arc::new(StringArray::from(vec!["a"])),
                Arc::new(StringArray::from(vec!["1"])),
            ],
        )
        .unwrap();
        let error = lake
            .write_partition("costs", day, "org", &schema(), &[wrong])
            .unwrap_err();
        assert!(error.to_string().contains("cost_usd"), "{error}");
        assert!(!lake.partition_path("costs", day, "org").exists());
    }
}
