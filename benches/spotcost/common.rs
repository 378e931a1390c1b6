//! What every figure shares: the bench folder, the spotcost binary, child processes measured for
//! wall time and peak memory, and the one-line figure format.

use anyhow::{bail, Context};
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub struct Bench {
    /// Cached inputs and scratch outputs.
    pub dir: PathBuf,
    /// The release `spotcost` binary built with this benchmark.
    pub binary: PathBuf,
}

impl Bench {
    pub fn new() -> anyhow::Result<Bench> {
        let dir = std::env::var_os("SPOTCOST_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("spotcost-bench"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Bench {
            dir,
            binary: PathBuf::from(env!("CARGO_BIN_EXE_spotcost")),
        })
    }

    /// The machine, printed above the figures so that BENCHMARKS.md can quote it.
    pub fn header(&self) -> String {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let memory_kib: u64 = std::fs::read_to_string("/proc/meminfo")
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        format!(
            "spotcost benchmarks: {} cores ({model}), {:.0} GB; inputs in {}",
            std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory_kib as f64 / 1024.0 / 1024.0,
            self.dir.display()
        )
    }

    /// A fresh, empty scratch folder `name` inside the bench folder.
    pub fn scratch(&self, name: &str) -> anyhow::Result<PathBuf> {
        let path = self.dir.join("scratch").join(name);
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .with_context(|| format!("clearing {}", path.display()))?;
        }
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(path)
    }

    /// `spotcost ARGS` with a clean environment for the pipeline (no inherited token or config).
    pub fn spotcost(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .args(args)
            .env_remove("SPOTINST_TOKEN")
            .env_remove("SPOTINST_ACCOUNT")
            .env_remove("SPOTCOST_CONFIG")
            .env_remove("SPOTCOST_DATA_DIR")
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1");
        command
    }
}

/// A finished child: its wall time, CPU time and peak resident memory.
pub struct Measured {
    pub elapsed: Duration,
    /// User plus system CPU time of the child.
    pub cpu: Duration,
    pub peak_rss_bytes: u64,
}

/// Runs `command` to completion; fails, with its stderr, unless it exits 0. The wall and CPU
/// times come from `wait4`. The peak memory is the child's own `VmHWM` (`/proc/PID/status`)
/// sampled every 5 ms: `ru_maxrss` cannot be used, because Linux carries the spawning process's
/// high-water mark into the child at `exec`, and this process runs DuckDB and the simulator.
/// The peak is monotonic, so only a rise within the child's last 5 ms could be missed.
pub fn run_measured(command: &mut Command) -> anyhow::Result<Measured> {
    let shown = format!("{command:?}");
    let err_path = tempfile::NamedTempFile::new()?;
    let started = Instant::now();
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err_path.reopen()?)
        .spawn()
        .with_context(|| format!("starting {shown}"))?;
    let pid = child.id() as libc::pid_t;
    let done = AtomicBool::new(false);
    let peak = AtomicU64::new(0);
    let (waited, status, usage) = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::Acquire) {
                if let Some(bytes) = vm_hwm_bytes(pid) {
                    peak.fetch_max(bytes, Ordering::AcqRel);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let mut status: libc::c_int = 0;
        // SAFETY: a zeroed rusage is valid, and `wait4` writes into both locals it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        done.store(true, Ordering::Release);
        (waited, status, usage)
    });
    let elapsed = started.elapsed();
    if waited != pid {
        bail!("waiting for {shown}: {}", std::io::Error::last_os_error());
    }
    drop(child); // reaped by `wait4` above; dropping a `Child` does not wait
    let stderr = std::fs::read_to_string(err_path.path()).unwrap_or_default();
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        bail!(
            "{shown} failed (wait status {status}):\n{}",
            stderr
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    Ok(Measured {
        elapsed,
        cpu: cpu_time(&usage),
        peak_rss_bytes: peak.load(Ordering::Acquire),
    })
}

fn vm_hwm_bytes(pid: libc::pid_t) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

fn cpu_time(usage: &libc::rusage) -> Duration {
    let of = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    of(usage.ru_utime) + of(usage.ru_stime)
}

/// User plus system CPU time this process has used so far (for work done in-process, such as
/// the simulator's share of an extraction).
pub fn own_cpu_time() -> Duration {
    // SAFETY: a zeroed rusage is valid and `getrusage` only writes into it.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    cpu_time(&usage)
}

/// Times `work` in this process.
pub fn timed<T>(work: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(Duration, T)> {
    let started = Instant::now();
    let value = work()?;
    Ok((started.elapsed(), value))
}

#[derive(Clone, Copy, Debug)]
pub enum Target {
    AtMost(f64),
    AtLeast(f64),
}

/// One printed line: a value (a ratio, megabytes or seconds) against its target, then context.
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    pub target: Target,
    pub detail: String,
}

impl Figure {
    pub fn new(
        name: &str,
        value: f64,
        unit: &'static str,
        target: Target,
        detail: String,
    ) -> Figure {
        Figure {
            name: name.to_string(),
            value,
            unit,
            target,
            detail,
        }
    }

    pub fn met(&self) -> bool {
        match self.target {
            Target::AtMost(limit) => self.value <= limit,
            Target::AtLeast(limit) => self.value >= limit,
        }
    }
}

impl fmt::Display for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (sign, limit) = match self.target {
            Target::AtMost(limit) => ("≤", limit),
            Target::AtLeast(limit) => ("≥", limit),
        };
        let value = format!("{:.2}{}", self.value, self.unit);
        let target = format!("(target {sign} {limit}{})", self.unit);
        write!(
            f,
            "{:<22} {:>10} {:<20} {:<4}  {}",
            self.name,
            value,
            target,
            if self.met() { "met" } else { "MISS" },
            self.detail
        )
    }
}

pub fn megabytes(bytes: u64) -> f64 {
    bytes as f64 / 1024.0 / 1024.0
}

pub fn seconds(duration: Duration) -> f64 {
    duration.as_secs_f64()
}
