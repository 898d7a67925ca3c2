//! The four ways CK/IK travel from the s-cscf-agent to the p-cscf-agent (DESIGN §2).

use serde::{Deserialize, Serialize};

/// How CK/IK travel between the two agents of one peer pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// 3GPP baseline: keys stay in the 401 in clear; the agents only relay.
    Plain,
    /// Keys sealed with AES-256-GCM into one `kt` auth-param of the 401.
    Sealed,
    /// Out of band over a long-lived gRPC stream (HTTP/2, mutual TLS 1.3).
    Grpc,
    /// Out of band over QUIC (mutual TLS 1.3, ALPN `ikt/1`).
    Quic,
}

impl Mode {
    /// Every mode, in the order reports list them.
    pub const ALL: [Mode; 4] = [Mode::Plain, Mode::Sealed, Mode::Grpc, Mode::Quic];

    /// The lowercase name used in config, CLI and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Plain => "plain",
            Mode::Sealed => "sealed",
            Mode::Grpc => "grpc",
            Mode::Quic => "quic",
        }
    }

    /// Whether the keys leave the SIP path (grpc, quic).
    pub fn out_of_band(self) -> bool {
        matches!(self, Mode::Grpc | Mode::Quic)
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mode::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown mode {s:?} (expected plain, sealed, grpc or quic)"))
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in Mode::ALL {
            assert_eq!(m.as_str().parse::<Mode>().unwrap(), m);
            assert_eq!(m.to_string(), m.as_str());
        }
        assert!("tls".parse::<Mode>().is_err());
        assert!(Mode::Grpc.out_of_band() && Mode::Quic.out_of_band());
        assert!(!Mode::Plain.out_of_band() && !Mode::Sealed.out_of_band());
    }
}
