//! Golden-file tests of `eventflow replay`: every `tests/golden/NAME.jsonl`
//! is replayed with the arguments in `NAME.args`; stdout must equal
//! `NAME.out` and the summary on stderr `NAME.err`, byte for byte.
//!
//! `contract` and `late` were worked out by hand from DESIGN §3; set
//! `EVENTFLOW_BLESS=1` to rewrite the expected files after a deliberate change.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn replay(args: &[&str], stdin: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_eventflow"));
    cmd.arg("replay").args(args);
    if let Some(path) = stdin {
        cmd.stdin(Stdio::from(std::fs::File::open(path).unwrap()));
    }
    cmd.output().expect("eventflow runs")
}

#[test]
fn golden_files_replay_exactly() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 3, "golden cases are present: {cases:?}");
    let bless = std::env::var_os("EVENTFLOW_BLESS").is_some();
    for input in cases {
        let args = std::fs::read_to_string(input.with_extension("args")).unwrap_or_default();
        let mut args: Vec<&str> = args.split_whitespace().collect();
        let input_str = input.to_str().unwrap();
        args.push(input_str);
        let out = replay(&args, None);
        assert!(
            out.status.success(),
            "{input:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        if bless {
            std::fs::write(input.with_extension("out"), &stdout).unwrap();
            std::fs::write(input.with_extension("err"), &stderr).unwrap();
            continue;
        }
        let want_out = std::fs::read_to_string(input.with_extension("out")).unwrap();
        let want_err = std::fs::read_to_string(input.with_extension("err")).unwrap();
        assert_eq!(stdout, want_out, "stdout of {input:?}");
        assert_eq!(stderr, want_err, "stderr of {input:?}");
    }
}

#[test]
fn standard_input_reads_like_a_file() {
    let input = golden_dir().join("contract.jsonl");
    let from_file = replay(&[input.to_str().unwrap()], None);
    let from_stdin = replay(&["-"], Some(&input));
    let from_default = replay(&[], Some(&input));
    assert_eq!(from_file.stdout, from_stdin.stdout);
    assert_eq!(from_file.stdout, from_default.stdout);
    assert!(!from_file.stdout.is_empty());
}

#[test]
fn strict_mode_fails_on_invalid_lines_only() {
    let dir = golden_dir();
    let with_invalid = replay(
        &["--strict", dir.join("contract.jsonl").to_str().unwrap()],
        None,
    );
    assert_eq!(with_invalid.status.code(), Some(1));
    assert!(!with_invalid.stdout.is_empty(), "buckets are still written");
    let clean = replay(
        &[
            "--strict",
            "--bucket-ms",
            "100",
            "--ttl-ms",
            "150",
            dir.join("late.jsonl").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(clean.status.code(), Some(0));
}

#[test]
fn bad_arguments_are_reported() {
    let missing = replay(&["/nonexistent/log.jsonl"], None);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/log.jsonl"));
    let bad = replay(
        &["--bucket-ms", "0", "-"],
        Some(&golden_dir().join("late.jsonl")),
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("window.bucket_ms"));
}
