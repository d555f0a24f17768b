//! Where the service binaries are: next to the test's own `deps/` directory.
//!
//! `cargo nextest run --workspace` (what `make test` runs) builds every workspace binary
//! into the same profile directory as the test executables, which live in
//! `target/<profile>/deps/`. `env!("CARGO_BIN_EXE_...")` only exists for binaries of the
//! test's own package, so the harness looks them up relative to `current_exe()`.

use std::path::PathBuf;

use anyhow::{Context as _, bail};

/// The profile directory holding the binaries (`target/debug`).
pub fn bin_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the test executable")?;
    let deps = exe.parent().context("test executable has no directory")?;
    let dir = if deps.file_name().is_some_and(|n| n == "deps") {
        deps.parent().context("deps/ has no parent")?
    } else {
        deps
    };
    Ok(dir.to_path_buf())
}

/// The path of binary `name`, which must have been built.
pub fn bin(name: &str) -> anyhow::Result<PathBuf> {
    let path = bin_dir()?.join(name);
    if !path.is_file() {
        bail!(
            "{} is missing: build it first (`cargo build -p producer -p enrichment-joiner \
             -p aggregator -p indexer -p archiver -p flowctl`; `make test` builds every binary)",
            path.display()
        );
    }
    Ok(path)
}
