//! Loading one TOML file into a typed, validated struct.
//!
//! Structs use `#[serde(deny_unknown_fields)]` so a typo is an error, not a silently ignored field;
//! the error text comes from the TOML parser and names the key and line.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::Error;

/// Largest config file accepted; a config is a few kilobytes, anything bigger is a mistake.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Reads and parses a TOML config file.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<T, Error> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|source| Error::Read {
        path: shown.clone(),
        source,
    })?;
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(Error::Config {
            path: shown,
            message: format!("file is larger than {MAX_CONFIG_BYTES} bytes"),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: shown.clone(),
        source,
    })?;
    parse(&text).map_err(|message| Error::Config {
        path: shown,
        message,
    })
}

/// Parses TOML text; the error names the offending key.
pub fn parse<T: DeserializeOwned>(text: &str) -> Result<T, String> {
    toml::from_str(text).map_err(|e| e.to_string().trim_end().to_owned())
}

/// Checks that an agent id is usable as a certificate DNS SAN and a Via param value.
pub fn valid_agent_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 63
        && !id.starts_with(['-', '.'])
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// Checks a `host:port` next-hop address (an IP or a DNS name; resolved when the agent starts).
pub fn valid_host_port(s: &str) -> bool {
    if s.parse::<std::net::SocketAddr>().is_ok() {
        return true;
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        return false;
    };
    port.parse::<u16>().is_ok_and(|p| p != 0)
        && !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Resolves a validated `host:port` to its first address; the error names the config field.
pub async fn resolve(addr: &str, field: &str) -> Result<std::net::SocketAddr, Error> {
    let fail = |why: String| Error::Config {
        path: field.to_owned(),
        message: why,
    };
    tokio::net::lookup_host(addr)
        .await
        .map_err(|e| fail(format!("cannot resolve {addr:?}: {e}")))?
        .next()
        .ok_or_else(|| fail(format!("{addr:?} has no address")))
}

/// Helper for validation errors: `field` is the dotted TOML path.
pub fn invalid(path: &Path, field: &str, why: impl std::fmt::Display) -> Error {
    Error::Config {
        path: path.display().to_string(),
        message: format!("{field}: {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        #[allow(dead_code)]
        listen: String,
    }

    #[test]
    fn unknown_field_is_named() {
        let err = parse::<Sample>("listen = \"x\"\nlisten_typo = 1\n").unwrap_err();
        assert!(err.contains("listen_typo"), "{err}");
    }

    #[test]
    fn host_ports() {
        for ok in [
            "127.0.0.1:5060",
            "[::1]:5060",
            "icscf:5060",
            "icscf.ims.svc.cluster.local:5060",
        ] {
            assert!(valid_host_port(ok), "{ok}");
        }
        for bad in [
            "icscf",
            "icscf:0",
            ":5060",
            "ic scf:5060",
            "icscf:70000",
            "",
        ] {
            assert!(!valid_host_port(bad), "{bad}");
        }
    }

    #[test]
    fn missing_file_names_path() {
        let err = load::<Sample>(Path::new("/nonexistent/agent.toml")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/agent.toml"));
    }
}
