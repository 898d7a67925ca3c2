//! Relay configuration: plain data with defaults, validated by `Relay::start`.

use std::net::SocketAddr;
use std::time::Duration;

/// A SIP transport the relay speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Transport {
    /// Datagrams, one message each.
    Udp,
    /// A byte stream framed by Content-Length.
    Tcp,
}

impl Transport {
    /// The token used in Via and in `transport=` (upper case).
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
        }
    }

    /// Parses a Via or URI transport token, case-insensitively; other transports give `None`.
    pub fn from_token(token: &str) -> Option<Transport> {
        if token.eq_ignore_ascii_case("udp") {
            Some(Transport::Udp)
        } else if token.eq_ignore_ascii_case("tcp") {
            Some(Transport::Tcp)
        } else {
            None
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where requests go when no Route names another hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NextHop {
    /// Address of the next hop.
    pub addr: SocketAddr,
    /// Transport toward it; `None` keeps the transport the request arrived on.
    pub transport: Option<Transport>,
}

/// Everything a relay needs to start; build with `Config { .., ..Config::default() }`.
#[derive(Clone, Debug)]
pub struct Config {
    /// UDP addresses to listen on (port 0 picks one; see `Relay::udp_addrs`).
    pub udp_listen: Vec<SocketAddr>,
    /// TCP addresses to listen on.
    pub tcp_listen: Vec<SocketAddr>,
    /// Default next hop for requests without a Route to follow.
    pub next_hop: Option<NextHop>,
    /// Host written in our Via sent-by; defaults to the listening IP (required for 0.0.0.0 / ::).
    pub via_host: Option<String>,
    /// Extra Via parameters after the branch, e.g. `ikt=pcscf-1` (no leading `;` needed).
    pub via_params: String,
    /// Other `host` or `host:port` names that Route headers may use for this relay.
    pub aliases: Vec<String>,
    /// Scanner limits applied to every received message.
    pub limits: ikt_sip::Limits,
    /// SO_RCVBUF / SO_SNDBUF for UDP sockets, in bytes (the kernel may cap it).
    pub udp_socket_buffer: usize,
    /// Messages queued per TCP connection before further ones are dropped.
    pub tcp_queue: usize,
    /// A TCP connection with no traffic either way for this long is closed.
    pub tcp_idle_timeout: Duration,
    /// How long an outgoing TCP connect may take.
    pub tcp_connect_timeout: Duration,
    /// Upper bound on open TCP connections (accepted plus opened).
    pub max_tcp_connections: usize,
    /// Upper bound on messages held by hooks at once.
    pub max_held: usize,
    /// A held message not released within this time is dropped.
    pub max_hold: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            udp_listen: Vec::new(),
            tcp_listen: Vec::new(),
            next_hop: None,
            via_host: None,
            via_params: String::new(),
            aliases: Vec::new(),
            limits: ikt_sip::Limits::default(),
            udp_socket_buffer: 4 << 20,
            tcp_queue: 1024,
            tcp_idle_timeout: Duration::from_secs(300),
            tcp_connect_timeout: Duration::from_secs(5),
            max_tcp_connections: 4096,
            max_held: 4096,
            max_hold: Duration::from_secs(32),
        }
    }
}

impl Config {
    /// Checks what can be checked before any socket opens; returns the normalised Via params.
    pub(crate) fn validate(&self) -> Result<String, crate::Error> {
        use crate::Error::Config as E;
        if self.udp_listen.is_empty() && self.tcp_listen.is_empty() {
            return Err(E(
                "no listen address (udp_listen and tcp_listen are both empty)".into(),
            ));
        }
        if let Some(h) = &self.via_host
            && (h.is_empty() || !h.bytes().all(is_host_byte))
        {
            return Err(E(format!(
                "via_host {h:?} is not a host name or IP literal"
            )));
        }
        if self.via_host.is_none()
            && self
                .udp_listen
                .iter()
                .chain(&self.tcp_listen)
                .any(|a| a.ip().is_unspecified())
        {
            return Err(E(
                "via_host is required when listening on an unspecified address".into(),
            ));
        }
        let params = self.via_params.trim().trim_start_matches(';').to_owned();
        if !params.bytes().all(is_param_byte) {
            return Err(E(format!(
                "via_params {params:?} has characters not allowed in a Via parameter"
            )));
        }
        for p in params.split(';') {
            let name = p.split('=').next().unwrap_or("");
            if !params.is_empty() && name.is_empty() {
                return Err(E(format!("via_params {params:?} has an empty parameter")));
            }
            if name.eq_ignore_ascii_case("branch")
                || name.eq_ignore_ascii_case(crate::proxy::CONN_PARAM)
            {
                return Err(E(format!(
                    "via_params must not set {name:?}: the relay owns it"
                )));
            }
        }
        if self.tcp_queue == 0 || self.max_tcp_connections == 0 {
            return Err(E(
                "tcp_queue and max_tcp_connections must be at least 1".into()
            ));
        }
        Ok(params)
    }
}

fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
}

fn is_param_byte(b: u8) -> bool {
    // RFC 3261 token characters plus `;` and `=` separating params.
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~;=:[]".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut Config)) -> Result<String, crate::Error> {
        let mut c = Config {
            udp_listen: vec!["127.0.0.1:0".parse().unwrap()],
            ..Config::default()
        };
        f(&mut c);
        c.validate()
    }

    #[test]
    fn validation_names_the_field() {
        assert_eq!(with(|_| {}).unwrap(), "");
        assert_eq!(
            with(|c| c.via_params = ";ikt=pcscf-1".into()).unwrap(),
            "ikt=pcscf-1"
        );
        let err = |f: fn(&mut Config)| with(f).unwrap_err().to_string();
        assert!(err(|c| c.udp_listen.clear()).contains("listen"));
        assert!(err(|c| c.via_params = "a b".into()).contains("via_params"));
        assert!(err(|c| c.via_params = "branch=x".into()).contains("branch"));
        assert!(err(|c| c.via_host = Some("a\r\nb".into())).contains("via_host"));
        assert!(err(|c| c.udp_listen = vec!["0.0.0.0:5060".parse().unwrap()]).contains("via_host"));
    }
}
