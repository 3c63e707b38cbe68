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
