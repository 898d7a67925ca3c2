//! Integration tests of `ikt-sip` over the shared corpus in `tests/data/sip/`.

mod corpus;
mod props;

use std::path::{Path, PathBuf};

/// The corpus directory (shared fixtures at the workspace root).
pub fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/sip")
}

/// Every valid corpus file as (file name, bytes), sorted by name.
pub fn corpus() -> Vec<(String, Vec<u8>)> {
    read_dir(&corpus_dir())
}

/// Every invalid corpus file as (file name, bytes), sorted by name.
pub fn invalid_corpus() -> Vec<(String, Vec<u8>)> {
    read_dir(&corpus_dir().join("invalid"))
}

fn read_dir(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("corpus dir {}: {e}", dir.display()))
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "sip"))
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let bytes = std::fs::read(e.path()).expect("read corpus file");
            (name, bytes)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no corpus files in {}", dir.display());
    out
}

/// One corpus file by name.
pub fn file(name: &str) -> Vec<u8> {
    std::fs::read(corpus_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}
