//! `user`, `role` and `auth`: etcdctl's commands for managing authentication, with its simple
//! output lines (`User foo created`, `Role foo updated`, `Authentication Status: true`). The
//! command line is checked first ([`super::auth_plan`]); here the calls are made. The global
//! `--user`/`--password` sign every connection in (see [`super::connect_to`]).

use qraft_io::client::{Client, ClientError};
use qraft_proto::authpb::Permission;
use qraft_proto::etcdserverpb::{
    AuthDisableRequest, AuthEnableRequest, AuthRoleAddRequest, AuthRoleDeleteRequest,
    AuthRoleGetRequest, AuthRoleGetResponse, AuthRoleGrantPermissionRequest, AuthRoleListRequest,
    AuthRoleRevokePermissionRequest, AuthStatusRequest, AuthUserAddRequest,
    AuthUserChangePasswordRequest, AuthUserDeleteRequest, AuthUserGetRequest,
    AuthUserGrantRoleRequest, AuthUserGrantRoleResponse, AuthUserListRequest,
    AuthUserRevokeRoleRequest, ResponseHeader,
};
use serde_json::Value;

use super::auth_plan::AuthCall;
use super::auth_print::{self, ROOT};
use super::output::Printer;
use super::server_error;

/// What a call prints: etcdctl's text, and the response as JSON for `-w json` (`None`: the
/// text in every format, as etcdctl's `auth enable|disable` and `user get --detail`).
struct Answer {
    text: String,
    json: Option<Value>,
}

impl Answer {
    fn changed(text: String, header: Option<&ResponseHeader>) -> Answer {
        Answer {
            text,
            json: Some(auth_print::header_only(header)),
        }
    }

    fn text_only(text: impl Into<String>) -> Answer {
        Answer {
            text: text.into(),
            json: None,
        }
    }
}

/// Makes the call and prints etcdctl's answer to it.
pub async fn run(client: &Client, call: AuthCall, p: &Printer) -> anyhow::Result<()> {
    let answer = match call {
        AuthCall::UserAdd { name, password } => {
            let req = AuthUserAddRequest {
                name: name.clone(),
                password,
                ..Default::default()
            };
            let resp = client.user_add(req).await.map_err(server_error)?;
            Answer::changed(format!("User {name} created\n"), resp.header.as_ref())
        }
        AuthCall::UserDelete { name } => {
            let req = AuthUserDeleteRequest { name: name.clone() };
            let resp = client.user_delete(req).await.map_err(server_error)?;
            Answer::changed(format!("User {name} deleted\n"), resp.header.as_ref())
        }
        AuthCall::UserGet { name, detail } => user_get(client, name, detail, p).await?,
        AuthCall::UserList => {
            let resp = client
                .user_list(AuthUserListRequest {})
                .await
                .map_err(server_error)?;
            Answer {
                text: lines(&resp.users),
                json: Some(auth_print::names_json(
                    resp.header.as_ref(),
                    "users",
                    &resp.users,
                )),
            }
        }
        AuthCall::UserPasswd { name, password } => {
            let req = AuthUserChangePasswordRequest {
                name,
                password,
                ..Default::default()
            };
            let resp = client
                .user_change_password(req)
                .await
                .map_err(server_error)?;
            Answer::changed("Password updated\n".into(), resp.header.as_ref())
        }
        AuthCall::UserGrantRole { user, role } => {
            let resp = grant_role(client, &user, &role).await?;
            Answer::changed(
                format!("Role {role} is granted to user {user}\n"),
                resp.header.as_ref(),
            )
        }
        AuthCall::UserRevokeRole { user, role } => {
            let req = AuthUserRevokeRoleRequest {
                name: user.clone(),
                role: role.clone(),
            };
            let resp = client.user_revoke_role(req).await.map_err(server_error)?;
            Answer::changed(
                format!("Role {role} is revoked from user {user}\n"),
                resp.header.as_ref(),
            )
        }
        AuthCall::RoleAdd { role } => {
            let req = AuthRoleAddRequest { name: role.clone() };
            let resp = client.role_add(req).await.map_err(server_error)?;
            Answer::changed(format!("Role {role} created\n"), resp.header.as_ref())
        }
        AuthCall::RoleDelete { role } => {
            let req = AuthRoleDeleteRequest { role: role.clone() };
            let resp = client.role_delete(req).await.map_err(server_error)?;
            Answer::changed(format!("Role {role} deleted\n"), resp.header.as_ref())
        }
        AuthCall::RoleGet { role } => {
            let resp = role_get(client, &role).await?;
            Answer {
                text: auth_print::role(&role, &resp.perm),
                json: Some(auth_print::role_json(resp.header.as_ref(), &resp.perm)),
            }
        }
        AuthCall::RoleList => {
            let resp = client
                .role_list(AuthRoleListRequest {})
                .await
                .map_err(server_error)?;
            Answer {
                text: lines(&resp.roles),
                json: Some(auth_print::names_json(
                    resp.header.as_ref(),
                    "roles",
                    &resp.roles,
                )),
            }
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
            let resp = client
                .role_grant_permission(req)
                .await
                .map_err(server_error)?;
            Answer::changed(format!("Role {role} updated\n"), resp.header.as_ref())
        }
        AuthCall::RoleRevokePermission { role, range } => {
            let req = AuthRoleRevokePermissionRequest {
                role: role.clone(),
                key: range.key.into(),
                range_end: range.range_end.clone().into(),
            };
            let resp = client
                .role_revoke_permission(req)
                .await
                .map_err(server_error)?;
            Answer::changed(
                auth_print::revoked(&role, &range.typed_key, &range.range_end),
                resp.header.as_ref(),
            )
        }
        AuthCall::AuthEnable => {
            enable(client).await?;
            Answer::text_only("Authentication Enabled\n")
        }
        AuthCall::AuthDisable => {
            client
                .auth_disable(AuthDisableRequest {})
                .await
                .map_err(server_error)?;
            Answer::text_only("Authentication Disabled\n")
        }
        AuthCall::AuthStatus => {
            let resp = client
                .auth_status(AuthStatusRequest {})
                .await
                .map_err(server_error)?;
            Answer {
                text: format!(
                    "Authentication Status: {}\nAuthRevision: {}\n",
                    resp.enabled, resp.auth_revision
                ),
                json: Some(auth_print::status_json(
                    resp.header.as_ref(),
                    resp.enabled,
                    resp.auth_revision,
                )),
            }
        }
    };
    match answer.json {
        Some(value) if p.is_json() => p.print_json(&value),
        _ => print!("{}", answer.text),
    }
    Ok(())
}

/// `user get NAME`, and with `--detail` every granted role's permissions after a blank line
/// each (as etcdctl, the roles are fetched one by one; a failing one fails the command; with
/// `-w json` each role is its JSON line after the `User:` line).
async fn user_get(
    client: &Client,
    name: String,
    detail: bool,
    p: &Printer,
) -> anyhow::Result<Answer> {
    let resp = client
        .user_get(AuthUserGetRequest { name: name.clone() })
        .await
        .map_err(server_error)?;
    if !detail {
        return Ok(Answer {
            text: auth_print::user(&name, &resp.roles),
            json: Some(auth_print::names_json(
                resp.header.as_ref(),
                "roles",
                &resp.roles,
            )),
        });
    }
    let mut text = format!("User: {name}\n");
    for role in &resp.roles {
        let role_resp = role_get(client, role).await?;
        text.push('\n');
        if p.is_json() {
            text.push_str(
                &auth_print::role_json(role_resp.header.as_ref(), &role_resp.perm).to_string(),
            );
            text.push('\n');
        } else {
            text.push_str(&auth_print::role(role, &role_resp.perm));
        }
    }
    Ok(Answer::text_only(text))
}

async fn role_get(client: &Client, role: &str) -> anyhow::Result<AuthRoleGetResponse> {
    client
        .role_get(AuthRoleGetRequest {
            role: role.to_string(),
        })
        .await
        .map_err(server_error)
}

/// As etcdctl: when the root user lacks the root role, the role is added (kept if it exists
/// already, where etcdctl stops) and granted to it, then enabling is retried once.
async fn enable(client: &Client) -> anyhow::Result<()> {
    let Err(err) = client.auth_enable(AuthEnableRequest {}).await else {
        return Ok(());
    };
    if !is_root_role_missing(&err) {
        return Err(server_error(err));
    }
    let added = client
        .role_add(AuthRoleAddRequest { name: ROOT.into() })
        .await;
    if let Err(err) = added
        && !has_message(&err, "role name already exists")
    {
        return Err(server_error(err));
    }
    grant_role(client, ROOT, ROOT).await?;
    client
        .auth_enable(AuthEnableRequest {})
        .await
        .map_err(server_error)?;
    Ok(())
}

async fn grant_role(
    client: &Client,
    user: &str,
    role: &str,
) -> anyhow::Result<AuthUserGrantRoleResponse> {
    client
        .user_grant_role(AuthUserGrantRoleRequest {
            user: user.to_string(),
            role: role.to_string(),
        })
        .await
        .map_err(server_error)
}

fn is_root_role_missing(err: &ClientError) -> bool {
    has_message(err, "root user does not have root role")
}

fn has_message(err: &ClientError, text: &str) -> bool {
    matches!(err, ClientError::Status { message, .. } if message.contains(text))
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
