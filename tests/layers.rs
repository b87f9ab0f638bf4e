//! The module graph of every crate is a hierarchy: no module imports one that imports it back
//! (directly or through others). Read from the sources (`crate::module` paths outside
//! comments and tests), so a change that closes a circle fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module name of a source file of `src`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `module -> modules it names`, for the modules of `src` (the crate root excluded: it only
/// declares and re-exports).
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut fs = Vec::new();
    files(src, &mut fs);
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in fs {
        let m = module_of(src, &f);
        if m == "lib" || m == "main" {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap_or("");
        let deps = g.entry(m.clone()).or_default();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (i, _) in line.match_indices("crate::") {
                let name: String = line[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != m {
                    deps.insert(name);
                }
            }
        }
    }
    g
}

/// A cycle through `start`, if any.
fn cycle(
    g: &BTreeMap<String, BTreeSet<String>>,
    start: &str,
    at: &str,
    path: &mut Vec<String>,
) -> Option<Vec<String>> {
    for next in g.get(at).into_iter().flatten() {
        if next == start {
            let mut c = path.clone();
            c.push(start.to_string());
            return Some(c);
        }
        if g.contains_key(next) && !path.contains(next) {
            path.push(next.clone());
            if let Some(c) = cycle(g, start, next, path) {
                return Some(c);
            }
            path.pop();
        }
    }
    None
}

#[test]
fn modules_import_downward_only() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for src in [
        "crates/particast-ingest/src",
        "crates/particast-kernels/src",
        "crates/particast-pipeline/src",
        "src",
    ] {
        let g = graph(&root.join(src));
        assert!(g.len() > 3, "{src}: too few modules read");
        for m in g.keys() {
            let mut path = vec![m.clone()];
            if let Some(c) = cycle(&g, m, m, &mut path) {
                panic!("{src}: import circle {}", c.join(" -> "));
            }
        }
    }
}

#[test]
fn the_reader_sees_a_circle_when_there_is_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.rs"), "use crate::b::X;\n").unwrap();
    std::fs::write(
        dir.path().join("b.rs"),
        "// crate::a in a comment\nfn f() { crate::c::y() }\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("c.rs"), "use crate::a;\n").unwrap();
    std::fs::write(dir.path().join("d.rs"), "use crate::a;\n").unwrap();
    let g = graph(dir.path());
    let mut path = vec!["a".to_string()];
    assert_eq!(
        cycle(&g, "a", "a", &mut path),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    let mut path = vec!["d".to_string()];
    assert_eq!(cycle(&g, "d", "d", &mut path), None);
}
