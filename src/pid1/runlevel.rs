//! The `runlevel` event as Upstart's `telinit` and `shutdown` emitted it.

/// The environment of a `runlevel` event switching to `level`: `RUNLEVEL`,
/// `PREVLEVEL` (from `$RUNLEVEL` when set, else the utmp record, else
/// `N`), then `extra`. The change is recorded in utmp and wtmp, as
/// `telinit` always did.
pub fn switch_env(level: char, extra: Vec<String>) -> Vec<String> {
    let prev = current_level();
    crate::utmp::record_runlevel(level, prev);
    let mut env = vec![format!("RUNLEVEL={level}"), format!("PREVLEVEL={prev}")];
    env.extend(extra);
    env
}

/// The runlevel now: `$RUNLEVEL`, else utmp, else `N`.
pub fn current_level() -> char {
    match std::env::var("RUNLEVEL") {
        Ok(r) => r.chars().next().unwrap_or('N'),
        Err(_) => crate::utmp::read_runlevel(&crate::utmp::utmp_path())
            .ok()
            .flatten()
            .map(|(_, cur)| cur)
            .unwrap_or('N'),
    }
}
