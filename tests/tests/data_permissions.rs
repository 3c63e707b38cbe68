//! A member's files are private (issue 24, items 6 and 7), checked on the files a real member
//! and a real `qraftctl snapshot save` write under the test's umask: directories 0700, journal
//! segments, LMDB files and snapshots 0600; looser existing permissions are reported at start.
//! Its auto-TLS certificates last `--self-signed-cert-validity` years, and the peer fixtures
//! hold no client certificate.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use qraft_tests::cluster::{Cluster, ClusterOptions};
use qraft_tests::cluster_ops::{member_log, wait_until};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn files_in(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Days from now until the certificate in `path` expires.
fn days_left(path: &Path) -> i64 {
    let der = CertificateDer::from_pem_file(path).expect("certificate");
    let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("parse certificate");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    (cert.validity().not_after.timestamp() - now) / 86_400
}

#[test]
fn data_is_private_and_looser_permissions_are_reported() {
    let mut c = Cluster::spawn_with(1, ClusterOptions::default(), |node| {
        node.extra_args
            .extend(["--self-signed-cert-validity".into(), "3".into()]);
    });
    c.wait_for_writes(Duration::from_secs(30));
    let data = c.nodes[0].data_dir.clone();
    let snapshot = c.root.join("backup.db");
    let (ok, _, err) = c.ctl(0, &["snapshot", "save", &snapshot.to_string_lossy()]);
    assert!(ok, "snapshot save: {err}");

    let mut wrong = Vec::new();
    let mut expect = |path: &Path, want: u32| {
        let got = mode(path);
        if got != want {
            wrong.push(format!("{}: {got:o}, want {want:o}", path.display()));
        }
    };
    for dir in [
        "",
        "member",
        "member/lmdb",
        "member/journal",
        "fixtures/peer",
    ] {
        expect(&data.join(dir), 0o700);
    }
    let journal = files_in(&data.join("member/journal"));
    assert!(!journal.is_empty(), "no journal segment");
    for file in journal.iter().chain(&files_in(&data.join("member/lmdb"))) {
        expect(file, 0o600);
    }
    expect(&data.join("member/lock"), 0o600);
    expect(&snapshot, 0o600);
    assert!(wrong.is_empty(), "permissions:\n{}", wrong.join("\n"));

    // Certificates: the validity asked for (3 years of 365 days), no client certificate for
    // the peer CA.
    for leaf in ["fixtures/peer/server.crt", "fixtures/client/server.crt"] {
        let days = days_left(&data.join(leaf));
        assert!(
            (3 * 365 - 2..=3 * 365).contains(&days),
            "{leaf} expires in {days} days"
        );
    }
    assert!(
        !data.join("fixtures/peer/client.crt").exists(),
        "the peer fixtures hold a client certificate"
    );
    assert!(data.join("fixtures/client/client.crt").exists());

    // Loosened by hand: the member still starts, and says what to fix.
    c.kill(0);
    let segment = journal[0].clone();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&segment, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    c.spawn(0, "new");
    c.wait_for_writes(Duration::from_secs(30));
    wait_until("the permission warnings", Duration::from_secs(10), || {
        let log = member_log(&c, 0);
        let warned = |path: &Path, found: &str| {
            log.lines().any(|l| {
                l.contains("accessible to other users")
                    && l.contains(&*path.to_string_lossy())
                    && l.contains(found)
            })
        };
        if warned(&data, "755") && warned(&segment, "644") {
            Ok(())
        } else {
            Err(log.lines().rev().take(20).collect::<Vec<_>>().join("\n"))
        }
    });
}
