use std::path::{Path, PathBuf};
use std::process::Command;

/// Builds the chain's binaries (same profile and target dir as this test) and returns their dir.
fn bins() -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--bins",
            "-p",
            "ikt-lab",
            "-p",
            "s-cscf-agent",
            "-p",
            "p-cscf-agent",
            "-p",
            "ikt-relay",
        ])
        .status()
        .expect("cargo build");
    assert!(status.success(), "building the chain's binaries failed");
    Path::new(env!("CARGO_BIN_EXE_ikt-load"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn quick_run_reports_every_mode_without_lost_bundles() {
    let bin_dir = bins();
    let out = std::env::temp_dir().join(format!("ikt-load-smoke-{}", std::process::id()));
    let status = Command::new(env!("CARGO_BIN_EXE_ikt-load"))
        .args([
            "run",
            "--quick",
            "--no-anchor",
            "--rounds",
            "1",
            "--seconds",
            "0.5",
            "--rate",
            "40",
        ])
        .args(["--window", "8", "--subscribers", "16", "--hold", "40"])
        .arg("--out")
        .arg(&out)
        .arg("--bin-dir")
        .arg(&bin_dir)
        .arg("--criterion")
        .arg(out.join("no-criterion"))
        .status()
        .expect("run ikt-load");
    assert!(status.success(), "ikt-load run failed");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("latest.json")).unwrap()).unwrap();
    let md = std::fs::read_to_string(out.join("latest.md")).unwrap();
    let svg = std::fs::read_to_string(out.join("latest.svg")).unwrap();
    std::fs::remove_dir_all(&out).unwrap();
    assert!(svg.starts_with("<svg") || svg.contains("<svg"));
    let modes = json["modes"].as_array().unwrap();
    let names: Vec<&str> = modes.iter().map(|m| m["mode"].as_str().unwrap()).collect();
    assert_eq!(names, ["baseline", "plain", "sealed", "grpc", "quic"]);
    for m in modes {
        let name = m["mode"].as_str().unwrap();
        assert!(
            md.contains(&format!("| {name} |")),
            "{name} missing from the Markdown"
        );
        for phase in ["at_rate", "saturation"] {
            assert!(
                m[phase]["registrations"].as_u64().unwrap() > 0,
                "{name} {phase}: no registration"
            );
        }
        if name != "baseline" {
            let b = &m["bundles"];
            assert_eq!(b["lost"].as_f64(), Some(0.0), "{name}: {b}");
        }
        if name == "grpc" || name == "quic" || name == "sealed" {
            assert!(
                m["bundles"]["sent"].as_f64().unwrap() > 0.0,
                "{name}: no bundle sent"
            );
        }
    }
    assert!(md.contains("## Targets"));
}
