//! Transcript tests of the auth store: each script in `testdata/auth/` drives one `AuthStore`
//! (persisted to a `MemBackend` after every change, as the state machine's apply does) and
//! records each command's output.
//!
//! Watches checked against the store: `watch WHO KEY [END|--prefix|--from]` opens a stream
//! and creates a watch there with WHO's token (`-` none, `bad` an unknown one); after every
//! command the watchers are re-checked against the store, as the shell does after each
//! applied batch, and every watch response is printed (`[sN] ...`).

// Test harness: reading the scripts is the runner's IO, and a failed write to a String is a bug.
#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

use std::collections::HashMap;
use std::fmt::Write as _;

use qraft_core::auth::{AuthConfig, AuthInfo, AuthStore, hash_password, new_salt, verify_password};
use qraft_core::backend::{Backend, MemBackend, WriteTxn};
use qraft_core::error::Error;
use qraft_core::mvcc::MvccStore;
use qraft_core::watch::{WatchConfig, WatchHub};
use qraft_proto::authpb::permission::Type as PermType;
use qraft_proto::authpb::{Permission, UserAddOptions};
use qraft_proto::etcdserverpb::request_op::Request as Op;
use qraft_proto::etcdserverpb::watch_request::RequestUnion;
use qraft_proto::etcdserverpb::{
    AuthUserAddRequest, AuthUserChangePasswordRequest, Compare, DeleteRangeRequest, PutRequest,
    RangeRequest, RequestOp, TxnRequest, WatchCreateRequest, WatchRequest,
};
use qraft_proto::qraftpb::TokenClaims;
use rand::SeedableRng;
use rand::rngs::StdRng;

struct Runner {
    store: AuthStore,
    /// Stands in for the server's secret generator: fixed, so the transcripts repeat.
    secrets: StdRng,
    backend: MemBackend,
    now_ms: u64,
    /// Stands in for the raft index of the applied Authenticate entry.
    index: u64,
    /// Each user's most recent token.
    tokens: HashMap<String, String>,
    /// Signed tokens (`config signed=1`): the claims of each user's most recent token, as the
    /// shell would find them in the signed token.
    signed: bool,
    claims: HashMap<String, TokenClaims>,
    /// Auth infos resolved earlier (as when a request was proposed), checked later (at apply).
    captured: HashMap<String, Option<AuthInfo>>,
    /// An empty key space, for the watches.
    mvcc: MvccStore,
    hub: WatchHub,
}

fn show<T>(result: Result<T, Error>, ok: impl FnOnce(T) -> String) -> String {
    match result {
        Ok(value) => ok(value),
        Err(err) => format!("error: {err} (code {})", err.code() as i32),
    }
}

/// `(key, range_end)` from script words: `KEY`, `KEY END`, `KEY --prefix`, `KEY --from`.
fn key_range(words: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let key = match words.first() {
        None | Some(&"''") => Vec::new(),
        Some(k) => k.as_bytes().to_vec(),
    };
    let end = match words.get(1) {
        None => Vec::new(),
        Some(&"--from") => vec![0],
        Some(&"--prefix") => {
            let mut end = key.clone();
            while let Some(last) = end.pop() {
                if last < 0xff {
                    end.push(last + 1);
                    break;
                }
            }
            if end.is_empty() { vec![0] } else { end }
        }
        Some(end) => end.as_bytes().to_vec(),
    };
    (key, end)
}

impl Runner {
    fn new(config: AuthConfig) -> Self {
        let backend = MemBackend::new();
        let mvcc = MvccStore::open(&backend.read_txn().unwrap()).unwrap();
        Runner {
            signed: config.signed_tokens,
            store: AuthStore::new(config),
            secrets: StdRng::seed_from_u64(0),
            backend,
            now_ms: 0,
            index: 0,
            tokens: HashMap::new(),
            claims: HashMap::new(),
            captured: HashMap::new(),
            mvcc,
            hub: WatchHub::new(WatchConfig::default()),
        }
    }

    /// `watch WHO KEY [END|--prefix|--from]` on a new stream.
    fn watch(&mut self, words: &[&str]) -> String {
        let who = self.info(words[0]);
        let (key, range_end) = key_range(&words[1..]);
        let stream = self.hub.open_stream();
        let create = WatchCreateRequest {
            key: key.into(),
            range_end: range_end.into(),
            ..Default::default()
        };
        let request = WatchRequest {
            request_union: Some(RequestUnion::CreateRequest(create)),
        };
        self.hub
            .request_as(stream, request, &self.mvcc, &self.store, who);
        format!("stream s{stream}")
    }

    /// Re-checks the watchers and prints every queued watch response.
    fn watch_responses(&mut self) -> String {
        self.hub.recheck_permissions(&self.mvcc, &self.store);
        let mut out = String::new();
        for stream in self.hub.streams_with_responses() {
            for r in self.hub.take_responses(stream, usize::MAX) {
                write!(out, "\n[s{stream}] id={}", r.watch_id).unwrap();
                for (flag, name) in [(r.created, "created"), (r.canceled, "canceled")] {
                    if flag {
                        write!(out, " {name}").unwrap();
                    }
                }
                if !r.cancel_reason.is_empty() {
                    write!(out, " reason={:?}", r.cancel_reason).unwrap();
                }
            }
        }
        out
    }

    /// Applies a change and persists the store in the same write transaction.
    fn apply(&mut self, change: impl FnOnce(&mut AuthStore) -> Result<(), Error>) -> String {
        let result = change(&mut self.store);
        if result.is_ok() {
            let mut txn = self.backend.write_txn().unwrap();
            self.store.persist(&mut txn).unwrap();
            txn.commit().unwrap();
        }
        show(result, |()| {
            format!("ok (auth revision {})", self.store.revision())
        })
    }

    fn info(&mut self, who: &str) -> Result<Option<AuthInfo>, Error> {
        if let Some(user) = who.strip_prefix("captured:") {
            return Ok(self.captured.get(user).cloned().flatten());
        }
        // cert:NAME: no token, a verified client certificate with common name NAME.
        if let Some(cn) = who.strip_prefix("cert:") {
            return self.store.auth_info("", cn, None, self.now_ms);
        }
        // With signed tokens the shell hands over the claims it verified: `bad` stands for a
        // token whose signature or expiry did not check out.
        if self.signed {
            let claims = match who {
                "-" => return self.store.auth_info("", "", None, self.now_ms),
                "bad" => TokenClaims::default(),
                user => self.claims.get(user).cloned().unwrap_or_default(),
            };
            return self
                .store
                .auth_info("signed", "", Some(&claims), self.now_ms);
        }
        let token = match who {
            "-" => String::new(),
            "bad" => "no-such-token.1".to_string(),
            user => self.tokens.get(user).cloned().unwrap_or_default(),
        };
        self.store.auth_info(&token, "", None, self.now_ms)
    }

    fn check(&mut self, words: &[&str]) -> String {
        let info = match self.info(words[0]) {
            Ok(info) => info,
            Err(err) => return show::<()>(Err(err), |_| String::new()),
        };
        let info = info.as_ref();
        let args = &words[2..];
        let prev = args.contains(&"prev");
        let args: Vec<&str> = args.iter().copied().filter(|w| *w != "prev").collect();
        let (key, range_end) = key_range(&args);
        let result = match words[1] {
            "range" => self.store.check_range(
                info,
                &RangeRequest {
                    key: key.into(),
                    range_end: range_end.into(),
                    ..Default::default()
                },
            ),
            "put" => self.store.check_put(
                info,
                &PutRequest {
                    key: key.into(),
                    prev_kv: prev,
                    ..Default::default()
                },
            ),
            "delete" => self.store.check_delete_range(
                info,
                &DeleteRangeRequest {
                    key: key.into(),
                    range_end: range_end.into(),
                    prev_kv: prev,
                },
            ),
            "admin" => self.store.check_admin(info),
            // txn cmp:KEY put:KEY del:KEY get:KEY (ops go to success, `else:` ones to failure)
            "txn" => {
                let mut txn = TxnRequest::default();
                for arg in &args {
                    let (failure, arg) = match arg.strip_prefix("else:") {
                        Some(rest) => (true, rest),
                        None => (false, *arg),
                    };
                    let (kind, key) = arg.split_once(':').unwrap();
                    let key = key.as_bytes().to_vec();
                    let op = match kind {
                        "cmp" => {
                            txn.compare.push(Compare {
                                key: key.into(),
                                ..Default::default()
                            });
                            continue;
                        }
                        "put" => Op::RequestPut(PutRequest {
                            key: key.into(),
                            ..Default::default()
                        }),
                        "del" => Op::RequestDeleteRange(DeleteRangeRequest {
                            key: key.into(),
                            ..Default::default()
                        }),
                        "get" => Op::RequestRange(RangeRequest {
                            key: key.into(),
                            ..Default::default()
                        }),
                        other => panic!("unknown txn part {other}"),
                    };
                    let op = RequestOp { request: Some(op) };
                    if failure {
                        txn.failure.push(op);
                    } else {
                        txn.success.push(op);
                    }
                }
                self.store.check_txn(info, &txn)
            }
            other => panic!("unknown check {other}"),
        };
        show(result, |()| "permitted".into())
    }

    fn run(&mut self, words: &[&str]) -> String {
        let mut out = self.run_command(words);
        out.push_str(&self.watch_responses());
        out
    }

    fn run_command(&mut self, words: &[&str]) -> String {
        match words[0] {
            "watch" => self.watch(&words[1..]),
            "config" => {
                let mut config = AuthConfig {
                    bcrypt_cost: 4,
                    ..AuthConfig::default()
                };
                let mut seed = 0;
                for word in &words[1..] {
                    let (name, value) = word.split_once('=').unwrap();
                    let value: u64 = value.parse().unwrap();
                    match name {
                        // Seed of the stand-in secret generator.
                        "seed" => seed = value,
                        "token-ttl-ms" => config.token_ttl_ms = value,
                        "signed" => config.signed_tokens = value == 1,
                        other => panic!("unknown config {other}"),
                    }
                }
                *self = Runner::new(config);
                self.secrets = StdRng::seed_from_u64(seed);
                "ok".into()
            }
            "now" => {
                self.now_ms = words[1].parse().unwrap();
                format!("now={}", self.now_ms)
            }
            "advance" => {
                self.now_ms += words[1].parse::<u64>().unwrap();
                format!("now={}", self.now_ms)
            }
            "user-add" => {
                let no_password = words.get(2) == Some(&"--no-password");
                let request = AuthUserAddRequest {
                    name: words
                        .get(1)
                        .map_or("", |w| if *w == "''" { "" } else { w })
                        .to_string(),
                    password: if no_password {
                        String::new()
                    } else {
                        words.get(2).unwrap_or(&"").to_string()
                    },
                    options: Some(UserAddOptions { no_password }),
                    hashed_password: String::new(),
                };
                match self.store.prepare_user_add(request) {
                    Ok((mut prepared, password)) => {
                        if let Some(password) = password {
                            let salt = new_salt(&mut self.secrets);
                            prepared.hashed_password =
                                hash_password(&password, self.store.bcrypt_cost(), salt).unwrap();
                        }
                        assert!(
                            prepared.password.is_empty(),
                            "clear password must not be proposed"
                        );
                        self.apply(|s| s.user_add(&prepared))
                    }
                    Err(err) => show::<()>(Err(err), |_| String::new()),
                }
            }
            "user-passwd" => {
                let request = AuthUserChangePasswordRequest {
                    name: words[1].to_string(),
                    password: words[2].to_string(),
                    hashed_password: String::new(),
                };
                let (mut prepared, password) = self.store.prepare_change_password(request);
                if let Some(password) = password {
                    let salt = new_salt(&mut self.secrets);
                    prepared.hashed_password =
                        hash_password(&password, self.store.bcrypt_cost(), salt).unwrap();
                }
                self.apply(|s| s.user_change_password(&prepared))
            }
            "user-delete" => {
                let name = words[1].to_string();
                self.apply(|s| s.user_delete(&name))
            }
            "user-grant" => {
                let (user, role) = (words[1].to_string(), words[2].to_string());
                self.apply(|s| s.user_grant_role(&user, &role))
            }
            "user-revoke" => {
                let (user, role) = (words[1].to_string(), words[2].to_string());
                self.apply(|s| s.user_revoke_role(&user, &role))
            }
            "user-get" => show(self.store.user_get(words[1]), |r| {
                format!("roles={:?}", r.roles)
            }),
            "user-list" => format!("{:?}", self.store.user_list().users),
            "role-add" => {
                let name = if words[1] == "''" {
                    String::new()
                } else {
                    words[1].to_string()
                };
                self.apply(|s| s.role_add(&name))
            }
            "role-delete" => {
                let name = words[1].to_string();
                self.apply(|s| s.role_delete(&name))
            }
            "role-get" => show(self.store.role_get(words[1]), |r| {
                let perms: Vec<String> = r
                    .perm
                    .iter()
                    .map(|p| {
                        format!(
                            "{:?} [{}, {})",
                            PermType::try_from(p.perm_type).unwrap(),
                            String::from_utf8_lossy(&p.key),
                            String::from_utf8_lossy(&p.range_end).replace('\0', "\\0")
                        )
                    })
                    .collect();
                format!("perms={perms:?}")
            }),
            "role-list" => format!("{:?}", self.store.role_list().roles),
            // role-grant ROLE read|write|readwrite KEY [END|--prefix|--from] | role-grant ROLE none
            "role-grant" => {
                let role = words[1].to_string();
                let perm = match words[2] {
                    "none" => None,
                    kind => {
                        let perm_type = match kind {
                            "read" => PermType::Read,
                            "write" => PermType::Write,
                            "readwrite" => PermType::Readwrite,
                            other => panic!("unknown permission {other}"),
                        };
                        let (key, range_end) = key_range(&words[3..]);
                        let key = if key == b"''" { Vec::new() } else { key };
                        Some(Permission {
                            perm_type: perm_type as i32,
                            key: key.into(),
                            range_end: range_end.into(),
                        })
                    }
                };
                self.apply(|s| s.role_grant_permission(&role, perm.as_ref()))
            }
            "role-revoke" => {
                let role = words[1].to_string();
                let (key, range_end) = key_range(&words[2..]);
                self.apply(|s| s.role_revoke_permission(&role, &key, &range_end))
            }
            "enable" => self.apply(|s| s.enable()),
            "disable" => self.apply(|s| {
                s.disable();
                Ok(())
            }),
            "status" => {
                let status = self.store.status();
                format!(
                    "enabled={} auth_revision={}",
                    status.enabled, status.auth_revision
                )
            }
            // login USER PASSWORD: password check before proposing, token assigned at apply.
            "login" => {
                let (user, password) = (words[1], words.get(2).copied().unwrap_or(""));
                let hash = match self.store.login_hash(user, self.now_ms) {
                    Ok(hash) => hash,
                    Err(err) => return show::<()>(Err(err), |_| String::new()),
                };
                if !verify_password(password, &hash) {
                    self.store.login_failed(user, self.now_ms);
                    return show::<()>(Err(Error::AuthFailed), |_| String::new());
                }
                self.store.login_succeeded(user);
                let prefix = self.store.new_token_prefix(&mut self.secrets);
                self.index += 1;
                match self
                    .store
                    .authenticate(user, &prefix, self.index, self.now_ms)
                {
                    Ok(revision) if self.signed => {
                        let claims = TokenClaims {
                            valid: true,
                            username: user.to_string(),
                            revision: revision.parse().unwrap(),
                        };
                        self.claims.insert(user.to_string(), claims);
                        format!("sign username={user} revision={revision}")
                    }
                    Ok(token) => {
                        self.tokens.insert(user.to_string(), token.clone());
                        format!("token {token}")
                    }
                    Err(err) => show::<()>(Err(err), |_| String::new()),
                }
            }
            "whoami" => show(self.info(words[1]), |info| format!("{info:?}")),
            // capture USER: resolve the token now; `check captured:USER ...` checks it later.
            "capture" => match self.info(words[1]) {
                Ok(info) => {
                    let shown = format!("{info:?}");
                    self.captured.insert(words[1].to_string(), info);
                    shown
                }
                Err(err) => show::<()>(Err(err), |_| String::new()),
            },
            "check" => self.check(&words[1..]),
            // A restart: the store is rebuilt from the backend alone; tokens are gone.
            "restart" => {
                let mut store = AuthStore::new(AuthConfig {
                    bcrypt_cost: 4,
                    signed_tokens: self.signed,
                    ..AuthConfig::default()
                });
                store.load(&self.backend.read_txn().unwrap()).unwrap();
                self.store = store;
                let status = self.store.status();
                format!(
                    "restarted: enabled={} auth_revision={} users={:?} roles={:?}",
                    status.enabled,
                    status.auth_revision,
                    self.store.user_list().users,
                    self.store.role_list().roles
                )
            }
            other => panic!("unknown command {other}"),
        }
    }
}

#[test]
fn auth_transcripts() {
    insta::glob!("../testdata/auth", "*.txt", |path| {
        let script = std::fs::read_to_string(path).unwrap();
        let mut runner = Runner::new(AuthConfig {
            bcrypt_cost: 4,
            ..AuthConfig::default()
        });
        let transcript = qraft_tests::transcript::run_script(&script, |line, out| {
            let words: Vec<&str> = line.split_whitespace().collect();
            writeln!(out, "{}", runner.run(&words)).unwrap();
        });
        insta::assert_snapshot!(transcript);
    });
}
