//! The `user`, `role` and `auth` command lines checked and turned into the call to make,
//! before any connection: as etcdctl, a missing argument, an unknown permission type or
//! contradicting range flags are refused (exit code 128) without dialing, and the password a
//! command sets is read before the sign-in password.

use qraft_proto::authpb::permission::Type as PermType;

use super::args::Command;
use super::auth_args::{AuthCommand, PermRangeFlags, RoleCommand, UserCommand};
use super::kv::prefix_end;
use super::{bad_args, password};

/// One auth call, its arguments complete.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthCall {
    UserAdd {
        name: String,
        password: String,
    },
    UserDelete {
        name: String,
    },
    UserGet {
        name: String,
        detail: bool,
    },
    UserList,
    UserPasswd {
        name: String,
        password: String,
    },
    UserGrantRole {
        user: String,
        role: String,
    },
    UserRevokeRole {
        user: String,
        role: String,
    },
    RoleAdd {
        role: String,
    },
    RoleDelete {
        role: String,
    },
    RoleGet {
        role: String,
    },
    RoleList,
    RoleGrantPermission {
        role: String,
        perm_type: PermType,
        range: PermRange,
    },
    RoleRevokePermission {
        role: String,
        range: PermRange,
    },
    AuthEnable,
    AuthDisable,
    AuthStatus,
}

/// The keys a permission covers, as etcdctl sends them: an empty KEY becomes `\0` (the first
/// key); `range_end` is empty for one key, `\0` for "from the key on".
#[derive(Debug, PartialEq, Eq)]
pub struct PermRange {
    pub key: Vec<u8>,
    pub range_end: Vec<u8>,
    /// The KEY as typed, for the revoke message.
    pub typed_key: String,
}

/// The call an auth command makes, or `None` for any other command.
pub fn plan(command: &Command) -> anyhow::Result<Option<AuthCall>> {
    Ok(Some(match command {
        Command::User(cmd) => user(cmd)?,
        Command::Role(cmd) => role(cmd)?,
        Command::Auth(AuthCommand::Enable) => AuthCall::AuthEnable,
        Command::Auth(AuthCommand::Disable) => AuthCall::AuthDisable,
        Command::Auth(AuthCommand::Status) => AuthCall::AuthStatus,
        _ => return Ok(None),
    }))
}

fn user(cmd: &UserCommand) -> anyhow::Result<AuthCall> {
    Ok(match cmd {
        UserCommand::Add {
            user,
            new_user_password,
            input,
        } => {
            let user = required(user, "user add command requires user name as its argument")?;
            let (name, password) = match (new_user_password, user.split_once(':')) {
                (Some(password), _) => (user.to_string(), password.clone()),
                (None, Some((name, password))) => (name.to_string(), password.to_string()),
                (None, None) => (
                    user.to_string(),
                    password::new_password(user, input.interactive)?,
                ),
            };
            if name.is_empty() {
                return Err(bad_args("empty user name is not allowed"));
            }
            AuthCall::UserAdd { name, password }
        }
        UserCommand::Delete { user } => AuthCall::UserDelete {
            name: required(
                user,
                "user delete command requires user name as its argument",
            )?
            .to_string(),
        },
        UserCommand::Get { user, detail } => AuthCall::UserGet {
            name: required(user, "user get command requires user name as its argument")?
                .to_string(),
            detail: *detail,
        },
        UserCommand::List => AuthCall::UserList,
        UserCommand::Passwd { user, input } => {
            let name = required(
                user,
                "user passwd command requires user name as its argument",
            )?;
            AuthCall::UserPasswd {
                password: password::new_password(name, input.interactive)?,
                name: name.to_string(),
            }
        }
        UserCommand::GrantRole { user, role } => {
            let message = "user grant command requires user name and role name as its argument";
            AuthCall::UserGrantRole {
                user: required(user, message)?.to_string(),
                role: required(role, message)?.to_string(),
            }
        }
        UserCommand::RevokeRole { user, role } => {
            let message = "user revoke-role requires user name and role name as its argument";
            AuthCall::UserRevokeRole {
                user: required(user, message)?.to_string(),
                role: required(role, message)?.to_string(),
            }
        }
    })
}

fn role(cmd: &RoleCommand) -> anyhow::Result<AuthCall> {
    let role_name = |role: &Option<String>, command: &str| {
        required(
            role,
            &format!("role {command} command requires role name as its argument"),
        )
        .map(str::to_string)
    };
    Ok(match cmd {
        RoleCommand::Add { role } => AuthCall::RoleAdd {
            role: role_name(role, "add")?,
        },
        RoleCommand::Delete { role } => AuthCall::RoleDelete {
            role: role_name(role, "delete")?,
        },
        RoleCommand::Get { role } => AuthCall::RoleGet {
            role: role_name(role, "get")?,
        },
        RoleCommand::List => AuthCall::RoleList,
        RoleCommand::GrantPermission {
            range: flags,
            role,
            perm_type,
            key,
            range_end,
        } => {
            let message = "role grant command requires role name, permission type, and key [endkey] as its argument";
            let role = required(role, message)?.to_string();
            let perm_type = parse_perm_type(required(perm_type, message)?)?;
            let key = required(key, message)?;
            AuthCall::RoleGrantPermission {
                role,
                perm_type,
                range: perm_range(key, range_end.as_deref(), *flags)?,
            }
        }
        RoleCommand::RevokePermission {
            range: flags,
            role,
            key,
            range_end,
        } => {
            let message = "role revoke-permission command requires role name and key [endkey] as its argument";
            let role = required(role, message)?.to_string();
            let key = required(key, message)?;
            AuthCall::RoleRevokePermission {
                role,
                range: perm_range(key, range_end.as_deref(), *flags)?,
            }
        }
    })
}

fn required<'a>(arg: &'a Option<String>, message: &str) -> anyhow::Result<&'a str> {
    arg.as_deref().ok_or_else(|| bad_args(message))
}

/// `read`, `write` or `readwrite`, in any case (etcd's permission type names).
fn parse_perm_type(s: &str) -> anyhow::Result<PermType> {
    PermType::from_str_name(&s.to_uppercase())
        .ok_or_else(|| bad_args(format!("invalid permission type: {s}")))
}

/// etcdctl's rules for KEY [END] with `--prefix`/`--from-key`.
fn perm_range(key: &str, end: Option<&str>, flags: PermRangeFlags) -> anyhow::Result<PermRange> {
    if flags.prefix && flags.from_key {
        return Err(bad_args(
            "--from-key and --prefix flags are mutually exclusive",
        ));
    }
    let range_end = match end {
        Some(_) if flags.prefix => {
            return Err(bad_args("unexpected endkey argument with --prefix flag"));
        }
        Some(_) if flags.from_key => {
            return Err(bad_args("unexpected endkey argument with --from-key flag"));
        }
        Some(end) => end.as_bytes().to_vec(),
        // Every key: etcd's permission ranges cannot start at the empty key, so they start
        // at `\0` and `\0` as the end means open-ended.
        None if key.is_empty() && (flags.prefix || flags.from_key) => vec![0],
        None if flags.prefix => prefix_end(key.as_bytes()),
        None if flags.from_key => vec![0],
        None => Vec::new(),
    };
    Ok(PermRange {
        key: if key.is_empty() {
            vec![0]
        } else {
            key.as_bytes().to_vec()
        },
        range_end,
        typed_key: key.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::super::args::Cli;
    use super::super::exit_code;
    use super::*;

    fn planned(args: &[&str]) -> anyhow::Result<Option<AuthCall>> {
        let cli = Cli::try_parse_from(std::iter::once("qraftctl").chain(args.iter().copied()))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        plan(&cli.command)
    }

    fn refused(args: &[&str]) -> String {
        let err = planned(args).expect_err("refused");
        assert_eq!(exit_code(&err), 128, "{args:?}: {err}");
        err.to_string()
    }

    fn range(key: &[u8], end: &[u8], typed: &str) -> PermRange {
        PermRange {
            key: key.to_vec(),
            range_end: end.to_vec(),
            typed_key: typed.into(),
        }
    }

    #[test]
    fn permission_ranges_follow_etcdctl() {
        let grant = |args: &[&str]| match planned(args).expect("planned") {
            Some(AuthCall::RoleGrantPermission {
                perm_type, range, ..
            }) => (perm_type, range),
            other => panic!("{args:?}: {other:?}"),
        };
        let base = ["role", "grant-permission"];
        let with = |rest: &[&'static str]| [&base[..], rest].concat();
        assert_eq!(
            grant(&with(&["r", "read", "k"])),
            (PermType::Read, range(b"k", b"", "k"))
        );
        assert_eq!(
            grant(&with(&["--prefix", "r", "ReadWrite", "/app/"])),
            (PermType::Readwrite, range(b"/app/", b"/app0", "/app/"))
        );
        assert_eq!(
            grant(&with(&["r", "WRITE", "a", "c"])),
            (PermType::Write, range(b"a", b"c", "a"))
        );
        assert_eq!(
            grant(&with(&["--from-key", "r", "read", "z"])),
            (PermType::Read, range(b"z", b"\0", "z"))
        );
        assert_eq!(
            grant(&with(&["--prefix", "r", "read", ""])),
            (PermType::Read, range(b"\0", b"\0", ""))
        );
        assert_eq!(
            grant(&with(&["r", "read", ""])),
            (PermType::Read, range(b"\0", b"", ""))
        );
    }

    #[test]
    fn bad_arguments_are_refused_with_etcdctls_messages() {
        assert_eq!(
            refused(&["role", "grant-permission", "r", "bogus", "k"]),
            "invalid permission type: bogus"
        );
        assert!(refused(&["role", "grant-permission", "r", "read"]).starts_with("role grant"));
        assert!(refused(&["role", "grant-permission"]).starts_with("role grant"));
        assert!(refused(&["role", "revoke-permission", "r"]).starts_with("role revoke"));
        assert_eq!(
            refused(&[
                "role",
                "grant-permission",
                "--prefix",
                "r",
                "read",
                "a",
                "b"
            ]),
            "unexpected endkey argument with --prefix flag"
        );
        assert_eq!(
            refused(&["role", "revoke-permission", "--from-key", "r", "a", "b"]),
            "unexpected endkey argument with --from-key flag"
        );
        assert_eq!(
            refused(&[
                "role",
                "revoke-permission",
                "--prefix",
                "--from-key",
                "r",
                "a"
            ]),
            "--from-key and --prefix flags are mutually exclusive"
        );
        assert_eq!(
            refused(&["user", "add", ":pw"]),
            "empty user name is not allowed"
        );
        for command in [
            &["user", "add"][..],
            &["user", "delete"],
            &["user", "get"],
            &["user", "passwd"],
            &["user", "grant-role", "u"],
            &["user", "revoke-role", "u"],
            &["role", "add"],
            &["role", "delete"],
            &["role", "get"],
        ] {
            assert!(
                refused(command).contains("requires"),
                "{command:?}: {}",
                refused(command)
            );
        }
    }

    #[test]
    fn passwords_on_the_command_line() {
        assert_eq!(
            planned(&["user", "add", "a:b:c"]).unwrap(),
            Some(AuthCall::UserAdd {
                name: "a".into(),
                password: "b:c".into()
            })
        );
        assert_eq!(
            planned(&["user", "add", "a:b", "--new-user-password", "pw"]).unwrap(),
            Some(AuthCall::UserAdd {
                name: "a:b".into(),
                password: "pw".into()
            })
        );
        assert!(planned(&["user", "passwd", "u", "--interactive", "false"]).is_err());
        assert_eq!(planned(&["put", "k", "v"]).unwrap(), None);
    }
}
