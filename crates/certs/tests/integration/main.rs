//! The development PKI: certificates validate for mutual TLS as the agents use it, and the
//! `ikt-certs` binary writes what it promises.

mod chain {
    //! Path validation with webpki, the verifier rustls uses.
    use ikt_certs::{Ca, IssueOptions, Validity};
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
    use webpki::{EndEntityCert, KeyUsage};

    fn verify(ca_pem: &str, leaf_pem: &str, usage: KeyUsage) -> Result<(), webpki::Error> {
        let ca = CertificateDer::from_pem_slice(ca_pem.as_bytes()).expect("ca pem");
        let anchors = [webpki::anchor_from_trusted_cert(&ca)
            .expect("anchor")
            .to_owned()];
        let leaf = CertificateDer::from_pem_slice(leaf_pem.as_bytes()).expect("leaf pem");
        let ee = EndEntityCert::try_from(&leaf).expect("parse");
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &[],
            UnixTime::now(),
            usage,
            None,
            None,
        )
        .map(|_| ())
    }

    fn valid_for(leaf_pem: &str, name: &str) -> bool {
        let leaf = CertificateDer::from_pem_slice(leaf_pem.as_bytes()).expect("leaf pem");
        let ee = EndEntityCert::try_from(&leaf).expect("parse");
        let name = ServerName::try_from(name.to_owned()).expect("name");
        ee.verify_is_valid_for_subject_name(&name).is_ok()
    }

    #[test]
    fn agent_cert_is_valid_client_and_server_with_its_san() {
        let ca = Ca::new("test", 2).expect("ca");
        let leaf = ca.issue("pcscf-1", &IssueOptions::default()).expect("leaf");
        verify(ca.cert_pem(), &leaf.cert_pem, KeyUsage::client_auth()).expect("client auth");
        verify(ca.cert_pem(), &leaf.cert_pem, KeyUsage::server_auth()).expect("server auth");
        assert!(valid_for(&leaf.cert_pem, "pcscf-1"));
        assert!(valid_for(&leaf.cert_pem, "localhost"));
        assert!(valid_for(&leaf.cert_pem, "127.0.0.1"));
        assert!(!valid_for(&leaf.cert_pem, "scscf-1"));
        let bare = ca
            .issue(
                "scscf-1",
                &IssueOptions {
                    loopback_sans: false,
                    ..IssueOptions::default()
                },
            )
            .expect("leaf");
        assert!(valid_for(&bare.cert_pem, "scscf-1"));
        assert!(!valid_for(&bare.cert_pem, "localhost"));
    }

    #[test]
    fn negative_material_fails_as_expected() {
        let ca = Ca::new("test", 2).expect("ca");
        let other = Ca::new("other", 2).expect("ca");
        let foreign = other
            .issue("pcscf-1", &IssueOptions::default())
            .expect("leaf");
        assert_eq!(
            verify(ca.cert_pem(), &foreign.cert_pem, KeyUsage::client_auth()),
            Err(webpki::Error::UnknownIssuer)
        );
        let expired = ca
            .issue(
                "pcscf-1",
                &IssueOptions {
                    validity: Validity::Expired,
                    loopback_sans: true,
                },
            )
            .expect("leaf");
        assert!(matches!(
            verify(ca.cert_pem(), &expired.cert_pem, KeyUsage::client_auth()),
            Err(webpki::Error::CertExpired { .. })
        ));
        let stranger = ca
            .issue("intruder-1", &IssueOptions::default())
            .expect("leaf");
        verify(ca.cert_pem(), &stranger.cert_pem, KeyUsage::client_auth()).expect("chain is fine");
        assert!(
            !valid_for(&stranger.cert_pem, "scscf-1"),
            "but its SAN is not a known agent"
        );
    }
}

mod cli {
    //! The `ikt-certs` binary.
    use std::process::Command;

    fn tmp(tag: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("ikt-certs-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        p
    }

    #[test]
    fn init_writes_ca_and_agents() {
        let dir = tmp("init");
        let out = Command::new(env!("CARGO_BIN_EXE_ikt-certs"))
            .args(["init", "--out"])
            .arg(&dir)
            .args(["--agent", "pcscf-1", "--agent", "scscf-1", "--days", "30"])
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        for f in [
            "ca.pem",
            "ca.key",
            "pcscf-1.pem",
            "pcscf-1.key",
            "scscf-1.pem",
            "scscf-1.key",
        ] {
            let path = dir.join(f);
            let text = std::fs::read_to_string(&path).expect(f);
            assert!(text.starts_with("-----BEGIN "), "{f}");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
                assert_eq!(mode, if f.ends_with(".key") { 0o600 } else { 0o644 }, "{f}");
            }
        }
        // A second run refuses to overwrite keys.
        let again = Command::new(env!("CARGO_BIN_EXE_ikt-certs"))
            .args(["init", "--out"])
            .arg(&dir)
            .args(["--agent", "pcscf-1"])
            .output()
            .expect("run");
        assert!(!again.status.success());
        assert!(String::from_utf8_lossy(&again.stderr).contains("--force"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let dir = tmp("bad");
        let out = Command::new(env!("CARGO_BIN_EXE_ikt-certs"))
            .args(["init", "--out"])
            .arg(&dir)
            .args(["--agent", "../etc/passwd"])
            .output()
            .expect("run");
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains("invalid agent id"));
        assert!(!dir.join("ca.key").exists(), "nothing written on bad input");
        let help = Command::new(env!("CARGO_BIN_EXE_ikt-certs"))
            .args(["init", "--help"])
            .output()
            .expect("run");
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(
            text.contains("--agent") && text.contains("0600") && text.contains("SAN"),
            "{text}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
