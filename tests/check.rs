//! `twinfeed check`: the real binary on real config files in a temporary folder.

use std::process::Command;

fn check(args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_twinfeed"))
        .arg("check")
        .args(args)
        .output()
        .expect("the twinfeed binary runs");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn a_valid_config_resolves_paths_next_to_it() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let file = folder.path().join("twinfeed.toml");
    std::fs::write(&file, "[paths]\ninbox = \"drop\"\n[feed]\nitems = 7\n").expect("write");
    let (code, stdout, stderr) = check(&["--config", file.to_str().expect("UTF-8 path")]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(": ok"), "{stdout}");
    let inbox = folder.path().join("drop");
    assert!(stdout.contains(&inbox.display().to_string()), "{stdout}");
    assert!(stdout.contains("7 per feed"), "{stdout}");
}

#[test]
fn a_typo_is_refused_naming_file_and_key() {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let file = folder.path().join("twinfeed.toml");
    std::fs::write(
        &file,
        "[site]\ntimezone = \"UTC\"\nbase_ulr = \"http://x/\"\n",
    )
    .expect("write");
    let (code, _, stderr) = check(&["--config", file.to_str().expect("UTF-8 path")]);
    assert_eq!(code, 1);
    assert!(stderr.contains(&file.display().to_string()), "{stderr}");
    assert!(stderr.contains("`site.base_ulr`"), "{stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");
}

#[test]
fn the_shipped_config_and_the_defaults_check() {
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/config/twinfeed.toml");
    assert_eq!(check(&["--config", shipped]).0, 0);
    let (code, stdout, _) = check(&[]);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("built-in defaults: ok"), "{stdout}");
    let (code, _, stderr) = check(&["--config", "/nonexistent/twinfeed.toml"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("cannot read config file /nonexistent/twinfeed.toml"),
        "{stderr}"
    );
}
