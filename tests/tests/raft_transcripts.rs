//! Runs every `testdata/raft/*.txt` script against a scripted cluster and snapshots the
//! transcript (each command followed by what it printed).

#![allow(clippy::disallowed_methods, clippy::unwrap_used)]

mod raft_env;

use raft_env::Env;

fn run_script(script: &str) -> String {
    let mut env = Env::default();
    let mut transcript = String::new();
    for line in script.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            transcript.push_str(line);
            transcript.push('\n');
            continue;
        }
        transcript.push_str(&format!("> {trimmed}\n"));
        let parts: Vec<&str> = trimmed.split_whitespace().collect();
        env.out.clear();
        let result = env.run(parts[0], &parts[1..]);
        transcript.push_str(&env.out);
        if let Err(e) = result {
            transcript.push_str(&format!("ERROR: {e}\n"));
        }
        transcript.push('\n');
    }
    transcript
}

#[test]
fn raft_transcripts() {
    insta::glob!("../testdata/raft", "*.txt", |path| {
        let script = std::fs::read_to_string(path).expect("read script");
        insta::assert_snapshot!(run_script(&script));
    });
}
