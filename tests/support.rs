//! Helpers shared by the integration tests: run the real `twinfeed` binary.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The folder of committed test inputs.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// What one run of `twinfeed inspect --json` gave.
pub struct Inspected {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Inspected {
    /// The JSON document on stdout.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("stdout is not JSON ({error}): {}", self.stdout))
    }
}

/// Runs `twinfeed inspect --json PATH` and any extra arguments.
pub fn inspect(path: &Path, extra: &[&str]) -> Inspected {
    let output = Command::new(env!("CARGO_BIN_EXE_twinfeed"))
        .arg("inspect")
        .arg("--json")
        .args(extra)
        .arg(path)
        .output()
        .expect("the twinfeed binary runs");
    Inspected {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8(output.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(output.stderr).expect("stderr is UTF-8"),
    }
}

/// Runs `inspect --json` on a seed file by its number, e.g. `"002"`, and parses the JSON.
pub fn seed(number: &str) -> serde_json::Value {
    let folder = fixtures().join("seeds");
    let entry = std::fs::read_dir(&folder)
        .expect("the seeds folder exists")
        .filter_map(Result::ok)
        .find(|entry| entry.file_name().to_string_lossy().starts_with(number))
        .unwrap_or_else(|| panic!("no seed {number}"));
    let inspected = inspect(&entry.path(), &[]);
    assert_eq!(
        inspected.code, 0,
        "seed {number} rejected: {}",
        inspected.stderr
    );
    inspected.json()
}
