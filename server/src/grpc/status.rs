//! gRPC status codes and the `grpc-status` / `grpc-message` trailers.
//!
//! etcd clients branch on the status code *and* compare the message text with etcd's own
//! (`etcdserver: mvcc: required revision has been compacted`, ...). The core already produces
//! both in `qraftpb::Error`, so this module only carries them onto the wire unchanged.

use hyper::HeaderMap;
use hyper::header::HeaderValue;
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use qraft_proto::qraftpb;

/// gRPC status codes: the core's, so every layer maps errors the same way.
pub use qraft_core::error::Code;

/// The outcome of one gRPC call: a numeric code and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Kept as a raw number so codes from the core pass through even if this enum lacks them.
    pub code: i32,
    pub message: String,
}

impl Status {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Status {
            code: code as i32,
            message: message.into(),
        }
    }

    pub fn ok() -> Self {
        Status::new(Code::Ok, "")
    }

    /// The core's error as etcd would report it. A code outside gRPC's range would make
    /// clients misbehave, so it degrades to UNKNOWN while the text is kept.
    pub fn from_core(error: qraftpb::Error) -> Self {
        let code = if (0..=16).contains(&error.code) {
            error.code
        } else {
            Code::Unknown as i32
        };
        Status {
            code,
            message: error.message,
        }
    }

    /// The trailers that end a gRPC response with this status.
    pub fn to_trailers(&self) -> HeaderMap {
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from(self.code));
        if !self.message.is_empty() {
            let encoded = encode_message(&self.message);
            if let Ok(value) = HeaderValue::from_str(&encoded) {
                trailers.insert("grpc-message", value);
            }
        }
        trailers
    }
}

/// Bytes the gRPC spec requires to be percent-encoded in `grpc-message`: everything outside
/// printable ASCII (non-ASCII is always encoded by `utf8_percent_encode`) and `%` itself.
const GRPC_MESSAGE: &AsciiSet = &CONTROLS.add(b'%');

/// Percent-encodes a status message for the `grpc-message` trailer.
pub fn encode_message(message: &str) -> String {
    utf8_percent_encode(message, GRPC_MESSAGE).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_keep_printable_ascii_and_encode_the_rest() {
        assert_eq!(
            encode_message("etcdserver: mvcc: required revision has been compacted"),
            "etcdserver: mvcc: required revision has been compacted"
        );
        assert_eq!(encode_message("100% sûr\n"), "100%25 s%C3%BBr%0A");
    }

    #[test]
    fn core_errors_keep_code_and_text() {
        let status = Status::from_core(qraftpb::Error {
            code: 5,
            message: "etcdserver: requested lease not found".into(),
            leader_hint: 0,
        });
        let trailers = status.to_trailers();
        assert_eq!(trailers["grpc-status"], "5");
        assert_eq!(
            trailers["grpc-message"],
            "etcdserver: requested lease not found"
        );
    }

    #[test]
    fn out_of_range_codes_become_unknown() {
        let status = Status::from_core(qraftpb::Error {
            code: 99,
            message: "odd".into(),
            leader_hint: 0,
        });
        assert_eq!(status.code, Code::Unknown as i32);
        assert_eq!(status.message, "odd");
    }
}
