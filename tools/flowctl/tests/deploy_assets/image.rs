//! The container image: Dockerfile, entrypoint, .dockerignore.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{output_of, read, repo, run_ok, temp_dir, venv_bin, write_executable};

/// Names the workspace builds binaries for: every service plus flowctl.
pub(crate) fn workspace_binaries() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = std::fs::read_dir(repo().join("services"))
        .expect("services/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.insert("flowctl".into());
    names
}

pub(crate) fn words_after(text: &str, marker: &str, end: &str) -> BTreeSet<String> {
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("`{marker}` not found"))
        + marker.len();
    let rest = &text[start..];
    let stop = rest.find(end).unwrap_or(rest.len());
    rest[..stop]
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[test]
pub(crate) fn dockerfile_passes_hadolint_and_ships_every_binary() {
    let root = repo();
    // DL3008 (pin apt package versions) is off on purpose: Debian replaces versions with
    // security updates, so pinned versions break builds; the base image tag is pinned.
    run_ok(
        Command::new(venv_bin("hadolint"))
            .args(["--ignore", "DL3008", "--failure-threshold", "info"])
            .arg(root.join("Dockerfile")),
    );

    let dockerfile = read("Dockerfile");
    let entrypoint = read("deploy/docker/entrypoint.sh");
    let built = words_after(&dockerfile, "for b in ", ";");
    let dispatched = words_after(&entrypoint, "binaries=\"", "\"");
    let expected = workspace_binaries();
    assert_eq!(built, expected, "binaries the Dockerfile copies");
    assert_eq!(dispatched, expected, "binaries the entrypoint runs");

    let last_stage = &dockerfile[dockerfile.rfind("\nFROM ").expect("FROM")..];
    let user = last_stage
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the runtime stage sets USER");
    assert!(
        !user.starts_with('0') && !user.starts_with("root"),
        "runtime user is root: {user}"
    );
    for from in dockerfile
        .lines()
        .filter(|l| l.starts_with("ARG ") && l.contains("_IMAGE="))
    {
        let image = from.split_once('=').expect("ARG x=y").1;
        assert!(
            image.contains(':') && !image.ends_with(":latest"),
            "base image not pinned by tag: {image}"
        );
    }

    // Files the crates embed from outside crates/services/tools must be in the build context.
    let dockerignore = read(".dockerignore");
    for dir in embedded_dirs_outside_crates() {
        assert!(
            dockerfile.contains(&format!("COPY {dir} {dir}")),
            "the Dockerfile does not copy {dir}, which a crate embeds"
        );
        assert!(
            dockerignore.lines().any(|l| l.trim() == format!("!{dir}/")),
            ".dockerignore does not re-include {dir}/, which a crate embeds"
        );
    }
}

/// Directories holding files that some crate embeds with include_str!/include_bytes! and
/// that lie outside crates/, services/ and tools/.
pub(crate) fn embedded_dirs_outside_crates() -> BTreeSet<String> {
    let root = repo();
    let mut dirs = BTreeSet::new();
    let mut stack: Vec<PathBuf> = ["crates", "services", "tools"]
        .iter()
        .map(|d| root.join(d))
        .collect();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                if entry.file_name() != "target" {
                    stack.push(path);
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            for macro_name in ["include_str!(\"", "include_bytes!(\""] {
                for (at, _) in text.match_indices(macro_name) {
                    let rest = &text[at + macro_name.len()..];
                    let rel = &rest[..rest.find('"').unwrap_or(0)];
                    let target = path.parent().expect("parent").join(rel);
                    let Ok(target) = target.canonicalize() else {
                        continue;
                    };
                    let Ok(inside) = target.strip_prefix(&root) else {
                        continue;
                    };
                    let inside = inside.to_string_lossy();
                    if !["crates/", "services/", "tools/"]
                        .iter()
                        .any(|p| inside.starts_with(p))
                    {
                        let parent = Path::new(&*inside).parent().expect("dir");
                        // Report the directory the Dockerfile copies (two levels, deploy/x).
                        let top: PathBuf = parent.components().take(2).collect();
                        dirs.insert(top.to_string_lossy().into_owned());
                    }
                }
            }
        }
    }
    dirs
}

#[test]
pub(crate) fn entrypoint_runs_the_named_binary_with_its_arguments() {
    let bin = temp_dir("bin");
    for name in workspace_binaries() {
        write_executable(
            &bin.path().join(&name),
            &format!("#!/bin/sh\necho \"{name} $*\"\n"),
        );
    }
    let entrypoint = repo().join("deploy/docker/entrypoint.sh");
    let run = |args: &[&str]| {
        output_of(
            Command::new("sh")
                .arg(&entrypoint)
                .args(args)
                .env("FLOWLINE_BIN_DIR", bin.path()),
        )
    };

    let out = run(&["indexer", "--config", "/etc/flowline.toml"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "indexer --config /etc/flowline.toml\n"
    );
    let out = run(&["flowctl", "bootstrap", "--shards", "4"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "flowctl bootstrap --shards 4\n"
    );

    let out = run(&["sh"]);
    assert_eq!(out.status.code(), Some(64), "an unknown name is refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown service 'sh'"));

    let out = run(&[]);
    assert!(out.status.success(), "no argument prints the usage");
    assert!(String::from_utf8_lossy(&out.stderr).contains("enrichment-joiner"));
}
