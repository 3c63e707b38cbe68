//! bcrypt off the loop. Hashing a password (UserAdd, UserChangePassword) or checking one
//! (Authenticate) costs tens of milliseconds at etcd's default cost; run on the thread that
//! drives raft, a burst of them delayed heartbeats until the member lost its leadership.
//!
//! So the core never runs bcrypt: a request that needs it is checked first (permissions, user
//! existence, the sign-in limit), then parked here while the shell carries out
//! [`super::Output::PasswordWork`] on worker threads and hands back the [`PasswordDone`] with
//! [`Server::password_done`]; the request then goes on (proposed, or refused). At most
//! [`MAX_PASSWORD_WORK`] jobs wait at once; more are refused with "too many requests", so an
//! anonymous flood costs a bounded amount of CPU and memory.

use std::collections::BTreeMap;

use qraft_proto::etcdserverpb::{AuthUserAddRequest, AuthUserChangePasswordRequest};
use qraft_proto::qraftpb::InternalAuthenticateRequest;
use qraft_proto::qraftpb::internal_request::Request as Propose;

use crate::auth::{hash_password, verify_password};
use crate::backend::Backend;
use crate::error::Error;
use crate::raft::Storage;

use super::output::{Output, RequestId};
use super::state_machine::Server;

/// Password jobs in flight per member, beyond which requests needing bcrypt are refused.
pub const MAX_PASSWORD_WORK: usize = 32;

/// bcrypt work for the shell to run off the loop. Carries a clear password: never log it.
#[derive(Clone, PartialEq)]
pub enum PasswordWork {
    /// Hash `password` with `cost` and `salt` (the salt drawn from the server's secret RNG).
    Hash {
        job: u64,
        password: String,
        cost: u32,
        salt: [u8; 16],
    },
    /// Check `password` against the stored bcrypt `hash`.
    Verify {
        job: u64,
        password: String,
        hash: Vec<u8>,
    },
}

impl std::fmt::Debug for PasswordWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordWork::Hash { job, cost, .. } => {
                write!(f, "Hash {{ job: {job}, cost: {cost} }}")
            }
            PasswordWork::Verify { job, .. } => write!(f, "Verify {{ job: {job} }}"),
        }
    }
}

/// The result of a [`PasswordWork`], fed back with [`Server::password_done`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordDone {
    pub job: u64,
    pub outcome: PasswordOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordOutcome {
    /// The bcrypt hash, or why hashing failed.
    Hashed(Result<String, String>),
    /// Whether the password matched.
    Verified(bool),
}

impl PasswordWork {
    /// Runs the job: slow by design (bcrypt). Call it on a worker thread, never on the loop.
    pub fn run(&self) -> PasswordDone {
        match self {
            PasswordWork::Hash {
                job,
                password,
                cost,
                salt,
            } => PasswordDone {
                job: *job,
                outcome: PasswordOutcome::Hashed(
                    hash_password(password, *cost, *salt).map_err(|e| e.to_string()),
                ),
            },
            PasswordWork::Verify {
                job,
                password,
                hash,
            } => PasswordDone {
                job: *job,
                outcome: PasswordOutcome::Verified(verify_password(password, hash)),
            },
        }
    }
}

/// What to do with a request once its password job is done.
#[derive(Debug)]
pub(crate) enum Continuation {
    UserAdd {
        client: RequestId,
        request: AuthUserAddRequest,
        user: String,
    },
    ChangePassword {
        client: RequestId,
        request: AuthUserChangePasswordRequest,
        user: String,
    },
    /// `revision`: the auth revision the password was checked at; the Authenticate entry
    /// carries it and fails at apply if users or roles changed meanwhile (etcd's check).
    /// `retry`: the sign-in to start again once if that happens (`None` on the retry).
    Authenticate {
        client: RequestId,
        name: String,
        revision: u64,
        retry: Option<SignInRetry>,
    },
}

/// A sign-in kept while its token entry waits to be applied: if apply refuses the entry
/// because users or roles changed after the password was checked, the member checks the
/// password again at the new revision and proposes a new token, once, instead of failing the
/// client (etcd's server retries the same way, in a loop; one retry keeps a member whose auth
/// store changes all the time from checking one password forever). Holds the clear password
/// in memory only, never in an entry or a log line.
#[derive(Clone)]
pub struct SignInRetry {
    pub name: String,
    pub password: String,
}

impl std::fmt::Debug for SignInRetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignInRetry {{ name: {:?} }}", self.name)
    }
}

/// Requests parked while the shell runs their bcrypt work.
#[derive(Debug, Default)]
pub(crate) struct PasswordJobs {
    next_job: u64,
    waiting: BTreeMap<u64, Continuation>,
}

impl<S: Storage, B: Backend> Server<S, B> {
    /// Parks `then` and asks the shell to run the work `make` builds for a new job ID.
    pub(crate) fn start_password_work(
        &mut self,
        make: impl FnOnce(u64) -> PasswordWork,
        then: Continuation,
    ) -> Result<(), (Error, u64)> {
        if self.passwords.waiting.len() >= MAX_PASSWORD_WORK {
            return Err((Error::TooManyRequests, 0));
        }
        self.passwords.next_job += 1;
        let job = self.passwords.next_job;
        self.passwords.waiting.insert(job, then);
        self.outputs.push(Output::PasswordWork(make(job)));
        Ok(())
    }

    /// The shell finished a [`PasswordWork`]: the parked request goes on. Unknown jobs are
    /// ignored.
    pub fn password_done(&mut self, done: PasswordDone) {
        if self.is_reopening() {
            return self.hold_password_done(done);
        }
        let Some(then) = self.passwords.waiting.remove(&done.job) else {
            return;
        };
        let (client, result) = match (then, done.outcome) {
            (
                Continuation::UserAdd {
                    client,
                    mut request,
                    user,
                },
                PasswordOutcome::Hashed(Ok(hash)),
            ) => {
                request.hashed_password = hash;
                (
                    client,
                    self.propose(Some(client), Propose::AuthUserAdd(request), user),
                )
            }
            (
                Continuation::ChangePassword {
                    client,
                    mut request,
                    user,
                },
                PasswordOutcome::Hashed(Ok(hash)),
            ) => {
                request.hashed_password = hash;
                (
                    client,
                    self.propose(Some(client), Propose::AuthUserChangePassword(request), user),
                )
            }
            (
                Continuation::UserAdd { client, .. } | Continuation::ChangePassword { client, .. },
                PasswordOutcome::Hashed(Err(err)),
            ) => (client, Err((Error::PasswordHashing(err), 0))),
            (
                Continuation::Authenticate {
                    client,
                    name,
                    revision,
                    retry,
                },
                PasswordOutcome::Verified(true),
            ) => {
                self.state.auth.login_succeeded(&name);
                let simple_token = self.state.auth.new_token_prefix(&mut *self.secrets);
                let request = InternalAuthenticateRequest {
                    name,
                    password: String::new(),
                    simple_token,
                };
                (
                    client,
                    self.propose_at_revision(
                        Some(client),
                        Propose::Authenticate(request),
                        String::new(),
                        revision,
                        retry,
                    ),
                )
            }
            (Continuation::Authenticate { client, name, .. }, _) => {
                self.state.auth.login_failed(&name, self.now_ms);
                (client, Err((Error::AuthFailed, 0)))
            }
            // A hash answer to a verify job or the reverse: a shell bug; refuse the request.
            (
                Continuation::UserAdd { client, .. } | Continuation::ChangePassword { client, .. },
                _,
            ) => (
                client,
                Err((Error::PasswordHashing("unexpected answer".into()), 0)),
            ),
        };
        if let Err((err, hint)) = result {
            self.respond_error(client, &err, hint);
        }
    }

    /// Authenticate: the cheap checks here (user, sign-in limit); the password is checked off
    /// the loop, then the token proposed at the auth revision of the check. `retry`: whether a
    /// token refused at apply for a stale revision may be tried again (see [`SignInRetry`]).
    pub(crate) fn sign_in(
        &mut self,
        client: RequestId,
        name: String,
        password: String,
        retry: bool,
    ) -> Result<(), (Error, u64)> {
        let hash = self
            .state
            .auth
            .login_hash(&name, self.now_ms)
            .map_err(|err| (err, 0))?;
        let revision = self.state.auth.revision();
        let retry = retry.then(|| SignInRetry {
            name: name.clone(),
            password: password.clone(),
        });
        self.start_password_work(
            |job| PasswordWork::Verify {
                job,
                password,
                hash,
            },
            Continuation::Authenticate {
                client,
                name,
                revision,
                retry,
            },
        )
    }

    /// Starts again the sign-ins whose token entries apply refused for a stale auth revision
    /// (collected while applying); call after every applied batch.
    pub(crate) fn retry_sign_ins(&mut self) {
        for (client, SignInRetry { name, password }) in
            std::mem::take(&mut self.pending.sign_in_retries)
        {
            if let Err((err, hint)) = self.sign_in(client, name, password, false) {
                self.respond_error(client, &err, hint);
            }
        }
    }
}
