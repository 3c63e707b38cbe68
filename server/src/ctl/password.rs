//! Passwords the command line did not give (`--user NAME`, `user add NAME`, `user passwd`).
//!
//! As etcdctl: on a terminal they are typed without echo after its prompts (a new password
//! twice); with `--interactive=false`, or when standard input is not a terminal (scripts,
//! pipes), the first line of standard input is the password. etcdctl reads the first
//! whitespace-separated word there; qraftctl takes the whole line, so a password may hold
//! spaces. An empty password is refused rather than set (a closed standard input would
//! otherwise create a user whose password is empty).

use std::io::{BufRead, IsTerminal};

use anyhow::Context;

use super::bad_args;

/// The password of a user being added or changed (`user add NAME`, `user passwd NAME`).
pub fn new_password(name: &str, interactive: bool) -> anyhow::Result<String> {
    if !on_terminal(interactive) {
        return line_from(&mut std::io::stdin().lock());
    }
    let first = ask(&format!("Password of {name}: "))?;
    let second = ask(&format!("Type password of {name} again for confirmation: "))?;
    if first != second {
        return Err(bad_args("given passwords are different"));
    }
    Ok(first)
}

/// The sign-in password for `--user NAME` (etcdctl's `Password: ` prompt).
pub fn sign_in_password() -> anyhow::Result<String> {
    if on_terminal(true) {
        ask("Password: ")
    } else {
        line_from(&mut std::io::stdin().lock())
    }
}

fn on_terminal(interactive: bool) -> bool {
    interactive && std::io::stdin().is_terminal()
}

fn ask(prompt: &str) -> anyhow::Result<String> {
    let password =
        rpassword::prompt_password(prompt).context("reading the password from the terminal")?;
    if password.is_empty() {
        return Err(bad_args("empty password"));
    }
    Ok(password)
}

/// The first line of `input` without its line ending.
fn line_from(input: &mut impl BufRead) -> anyhow::Result<String> {
    let mut line = String::new();
    input
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line
        .strip_suffix('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .unwrap_or(&line);
    if password.is_empty() {
        return Err(bad_args(
            "empty password (expected on the first line of standard input)",
        ));
    }
    Ok(password.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_is_the_password() {
        let mut input: &[u8] = b"pass word\r\nsecond\n";
        assert_eq!(line_from(&mut input).unwrap(), "pass word");
        assert_eq!(line_from(&mut input).unwrap(), "second");
        let mut last_line_without_newline: &[u8] = b"pw";
        assert_eq!(line_from(&mut last_line_without_newline).unwrap(), "pw");
    }

    #[test]
    fn an_empty_or_closed_input_is_refused() {
        for input in [&b""[..], b"\n", b"\r\n"] {
            let mut input = input;
            let err = line_from(&mut input).unwrap_err();
            assert_eq!(super::super::exit_code(&err), 128, "{err}");
        }
    }
}
