//! Generated subscribers: random K and OP per subscriber, written as an `ims-lab serve`
//! provisioning file and kept as MILENAGE instances for the load UE.
//!
//! The keys are made fresh for every run and live only in the run's scratch directory; they
//! protect nothing.

use std::path::Path;

use ikt_lab::hss::{self, Provisioned};
use ikt_lab::milenage::Milenage;

use crate::{Error, Result};

/// One subscriber as the load UE needs it.
pub struct Subscriber {
    /// Private identity (digest username).
    pub impi: String,
    /// Public identity registered.
    pub impu: String,
    /// User part of the Contact.
    pub user: String,
    /// K and OPc, ready to compute RES.
    pub milenage: Milenage,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("impi", &self.impi)
            .finish_non_exhaustive()
    }
}

/// `n` subscribers `ld<i>@<realm>`: the provisioning file text and the UE side.
pub fn generate(n: usize, realm: &str) -> Result<(String, Vec<Subscriber>)> {
    let mut text = String::with_capacity(n * 220);
    let mut random = vec![0u8; n * 32];
    getrandom::fill(&mut random).map_err(|e| Error::Lab(format!("random source: {e}")))?;
    for (i, r) in random.chunks(32).enumerate() {
        text.push_str(&format!(
            "[[subscriber]]\nimpi = \"ld{i}@{realm}\"\nimpus = [\"sip:ld{i}@{realm}\"]\n\
             k = \"{}\"\nop = \"{}\"\namf = \"8000\"\nsqn = \"000000000100\"\n\n",
            crate::hex(&r[..16]),
            crate::hex(&r[16..])
        ));
    }
    random.fill(0);
    let provisioned = hss::parse_provisioning(&text).map_err(|e| Error::Lab(e.to_string()))?;
    let subs = provisioned.iter().map(ue_side).collect();
    Ok((text, subs))
}

fn ue_side(p: &Provisioned) -> Subscriber {
    let impu = p.impus.first().cloned().unwrap_or_default();
    let user = p.impi.split('@').next().unwrap_or("ue").to_string();
    Subscriber {
        impi: p.impi.clone(),
        impu,
        user,
        milenage: p.operator_key.milenage(&p.k),
    }
}

/// Writes the provisioning file readable only by its owner.
pub fn write_file(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_file_parses_back() {
        let (text, subs) = generate(3, "ims.example.org").unwrap();
        assert_eq!(subs.len(), 3);
        assert_eq!(subs[2].impi, "ld2@ims.example.org");
        assert_eq!(subs[2].impu, "sip:ld2@ims.example.org");
        assert_eq!(hss::parse_subscribers(&text).unwrap().len(), 3);
        assert!(!format!("{:?}", subs[0]).contains("milenage"));
    }
}
