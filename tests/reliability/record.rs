//! Results for `docs/reliability.md`: each test appends what it tried and what happened to
//! `target/tmp/reliability/results.tsv`; `scripts/reliability-report.sh` turns that into the doc.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

/// Directory of the results.
pub fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("reliability")
}

static LOCK: Mutex<()> = Mutex::new(());

/// Appends one row: `kind` is `fault`, `hostile`, `flood`, `lost` or `leak`; `value` is the
/// outcome (for `lost` and `leak`, a count).
pub fn row(kind: &str, item: &str, value: &str) {
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let d = dir();
    std::fs::create_dir_all(&d).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(d.join("results.tsv"))
        .unwrap();
    let clean = |s: &str| s.replace(['\t', '\n'], " ");
    writeln!(f, "{}\t{}\t{}", clean(kind), clean(item), clean(value)).unwrap();
}
