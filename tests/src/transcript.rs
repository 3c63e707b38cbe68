//! The transcript runner every `testdata/<area>/*.txt` script goes through: one command per
//! line, `#` comments and blank lines echoed, each command echoed as `> CMD` and followed by
//! what the area's runner printed for it. The result is what the insta snapshots hold.

/// Runs `script`, handing each command line (trimmed) to `run`, which appends its output.
pub fn run_script(script: &str, mut run: impl FnMut(&str, &mut String)) -> String {
    run_script_with_blocks(script, &[], |line, _, out| run(line, out))
}

/// Like [`run_script`], but a command in `block_starters` (e.g. `txn`) opens a block that runs
/// to its matching `end` (nested `txn` lines deepen it); the block is echoed indented and given
/// to `run` as its continuation lines.
pub fn run_script_with_blocks(
    script: &str,
    block_starters: &[&str],
    mut run: impl FnMut(&str, &mut dyn Iterator<Item = String>, &mut String),
) -> String {
    let mut lines = script.lines().map(str::to_owned);
    let mut out = String::new();
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            out.push_str(&line);
            out.push('\n');
            continue;
        }
        out.push_str(&format!("> {trimmed}\n"));
        let mut block = Vec::new();
        if block_starters.contains(&trimmed) {
            let mut depth = 1;
            for inner in lines.by_ref() {
                let t = inner.trim().to_owned();
                if t.ends_with(" txn") || t == "txn" {
                    depth += 1;
                }
                if t == "end" {
                    depth -= 1;
                }
                out.push_str(&format!(">   {t}\n"));
                block.push(t);
                if depth == 0 {
                    break;
                }
            }
        }
        run(trimmed, &mut block.into_iter(), &mut out);
    }
    out
}
