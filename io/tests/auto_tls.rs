//! Auto-TLS generates a CA and leaves once, reuses them, and re-issues leaves for new hosts.
#![allow(clippy::unwrap_used)]

use qraft_io::tls::{AutoTls, ensure_auto_tls};

#[test]
fn material_is_generated_once_and_leaves_follow_the_host_list() {
    let dir = tempfile::tempdir().unwrap();
    let (paths, first) = ensure_auto_tls(dir.path(), &["node1.example".into()]).unwrap();
    assert_eq!(
        first,
        AutoTls {
            generated_ca: true,
            generated_leaves: true
        }
    );
    let ca = std::fs::read(&paths.ca_cert).unwrap();
    let leaf = std::fs::read(&paths.cert).unwrap();

    let (_, again) = ensure_auto_tls(dir.path(), &["node1.example".into()]).unwrap();
    assert_eq!(
        again,
        AutoTls {
            generated_ca: false,
            generated_leaves: false
        }
    );
    assert_eq!(std::fs::read(&paths.cert).unwrap(), leaf, "leaf reused");

    let (_, moved) = ensure_auto_tls(dir.path(), &["10.1.2.3".into()]).unwrap();
    assert_eq!(
        moved,
        AutoTls {
            generated_ca: false,
            generated_leaves: true
        }
    );
    assert_eq!(std::fs::read(&paths.ca_cert).unwrap(), ca, "CA kept");
    assert_ne!(std::fs::read(&paths.cert).unwrap(), leaf, "leaf re-issued");
    let hosts = std::fs::read_to_string(dir.path().join("hosts.txt")).unwrap();
    assert_eq!(hosts, "127.0.0.1\n::1\nlocalhost\n10.1.2.3");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&paths.key).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "private key readable by others");
    }
}

/// A CA made elsewhere, with a subject unlike the generated CA's (several attributes, a UTF-8
/// organisation, no common name last) and its own key identifier.
fn foreign_ca(dir: &std::path::Path) -> Vec<u8> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, DnValue, IsCa, KeyUsagePurpose};
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(DnType::CountryName, "DE");
    params.distinguished_name.push(
        DnType::OrganizationName,
        DnValue::Utf8String("Zürich Ops & Co".into()),
    );
    params
        .distinguished_name
        .push(DnType::CommonName, "Corporate Root R7");
    params
        .distinguished_name
        .push(DnType::OrganizationalUnitName, "platform");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(2));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let key = rcgen::KeyPair::generate().unwrap();
    let ca = params.self_signed(&key).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("ca.crt"), ca.pem()).unwrap();
    std::fs::write(dir.join("ca.key"), key.serialize_pem()).unwrap();
    ca.der().to_vec()
}

/// Verifies `leaf` against `ca` as a TLS server for `name`, with rustls' WebPKI verifier.
fn verify_server(ca: &[u8], leaf: &std::path::Path, name: &str) -> Result<(), rustls::Error> {
    use rustls::client::danger::ServerCertVerifier;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca.to_vec())).unwrap();
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        qraft_io::tls::crypto_provider(),
    )
    .build()
    .unwrap();
    let leaf = CertificateDer::from_pem_file(leaf).unwrap();
    verifier
        .verify_server_cert(
            &leaf,
            &[],
            &ServerName::try_from(name.to_string()).unwrap(),
            &[],
            UnixTime::now(),
        )
        .map(drop)
}

#[test]
fn leaves_chain_to_a_reused_ca_whatever_its_subject() {
    let dir = tempfile::tempdir().unwrap();
    let ca = foreign_ca(dir.path());
    let (paths, generated) = qraft_io::tls::ensure_auto_tls_with(
        dir.path(),
        &["node1.example".into()],
        &qraft_io::tls::AutoTlsOptions::default(),
    )
    .unwrap();
    assert!(!generated.generated_ca, "the given CA was replaced");
    verify_server(&ca, &paths.cert, "node1.example").expect("leaf chains to the reused CA");
    verify_server(&ca, &paths.client_cert, "localhost").expect_err("client cert is no server");
    // openssl agrees (the member certificate is also a client certificate for peers).
    let out = std::process::Command::new("openssl")
        .args(["verify", "-purpose", "sslclient", "-CAfile"])
        .arg(&paths.ca_cert)
        .arg(&paths.cert)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn validity_and_client_certificate_follow_the_options() {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let days_left = |path: &std::path::Path| {
        let der = CertificateDer::from_pem_file(path).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        (cert.validity().not_after.timestamp() - now) / 86_400
    };
    let dir = tempfile::tempdir().unwrap();
    let peer = qraft_io::tls::AutoTlsOptions {
        validity_years: 2,
        client_cert: false,
    };
    let (paths, _) = qraft_io::tls::ensure_auto_tls_with(dir.path(), &[], &peer).unwrap();
    for cert in [&paths.ca_cert, &paths.cert] {
        let days = days_left(cert);
        assert!(
            (729..=730).contains(&days),
            "{}: {days} days",
            cert.display()
        );
    }
    assert!(!paths.client_cert.exists() && !paths.client_key.exists());

    // Lowering the validity re-issues the leaf; an old client certificate is removed.
    std::fs::write(&paths.client_cert, "stale").unwrap();
    let one_year = qraft_io::tls::AutoTlsOptions {
        validity_years: 1,
        client_cert: false,
    };
    let (_, again) = qraft_io::tls::ensure_auto_tls_with(dir.path(), &[], &one_year).unwrap();
    assert!(again.generated_leaves);
    let days = days_left(&paths.cert);
    assert!((364..=365).contains(&days), "{days} days");
    assert!(!paths.client_cert.exists(), "stale client certificate kept");
}
