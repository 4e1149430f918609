//! `formwork provision logs ID [--follow] [--all]`: the provision's log as `[level] text`
//! (or JSON lines `{level, text}`), the last 100 lines unless --all, polling for new lines with
//! --follow until the provision has no running operation.

use std::time::Duration;

use super::output::Output;
use crate::exec::log;
use crate::provision::Runtime;

const LAST: usize = 100;
const POLL: Duration = Duration::from_millis(500);

pub async fn run(rt: &Runtime, id: i64, follow: bool, all: bool, out: &Output) -> anyhow::Result<()> {
    rt.store.provision(id)?;
    let path = rt.settings.log_path(id);
    if !path.exists() {
        anyhow::bail!("provision {id} has no log yet ({})", path.display());
    }
    let (lines, mut pos) = if all { log::read(&path, 0)? } else { log::tail(&path, LAST)? };
    print(&lines, out)?;
    if !follow {
        return Ok(());
    }
    loop {
        let running = rt.store.running_operation(id)?.is_some();
        let (lines, next) = log::read(&path, pos)?;
        print(&lines, out)?;
        pos = next;
        if !running && lines.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(POLL).await;
    }
}

fn print(lines: &[log::LogLine], out: &Output) -> anyhow::Result<()> {
    for line in lines {
        if out.json {
            out.text(&serde_json::to_string(line)?)?;
        } else {
            out.text(&format!("[{}] {}", line.level.as_str(), line.text))?;
        }
    }
    Ok(())
}
