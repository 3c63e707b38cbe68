//! The subject common name of a DER certificate. With `--client-cert-auth`, etcd takes the
//! client certificate's CN as the user name when a request carries no token; this is the small
//! part of X.509 parsing that needs (the chain itself was verified by rustls already).

/// Splits one DER element off `input`: (tag, contents, rest). `None` on malformed input.
fn element(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const VERSION: u8 = 0xa0;
const OID_COMMON_NAME: [u8; 3] = [0x55, 0x04, 0x03];
/// UTF8String, PrintableString, TeletexString, IA5String.
const STRING_TAGS: [u8; 4] = [0x0c, 0x13, 0x14, 0x16];

/// The subject's common name (the last one, as Go's crypto/x509 reports it), if any.
pub fn common_name(cert_der: &[u8]) -> Option<String> {
    let Some((SEQUENCE, cert, _)) = element(cert_der) else {
        return None;
    };
    let Some((SEQUENCE, tbs, _)) = element(cert) else {
        return None;
    };
    let mut rest = tbs;
    if let Some((VERSION, _, after)) = element(rest) {
        rest = after;
    }
    // serialNumber, signature, issuer, validity
    for _ in 0..4 {
        rest = element(rest)?.2;
    }
    let Some((SEQUENCE, subject, _)) = element(rest) else {
        return None;
    };
    let mut name = None;
    let mut rdns = subject;
    while !rdns.is_empty() {
        let Some((SET, set, after)) = element(rdns) else {
            return None;
        };
        rdns = after;
        let mut attributes = set;
        while !attributes.is_empty() {
            let Some((SEQUENCE, attribute, after)) = element(attributes) else {
                return None;
            };
            attributes = after;
            let Some((OID, oid, value)) = element(attribute) else {
                return None;
            };
            if oid == OID_COMMON_NAME {
                let (tag, text, _) = element(value)?;
                if STRING_TAGS.contains(&tag) {
                    name = Some(String::from_utf8(text.to_vec()).ok()?);
                }
            }
        }
    }
    name
}

#[cfg(test)]
mod tests {
    use super::common_name;
    use rcgen::{CertificateParams, DnType, KeyPair};

    fn cert_with(cns: &[&str]) -> Vec<u8> {
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "qraft");
        for cn in cns {
            params.distinguished_name.push(DnType::CommonName, *cn);
        }
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn reads_the_subject_common_name() {
        assert_eq!(
            common_name(&cert_with(&["alice"])).as_deref(),
            Some("alice")
        );
        assert_eq!(common_name(&cert_with(&[])), None);
    }

    #[test]
    fn malformed_input_is_none_never_a_panic() {
        let der = cert_with(&["alice"]);
        for cut in 0..der.len() {
            // Any prefix either parses to the right name or fails cleanly.
            let got = common_name(&der[..cut]);
            assert!(got.is_none() || got.as_deref() == Some("alice"));
        }
        assert_eq!(common_name(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(common_name(b"not a certificate"), None);
    }
}
