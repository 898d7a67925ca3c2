//! Collects the per-crate criterion figures from `target/criterion` (written by
//! `cargo bench -p ikt-sip -p ikt-keys -p ikt-relay -p ikt-transport`).

use std::path::Path;

use crate::results::MicroResult;

fn walk(root: &Path, dir: &Path, out: &mut Vec<MicroResult>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if !p.is_dir() {
            continue;
        }
        if p.file_name().is_some_and(|n| n == "new") {
            if let Some(r) = read(root, &p) {
                out.push(r);
            }
        } else if p
            .file_name()
            .is_some_and(|n| n != "report" && n != "base" && n != "change")
        {
            walk(root, &p, out);
        }
    }
}

fn read(root: &Path, new: &Path) -> Option<MicroResult> {
    let est: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(new.join("estimates.json")).ok()?).ok()?;
    let mean_ns = est.get("mean")?.get("point_estimate")?.as_f64()?;
    let bench: Option<serde_json::Value> = std::fs::read_to_string(new.join("benchmark.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let elements = bench
        .as_ref()
        .and_then(|b| b.get("throughput"))
        .and_then(|t| t.get("Elements"))
        .and_then(serde_json::Value::as_u64);
    let rel = new.parent()?.strip_prefix(root).ok()?;
    let parts: Vec<String> = rel
        .iter()
        .map(|c| c.to_string_lossy().into_owned())
        .collect();
    let (group, name) = match parts.as_slice() {
        [one] => (one.clone(), String::new()),
        [g, rest @ ..] => (g.clone(), rest.join("/")),
        [] => return None,
    };
    Some(MicroResult {
        group,
        name,
        mean_ns,
        elements,
    })
}

/// Every benchmark under `criterion_dir`, sorted by group and name.
pub fn collect(criterion_dir: &Path) -> Vec<MicroResult> {
    let mut out = Vec::new();
    walk(criterion_dir, criterion_dir, &mut out);
    out.sort_by(|a, b| (&a.group, &a.name).cmp(&(&b.group, &b.name)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_estimates_and_throughput() {
        let dir = std::env::temp_dir().join(format!("ikt-micro-{}", std::process::id()));
        let new = dir.join("delivery_window_256/grpc_stream/new");
        std::fs::create_dir_all(&new).unwrap();
        std::fs::write(
            new.join("estimates.json"),
            r#"{"mean":{"point_estimate":12000.5}}"#,
        )
        .unwrap();
        std::fs::write(
            new.join("benchmark.json"),
            r#"{"throughput":{"Elements":1}}"#,
        )
        .unwrap();
        let r = collect(&dir);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].group.as_str(), r[0].name.as_str()),
            ("delivery_window_256", "grpc_stream")
        );
        assert_eq!((r[0].mean_ns, r[0].elements), (12000.5, Some(1)));
    }
}
