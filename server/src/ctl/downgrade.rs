//! `downgrade validate|enable|cancel`: etcdctl 3.6's commands over `Maintenance.Downgrade`.
//!
//! Success prints the core's [`downgrade_success_message`] (`Downgrade enable success, cluster
//! version 0.2`), or the response as JSON with `-w json`. A refusal prints the server's
//! message as etcdctl does (`Error: etcdserver: invalid downgrade target version`).

use qraft_core::version::downgrade_success_message;
use qraft_io::client::Client;
use qraft_proto::etcdserverpb::DowngradeRequest;
use qraft_proto::etcdserverpb::downgrade_request::DowngradeAction;
use serde_json::json;

use super::args::DowngradeCommand;
use super::output::{Printer, header_json};
use super::server_error;

pub async fn run(client: &Client, cmd: &DowngradeCommand, p: &Printer) -> anyhow::Result<()> {
    let (action, version) = request_of(cmd)?;
    let request = DowngradeRequest {
        action: action as i32,
        version,
    };
    let response = client.downgrade(request).await.map_err(server_error)?;
    if p.is_json() {
        p.print_json(&json!({
            "header": header_json(response.header.as_ref()),
            "version": response.version,
        }));
    } else {
        println!("{}", downgrade_success_message(action, &response.version));
    }
    Ok(())
}

/// The request a command line asks for; etcdctl's argument errors.
fn request_of(cmd: &DowngradeCommand) -> anyhow::Result<(DowngradeAction, String)> {
    let (action, target) = match cmd {
        DowngradeCommand::Validate { target_version } => {
            (DowngradeAction::Validate, target_version)
        }
        DowngradeCommand::Enable { target_version } => (DowngradeAction::Enable, target_version),
        // etcdctl sends no version with a cancel.
        DowngradeCommand::Cancel { .. } => return Ok((DowngradeAction::Cancel, String::new())),
    };
    match target.as_deref() {
        None => anyhow::bail!("TARGET_VERSION not provided"),
        Some("") => anyhow::bail!("target version not provided"),
        Some(v) => Ok((action, v.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_as_etcdctl_checks_them() {
        let missing = DowngradeCommand::Enable {
            target_version: None,
        };
        assert_eq!(
            request_of(&missing).unwrap_err().to_string(),
            "TARGET_VERSION not provided"
        );
        let empty = DowngradeCommand::Validate {
            target_version: Some(String::new()),
        };
        assert_eq!(
            request_of(&empty).unwrap_err().to_string(),
            "target version not provided"
        );
        let cancel = DowngradeCommand::Cancel {
            target_version: Some("0.1".into()),
        };
        assert_eq!(
            request_of(&cancel).unwrap(),
            (DowngradeAction::Cancel, String::new())
        );
    }
}
