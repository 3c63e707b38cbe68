//! `user`, `role` and `auth`: etcdctl's commands for managing authentication, with its simple
//! output lines (`User foo created`, `Role foo updated`, `Authentication Status: true`). The
//! command line is checked first ([`super::auth_plan`]); here the calls are made. The global
//! `--user`/`--password` sign every connection in (see [`super::connect_to`]).

use anyhow::Context;
use qraft_io::client::{Client, ClientError};
use qraft_proto::authpb::Permission;
use qraft_proto::etcdserverpb::{
    AuthDisableRequest, AuthEnableRequest, AuthRoleAddRequest, AuthRoleDeleteRequest,
    AuthRoleGetRequest, AuthRoleGrantPermissionRequest, AuthRoleListRequest,
    AuthRoleRevokePermissionRequest, AuthStatusRequest, AuthUserAddRequest,
    AuthUserChangePasswordRequest, AuthUserDeleteRequest, AuthUserGetRequest,
    AuthUserGrantRoleRequest, AuthUserListRequest, AuthUserRevokeRoleRequest,
};

use super::auth_plan::AuthCall;
use super::auth_print::{self, ROOT};
use super::server_error;

/// Makes the call and prints etcdctl's answer to it.
pub async fn run(client: &Client, call: AuthCall) -> anyhow::Result<()> {
    let out = match call {
        AuthCall::UserAdd { name, password } => {
            let req = AuthUserAddRequest {
                name: name.clone(),
                password,
                ..Default::default()
            };
            client.user_add(req).await.map_err(server_error)?;
            format!("User {name} created\n")
        }
        AuthCall::UserDelete { name } => {
            let req = AuthUserDeleteRequest { name: name.clone() };
            client.user_delete(req).await.map_err(server_error)?;
            format!("User {name} deleted\n")
        }
        AuthCall::UserGet { name, detail } => user_get(client, name, detail).await?,
        AuthCall::UserList => {
            let resp = client
                .user_list(AuthUserListRequest {})
                .await
                .map_err(server_error)?;
            lines(&resp.users)
        }
        AuthCall::UserPasswd { name, password } => {
            let req = AuthUserChangePasswordRequest {
                name,
                password,
                ..Default::default()
            };
            client
                .user_change_password(req)
                .await
                .map_err(server_error)?;
            "Password updated\n".into()
        }
        AuthCall::UserGrantRole { user, role } => {
            grant_role(client, &user, &role).await?;
            format!("Role {role} is granted to user {user}\n")
        }
        AuthCall::UserRevokeRole { user, role } => {
            let req = AuthUserRevokeRoleRequest {
                name: user.clone(),
                role: role.clone(),
            };
            client.user_revoke_role(req).await.map_err(server_error)?;
            format!("Role {role} is revoked from user {user}\n")
        }
        AuthCall::RoleAdd { role } => {
            let req = AuthRoleAddRequest { name: role.clone() };
            client.role_add(req).await.map_err(server_error)?;
            format!("Role {role} created\n")
        }
        AuthCall::RoleDelete { role } => {
            let req = AuthRoleDeleteRequest { role: role.clone() };
            client.role_delete(req).await.map_err(server_error)?;
            format!("Role {role} deleted\n")
        }
        AuthCall::RoleGet { role } => {
            let perms = role_perms(client, &role).await?;
            auth_print::role(&role, &perms)
        }
        AuthCall::RoleList => {
            let resp = client
                .role_list(AuthRoleListRequest {})
                .await
                .map_err(server_error)?;
            lines(&resp.roles)
        }
        AuthCall::RoleGrantPermission {
            role,
            perm_type,
            range,
        } => {
            let req = AuthRoleGrantPermissionRequest {
                name: role.clone(),
                perm: Some(Permission {
                    perm_type: perm_type as i32,
                    key: range.key.into(),
                    range_end: range.range_end.into(),
                }),
            };
            client
                .role_grant_permission(req)
                .await
                .map_err(server_error)?;
            format!("Role {role} updated\n")
        }
        AuthCall::RoleRevokePermission { role, range } => {
            let req = AuthRoleRevokePermissionRequest {
                role: role.clone(),
                key: range.key.into(),
                range_end: range.range_end.clone().into(),
            };
            client
                .role_revoke_permission(req)
                .await
                .map_err(server_error)?;
            auth_print::revoked(&role, &range.typed_key, &range.range_end)
        }
        AuthCall::AuthEnable => {
            enable(client).await?;
            "Authentication Enabled\n".into()
        }
        AuthCall::AuthDisable => {
            client
                .auth_disable(AuthDisableRequest {})
                .await
                .map_err(server_error)?;
            "Authentication Disabled\n".into()
        }
        AuthCall::AuthStatus => {
            let resp = client
                .auth_status(AuthStatusRequest {})
                .await
                .map_err(server_error)?;
            format!(
                "Authentication Status: {}\nAuthRevision: {}\n",
                resp.enabled, resp.auth_revision
            )
        }
    };
    print!("{out}");
    Ok(())
}

/// `user get NAME`, and with `--detail` every granted role's permissions after a blank line
/// each (as etcdctl, the roles are fetched one by one; a failing one fails the command).
async fn user_get(client: &Client, name: String, detail: bool) -> anyhow::Result<String> {
    let resp = client
        .user_get(AuthUserGetRequest { name: name.clone() })
        .await
        .map_err(server_error)?;
    if !detail {
        return Ok(auth_print::user(&name, &resp.roles));
    }
    let mut out = format!("User: {name}\n");
    for role in &resp.roles {
        let perms = role_perms(client, role).await?;
        out.push('\n');
        out.push_str(&auth_print::role(role, &perms));
    }
    Ok(out)
}

async fn role_perms(client: &Client, role: &str) -> anyhow::Result<Vec<Permission>> {
    let resp = client
        .role_get(AuthRoleGetRequest {
            role: role.to_string(),
        })
        .await
        .map_err(server_error)?;
    Ok(resp.perm)
}

/// As etcdctl: a root user without the root role gets it, then enabling is retried once.
async fn enable(client: &Client) -> anyhow::Result<()> {
    let Err(err) = client.auth_enable(AuthEnableRequest {}).await else {
        return Ok(());
    };
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

fn lines(names: &[String]) -> String {
    names.iter().map(|n| format!("{n}\n")).collect()
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::super::args::{Cli, Command, UserCommand};

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
        assert_eq!(user.as_deref(), Some("a:b"));
        let cli = Cli::try_parse_from(["qraftctl", "user", "add", "a:b"]).expect("parses");
        assert_eq!(cli.user, None);
    }
}
