//! Stanza handlers: each reads its arguments and updates the class
//! (job-config.md §7). The dispatcher in [`parse_into`] checks the rest of
//! the line afterwards, except for `manual` and `debug`.

use super::cgroup::{add_cgroup, UPSTART_CGROUP};
use super::class::{
    Console, ContainerExit, Expect, JobClass, Process, ProcessType, RLimit, Resource,
};
use super::error::{ParseError, ParseErrorKind as K};
use super::expr::{parse_expression, EventExpr};
use super::lexer::Lexer;
use super::number::{decimal_in, octal, rlimit_value};
use super::signal::signal_from_name;

const INT_MAX: i64 = i32::MAX as i64;

/// Parse `text` stanza by stanza into `class`, as if appended to whatever
/// the class already holds (this is how `.override` files apply).
pub fn parse_into(class: &mut JobClass, text: &str) -> Result<(), ParseError> {
    let mut lx = Lexer::new(text);
    while lx.next_stanza()? {
        let line = lx.line();
        let name = lx.word()?;
        if stanza(class, &mut lx, &name, line)? {
            lx.end_of_stanza()?;
        }
    }
    Ok(())
}

/// Parse a file that may hold no stanza at all (`/etc/init.conf`): blank
/// lines and comments are fine, anything else is `Unknown stanza`.
pub fn parse_empty_table(text: &str) -> Result<(), ParseError> {
    let mut lx = Lexer::new(text);
    if lx.next_stanza()? {
        lx.word()?;
        return Err(lx.error(K::UnknownStanza));
    }
    Ok(())
}

/// Handle one stanza; returns whether the rest of the line must be empty.
fn stanza(c: &mut JobClass, lx: &mut Lexer, name: &str, line: usize) -> Result<bool, ParseError> {
    match name {
        "exec" => return set_process(c, lx, ProcessType::Main, false, line),
        "script" => return set_process(c, lx, ProcessType::Main, true, line),
        "pre-start" | "post-start" | "pre-stop" | "post-stop" => {
            let kind = ProcessType::from_stanza(name).ok_or_else(|| lx.error(K::UnknownStanza))?;
            return match lx.arg()?.as_str() {
                "exec" => set_process(c, lx, kind, false, line),
                "script" => set_process(c, lx, kind, true, line),
                _ => Err(lx.error(K::UnknownStanza)),
            };
        }
        "start" => {
            keyword(lx, "on")?;
            c.start_on = Some(expression(lx)?);
        }
        "stop" => {
            keyword(lx, "on")?;
            c.stop_on = Some(expression(lx)?);
        }
        "manual" => {
            c.start_on = None;
            return Ok(false);
        }
        "debug" => {
            c.debug = true;
            return Ok(false);
        }
        "emits" => c.rare.emits.extend(one_or_more(lx)?),
        "env" => c.env.push(lx.arg()?),
        "export" => c.rare.export.extend(one_or_more(lx)?),
        "instance" => c.instance = lx.arg()?,
        "description" => c.rare.description = Some(lx.arg()?),
        "author" => c.rare.author = Some(lx.arg()?),
        "version" => c.rare.version = Some(lx.arg()?),
        "usage" => c.rare.usage = Some(lx.arg()?),
        "task" => c.task = true,
        "exit-container-on-failure" => {
            c.rare.exit_container_on_failure = Some(if lx.has_token()? {
                let v = lx.arg()?;
                ContainerExit::Code(
                    decimal_in(&v, 0, 255).ok_or_else(|| lx.error(K::IllegalExit))? as u8,
                )
            } else {
                ContainerExit::JobStatus
            });
        }
        "respawn" => {
            if !lx.has_token()? {
                c.respawn = true;
            } else {
                keyword(lx, "limit")?;
                respawn_limit(c, lx)?;
            }
        }
        "normal" => {
            keyword(lx, "exit")?;
            for v in one_or_more(lx)? {
                let status = match signal_from_name(&v) {
                    Some(sig) => sig << 8,
                    None => {
                        decimal_in(&v, 0, INT_MAX).ok_or_else(|| lx.error(K::IllegalExit))? as i32
                    }
                };
                c.normal_exit.push(status);
            }
        }
        "expect" => {
            let word = lx.arg()?;
            c.expect = Expect::from_keyword(&word).ok_or_else(|| lx.error(K::UnknownStanza))?;
        }
        "notify" => {
            keyword(lx, "timeout")?;
            let v = lx.arg()?;
            let secs = decimal_in(&v, 0, i64::MAX).ok_or_else(|| lx.error(K::IllegalInterval))?;
            c.rare.notify_timeout = u64::try_from(secs).ok().filter(|s| *s > 0);
        }
        "kill" => match lx.arg()?.as_str() {
            "timeout" => {
                let v = lx.arg()?;
                c.kill_timeout =
                    decimal_in(&v, 0, i64::MAX).ok_or_else(|| lx.error(K::IllegalInterval))?;
            }
            "signal" => c.kill_signal = signal(lx)?,
            _ => return Err(lx.error(K::UnknownStanza)),
        },
        "reload" => {
            keyword(lx, "signal")?;
            c.reload_signal = signal(lx)?;
        }
        "console" => {
            let word = lx.arg()?;
            c.console = Console::from_keyword(&word).ok_or_else(|| lx.error(K::UnknownStanza))?;
        }
        "umask" => {
            let v = lx.arg()?;
            c.umask = octal(&v)
                .filter(|m| *m <= 0o777)
                .ok_or_else(|| lx.error(K::IllegalUmask))?;
        }
        "nice" => {
            let v = lx.arg()?;
            c.rare.nice =
                Some(decimal_in(&v, -20, 19).ok_or_else(|| lx.error(K::IllegalNice))? as i32);
        }
        "oom" => c.rare.oom_score_adj = oom(lx)?,
        "limit" => {
            let res = lx.arg()?;
            let res = Resource::from_keyword(&res).ok_or_else(|| lx.error(K::UnknownStanza))?;
            let soft = lx.arg()?;
            let soft = rlimit_value(&soft).ok_or_else(|| lx.error(K::IllegalLimit))?;
            let hard = lx.arg()?;
            let hard = rlimit_value(&hard).ok_or_else(|| lx.error(K::IllegalLimit))?;
            c.rare.limits.insert(res, RLimit { soft, hard });
        }
        "chroot" => c.rare.chroot = Some(lx.arg()?),
        "chdir" => c.rare.chdir = Some(lx.arg()?),
        "setuid" => c.rare.setuid = Some(lx.arg()?),
        "setgid" => c.rare.setgid = Some(lx.arg()?),
        "apparmor" => match lx.arg()?.as_str() {
            "load" => {
                let profile = lx.arg()?;
                c.processes.insert(
                    ProcessType::Security,
                    Process {
                        script: false,
                        command: format!("/sbin/apparmor_parser -r -W {profile}"),
                        line,
                    },
                );
            }
            "switch" => c.rare.apparmor_switch = Some(lx.arg()?),
            _ => return Err(lx.error(K::UnknownStanza)),
        },
        "cgroup" => cgroup(c, lx)?,
        _ => return Err(lx.error(K::UnknownStanza)),
    }
    Ok(true)
}

/// The next word must be `want`: missing is `Expected token`, anything else
/// `Unknown stanza`.
fn keyword(lx: &mut Lexer, want: &str) -> Result<(), ParseError> {
    if lx.arg()? == want {
        Ok(())
    } else {
        Err(lx.error(K::UnknownStanza))
    }
}

fn one_or_more(lx: &mut Lexer) -> Result<Vec<String>, ParseError> {
    let mut out = vec![lx.arg()?];
    while lx.has_token()? {
        out.push(lx.arg()?);
    }
    Ok(out)
}

fn set_process(
    c: &mut JobClass,
    lx: &mut Lexer,
    kind: ProcessType,
    script: bool,
    line: usize,
) -> Result<bool, ParseError> {
    let command = if script {
        lx.script_block()?
    } else {
        lx.command()?
    };
    c.processes.insert(
        kind,
        Process {
            script,
            command,
            line,
        },
    );
    // A script block has already consumed its `end script` line.
    Ok(!script)
}

fn expression(lx: &mut Lexer) -> Result<EventExpr, ParseError> {
    let (tokens, end_line) = lx.expression_tokens()?;
    parse_expression(&tokens, end_line)
}

fn respawn_limit(c: &mut JobClass, lx: &mut Lexer) -> Result<(), ParseError> {
    let count = lx.arg()?;
    if count == "unlimited" {
        c.respawn_limit = 0;
        c.respawn_interval = 0;
        return Ok(());
    }
    let count = decimal_in(&count, 0, INT_MAX).ok_or_else(|| lx.error(K::IllegalLimit))?;
    let interval = lx.arg()?;
    let interval =
        decimal_in(&interval, 0, i64::MAX).ok_or_else(|| lx.error(K::IllegalInterval))?;
    c.respawn_limit = count as i32;
    c.respawn_interval = interval;
    Ok(())
}

fn signal(lx: &mut Lexer) -> Result<i32, ParseError> {
    let v = lx.arg()?;
    signal_from_name(&v)
        .or_else(|| decimal_in(&v, 0, INT_MAX).map(|n| n as i32))
        .ok_or_else(|| lx.error(K::IllegalSignal))
}

/// `oom score N|never` or the legacy `oom N|never`, as an oom_score_adj.
fn oom(lx: &mut Lexer) -> Result<i32, ParseError> {
    let first = lx.arg()?;
    if first == "score" {
        let v = lx.arg()?;
        if v == "never" {
            return Ok(-1000);
        }
        return decimal_in(&v, -1000, 1000)
            .map(|n| n as i32)
            .ok_or_else(|| lx.error(K::IllegalOomScore));
    }
    if first == "never" {
        return Ok(-1000);
    }
    let adj = decimal_in(&first, -17, 15).ok_or_else(|| lx.error(K::IllegalOomAdj))? as i32;
    Ok(if adj < 0 {
        adj * 1000 / 17
    } else {
        adj * 1000 / 15
    })
}

/// `cgroup CONTROLLER [NAME] [KEY VALUE]`: arity decides the meaning.
fn cgroup(c: &mut JobClass, lx: &mut Lexer) -> Result<(), ParseError> {
    let mut args = vec![lx.arg()?];
    while args.len() < 4 && lx.has_token()? {
        args.push(lx.arg()?);
    }
    let (controller, name, setting) = match args.as_slice() {
        [ctl] => (ctl, UPSTART_CGROUP, None),
        [ctl, name] => (ctl, name.as_str(), None),
        [ctl, key, value] => (ctl, UPSTART_CGROUP, Some((key.clone(), value.clone()))),
        [ctl, name, key, value] => (ctl, name.as_str(), Some((key.clone(), value.clone()))),
        _ => return Err(lx.error(K::UnexpectedToken)),
    };
    // `"$UPSTART_CGROUP"` written out is the same as the implicit name.
    add_cgroup(&mut c.rare.cgroups, controller, name, setting);
    Ok(())
}
