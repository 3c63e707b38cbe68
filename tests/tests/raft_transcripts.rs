//! Runs every `testdata/raft/*.txt` script against a scripted cluster and snapshots the
//! transcript (each command followed by what it printed).

#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod raft_env;

use raft_env::Env;

fn run_script(script: &str) -> String {
    let mut env = Env::default();
    qraft_tests::transcript::run_script(script, |line, out| {
        let parts: Vec<&str> = line.split_whitespace().collect();
        env.out.clear();
        let result = env.run(parts[0], &parts[1..]);
        out.push_str(&env.out);
        if let Err(e) = result {
            out.push_str(&format!("ERROR: {e}\n"));
        }
        out.push('\n');
    })
}

#[test]
fn raft_transcripts() {
    insta::glob!("../testdata/raft", "*.txt", |path| {
        let script = std::fs::read_to_string(path).expect("read script");
        insta::assert_snapshot!(run_script(&script));
    });
}
