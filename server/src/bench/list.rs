//! The paged-list workload: one walker reads the whole key space in pages of `--page-size`
//! keys, every page at the first page's revision — what a Kubernetes list (or an operator's
//! `get --from-key --limit`) does against a large store. Each page is one recorded request;
//! the summary's `items` counts the keys listed, so a script can check the list was complete.

use std::time::Instant;

use super::budget::Budget;
use super::stats::Recorder;
use super::target::Conn;

/// Walks the key space until the last page, an error, or the end of the budget (one unit per
/// page). Returns the page latencies and the number of keys listed.
pub async fn run_list(conn: &dyn Conn, budget: &Budget, page_size: i64) -> (Recorder, u64) {
    let mut recorder = Recorder::new();
    let mut listed = 0;
    // "\0" is the smallest key: with the "\0" range end, every key.
    let mut from = vec![0];
    let mut revision = 0;
    while budget.claim().is_some() {
        let sent = Instant::now();
        let page = conn.range_page(from.clone(), page_size, revision).await;
        budget.finished();
        match page {
            Ok(page) => {
                recorder.success(sent.elapsed());
                listed += page.keys;
                if revision == 0 {
                    revision = page.revision;
                }
                let Some(mut last) = page.more_after else {
                    break;
                };
                // The next page starts just after the last key listed.
                last.push(0);
                from = last;
            }
            Err(err) => {
                // A list that failed half-way is not retried: the count shows it.
                recorder.error(err.0);
                break;
            }
        }
    }
    (recorder, listed)
}
