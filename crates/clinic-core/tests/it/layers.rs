//! The crate's modules are layers: each uses only those declared before it in lib.rs. No
//! two modules import each other, and a new domain declared last can use every other.

use std::collections::BTreeMap;
use std::path::Path;

/// Every top-level module a file names with `crate::…`, including `crate::{a, b::c}`.
fn crate_refs(text: &str) -> Vec<String> {
    let mut out = vec![];
    for (at, _) in text.match_indices("crate::") {
        if at >= 6 && &text[at - 6..at] == "$crate" {
            continue;
        }
        let rest = &text[at + 7..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(0)];
            out.extend(
                inner
                    .split(',')
                    .map(|p| p.trim().split("::").next().unwrap_or("").to_string()),
            );
        } else {
            out.push(
                rest.split(|c: char| !c.is_alphanumeric() && c != '_')
                    .next()
                    .unwrap_or("")
                    .to_string(),
            );
        }
    }
    out.into_iter()
        .filter(|m| !m.is_empty() && m != "self")
        .collect()
}

#[test]
fn modules_only_use_the_layers_below_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let order: Vec<String> = lib
        .lines()
        .filter_map(|l| l.trim().trim_start_matches("pub ").strip_prefix("mod "))
        .map(|m| m.trim_end_matches(';').to_string())
        .collect();
    let rank: BTreeMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, m)| (m.as_str(), i))
        .collect();
    assert!(
        order.len() > 12 && rank["store"] < rank["patients"] && rank["api"] < rank["commands"],
        "{order:?}"
    );
    // Names brought to the crate root (`crate::Error`, `crate::Core`) count as their module.
    let root: BTreeMap<&str, &str> = [
        ("Error", "error"),
        ("Result", "error"),
        ("ApiError", "error"),
        ("Core", "core"),
        ("Cx", "session"),
    ]
    .into();
    let mut upward = vec![];
    let mut checked = 0;
    for f in crate::support::rust_files(&src) {
        let rel = f.strip_prefix(&src).unwrap();
        let own = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let Some(&mine) = rank.get(own.as_str()) else {
            continue;
        };
        let text = std::fs::read_to_string(&f).unwrap();
        for r in crate_refs(&text) {
            let module = root.get(r.as_str()).copied().unwrap_or(r.as_str());
            match rank.get(module) {
                Some(&theirs) if theirs > mine => upward.push(format!(
                    "{} uses crate::{r} (declared after {own})",
                    rel.display()
                )),
                Some(_) => checked += 1,
                // Macros exported at the root (`crate::text_column!`) belong to their module.
                None if text.contains(&format!("crate::{r}!")) => checked += 1,
                None => panic!("{}: crate::{r} is no module of lib.rs", rel.display()),
            }
        }
    }
    assert!(
        checked > 100,
        "the scan read the sources ({checked} references)"
    );
    assert!(
        upward.is_empty(),
        "modules reaching up the layers:\n{}",
        upward.join("\n")
    );
}
