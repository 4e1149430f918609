//! `formwork provision logs ID [--follow] [--all]`: the provision's log as `[level] text`
//! (or JSON lines `{level, text}`), the last 100 lines unless --all, polling for new lines with
//! --follow until the provision has no running operation.

use std::time::Duration;

use super::backend::Backend;
use super::output::Output;
use crate::client::LogLine;

const LAST: usize = 100;
const POLL: Duration = Duration::from_millis(500);

pub async fn run(backend: &impl Backend, id: i64, follow: bool, all: bool, out: &Output) -> anyhow::Result<()> {
    let (lines, mut pos) = backend.log_tail(id, if all { None } else { Some(LAST) }).await?;
    print(&lines, out)?;
    if !follow {
        return Ok(());
    }
    loop {
        let (lines, next, running) = backend.log_after(id, pos).await?;
        print(&lines, out)?;
        pos = next;
        if !running && lines.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}

fn print(lines: &[LogLine], out: &Output) -> anyhow::Result<()> {
    for line in lines {
        if out.json {
            out.text(&serde_json::to_string(line)?)?;
        } else {
            out.text(&format!("[{}] {}", line.level, line.text))?;
        }
    }
    Ok(())
}
