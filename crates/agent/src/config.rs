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
    fn missing_file_names_path() {
        let err = load::<Sample>(Path::new("/nonexistent/agent.toml")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/agent.toml"));
    }
}
