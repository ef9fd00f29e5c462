//! Which commands of which client kept redis busy: its `SLOWLOG`, read back
//! and attributed by client name (`CLIENT SETNAME`; the agent's connections
//! are named `metal-switchd`).
//!
//! redis logs every command that ran longer than `slowlog-log-slower-than`
//! microseconds, with the client's name. Two things it does not show on
//! their own: `EXEC` is never logged (the commands it ran are, one by one,
//! back to back, since nothing else runs during a transaction), and a
//! threshold hides what ran under it. [`Watch::arm`] therefore logs
//! everything (threshold 0) and [`Summary`] gives both the slowest single
//! command of a client and its longest transaction (the sum of the commands
//! one `EXEC` ran: the time redis served nobody else). On a machine shared
//! with other work redis is stalled now and then in the middle of any
//! command; [`Watch::verdict`] tells such stalls from commands that are slow
//! because of what they ask for.

use anyhow::{Context, Result, bail};
use redis::Value;

use crate::redis_server::RedisServer;

/// One `SLOWLOG` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: u64,
    /// How long the command ran, in microseconds.
    pub micros: u64,
    /// The command and its arguments (redis cuts them to 32, each to 128
    /// bytes).
    pub args: Vec<String>,
    /// `CLIENT SETNAME`, empty when the client set none.
    pub client_name: String,
}

impl std::fmt::Display for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut cmd = self.args.join(" ");
        if cmd.len() > 160 {
            let mut cut = 160;
            while !cmd.is_char_boundary(cut) {
                cut -= 1;
            }
            cmd.truncate(cut);
            cmd.push('…');
        }
        write!(
            f,
            "{} µs: {cmd} (client {:?})",
            self.micros, self.client_name
        )
    }
}

/// The slowest work of one client.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Commands of the client in the log.
    pub commands: usize,
    /// Its slowest command.
    pub slowest: Option<Entry>,
    /// Its longest transaction: total microseconds and commands.
    pub longest_transaction: (u64, usize),
    /// Its commands that ran `threshold` µs or longer, and its transactions
    /// that did (total µs, its slowest command's µs, its first command).
    pub over: Vec<Entry>,
    pub transactions_over: Vec<(u64, u64, Entry)>,
}

impl Summary {
    /// The longest single command, in microseconds (0 when none).
    pub fn slowest_micros(&self) -> u64 {
        self.slowest.as_ref().map_or(0, |e| e.micros)
    }

    /// What took `threshold` or longer, one line each (empty when nothing).
    pub fn offenders(&self) -> String {
        let mut lines: Vec<String> = self.over.iter().map(ToString::to_string).collect();
        for (total, _, first) in &self.transactions_over {
            lines.push(format!("transaction of {total} µs, starting with {first}"));
        }
        lines.join("\n")
    }
}

/// A redis whose `SLOWLOG` records every command from now on.
pub struct Watch<'a> {
    server: &'a RedisServer,
}

impl<'a> Watch<'a> {
    /// Log every command (threshold 0), keep up to `max_len` of them, and
    /// forget what was logged before.
    pub fn arm(server: &'a RedisServer, max_len: u64) -> Result<Watch<'a>> {
        let mut c = server.connection(0)?;
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("slowlog-log-slower-than")
            .arg(0)
            .arg("slowlog-max-len")
            .arg(max_len)
            .query::<()>(&mut c)
            .context("CONFIG SET slowlog-*")?;
        redis::cmd("SLOWLOG")
            .arg("RESET")
            .query::<()>(&mut c)
            .context("SLOWLOG RESET")?;
        Ok(Watch { server })
    }

    /// Every entry so far, oldest first; fails when the log overflowed
    /// (entries were lost).
    pub fn entries(&self) -> Result<Vec<Entry>> {
        let mut c = self.server.connection(0)?;
        let len: u64 = redis::cmd("SLOWLOG").arg("LEN").query(&mut c)?;
        let max: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("slowlog-max-len")
            .query(&mut c)?;
        let max: u64 = max.get(1).and_then(|m| m.parse().ok()).unwrap_or(0);
        if len >= max {
            bail!("the SLOWLOG is full ({len} entries): raise slowlog-max-len");
        }
        let raw: Value = redis::cmd("SLOWLOG").arg("GET").arg(-1).query(&mut c)?;
        let mut out = parse(raw)?;
        out.sort_by_key(|e| e.id);
        Ok(out)
    }

    /// The slowest work of the client named `name`, with what took
    /// `threshold_us` or longer.
    pub fn summary(&self, name: &str, threshold_us: u64) -> Result<Summary> {
        Ok(summarise(&self.entries()?, name, threshold_us))
    }

    /// What of the client `name` took `threshold_us` or longer *because of
    /// what it asked for*. A machine shared with other work stalls redis
    /// now and then (memory reclaim, the hypervisor): any command can then
    /// show up once, however cheap. So an entry counts when it is slow
    /// again: a read-only command is replayed (five times, in every
    /// database that has keys) and counts when even its fastest replay is
    /// slow; a command that cannot be replayed (a write, a script, one whose
    /// arguments redis cut) counts when the client's commands of that name
    /// (for a script: that script) are slow in the median; a transaction counts when its commands
    /// without the slowest one took `threshold_us` together. Everything
    /// else is reported as a stall.
    pub fn verdict(&self, name: &str, threshold_us: u64) -> Result<Verdict> {
        let entries = self.entries()?;
        let summary = summarise(&entries, name, threshold_us);
        let mut v = Verdict::default();
        let mut c = self.server.connection(0)?;
        let info: String = redis::cmd("INFO").arg("keyspace").query(&mut c)?;
        let dbs: Vec<i64> = info
            .lines()
            .filter_map(|l| l.strip_prefix("db")?.split(':').next()?.parse().ok())
            .collect();
        for (n, e) in summary.over.iter().enumerate() {
            if replayable(e) {
                let tag = format!("slowlog-replay-{n}");
                let mut r = self.server.connection(0)?;
                redis::cmd("CLIENT")
                    .arg("SETNAME")
                    .arg(&tag)
                    .query::<()>(&mut r)?;
                let mut cmd = redis::cmd(&e.args[0]);
                for a in &e.args[1..] {
                    cmd.arg(a);
                }
                for db in &dbs {
                    redis::cmd("SELECT").arg(db).query::<()>(&mut r)?;
                    for _ in 0..5 {
                        let _: Value = cmd.query(&mut r)?;
                    }
                }
                // Per database the fastest of five, then the slowest database.
                let replays: Vec<u64> = self
                    .entries()?
                    .into_iter()
                    .filter(|x| x.client_name == tag && x.args.first() == e.args.first())
                    .map(|x| x.micros)
                    .collect();
                let worst = replays
                    .chunks(5)
                    .map(|c| c.iter().copied().min().unwrap_or(0))
                    .max()
                    .unwrap_or(0);
                let line = format!("{e}; replayed: {worst} µs");
                if worst >= threshold_us {
                    v.offenders.push(line);
                } else {
                    v.stalls.push(line);
                }
            } else {
                let mut same: Vec<u64> = entries
                    .iter()
                    .filter(|x| x.client_name == name && kind(x) == kind(e))
                    .map(|x| x.micros)
                    .collect();
                same.sort_unstable();
                let median = same.get(same.len() / 2).copied().unwrap_or(0);
                let line = format!("{e}; median of {} such: {median} µs", same.len());
                if median >= threshold_us {
                    v.offenders.push(line);
                } else {
                    v.stalls.push(line);
                }
            }
        }
        for (total, longest, first) in &summary.transactions_over {
            let line = format!(
                "transaction of {total} µs (its slowest command {longest} µs), starting with {first}"
            );
            if total - longest >= threshold_us {
                v.offenders.push(line);
            } else {
                v.stalls.push(line);
            }
        }
        v.summary = summary;
        Ok(v)
    }

    /// Forget what was logged so far.
    pub fn reset(&self) -> Result<()> {
        let mut c = self.server.connection(0)?;
        redis::cmd("SLOWLOG").arg("RESET").query::<()>(&mut c)?;
        Ok(())
    }
}

/// What [`Watch::verdict`] found.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    pub summary: Summary,
    /// Entries that are slow because of what they ask for.
    pub offenders: Vec<String>,
    /// Entries that were slow once (the machine stalled redis).
    pub stalls: Vec<String>,
}

/// What makes commands alike for [`Watch::verdict`]: the command, and for
/// scripts the script.
fn kind(e: &Entry) -> (String, String) {
    let cmd = e
        .args
        .first()
        .map(|a| a.to_ascii_uppercase())
        .unwrap_or_default();
    let script = [
        "EVAL",
        "EVALSHA",
        "EVAL_RO",
        "EVALSHA_RO",
        "FCALL",
        "FCALL_RO",
    ];
    let arg = if script.contains(&cmd.as_str()) {
        e.args.get(1).cloned().unwrap_or_default()
    } else {
        String::new()
    };
    (cmd, arg)
}

/// Commands that only read and can be sent again as logged.
fn replayable(e: &Entry) -> bool {
    const READS: &[&str] = &[
        "SCAN", "HSCAN", "SSCAN", "ZSCAN", "KEYS", "HGETALL", "HMGET", "HGET", "GET", "EXISTS",
        "TYPE", "HLEN", "HKEYS", "HVALS", "SMEMBERS", "DBSIZE",
    ];
    let cut = e
        .args
        .iter()
        .any(|a| a.ends_with("more arguments)") || a.ends_with("more bytes)"));
    !cut && e
        .args
        .first()
        .is_some_and(|c| READS.iter().any(|r| c.eq_ignore_ascii_case(r)))
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

fn int(v: &Value) -> u64 {
    match v {
        Value::Int(i) => u64::try_from(*i).unwrap_or(0),
        v => text(v).parse().unwrap_or(0),
    }
}

/// `SLOWLOG GET` replies: `[id, time, micros, [args], addr, name]`.
fn parse(raw: Value) -> Result<Vec<Entry>> {
    let Value::Array(items) = raw else {
        bail!("SLOWLOG GET: not an array: {raw:?}");
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(f) = item else {
            bail!("SLOWLOG GET: an entry is not an array");
        };
        let [id, _time, micros, args, _addr, name] = f.as_slice() else {
            bail!("SLOWLOG GET: an entry has {} parts, not 6", f.len());
        };
        let args = match args {
            Value::Array(a) => a.iter().map(text).collect(),
            _ => Vec::new(),
        };
        out.push(Entry {
            id: int(id),
            micros: int(micros),
            args,
            client_name: text(name),
        });
    }
    Ok(out)
}

/// [`Summary`] of the client `name` in `entries` (oldest first). A
/// transaction is the run of the client's entries with consecutive ids that
/// follows its `MULTI` (`EXEC` runs them back to back and is itself never
/// logged): a first command, then writes. Several connections may carry
/// the same name; a read right after a transaction ends it.
pub fn summarise(entries: &[Entry], name: &str, threshold_us: u64) -> Summary {
    let mut s = Summary::default();
    let mut in_multi = false;
    // (last id, total, n, slowest, first)
    type Tx = Option<(u64, u64, usize, u64, Entry)>;
    let mut tx: Tx = None;
    let close = |tx: &mut Tx, s: &mut Summary| {
        if let Some((_, total, n, slowest, first)) = tx.take() {
            if total > s.longest_transaction.0 {
                s.longest_transaction = (total, n);
            }
            if total >= threshold_us {
                s.transactions_over.push((total, slowest, first));
            }
        }
    };
    for e in entries {
        if let Some((last, ..)) = &tx
            && (e.id != last + 1 || e.client_name != name)
        {
            close(&mut tx, &mut s);
        }
        if e.client_name != name {
            continue;
        }
        s.commands += 1;
        if s.slowest.as_ref().is_none_or(|x| e.micros > x.micros) {
            s.slowest = Some(e.clone());
        }
        if e.micros >= threshold_us {
            s.over.push(e.clone());
        }
        let multi = e
            .args
            .first()
            .is_some_and(|c| c.eq_ignore_ascii_case("MULTI"));
        if multi {
            close(&mut tx, &mut s);
            in_multi = true;
            continue;
        }
        // A transaction holds the agent's writes (after a SELECT); a read
        // right after it comes from another of its connections.
        let write = e.args.first().is_some_and(|c| {
            ["HSET", "HDEL", "DEL", "HMSET", "SET"]
                .iter()
                .any(|w| c.eq_ignore_ascii_case(w))
        });
        if tx.is_some() && !write {
            close(&mut tx, &mut s);
        }
        match &mut tx {
            Some((last, total, n, slowest, _)) => {
                *last = e.id;
                *total += e.micros;
                *n += 1;
                *slowest = (*slowest).max(e.micros);
            }
            None if in_multi => {
                tx = Some((e.id, e.micros, 1, e.micros, e.clone()));
                in_multi = false;
            }
            None => {}
        }
    }
    close(&mut tx, &mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(id: u64, micros: u64, cmd: &str, name: &str) -> Entry {
        Entry {
            id,
            micros,
            args: cmd.split(' ').map(String::from).collect(),
            client_name: name.into(),
        }
    }

    #[test]
    fn transactions_are_the_runs_after_multi() {
        let log = [
            e(1, 5, "MULTI", "agent"),
            e(2, 3, "HGETALL x", "other"),
            e(3, 400, "SELECT 4", "agent"),
            e(4, 500, "HSET a b c", "agent"),
            e(5, 200, "HSET b c d", "agent"),
            e(6, 7, "HGETALL y", "other"),
            e(7, 900, "SCAN 0", "agent"),
            e(8, 2, "MULTI", "agent"),
            e(9, 10, "DEL a", "agent"),
            e(10, 600, "HGETALL c", "agent"),
        ];
        let s = summarise(&log, "agent", 1000);
        assert_eq!(s.commands, 8);
        assert_eq!(s.slowest_micros(), 900);
        assert_eq!(s.longest_transaction, (1100, 3));
        assert!(s.over.is_empty());
        assert_eq!(s.transactions_over.len(), 1);
        assert_eq!(s.transactions_over[0].1, 500);
        assert_eq!(s.transactions_over[0].2.id, 3);
        let s = summarise(&log, "agent", 800);
        assert_eq!(s.over.len(), 1, "{}", s.offenders());
    }
}
