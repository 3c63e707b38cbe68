//! The command lines of `user`, `role` and `auth` (etcdctl's names and flags).
//!
//! Positional arguments are optional for clap so that a missing one gets etcdctl's own message
//! (`user add command requires user name as its argument`) and exit code, checked where the
//! command runs.

use clap::{ArgAction, Args, Subcommand};

/// etcdctl's `user` commands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Adds a new user (NAME:PASSWORD, or NAME and the password from --new-user-password, the
    /// terminal or standard input).
    Add {
        #[arg(value_name = "NAME[:PASSWORD]")]
        user: Option<String>,
        /// Supply password from the command line flag.
        #[arg(long)]
        new_user_password: Option<String>,
        #[command(flatten)]
        input: PasswordInput,
    },
    /// Deletes a user.
    Delete {
        #[arg(value_name = "NAME")]
        user: Option<String>,
    },
    /// Gets detailed information of a user.
    Get {
        #[arg(value_name = "NAME")]
        user: Option<String>,
        /// Show permissions of roles granted to the user.
        #[arg(long)]
        detail: bool,
    },
    /// Lists all users.
    List,
    /// Changes the password of a user (read from the terminal or standard input).
    Passwd {
        #[arg(value_name = "NAME")]
        user: Option<String>,
        #[command(flatten)]
        input: PasswordInput,
    },
    /// Grants a role to a user.
    GrantRole {
        #[arg(value_name = "NAME")]
        user: Option<String>,
        #[arg(value_name = "ROLE")]
        role: Option<String>,
    },
    /// Revokes a role from a user.
    RevokeRole {
        #[arg(value_name = "NAME")]
        user: Option<String>,
        #[arg(value_name = "ROLE")]
        role: Option<String>,
    },
}

/// etcdctl's `--interactive` flag of `user add` and `user passwd`.
#[derive(Debug, Args)]
pub struct PasswordInput {
    /// Read the password from the terminal without echo (when standard input is one);
    /// `--interactive=false` reads one line from standard input instead.
    #[arg(
        long,
        action = ArgAction::Set,
        default_value_t = true,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true"
    )]
    pub interactive: bool,
}

/// etcdctl's `role` commands.
#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Adds a new role.
    Add {
        #[arg(value_name = "ROLE")]
        role: Option<String>,
    },
    /// Deletes a role.
    Delete {
        #[arg(value_name = "ROLE")]
        role: Option<String>,
    },
    /// Gets detailed information of a role.
    Get {
        #[arg(value_name = "ROLE")]
        role: Option<String>,
    },
    /// Lists all roles.
    List,
    /// Grants a key to a role: ROLE read|write|readwrite KEY [END].
    GrantPermission {
        #[command(flatten)]
        range: PermRangeFlags,
        #[arg(value_name = "ROLE")]
        role: Option<String>,
        #[arg(value_name = "PERM_TYPE")]
        perm_type: Option<String>,
        #[arg(value_name = "KEY")]
        key: Option<String>,
        #[arg(value_name = "END")]
        range_end: Option<String>,
    },
    /// Revokes a key from a role: ROLE KEY [END].
    RevokePermission {
        #[command(flatten)]
        range: PermRangeFlags,
        #[arg(value_name = "ROLE")]
        role: Option<String>,
        #[arg(value_name = "KEY")]
        key: Option<String>,
        #[arg(value_name = "END")]
        range_end: Option<String>,
    },
}

/// How the KEY [END] of a permission command spans keys.
#[derive(Debug, Args, Clone, Copy)]
pub struct PermRangeFlags {
    /// Grant (or revoke) a prefix permission.
    #[arg(long)]
    pub prefix: bool,
    /// Grant (or revoke) a permission of keys that are greater than or equal to the given key
    /// using byte compare.
    #[arg(long)]
    pub from_key: bool,
}

/// etcdctl's `auth` commands.
#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Enables authentication (granting the root role to the root user if it lacks it).
    Enable,
    /// Disables authentication.
    Disable,
    /// Returns whether authentication is enabled, and the auth revision.
    Status,
}
