//! The reg event package body (RFC 3680, `application/reginfo+xml`): written by the S-CSCF,
//! read by the UE and the P-CSCF.

/// The state of one contact as NOTIFY reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactInfo {
    /// `active` or `terminated`.
    pub state: String,
    /// `registered`, `refreshed`, `shortened`, `expired`, `deactivated`, `unregistered`, `rejected`.
    pub event: String,
    /// Remaining seconds, when given.
    pub expires: Option<u32>,
    /// Contact URI.
    pub uri: String,
}

/// One `<registration>` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The address of record (IMPU).
    pub aor: String,
    /// `init`, `active` or `terminated`.
    pub state: String,
    /// Its contacts.
    pub contacts: Vec<ContactInfo>,
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Writes a full-state reginfo document.
pub fn write(version: u32, regs: &[Registration]) -> String {
    let mut x = format!(
        "<?xml version=\"1.0\"?>\n<reginfo xmlns=\"urn:ietf:params:xml:ns:reginfo\" version=\"{version}\" state=\"full\">\n"
    );
    for (i, r) in regs.iter().enumerate() {
        x.push_str(&format!(
            "  <registration aor=\"{}\" id=\"r{i}\" state=\"{}\">\n",
            escape(&r.aor),
            r.state
        ));
        for (j, c) in r.contacts.iter().enumerate() {
            let exp = c
                .expires
                .map(|e| format!(" expires=\"{e}\""))
                .unwrap_or_default();
            x.push_str(&format!(
                "    <contact id=\"c{i}{j}\" state=\"{}\" event=\"{}\"{exp}>\n      <uri>{}</uri>\n    </contact>\n",
                c.state,
                c.event,
                escape(&c.uri)
            ));
        }
        x.push_str("  </registration>\n");
    }
    x.push_str("</reginfo>\n");
    x
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let pat = format!(" {name}=\"");
    let start = tag.find(&pat)? + pat.len();
    let end = tag[start..].find('"')? + start;
    Some(
        tag[start..end]
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

/// Reads the registrations of a reginfo document (enough of XML for what the S-CSCF writes and
/// the common shape of other registrars' documents). Unknown elements are skipped.
pub fn read(xml: &str) -> Vec<Registration> {
    let mut regs: Vec<Registration> = Vec::new();
    let mut rest = xml;
    while let Some(lt) = rest.find('<') {
        rest = &rest[lt + 1..];
        let Some(gt) = rest.find('>') else { break };
        let tag = &rest[..gt];
        let name = tag
            .split(|c: char| c.is_ascii_whitespace() || c == '/')
            .next()
            .unwrap_or("");
        let local = name.rsplit(':').next().unwrap_or(name);
        let tag_sp = format!(" {}", &tag[name.len()..]);
        match local {
            "registration" => regs.push(Registration {
                aor: attr(&tag_sp, "aor").unwrap_or_default(),
                state: attr(&tag_sp, "state").unwrap_or_default(),
                contacts: Vec::new(),
            }),
            "contact" => {
                let uri = rest[gt + 1..]
                    .find("<uri>")
                    .and_then(|s| {
                        let body = &rest[gt + 1 + s + 5..];
                        body.find("</uri>").map(|e| body[..e].trim().to_string())
                    })
                    .unwrap_or_default();
                if let Some(r) = regs.last_mut() {
                    r.contacts.push(ContactInfo {
                        state: attr(&tag_sp, "state").unwrap_or_default(),
                        event: attr(&tag_sp, "event").unwrap_or_default(),
                        expires: attr(&tag_sp, "expires").and_then(|e| e.parse().ok()),
                        uri,
                    });
                }
            }
            _ => {}
        }
        rest = &rest[gt + 1..];
    }
    regs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let regs = vec![Registration {
            aor: "sip:alice@ims.example.org".into(),
            state: "active".into(),
            contacts: vec![ContactInfo {
                state: "active".into(),
                event: "shortened".into(),
                expires: Some(30),
                uri: "sip:alice@127.0.0.1:5070".into(),
            }],
        }];
        let xml = write(3, &regs);
        assert!(xml.contains("event=\"shortened\""));
        assert_eq!(read(&xml), regs);
    }

    proptest::proptest! {
        #[test]
        fn read_never_panics(s in ".{0,300}") {
            let _ = read(&s);
        }
    }
}
