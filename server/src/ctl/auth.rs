//! `user add|grant-role`, `role add` and `auth enable|disable`: etcdctl's commands for setting
//! up authentication, with its output lines. The global `--user NAME:PASSWORD` signs every
//! connection in (see [`super::connect_to`]).

use anyhow::Context;
use qraft_io::client::{Client, ClientError};
use qraft_proto::etcdserverpb::{
    AuthDisableRequest, AuthEnableRequest, AuthRoleAddRequest, AuthUserAddRequest,
    AuthUserGrantRoleRequest,
};

use super::args::{AuthCommand, RoleCommand, UserCommand};
use super::server_error;

/// etcd's fixed name of the user and role that may do everything.
const ROOT: &str = "root";

pub async fn user(client: &Client, cmd: &UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add {
            user,
            new_user_password,
        } => {
            let (name, password) = match (user.split_once(':'), new_user_password) {
                (_, Some(password)) => (user.as_str(), password.as_str()),
                (Some((name, password)), None) => (name, password),
                (None, None) => anyhow::bail!(
                    "no password given: use NAME:PASSWORD or --new-user-password (qraftctl does not prompt)"
                ),
            };
            client
                .user_add(AuthUserAddRequest {
                    name: name.to_string(),
                    password: password.to_string(),
                    ..Default::default()
                })
                .await
                .map_err(server_error)?;
            println!("User {name} created");
        }
        UserCommand::GrantRole { user, role } => {
            grant_role(client, user, role).await?;
            println!("Role {role} is granted to user {user}");
        }
    }
    Ok(())
}

pub async fn role(client: &Client, cmd: &RoleCommand) -> anyhow::Result<()> {
    match cmd {
        RoleCommand::Add { role } => {
            client
                .role_add(AuthRoleAddRequest { name: role.clone() })
                .await
                .map_err(server_error)?;
            println!("Role {role} created");
        }
    }
    Ok(())
}

pub async fn auth(client: &Client, cmd: &AuthCommand) -> anyhow::Result<()> {
    match cmd {
        // As etcdctl: a root user without the root role gets it, then enabling is retried once.
        AuthCommand::Enable => {
            if let Err(err) = client.auth_enable(AuthEnableRequest {}).await {
                if !is_root_role_missing(&err) {
                    return Err(server_error(err));
                }
                grant_role(client, ROOT, ROOT)
                    .await
                    .context("granting the root role to the root user")?;
                client
                    .auth_enable(AuthEnableRequest {})
                    .await
                    .map_err(server_error)?;
            }
            println!("Authentication Enabled");
        }
        AuthCommand::Disable => {
            client
                .auth_disable(AuthDisableRequest {})
                .await
                .map_err(server_error)?;
            println!("Authentication Disabled");
        }
    }
    Ok(())
}

async fn grant_role(client: &Client, user: &str, role: &str) -> anyhow::Result<()> {
    client
        .user_grant_role(AuthUserGrantRoleRequest {
            user: user.to_string(),
            role: role.to_string(),
        })
        .await
        .map_err(server_error)?;
    Ok(())
}

fn is_root_role_missing(err: &ClientError) -> bool {
    matches!(err, ClientError::Status { message, .. } if message.contains("root user does not have root role"))
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::super::args::{Cli, Command};
    use super::*;

    /// The global `--user` and `user add`'s positional NAME:PASSWORD are different arguments
    /// (one clap id would let the new user's password sign the call in).
    #[test]
    fn the_signed_in_user_and_the_added_user_are_separate() {
        let cli = Cli::try_parse_from(["qraftctl", "--user", "root:pw", "user", "add", "a:b"])
            .expect("parses");
        assert_eq!(cli.user.as_deref(), Some("root:pw"));
        let Command::User(UserCommand::Add { user, .. }) = cli.command else {
            panic!("not user add: {:?}", cli.command);
        };
        assert_eq!(user, "a:b");
        let cli = Cli::try_parse_from(["qraftctl", "user", "add", "a:b"]).expect("parses");
        assert_eq!(cli.user, None);
    }
}
