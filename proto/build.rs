//! Compiles the .proto files with protox (pure Rust), so no `protoc` is needed on the machine.
//!
//! Besides the prost code it writes two test aids into OUT_DIR: the encoded descriptor set and a
//! macro call listing every message type, so the round-trip tests cover each message without a
//! hand-kept list that could fall behind the .proto files.

use heck::ToUpperCamelCase;
use prost::Message;
use std::fmt::Write as _;

const FILES: [&str; 7] = [
    "proto/raft.proto",
    "proto/kv.proto",
    "proto/auth.proto",
    "proto/rpc.proto",
    "proto/qraft.proto",
    "proto/v3lock.proto",
    "proto/v3election.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for file in FILES {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(FILES, ["proto"])?;
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("descriptors.bin"), descriptors.encode_to_vec())?;

    let mut list = String::from("for_each_message! {\n");
    for file in &descriptors.file {
        let package = file.package();
        for message in &file.message_type {
            let name = message.name();
            let rust = name.to_upper_camel_case();
            writeln!(list, "    \"{package}.{name}\" => {package}::{rust},")?;
        }
    }
    list.push_str("}\n");
    std::fs::write(out_dir.join("all_messages.rs"), list)?;

    prost_build::Config::new()
        .bytes(["."])
        .compile_fds(descriptors)?;
    Ok(())
}
