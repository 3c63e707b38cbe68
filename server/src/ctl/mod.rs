//! `qraftctl`: etcdctl's commands, flags and output formats where they apply to qraft.
//!
//! Global flags: `--endpoints --cacert --cert --key --dial-timeout --command-timeout -w --user`.
//! The defaults talk to the README's server (`cargo run --bin qraft`): endpoint
//! `https://127.0.0.1:2379`, CA `./default.qraft/fixtures/client/ca.crt`.

mod alarm;
mod args;
mod auth;
mod auth_args;
mod auth_plan;
mod auth_print;
mod downgrade;
mod hashkv;
mod kv;
mod lease;
mod maintenance;
mod member;
mod output;
mod password;
mod snapshot;
mod txn;
mod watch;

pub use args::{Cli, Command};
pub use output::{Format, Printer};

use std::time::Duration;

use anyhow::Context;
use qraft_io::client::{Client, ClientConfig, ClientError};

/// The CA qraft's auto-TLS writes for a member named `default` started in the current directory.
pub const DEFAULT_CACERT: &str = "default.qraft/fixtures/client/ca.crt";

/// Runs one qraftctl invocation; the error is printed by `main` as etcdctl does (`Error: ...`).
pub async fn run(mut cli: Cli) -> anyhow::Result<()> {
    let printer = Printer::new(cli.write_out, cli.hex);
    if let Command::Defrag(args::DefragArgs {
        data_dir: Some(dir),
    }) = &cli.command
    {
        return maintenance::defrag_offline(dir, &printer);
    }
    if let Command::Snapshot(cmd) = &cli.command
        && !matches!(cmd, args::SnapshotCommand::Save { .. })
    {
        return snapshot::offline(cmd, &printer);
    }
    // As etcdctl: an auth command checks its arguments and reads the password it sets before
    // connecting, then the sign-in password is asked for (once, for every connection).
    let auth_call = auth_plan::plan(&cli.command)?;
    resolve_sign_in(&mut cli)?;
    let client = connect(&cli).await?;
    let result = match auth_call {
        Some(call) => auth::run(&client, call, &printer).await,
        None => dispatch(&client, &cli, &printer).await,
    };
    client.close();
    result
}

/// A command line etcdctl refuses before calling anything; it exits with etcdctl's code for
/// bad arguments (128) instead of 1.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadArgs(pub String);

pub fn bad_args(message: impl Into<String>) -> anyhow::Error {
    BadArgs(message.into()).into()
}

/// No connection, or signing in failed: etcdctl exits with 2 (its "bad connection") then.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadConnection(pub String);

/// The process exit code for an error `run` returned, as etcdctl's: 128 for bad arguments,
/// 2 when no signed-in connection was made, else 1.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    if err.chain().any(|e| e.is::<BadArgs>()) {
        128
    } else if err.chain().any(|e| e.is::<BadConnection>()) {
        2
    } else {
        1
    }
}

/// `--user NAME` without a password (and no `--password`): asks for it once, as etcdctl's
/// `Password: ` prompt (or reads a line of standard input when it is not a terminal).
fn resolve_sign_in(cli: &mut Cli) -> anyhow::Result<()> {
    if let Some(user) = &cli.user
        && cli.password.is_none()
        && !user.contains(':')
    {
        cli.password = Some(password::sign_in_password()?);
    }
    Ok(())
}

/// The name and password `--user`/`--password` sign in with.
fn sign_in_credentials(cli: &Cli) -> anyhow::Result<Option<(&str, &str)>> {
    let Some(user) = &cli.user else {
        return Ok(None);
    };
    let (name, password) = match &cli.password {
        Some(password) => (user.as_str(), password.as_str()),
        None => user.split_once(':').ok_or_else(|| {
            bad_args("--user NAME needs a password (NAME:PASSWORD or --password)")
        })?,
    };
    Ok(Some((name, password)))
}

async fn dispatch(client: &Client, cli: &Cli, p: &Printer) -> anyhow::Result<()> {
    match &cli.command {
        Command::Put(a) => kv::put(client, a, p).await,
        Command::Get(a) => kv::get(client, a, p).await,
        Command::Del(a) => kv::del(client, a, p).await,
        Command::Txn(a) => txn::run(client, a, p).await,
        Command::Compaction(a) => kv::compaction(client, a, p).await,
        Command::Watch(a) => watch::run(client, a, p).await,
        Command::Lease(a) => lease::run(client, a, p).await,
        Command::Member(a) => member::run(client, a, p).await,
        Command::Endpoint(a) => maintenance::endpoint(client, cli, a, p).await,
        Command::Snapshot(a) => maintenance::snapshot(client, a, p).await,
        Command::Defrag(_) => maintenance::defrag(client, cli, p).await,
        Command::MoveLeader(a) => maintenance::move_leader(client, a, p).await,
        Command::Downgrade(a) => downgrade::run(client, a, p).await,
        Command::Alarm(a) => alarm::run(client, a, p).await,
        Command::User(_) | Command::Role(_) | Command::Auth(_) => {
            anyhow::bail!("internal error: auth commands run through their plan")
        }
    }
}

/// `host:port` is accepted for etcdctl compatibility and means `https://host:port`.
pub fn normalize_endpoint(e: &str) -> String {
    if e.contains("://") {
        e.replacen("http://", "https://", 1)
    } else {
        format!("https://{e}")
    }
}

pub fn endpoints(cli: &Cli) -> Vec<String> {
    cli.endpoints
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(normalize_endpoint)
        .collect()
}

async fn connect(cli: &Cli) -> anyhow::Result<Client> {
    connect_to(cli, endpoints(cli)).await
}

/// Runs one call against endpoint `ep` alone, on a connection of its own that is closed after
/// (the per-endpoint commands: status, hashkv, defrag).
pub async fn call_endpoint<T>(
    cli: &Cli,
    ep: &str,
    call: impl AsyncFnOnce(&Client) -> Result<T, qraft_io::client::ClientError>,
) -> anyhow::Result<T> {
    let c = connect_to(cli, vec![ep.to_string()]).await?;
    let r = call(&c).await;
    c.close();
    Ok(r?)
}

/// A client for `endpoints` with the TLS material and timeouts of the command line.
pub async fn connect_to(cli: &Cli, endpoints: Vec<String>) -> anyhow::Result<Client> {
    let cacert = cli.cacert.clone().unwrap_or_else(|| DEFAULT_CACERT.into());
    let cert_key = match (&cli.cert, &cli.key) {
        (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
        (None, None) => None,
        _ => anyhow::bail!("--cert and --key must be given together"),
    };
    let mut config = ClientConfig::from_files(endpoints, &cacert, cert_key)
        .with_context(|| format!("loading TLS material (--cacert {})", cacert.display()))?;
    config.dial_timeout = parse_duration(&cli.dial_timeout)?;
    config.request_timeout = parse_duration(&cli.command_timeout)?;
    let credentials = sign_in_credentials(cli)?;
    let client = Client::connect(config)
        .await
        .map_err(|err| BadConnection(format!("{:#}", anyhow::Error::from(err))))?;
    if let Some((name, password)) = credentials {
        // etcdctl's `--user`: every call on this connection carries the user's token.
        if let Err(err) = client.authenticate(name, password).await {
            client.close();
            return Err(BadConnection(format!("{:#}", server_error(err))).into());
        }
    }
    Ok(client)
}

/// A refusal printed with the server's own text (etcd's message), without the client
/// library's code suffix, as etcdctl prints it.
fn server_error(err: ClientError) -> anyhow::Error {
    match err {
        ClientError::Status { message, .. } => anyhow::anyhow!(message),
        other => other.into(),
    }
}

/// Go-style durations as etcdctl takes them: `2s`, `500ms`, `1m`, `1.5s`.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .with_context(|| format!("invalid duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "us" | "µs" => n / 1e6,
        _ => anyhow::bail!("invalid duration unit in {s:?}"),
    };
    if !secs.is_finite() || secs < 0.0 {
        anyhow::bail!("invalid duration {s:?}");
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("1y").is_err());
    }

    #[test]
    fn endpoints_default_to_https() {
        assert_eq!(
            normalize_endpoint("127.0.0.1:2379"),
            "https://127.0.0.1:2379"
        );
        assert_eq!(normalize_endpoint("http://h:1"), "https://h:1");
    }
}
