//! Shared helpers: subscribers from the shared vectors, starting a network, building UEs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use ikt_lab::config::LabConfig;
use ikt_lab::hss::{self, Hss, Provisioned};
use ikt_lab::network::{AgentHops, Network, NetworkConfig};
use ikt_lab::ue::{Ue, UeConfig};

/// Hang guard for any single wait (generous: tests must pass on a loaded 2-core machine).
pub const WAIT: Duration = Duration::from_secs(20);

/// The shared MILENAGE sets, by id.
pub fn vector_sets() -> BTreeMap<String, toml::Table> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/vectors/milenage.toml"
    );
    let text = std::fs::read_to_string(path).expect("vectors file");
    let v: toml::Table = toml::from_str(&text).expect("vectors parse");
    v["set"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let t = s.as_table().unwrap().clone();
            (t["id"].as_str().unwrap().to_string(), t)
        })
        .collect()
}

/// A subscriber file with one subscriber per shared set id (`set<id>@ims.example.org`).
pub fn subscriber_file(ids: &[&str], sqn: &str) -> String {
    let sets = vector_sets();
    let mut out = String::new();
    for id in ids {
        let s = &sets[*id];
        let g = |k: &str| s[k].as_str().unwrap().to_string();
        out.push_str(&format!(
            "[[subscriber]]\nimpi = \"set{id}@ims.example.org\"\nimpus = [\"sip:set{id}@ims.example.org\", \"tel:+1555010{id}\"]\nk = \"{}\"\nop = \"{}\"\namf = \"{}\"\nsqn = \"{sqn}\"\n\n",
            g("k"),
            g("op"),
            g("amf")
        ));
    }
    out
}

/// A running network plus the provisioning it was started with.
pub struct Lab {
    pub net: Network,
    pub provisioned: Vec<Provisioned>,
    pub lab: LabConfig,
}

impl Lab {
    /// A UE for subscriber `index`, adjusted by `tweak`.
    pub async fn ue(&self, index: usize, tweak: impl FnOnce(&mut UeConfig)) -> Ue {
        let mut cfg = UeConfig::from_provisioned(
            &self.provisioned[index],
            &self.lab.realm,
            self.net.addrs().pcscf,
        );
        tweak(&mut cfg);
        Ue::spawn(cfg).await.expect("ue spawn")
    }
}

/// Starts a loopback network for these shared sets with this lab config text and agent hops.
pub async fn start_with(ids: &[&str], config: &str, hops: AgentHops) -> Lab {
    let lab = LabConfig::from_toml(config).expect("lab config");
    let provisioned =
        hss::parse_provisioning(&subscriber_file(ids, "000000000100")).expect("subscribers");
    let hss = Arc::new(Hss::new(provisioned.iter().map(Into::into).collect()));
    let net = Network::start(NetworkConfig::loopback(lab.clone()), hss, hops)
        .await
        .expect("network start");
    Lab {
        net,
        provisioned,
        lab,
    }
}

/// Starts a loopback network with direct hops.
pub async fn start(ids: &[&str], config: &str) -> Lab {
    start_with(ids, config, AgentHops::default()).await
}

/// Polls `check` until it holds (hang guard `WAIT`).
pub async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
