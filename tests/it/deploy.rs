//! The deployment examples in deploy/ (crontab, systemd units, Kubernetes CronJob), checked the way
//! the programs that will read them read them: the schedules through spotcost's own cron parser, the
//! command lines through the spotcost CLI, the units through `systemd-analyze`, the manifest through
//! kubectl's compiled-in Kubernetes types (offline, `--local`: no cluster, no discovery) or python3's
//! YAML parser. A check whose tool is missing prints `SKIPPED:` and passes; the README must quote
//! every file verbatim.

use serde_json::Value;
use spotcost::schedule::CronSchedule;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The one binary every example runs, and the config path the host examples give it.
const BINARY: &str = "/usr/local/bin/spotcost";
const HOST_CONFIG: &str = "/etc/spotcost/spotcost.toml";

fn deploy_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(name)
}

fn deploy_file(name: &str) -> String {
    let path = deploy_path(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn on_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("{command:?} does not start: {e}"))
}

// ---------------------------------------------------------------------------------------------
// crontab

/// The crontab's one job line as (five schedule fields, user, command words).
fn crontab_job() -> (Vec<String>, String, Vec<String>) {
    let crontab = deploy_file("crontab");
    let jobs: Vec<&str> = crontab
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter(|line| !is_environment_setting(line))
        .collect();
    assert_eq!(jobs.len(), 1, "deploy/crontab holds one job line: {jobs:?}");
    let words: Vec<String> = jobs[0].split_whitespace().map(str::to_owned).collect();
    assert!(
        words.len() >= 7,
        "a cron.d line is 5 schedule fields, a user and a command: {}",
        jobs[0]
    );
    (words[..5].to_vec(), words[5].clone(), words[6..].to_vec())
}

/// `NAME=value` (MAILTO=, CRON_TZ=, PATH=): cron's environment lines, not jobs.
fn is_environment_setting(line: &str) -> bool {
    line.split_once('=').is_some_and(|(name, _)| {
        let name = name.trim();
        !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

#[test]
fn the_crontab_line_runs_spotcost_nightly_as_its_own_user() {
    let crontab = deploy_file("crontab");
    // cron ignores a last line without a newline, and a `%` in the command becomes a newline.
    assert!(
        crontab.ends_with('\n'),
        "deploy/crontab must end with a newline"
    );
    assert!(
        !crontab.contains('\r'),
        "deploy/crontab must have Unix line endings"
    );

    let (schedule, user, command) = crontab_job();
    assert_eq!(user, "spotcost", "the job runs as the spotcost user");
    assert_eq!(
        command[..2],
        [BINARY, "run"],
        "the command starts with `{BINARY} run`: {command:?}"
    );
    let command_line = command.join(" ");
    assert!(
        !command_line.contains('%'),
        "cron turns % into a newline: {command_line}"
    );
    assert!(
        !command_line.contains("flock"),
        "spotcost holds its own lock: no flock"
    );

    let expression = schedule.join(" ");
    if let Err(e) = CronSchedule::parse(&expression, "UTC") {
        panic!("the crontab schedule `{expression}` does not parse: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// the Kubernetes manifest, read as text (no tool needed)

/// The value of the one `key:` line of deploy/cronjob.yaml, as JSON (a quoted string or a flow list).
fn cronjob_line_value(key: &str) -> Value {
    let manifest = deploy_file("cronjob.yaml");
    let prefix = format!("{key}:");
    let values: Vec<&str> = manifest
        .lines()
        .map(str::trim)
        .filter_map(|line| line.strip_prefix(&prefix))
        .map(str::trim)
        .collect();
    assert_eq!(values.len(), 1, "one `{key}:` line in deploy/cronjob.yaml");
    serde_json::from_str(values[0])
        .unwrap_or_else(|e| panic!("`{key}: {}` is not a JSON-style value: {e}", values[0]))
}

fn cronjob_string(key: &str) -> String {
    match cronjob_line_value(key) {
        Value::String(text) => text,
        other => panic!("`{key}` should be a quoted string, got {other}"),
    }
}

/// The ConfigMap's spotcost.toml: the block scalar under `spotcost.toml: |`.
fn configmap_toml_from_text() -> String {
    let manifest = deploy_file("cronjob.yaml");
    let mut lines = manifest
        .lines()
        .skip_while(|line| line.trim() != "spotcost.toml: |");
    let header = lines
        .next()
        .expect("a `spotcost.toml: |` key in the ConfigMap");
    let key_indent = header.len() - header.trim_start().len();
    let body: Vec<&str> = lines
        .take_while(|line| {
            line.trim().is_empty() || line.len() - line.trim_start().len() > key_indent
        })
        .collect();
    let block_indent = body
        .iter()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .expect("spotcost.toml is not empty");
    let mut toml: String = body
        .iter()
        .map(|line| format!("{}\n", line.get(block_indent..).unwrap_or("")))
        .collect();
    // `|` keeps one final newline.
    while toml.ends_with("\n\n") {
        toml.pop();
    }
    toml
}

#[test]
fn the_cronjob_schedule_parses_in_its_time_zone() {
    let schedule = cronjob_string("schedule");
    let time_zone = cronjob_string("timeZone");
    assert_eq!(
        schedule.split_whitespace().count(),
        5,
        "Kubernetes takes a 5-field crontab expression: {schedule}"
    );
    if let Err(e) = CronSchedule::parse(&schedule, &time_zone) {
        panic!("the CronJob schedule `{schedule}` ({time_zone}) does not parse: {e}");
    }
}

#[test]
fn the_three_examples_run_at_the_same_time_with_the_same_config() {
    let (schedule, _, command) = crontab_job();
    let expression = schedule.join(" ");
    assert_eq!(
        cronjob_string("schedule"),
        expression,
        "CronJob and crontab agree"
    );
    assert_eq!(cronjob_string("timeZone"), "Etc/UTC");

    let [minute, hour, day, month, weekday] = [0, 1, 2, 3, 4].map(|i| schedule[i].as_str());
    assert_eq!(
        [day, month, weekday],
        ["*", "*", "*"],
        "nightly: {expression}"
    );
    let minute: u32 = minute.parse().expect("a fixed minute");
    let hour: u32 = hour.parse().expect("a fixed hour");
    let service = deploy_file("spotcost.service");
    let timer = deploy_file("spotcost.timer");
    assert_eq!(
        unit_values(&timer, "OnCalendar"),
        [format!("*-*-* {hour:02}:{minute:02}:00 UTC")],
        "the timer fires when cron does"
    );

    assert_eq!(
        command[2..],
        ["--config", HOST_CONFIG],
        "cron names the config"
    );
    assert_eq!(
        unit_values(&service, "Environment"),
        [format!("SPOTCOST_CONFIG={HOST_CONFIG}")],
        "the service names the same config"
    );
}

/// Every `Key=value` of a unit file, for one key.
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    let prefix = format!("{key}=");
    unit.lines()
        .filter_map(|line| line.trim().strip_prefix(&prefix))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_configmap_holds_a_spotcost_toml_that_spotcost_loads() {
    let toml = configmap_toml_from_text();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spotcost.toml");
    std::fs::write(&path, &toml).unwrap();
    let config = spotcost::config::FileConfig::load(Some(&path))
        .unwrap_or_else(|e| panic!("the ConfigMap's spotcost.toml is rejected: {e}\n{toml}"));
    assert_eq!(config.data_dir.as_deref(), Some(Path::new("/data")));
    assert!(
        config.token_file.is_none(),
        "on Kubernetes the token comes from the Secret, through SPOTINST_TOKEN"
    );
}

// ---------------------------------------------------------------------------------------------
// the command lines, through the real CLI

/// Each example's arguments with `--help` appended: clap rejects an unknown subcommand or flag
/// before it reaches `--help`, so exit 0 means spotcost accepts the line (and nothing runs).
#[test]
fn every_example_command_line_is_accepted_by_the_spotcost_cli() {
    let (_, _, cron_command) = crontab_job();
    let service = deploy_file("spotcost.service");
    let exec_start = unit_values(&service, "ExecStart");
    assert_eq!(exec_start.len(), 1, "one ExecStart=");
    let service_command: Vec<String> = exec_start[0]
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert_eq!(service_command[..2], [BINARY, "run"]);
    let cronjob_args: Vec<String> = serde_json::from_value(cronjob_line_value("args"))
        .expect("the CronJob's args are a list of strings");
    assert_eq!(cronjob_args.first().map(String::as_str), Some("run"));

    for (example, args) in [
        ("deploy/crontab", cron_command[1..].to_vec()),
        ("deploy/spotcost.service", service_command[1..].to_vec()),
        ("deploy/cronjob.yaml", cronjob_args),
    ] {
        let out = run(Command::new(env!("CARGO_BIN_EXE_spotcost"))
            .args(&args)
            .arg("--help")
            .env_remove("SPOTINST_TOKEN")
            .env_remove("SPOTCOST_CONFIG"));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{example}: `spotcost {}` is not accepted:\n{}",
            args.join(" "),
            text(&out)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// systemd

/// Copies the units into `dir`, with ExecStart pointing at the binary just built: `verify` refuses
/// a service whose binary does not exist, and /usr/local/bin/spotcost need not on a build machine.
fn units_for_verify(dir: &Path) -> (PathBuf, PathBuf) {
    let service = deploy_file("spotcost.service");
    let installed = format!("ExecStart={BINARY} ");
    assert_eq!(service.matches("ExecStart=").count(), 1, "one ExecStart=");
    assert!(service.contains(&installed), "ExecStart runs {BINARY}");
    let built = format!("ExecStart=\"{}\" ", env!("CARGO_BIN_EXE_spotcost"));
    let service_path = dir.join("spotcost.service");
    let timer_path = dir.join("spotcost.timer");
    std::fs::write(&service_path, service.replace(&installed, &built)).unwrap();
    std::fs::write(&timer_path, deploy_file("spotcost.timer")).unwrap();
    (service_path, timer_path)
}

/// `systemd-analyze verify` loads both units the way systemd would (every key, the calendar
/// expression, the timer's service) without a running systemd and without root. It exits 0 on
/// mere warnings (an unknown or misspelt key is "ignoring"), so any line about our units fails too.
#[test]
fn the_systemd_units_pass_systemd_analyze_verify() {
    let Some(systemd_analyze) = on_path("systemd-analyze") else {
        eprintln!("SKIPPED: systemd-analyze is not installed (the systemd package provides it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (service, timer) = units_for_verify(dir.path());

    let out = run(Command::new(&systemd_analyze)
        .args(["verify", "--man=no"])
        .arg(&service)
        .arg(&timer)
        .env("SYSTEMD_LOG_COLOR", "0"));
    let log = text(&out);
    assert!(
        out.status.success(),
        "systemd-analyze verify failed:\n{log}"
    );
    let scratch = dir.path().display().to_string();
    let complaints: Vec<&str> = log
        .lines()
        .filter(|line| line.contains(&scratch) || line.starts_with("spotcost."))
        .collect();
    assert!(
        complaints.is_empty(),
        "systemd-analyze verify warns about the units:\n{}",
        complaints.join("\n")
    );

    // What the timer's expression means: the next run is at 02:15 UTC.
    let on_calendar = unit_values(&deploy_file("spotcost.timer"), "OnCalendar");
    assert_eq!(on_calendar.len(), 1, "one OnCalendar=");
    let out = run(Command::new(&systemd_analyze)
        .args(["calendar", "--iterations=1"])
        .arg(&on_calendar[0])
        .env("TZ", "UTC")
        .env("SYSTEMD_LOG_COLOR", "0"));
    let log = text(&out);
    assert!(
        out.status.success(),
        "systemd-analyze calendar failed:\n{log}"
    );
    let next = log
        .lines()
        .find_map(|line| line.trim().strip_prefix("Next elapse:"))
        .unwrap_or_else(|| panic!("no next elapse in:\n{log}"));
    assert!(next.trim().ends_with("02:15:00 UTC"), "next elapse: {next}");
}

/// `systemd-analyze security --offline` scores the sandbox from the file alone (systemd 250 and
/// later). The service scores 1.9 on systemd 252; 3.0 leaves room for newer checks while still
/// failing when a hardening line goes missing.
#[test]
fn the_systemd_service_stays_sandboxed() {
    let Some(systemd_analyze) = on_path("systemd-analyze") else {
        eprintln!("SKIPPED: systemd-analyze is not installed (the systemd package provides it)");
        return;
    };
    let version = text(&run(Command::new(&systemd_analyze).arg("--version")));
    let major: u32 = version
        .split_whitespace()
        .nth(1)
        .and_then(|word| word.parse().ok())
        .unwrap_or(0);
    if major < 250 {
        eprintln!(
            "SKIPPED: systemd-analyze security --offline needs systemd 250 or later: {version}"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (service, _) = units_for_verify(dir.path());
    let out = run(Command::new(&systemd_analyze)
        .args(["security", "--offline=yes", "--threshold=30", "--no-pager"])
        .arg(&service)
        .env("SYSTEMD_LOG_COLOR", "0"));
    let log = text(&out);
    let overall = log
        .lines()
        .find(|line| line.contains("Overall exposure level"))
        .unwrap_or(&log);
    assert!(
        out.status.success(),
        "the service's exposure is above 3.0: {overall}\n{log}"
    );
}

// ---------------------------------------------------------------------------------------------
// Kubernetes, through kubectl (offline) or python3

/// kubectl for `--local` commands only, with a kubeconfig that does not exist, so no call can
/// reach a cluster.
fn kubectl(binary: &Path, scratch: &Path) -> Command {
    let mut command = Command::new(binary);
    command.env("KUBECONFIG", scratch.join("no-kubeconfig"));
    command
}

/// The objects of a YAML file as JSON, with the tool that read them. kubectl's `label --local`
/// reads any kind without a cluster; python3 with PyYAML is the fallback. None: neither is here.
fn yaml_objects(path: &Path, scratch: &Path) -> Option<(Vec<Value>, &'static str)> {
    if let Some(binary) = on_path("kubectl") {
        let out = run(kubectl(&binary, scratch)
            .args([
                "label",
                "--local",
                "-o",
                "json",
                "spotcost-test=parsed",
                "-f",
            ])
            .arg(path));
        assert!(
            out.status.success(),
            "kubectl cannot read {}:\n{}",
            path.display(),
            text(&out)
        );
        let objects = serde_json::Deserializer::from_slice(&out.stdout)
            .into_iter::<Value>()
            .collect::<Result<Vec<_>, _>>()
            .expect("kubectl prints JSON objects");
        return Some((objects, "kubectl"));
    }
    let python = on_path("python3")?;
    let out = run(Command::new(python)
        .args([
            "-c",
            "import json, sys, yaml\n\
             docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None]\n\
             json.dump(docs, sys.stdout)",
        ])
        .arg(path));
    if !out.status.success() {
        if text(&out).contains("No module named 'yaml'") {
            return None;
        }
        panic!("python3 cannot read {}:\n{}", path.display(), text(&out));
    }
    let objects: Vec<Value> = serde_json::from_slice(&out.stdout).expect("python3 prints JSON");
    Some((objects, "python3"))
}

/// The example Secret, commented out in the manifest so that `kubectl apply` never overwrites the
/// one created with `kubectl create secret`: the `#   ` lines from its `apiVersion:` on.
fn commented_secret() -> String {
    let manifest = deploy_file("cronjob.yaml");
    let lines: Vec<&str> = manifest
        .lines()
        .skip_while(|line| *line != "#   apiVersion: v1")
        .map_while(|line| line.strip_prefix("#   "))
        .collect();
    assert!(
        lines.contains(&"kind: Secret"),
        "deploy/cronjob.yaml shows the Secret it expects, commented out"
    );
    lines.iter().map(|line| format!("{line}\n")).collect()
}

/// The paths of `raw` (objects, list items, values) that `typed` lacks or changes.
fn lost_in_decoding(raw: &Value, typed: &Value, path: &str, lost: &mut Vec<String>) {
    match (raw, typed) {
        (Value::Object(raw), Value::Object(typed)) => {
            for (key, value) in raw {
                let here = format!("{path}.{key}");
                match typed.get(key) {
                    Some(kept) => lost_in_decoding(value, kept, &here, lost),
                    None => lost.push(here),
                }
            }
        }
        (Value::Array(raw), Value::Array(typed)) => {
            for (index, value) in raw.iter().enumerate() {
                let here = format!("{path}[{index}]");
                match typed.get(index) {
                    Some(kept) => lost_in_decoding(value, kept, &here, lost),
                    None => lost.push(here),
                }
            }
        }
        (raw, typed) if raw == typed => {}
        (raw, typed) => lost.push(format!("{path}: {raw} became {typed}")),
    }
}

/// The CronJob after kubectl decoded it into its Go type and printed it again.
fn cronjob_through_the_go_type(binary: &Path, scratch: &Path, cronjob: &Value) -> Value {
    let path = scratch.join("cronjob.json");
    std::fs::write(&path, cronjob.to_string()).unwrap();
    // `set env` prints nothing when nothing changes: add one variable, which is then ignored.
    let out = run(kubectl(binary, scratch)
        .args(["set", "env", "--local", "-o", "json", "-f"])
        .arg(&path)
        .arg("SPOTCOST_TYPED_CHECK=1"));
    assert!(
        out.status.success(),
        "kubectl set env --local failed:\n{}",
        text(&out)
    );
    serde_json::from_slice(&out.stdout).expect("kubectl prints the CronJob as JSON")
}

/// kubectl decodes every object into the Kubernetes types compiled into it: YAML syntax, kinds,
/// apiVersions and field types. Unknown fields are dropped silently there, so the CronJob also goes
/// through its Go type and back, and every field must survive (a misspelt key does not).
/// What needs a cluster is not checked: admission, quotas, the storage class, the image.
#[test]
fn the_manifest_decodes_into_kubernetes_types() {
    let Some(binary) = on_path("kubectl") else {
        eprintln!("SKIPPED: kubectl is not installed (the manifest's types are not checked)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path();

    let out = run(kubectl(&binary, scratch)
        .args(["set", "env", "--local", "--list", "-f"])
        .arg(deploy_path("cronjob.yaml")));
    let listing = text(&out);
    assert!(
        out.status.success(),
        "kubectl cannot decode deploy/cronjob.yaml:\n{listing}"
    );
    assert!(
        listing.contains("SPOTINST_TOKEN from secret spotcost, key SPOTINST_TOKEN"),
        "the token comes from the Secret:\n{listing}"
    );

    let secret = scratch.join("secret.yaml");
    std::fs::write(&secret, commented_secret()).unwrap();
    let out = run(kubectl(&binary, scratch)
        .args(["set", "env", "--local", "--list", "-f"])
        .arg(&secret));
    assert!(
        out.status.success(),
        "the commented Secret does not decode:\n{}",
        text(&out)
    );

    let (objects, _) = yaml_objects(&deploy_path("cronjob.yaml"), scratch).unwrap();
    let cronjob = objects
        .iter()
        .find(|object| object["kind"] == "CronJob")
        .expect("a CronJob");
    let typed = cronjob_through_the_go_type(&binary, scratch, cronjob);
    let mut lost = Vec::new();
    lost_in_decoding(cronjob, &typed, "", &mut lost);
    assert!(
        lost.is_empty(),
        "fields of the CronJob that Kubernetes does not know (misspelt or misplaced): {lost:#?}"
    );

    // The detector itself: a misspelt field is caught.
    let mut misspelt = cronjob.clone();
    misspelt["spec"]["jobTemplate"]["spec"]["backofLimit"] = Value::from(0);
    let typed = cronjob_through_the_go_type(&binary, scratch, &misspelt);
    let mut lost = Vec::new();
    lost_in_decoding(&misspelt, &typed, "", &mut lost);
    assert_eq!(lost, [".spec.jobTemplate.spec.backofLimit"]);
}

fn object<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = objects.iter().filter(|o| o["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind} in deploy/cronjob.yaml");
    found[0]
}

fn env_var<'a>(container: &'a Value, name: &str) -> &'a Value {
    container["env"]
        .as_array()
        .and_then(|vars| vars.iter().find(|var| var["name"] == name))
        .unwrap_or_else(|| panic!("the container sets {name}"))
}

fn volume_named<'a>(pod: &'a Value, name: &Value) -> &'a Value {
    pod["volumes"]
        .as_array()
        .and_then(|volumes| volumes.iter().find(|volume| &volume["name"] == name))
        .unwrap_or_else(|| panic!("a volume named {name}"))
}

/// The manifest's parts fit together: the Secret, ConfigMap and volume the CronJob names exist
/// under those names and keys, the config points spotcost at the volume, and the job is a
/// non-retrying, non-overlapping, non-root run of `spotcost run`.
#[test]
fn the_manifest_wires_its_secret_config_and_volume() {
    let dir = tempfile::tempdir().unwrap();
    let Some((objects, tool)) = yaml_objects(&deploy_path("cronjob.yaml"), dir.path()) else {
        eprintln!("SKIPPED: neither kubectl nor python3 with PyYAML is installed to read YAML");
        return;
    };
    let kinds: Vec<(&Value, &Value)> = objects
        .iter()
        .map(|o| (&o["apiVersion"], &o["kind"]))
        .collect();
    assert_eq!(
        kinds,
        [
            (&Value::from("v1"), &Value::from("ConfigMap")),
            (&Value::from("v1"), &Value::from("PersistentVolumeClaim")),
            (&Value::from("batch/v1"), &Value::from("CronJob")),
        ],
        "read with {tool}"
    );
    let config_map = object(&objects, "ConfigMap");
    let claim = object(&objects, "PersistentVolumeClaim");
    let cronjob = object(&objects, "CronJob");

    let spec = &cronjob["spec"];
    assert_eq!(spec["schedule"], Value::from(cronjob_string("schedule")));
    assert_eq!(spec["timeZone"], "Etc/UTC");
    assert_eq!(spec["concurrencyPolicy"], "Forbid", "runs never overlap");
    for key in [
        "startingDeadlineSeconds",
        "successfulJobsHistoryLimit",
        "failedJobsHistoryLimit",
    ] {
        assert!(
            spec[key].as_u64().is_some_and(|n| n > 0),
            "{key}: {}",
            spec[key]
        );
    }
    let job = &spec["jobTemplate"]["spec"];
    assert_eq!(job["backoffLimit"], 0, "spotcost retries itself");
    assert!(job["activeDeadlineSeconds"].as_u64().is_some_and(|n| n > 0));
    let pod = &job["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    assert!(container["image"].as_str().is_some_and(|i| !i.is_empty()));
    assert_eq!(container["args"], cronjob_line_value("args"));
    assert_eq!(container["args"][0], "run");
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(
        container["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    for bound in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                container["resources"][bound][resource].is_string(),
                "resources.{bound}.{resource}"
            );
        }
    }

    let mounts = container["volumeMounts"].as_array().expect("volumeMounts");

    // The token: the Secret the manifest shows (commented out) and tells you to create.
    let secret_ref = &env_var(container, "SPOTINST_TOKEN")["valueFrom"]["secretKeyRef"];
    let (secret_name, secret_key) = (
        secret_ref["name"].as_str().expect("a Secret name"),
        secret_ref["key"].as_str().expect("a Secret key"),
    );
    let secret_path = dir.path().join("secret.yaml");
    std::fs::write(&secret_path, commented_secret()).unwrap();
    let (secrets, _) = yaml_objects(&secret_path, dir.path()).unwrap();
    assert_eq!(secrets.len(), 1);
    assert_eq!(
        (&secrets[0]["apiVersion"], &secrets[0]["kind"]),
        (&Value::from("v1"), &Value::from("Secret"))
    );
    assert_eq!(secrets[0]["metadata"]["name"], secret_name);
    assert!(
        secrets[0]["stringData"][secret_key].is_string(),
        "the Secret has {secret_key}"
    );
    let create =
        format!("kubectl create secret generic {secret_name} --from-literal={secret_key}=");
    assert!(
        deploy_file("cronjob.yaml").contains(&create),
        "the manifest says `{create}…`"
    );

    // The config: SPOTCOST_CONFIG is a key of the ConfigMap, where the ConfigMap is mounted.
    let config_path = env_var(container, "SPOTCOST_CONFIG")["value"]
        .as_str()
        .expect("a path");
    let (config_dir, config_key) = config_path.rsplit_once('/').expect("an absolute path");
    let config_mount = mounts
        .iter()
        .find(|mount| mount["mountPath"] == config_dir)
        .unwrap_or_else(|| panic!("a volume mounted at {config_dir}"));
    assert_eq!(config_mount["readOnly"], true);
    let config_volume = volume_named(pod, &config_mount["name"]);
    assert_eq!(
        config_volume["configMap"]["name"],
        config_map["metadata"]["name"]
    );
    let toml_text = config_map["data"][config_key]
        .as_str()
        .unwrap_or_else(|| panic!("the ConfigMap has the key {config_key}"));
    assert_eq!(
        toml_text,
        configmap_toml_from_text(),
        "the text reading of the ConfigMap agrees"
    );
    let settings: toml::Table = toml::from_str(toml_text).expect("spotcost.toml is TOML");
    assert_eq!(
        settings
            .get("lookback_days")
            .and_then(toml::Value::as_integer),
        Some(3)
    );

    // The data: data_dir is where the claim is mounted.
    let data_dir = settings
        .get("data_dir")
        .and_then(toml::Value::as_str)
        .expect("data_dir in spotcost.toml");
    let data_mount = mounts
        .iter()
        .find(|mount| mount["mountPath"] == data_dir)
        .unwrap_or_else(|| panic!("a volume mounted at data_dir {data_dir}"));
    assert_ne!(data_mount["readOnly"], true);
    let data_volume = volume_named(pod, &data_mount["name"]);
    assert_eq!(
        data_volume["persistentVolumeClaim"]["claimName"],
        claim["metadata"]["name"]
    );
    assert!(claim["spec"]["resources"]["requests"]["storage"].is_string());

    // A read-only root still has a writable /tmp.
    let tmp_mount = mounts
        .iter()
        .find(|mount| mount["mountPath"] == "/tmp")
        .expect("/tmp mounted");
    assert!(volume_named(pod, &tmp_mount["name"])["emptyDir"].is_object());
}

// ---------------------------------------------------------------------------------------------
// README

const QUOTED_FILES: [&str; 4] = [
    "crontab",
    "spotcost.service",
    "spotcost.timer",
    "cronjob.yaml",
];

/// Whether `markdown` holds `content` as a whole fenced code block.
fn quotes_in_a_fenced_block(markdown: &str, content: &str) -> bool {
    let needle = format!("{content}```");
    markdown.match_indices(&needle).any(|(at, _)| {
        markdown[..at]
            .strip_suffix('\n')
            .and_then(|before| before.rsplit('\n').next())
            .is_some_and(|fence| fence.starts_with("```"))
    })
}

/// From `## Running it nightly` to the next `## ` heading.
fn running_it_nightly(markdown: &str) -> Option<&str> {
    let heading = "## Running it nightly\n";
    let start = if markdown.starts_with(heading) {
        0
    } else {
        markdown.find(&format!("\n{heading}"))? + 1
    };
    let section = &markdown[start..];
    let end = section[heading.len()..]
        .find("\n## ")
        .map_or(section.len(), |at| heading.len() + at + 1);
    Some(&section[..end])
}

fn assert_quotes_every_deploy_file(document: &str, markdown: &str) {
    let section = running_it_nightly(markdown)
        .unwrap_or_else(|| panic!("{document} has no `## Running it nightly` section"));
    let stale: Vec<&str> = QUOTED_FILES
        .into_iter()
        .filter(|name| !quotes_in_a_fenced_block(section, &deploy_file(name)))
        .collect();
    assert!(
        stale.is_empty(),
        "{document}'s `Running it nightly` does not quote these deploy/ files verbatim, each as a \
         whole fenced block: {stale:?} (copy each file's content into its code block)"
    );
}

#[test]
fn the_readme_quotes_every_deploy_file() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    assert_quotes_every_deploy_file("README.md", &readme);
}
