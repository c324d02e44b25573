//! Golden snapshots of `inspect --json`: every seed and every one-concern fixture in
//! `tests/fixtures/formatter/`. A reviewer reads a snapshot and sees the behaviour;
//! `cargo insta review` shows what a change moved.

use crate::support::inspect;

fn snapshot(pattern: &str) {
    insta::glob!(pattern, |path| {
        let inspected = inspect(path, &[]);
        let document = inspected.json();
        let rejected = document.get("rejected").is_some();
        // A rejection exits 1 and names the file and the reason on stderr.
        assert_eq!(
            inspected.code,
            if rejected { 1 } else { 0 },
            "{}",
            inspected.stderr
        );
        if rejected {
            let name = path.file_name().expect("a file name").to_string_lossy();
            assert!(
                inspected.stderr.contains(name.as_ref()),
                "{}",
                inspected.stderr
            );
            assert!(
                inspected.stderr.contains("rejected: "),
                "{}",
                inspected.stderr
            );
        }
        insta::assert_snapshot!(inspected.stdout);
    });
}

#[test]
fn seeds() {
    snapshot("fixtures/seeds/*.txt");
}

#[test]
fn one_concern_fixtures() {
    snapshot("fixtures/formatter/*.txt");
}
