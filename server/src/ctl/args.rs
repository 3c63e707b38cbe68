//! qraftctl's command line (etcdctl's names).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use super::auth_args::{AuthCommand, RoleCommand, UserCommand};
use super::output::Format;

#[derive(Debug, Parser)]
#[command(
    name = "qraftctl",
    version,
    about = "A simple command line client for qraft (etcdctl's commands and flags)"
)]
pub struct Cli {
    /// gRPC-style endpoints: comma-separated https://host:port (host:port means https).
    #[arg(
        long,
        global = true,
        env = "QRAFTCTL_ENDPOINTS",
        default_value = "https://127.0.0.1:2379"
    )]
    pub endpoints: String,
    /// Verify certificates of TLS-enabled secure servers using this CA bundle
    /// [default: ./default.qraft/fixtures/client/ca.crt].
    #[arg(long, global = true, env = "QRAFTCTL_CACERT")]
    pub cacert: Option<PathBuf>,
    /// Identify secure client using this TLS certificate file.
    #[arg(long = "cert", id = "cert_file", global = true, env = "QRAFTCTL_CERT")]
    pub cert: Option<PathBuf>,
    /// Identify secure client using this TLS key file.
    #[arg(long = "key", id = "key_file", global = true, env = "QRAFTCTL_KEY")]
    pub key: Option<PathBuf>,
    /// Dial timeout for client connections.
    #[arg(long, global = true, default_value = "2s")]
    pub dial_timeout: String,
    /// Timeout for short running command (excluding dial timeout).
    #[arg(long, global = true, default_value = "5s")]
    pub command_timeout: String,
    /// Set the output format (simple, json, table).
    #[arg(
        short = 'w',
        long = "write-out",
        global = true,
        value_enum,
        default_value = "simple"
    )]
    pub write_out: Format,
    /// Print byte strings as hex encoded strings.
    #[arg(long, global = true)]
    pub hex: bool,
    /// Username[:password] to sign in with when auth is enabled (prompts for the password
    /// when it is not given).
    #[arg(long = "user", id = "auth_user", global = true, env = "QRAFTCTL_USER")]
    pub user: Option<String>,
    /// Password to sign in with (then `--user` is the name alone, even if it holds a colon).
    #[arg(
        long = "password",
        id = "auth_password",
        global = true,
        env = "QRAFTCTL_PASSWORD",
        requires = "auth_user"
    )]
    pub password: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Puts the given key into the store.
    Put(PutArgs),
    /// Gets the key or a range of keys.
    Get(GetArgs),
    /// Removes the specified key or range of keys [key, range_end).
    Del(DelArgs),
    /// Txn processes all the requests in one transaction.
    Txn(TxnArgs),
    /// Compacts the event history in qraft.
    Compaction(CompactionArgs),
    /// Watches events stream on keys or prefixes.
    Watch(WatchArgs),
    /// Lease related commands.
    #[command(subcommand)]
    Lease(LeaseCommand),
    /// Membership related commands.
    #[command(subcommand)]
    Member(MemberCommand),
    /// Endpoint related commands.
    #[command(subcommand)]
    Endpoint(EndpointCommand),
    /// Manages qraft node snapshots.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Defragments the storage of the qraft members with given endpoints, or with
    /// `--data-dir` the data directory of a stopped member.
    Defrag(DefragArgs),
    /// Transfers leadership to another qraft cluster member.
    MoveLeader(MoveLeaderArgs),
    /// Downgrade related commands.
    #[command(subcommand)]
    Downgrade(DowngradeCommand),
    /// Alarm related commands.
    #[command(subcommand)]
    Alarm(AlarmCommand),
    /// User related commands.
    #[command(subcommand)]
    User(UserCommand),
    /// Role related commands.
    #[command(subcommand)]
    Role(RoleCommand),
    /// Enable or disable authentication.
    #[command(subcommand)]
    Auth(AuthCommand),
}

/// etcdctl's `alarm` commands.
#[derive(Debug, Subcommand)]
pub enum AlarmCommand {
    /// Lists all alarms.
    List,
    /// Disarms all alarms.
    Disarm,
}

#[derive(Debug, Args)]
pub struct DefragArgs {
    /// Data directory of a stopped member to defragment offline (no endpoint is contacted).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PutArgs {
    pub key: String,
    /// The value; read from standard input when omitted.
    pub value: Option<String>,
    /// Lease ID (in hexadecimal) to attach to the key.
    #[arg(long, default_value = "0")]
    pub lease: String,
    /// Return the previous key-value pair before modification.
    #[arg(long)]
    pub prev_kv: bool,
    /// Updates the key using its current value.
    #[arg(long)]
    pub ignore_value: bool,
    /// Updates the key using its current lease.
    #[arg(long)]
    pub ignore_lease: bool,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    pub key: String,
    pub range_end: Option<String>,
    /// Linearizable(l) or Serializable(s).
    #[arg(long, default_value = "l")]
    pub consistency: String,
    /// Order of results; ASCEND or DESCEND (ASCEND by default).
    #[arg(long, default_value = "")]
    pub order: String,
    /// Sort target; CREATE, KEY, MODIFY, VALUE, or VERSION.
    #[arg(long, default_value = "")]
    pub sort_by: String,
    /// Maximum number of results.
    #[arg(long, default_value_t = 0)]
    pub limit: i64,
    /// Get keys with matching prefix.
    #[arg(long)]
    pub prefix: bool,
    /// Get keys that are greater than or equal to the given key using byte compare.
    #[arg(long)]
    pub from_key: bool,
    /// Specify the kv revision.
    #[arg(long, default_value_t = 0)]
    pub rev: i64,
    /// Get only the keys.
    #[arg(long)]
    pub keys_only: bool,
    /// Get only the count.
    #[arg(long)]
    pub count_only: bool,
    /// Only write values when using the "simple" output format.
    #[arg(long)]
    pub print_value_only: bool,
}

#[derive(Debug, Args)]
pub struct DelArgs {
    pub key: String,
    pub range_end: Option<String>,
    /// Delete keys with matching prefix.
    #[arg(long)]
    pub prefix: bool,
    /// Return deleted key-value pairs.
    #[arg(long)]
    pub prev_kv: bool,
    /// Delete keys that are greater than or equal to the given key using byte compare.
    #[arg(long)]
    pub from_key: bool,
}

#[derive(Debug, Args)]
pub struct TxnArgs {
    /// Input transaction in interactive mode (prompts on standard error).
    #[arg(short, long)]
    pub interactive: bool,
}

#[derive(Debug, Args)]
pub struct CompactionArgs {
    pub revision: i64,
    /// Wait for the compaction to physically remove all old revisions.
    #[arg(long)]
    pub physical: bool,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    pub key: String,
    pub range_end: Option<String>,
    /// Watch on a prefix if prefix is set.
    #[arg(long)]
    pub prefix: bool,
    /// Revision to start watching.
    #[arg(long, default_value_t = 0)]
    pub rev: i64,
    /// Get the previous key-value pair before the event happens.
    #[arg(long)]
    pub prev_kv: bool,
    /// Get periodic watch progress notification from server.
    #[arg(long)]
    pub progress_notify: bool,
    /// Stop after this many events (qraft extension, for scripts and tests; 0 = never).
    #[arg(long, default_value_t = 0)]
    pub max_events: u64,
}

#[derive(Debug, Subcommand)]
pub enum LeaseCommand {
    /// Creates leases.
    Grant { ttl: i64 },
    /// Revokes leases.
    Revoke { id: String },
    /// Get lease information.
    Timetolive {
        id: String,
        /// Get keys attached to this lease.
        #[arg(long)]
        keys: bool,
    },
    /// List all active leases.
    List,
    /// Keeps leases alive (renew).
    KeepAlive {
        id: String,
        /// Resets the keep-alive time to its original value and exits immediately.
        #[arg(long)]
        once: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum MemberCommand {
    /// Adds a member into the cluster.
    Add {
        name: String,
        /// Comma separated peer URLs for the new member.
        #[arg(long)]
        peer_urls: String,
        /// Indicates if the new member is raft learner.
        #[arg(long)]
        learner: bool,
    },
    /// Removes a member from the cluster.
    Remove { id: String },
    /// Updates a member in the cluster.
    Update {
        id: String,
        #[arg(long)]
        peer_urls: String,
    },
    /// Lists all members in the cluster.
    List,
    /// Promotes a non-voting member in the cluster.
    Promote { id: String },
}

#[derive(Debug, Subcommand)]
pub enum EndpointCommand {
    /// Checks the healthiness of endpoints specified in `--endpoints` flag.
    Health {
        /// Use all endpoints from the cluster member list.
        #[arg(long)]
        cluster: bool,
    },
    /// Prints out the status of endpoints specified in `--endpoints` flag.
    Status {
        #[arg(long)]
        cluster: bool,
    },
    /// Prints the KV history hash for each endpoint in `--endpoints`.
    Hashkv {
        #[arg(long)]
        cluster: bool,
        /// Maximum revision to hash (0 = the latest).
        #[arg(long, default_value_t = 0)]
        rev: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Stores a snapshot of the member's key space to a file.
    Save { filename: PathBuf },
    /// Checks a snapshot file and prints its hash, revision, total keys and size (offline).
    Status { filename: PathBuf },
    /// Builds the data directory of one member of a new cluster from a snapshot file
    /// (offline; run it once per member with that member's flags).
    Restore(RestoreArgs),
}

/// etcdutl's `snapshot restore` flags, with qraft's defaults.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    pub filename: PathBuf,
    /// Path to the data directory to create [default: ./<name>.qraft].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Human-readable name for this member.
    #[arg(long, default_value = "default")]
    pub name: String,
    /// Initial cluster configuration for the restored cluster, `name=peer-url,...`
    /// [default: <name>=<initial advertise peer URLs>].
    #[arg(long)]
    pub initial_cluster: Option<String>,
    /// Initial cluster token for the restored cluster (mixed into member and cluster IDs).
    #[arg(long, default_value = "qraft-cluster")]
    pub initial_cluster_token: String,
    /// This member's peer URLs [default: https://127.0.0.1:2380].
    #[arg(long)]
    pub initial_advertise_peer_urls: Option<String>,
    /// Do not check the SHA-256 appended by `etcdctl snapshot save` (the stream's own CRC-32
    /// is always checked).
    #[arg(long)]
    pub skip_hash_check: bool,
}

/// etcdctl's `downgrade` commands. The version is optional on the command line so that a
/// missing one gets etcdctl's own message.
#[derive(Debug, Subcommand)]
pub enum DowngradeCommand {
    /// Validate downgrade capability before starting downgrade.
    Validate {
        #[arg(value_name = "TARGET_VERSION")]
        target_version: Option<String>,
    },
    /// Start a downgrade action to cluster.
    Enable {
        #[arg(value_name = "TARGET_VERSION")]
        target_version: Option<String>,
    },
    /// Cancel the ongoing downgrade action to cluster.
    Cancel {
        /// Accepted and ignored (etcdctl cancels whatever downgrade is in progress).
        #[arg(value_name = "TARGET_VERSION")]
        target_version: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct MoveLeaderArgs {
    /// The hexadecimal ID of the member to transfer leadership to.
    pub transferee_id: String,
}

/// Member and lease IDs are written in hexadecimal, as etcdctl prints them.
pub fn parse_hex_id(s: &str) -> anyhow::Result<u64> {
    u64::from_str_radix(s.trim_start_matches("0x"), 16)
        .map_err(|_| anyhow::anyhow!("bad ID {s:?}: expected a hexadecimal number"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["qraftctl", "--key", "k.pem", "put", "a", "b"]).unwrap();
        assert_eq!(cli.key.as_deref(), Some(std::path::Path::new("k.pem")));
        assert!(matches!(cli.command, Command::Put(ref p) if p.key == "a"));
    }
}
