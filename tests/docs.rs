//! The checked-in docs are current: `docs/routines.md` and `docs/routines/*.svg` are what
//! `massaged routines --markdown` writes today, so a changed routine without a new picture fails.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut found = BTreeMap::new();
    found.insert(
        "routines.md".to_string(),
        std::fs::read(dir.join("routines.md")).unwrap_or_default(),
    );
    for entry in std::fs::read_dir(dir.join("routines")).expect("routines/ folder") {
        let path = entry.expect("dir entry").path();
        let name = path.file_name().expect("file name").to_string_lossy();
        found.insert(
            format!("routines/{name}"),
            std::fs::read(&path).expect("read picture"),
        );
    }
    found
}

#[test]
fn routine_docs_are_current() {
    let dir = tempfile::tempdir().expect("temp dir");
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "").expect("write empty config");
    let out_dir = dir.path().join("docs");
    let out = Command::new(env!("CARGO_BIN_EXE_massaged"))
        .arg("--config")
        .arg(&empty)
        .args(["routines", "--markdown"])
        .arg(&out_dir)
        .env_remove("MASSAGED_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .expect("run massaged");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fresh = files(&out_dir);
    let checked_in = files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("docs"));
    let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&checked_in),
        names(&fresh),
        "docs/routines/ has other files than the routines; regenerate with \
         `massaged --config /dev/null routines --markdown docs`"
    );
    for (name, bytes) in &fresh {
        assert!(
            checked_in.get(name) == Some(bytes),
            "docs/{name} is stale; regenerate with \
             `massaged --config /dev/null routines --markdown docs` and commit it"
        );
    }
}

#[test]
fn every_builtin_routine_is_in_the_docs() {
    let page =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/routines.md"))
            .expect("docs/routines.md");
    for routine in massaged::config::builtin_routines() {
        assert!(
            page.contains(&format!("## {}", routine.name)),
            "{}",
            routine.id
        );
        assert!(
            page.contains(&format!("(routines/{}.svg)", routine.id)),
            "{}",
            routine.id
        );
        assert!(page.contains(&routine.description), "{}", routine.id);
    }
}
