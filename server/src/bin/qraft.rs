//! The qraft server binary (being built: see issue 6).

fn main() -> anyhow::Result<()> {
    anyhow::bail!("the qraft server is not built yet")
}
