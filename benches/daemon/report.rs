//! The printed report: every figure with its baseline or target, the
//! ratio, and whether the target is met.

use super::session::{Binaries, Failure};
use super::stats::{median, ms, percentile};
use super::workload::{ControlFigures, EmitFigure, ReexecFigure, RunFigure, ScalingFigure};

/// Targets (issue "beat Upstart by 4x and stay within 15% of raw spawn
/// cost").
const EMIT_OVER_RAW: f64 = 1.15;
const LINEAR: f64 = 1.15;
const LIST_MS: f64 = 20.0;
const STATUS_STORM_P99_MS: f64 = 5.0;
const RSS_KIB: f64 = 4.5 * 1024.0;
/// VmRSS with ten thousand classes and more.
const RSS_MANY_KIB: f64 = 12.0 * 1024.0;
/// One `initctl` call against one exec of `/bin/true`.
const CALL_OVER_EXEC: f64 = 2.0;
const REEXEC_MS: f64 = 50.0;
/// `outset run -- true` on no jobs (issue "make outset run what users
/// need": a hand-written harness takes 35–60 ms).
const RUN_TRUE_MS: f64 = 100.0;
const BEAT_UPSTART: f64 = 4.0;

pub struct Report {
    bench: bool,
    /// (supervisor, figure key, value) for the comparison at the end.
    values: Vec<(String, String, f64)>,
    /// (supervisor, figure key, "crashed" or "failed"): figures lost.
    lost: Vec<(String, String, &'static str)>,
    /// Per-task cost of the smallest emit, per supervisor.
    first_emit: Vec<(String, f64)>,
    met: usize,
    missed: usize,
}

fn verdict(ratio: f64, limit: f64) -> &'static str {
    if ratio <= limit {
        "met"
    } else {
        "MISSED"
    }
}

impl Report {
    pub fn new(bench: bool) -> Report {
        Report {
            bench,
            values: Vec::new(),
            lost: Vec::new(),
            first_emit: Vec::new(),
            met: 0,
            missed: 0,
        }
    }

    pub fn header(&self) {
        if !self.bench {
            println!(
                "smoke run (tiny sizes; the figures mean nothing): cargo bench --bench daemon"
            );
        }
        println!(
            "{:<8} {:<46} {:>11} {:>26} {:>7}  target",
            "init", "figure", "value", "baseline / target", "ratio"
        );
    }

    /// VmRSS (held to the target `target_kib`) and its anonymous part,
    /// at `when`.
    fn rss_rows(
        &mut self,
        who: &str,
        when: &str,
        (rss_kib, anon_kib): (u64, u64),
        target_kib: f64,
    ) {
        let mb = |kib: u64| format!("{:.2} MB", kib as f64 / 1024.0);
        let target = format!("target {:.1} MB", target_kib / 1024.0);
        self.row(
            who,
            &format!("VmRSS, {when}"),
            mb(rss_kib),
            target.clone(),
            rss_kib as f64 / target_kib,
            Some(1.0),
        );
        self.row(
            who,
            "  of which anonymous (heap, stacks)",
            mb(anon_kib),
            target,
            anon_kib as f64 / target_kib,
            None,
        );
    }

    /// One row; `limit` is the ratio the target allows, if there is one.
    fn row(
        &mut self,
        who: &str,
        figure: &str,
        value: String,
        reference: String,
        ratio: f64,
        limit: Option<f64>,
    ) {
        let target = match limit {
            Some(l) => {
                let v = verdict(ratio, l);
                // Only outset is held to the targets.
                if who == "outset" {
                    if v == "met" {
                        self.met += 1;
                    } else {
                        self.missed += 1;
                    }
                }
                format!("≤ {l:.2}: {v}")
            }
            None => String::new(),
        };
        println!("{who:<8} {figure:<46} {value:>11} {reference:>26} {ratio:>7.2}  {target}");
    }

    fn keep(&mut self, who: &str, key: &str, value: f64) {
        self.values.push((who.to_string(), key.to_string(), value));
    }

    pub fn emit(&mut self, bins: &Binaries, f: &EmitFigure) {
        let who = bins.label.as_str();
        let ratio = ms(f.emit) / ms(f.raw);
        let limit = (f.tasks <= 1000).then_some(EMIT_OVER_RAW);
        self.row(
            who,
            &format!("initctl emit go, {} tasks (median)", f.tasks),
            format!("{:.1} ms", ms(f.emit)),
            format!("raw spawn+reap {:.1} ms", ms(f.raw)),
            ratio,
            limit,
        );
        let per_task = ms(f.emit) / f.tasks as f64;
        self.row(
            who,
            &format!("  per task, {} tasks", f.tasks),
            format!("{:.3} ms", per_task),
            format!("raw {:.3} ms", ms(f.raw) / f.tasks as f64),
            ratio,
            None,
        );
        match self.first_emit.iter().find(|(w, _)| w == who) {
            None => self.first_emit.push((who.to_string(), per_task)),
            Some(&(_, first)) => {
                let growth = per_task / first;
                self.row(
                    who,
                    &format!("  per-task growth to {} tasks (linear)", f.tasks),
                    format!("{:.3} ms", per_task),
                    format!("smallest N {:.3} ms", first),
                    growth,
                    Some(LINEAR),
                );
            }
        }
        self.keep(who, &format!("emit {}", f.tasks), ms(f.emit));
    }

    pub fn control(&mut self, bins: &Binaries, c: &ControlFigures) {
        let who = bins.label.as_str();
        let version = ms(median(&c.version));
        let list = ms(median(&c.list));
        self.row(
            who,
            &format!("initctl list, {} classes (median)", c.classes),
            format!("{list:.1} ms"),
            format!("target {LIST_MS:.0} ms"),
            list / LIST_MS,
            Some(1.0),
        );
        self.row(
            who,
            "  initctl version (one call; client baseline)",
            format!("{version:.2} ms"),
            String::new(),
            version / LIST_MS,
            None,
        );
        let idle_med = ms(median(&c.status_idle));
        let idle_p99 = ms(percentile(&c.status_idle, 99.0));
        self.row(
            who,
            "initctl status, idle (median)",
            format!("{idle_med:.2} ms"),
            format!("initctl version {version:.2} ms"),
            idle_med / version,
            None,
        );
        self.row(
            who,
            "initctl status, idle (p99)",
            format!("{idle_p99:.2} ms"),
            format!("target {STATUS_STORM_P99_MS:.0} ms"),
            idle_p99 / STATUS_STORM_P99_MS,
            None,
        );
        let call = ms(median(&c.one_call));
        let exec = ms(median(&c.true_exec));
        self.row(
            who,
            &format!("one initctl status call (median of {})", c.one_call.len()),
            format!("{call:.2} ms"),
            format!("exec /bin/true {exec:.2} ms"),
            call / exec,
            Some(CALL_OVER_EXEC),
        );
        self.rss_rows(
            who,
            &format!("{} classes, idle", c.classes),
            (c.rss_idle_kib, c.anon_idle_kib),
            RSS_KIB,
        );
        self.keep(who, "list", list);
        self.keep(who, "status idle", idle_med);
        self.keep(who, "rss idle", c.rss_idle_kib as f64);
        let storm = match &c.storm {
            Ok(s) => s,
            Err(f) => {
                self.failed(
                    bins,
                    &format!("initctl status, storm of {} tasks", c.classes),
                    Some("status storm p99"),
                    f,
                );
                return;
            }
        };
        let storm_med = ms(median(&storm.status));
        let storm_p99 = ms(percentile(&storm.status, 99.0));
        self.row(
            who,
            &format!("initctl status, storm (median; {} emits)", storm.emits),
            format!("{storm_med:.2} ms"),
            format!("idle {idle_med:.2} ms"),
            storm_med / idle_med,
            None,
        );
        self.row(
            who,
            "initctl status, storm (p99)",
            format!("{storm_p99:.2} ms"),
            format!("target {STATUS_STORM_P99_MS:.0} ms"),
            storm_p99 / STATUS_STORM_P99_MS,
            Some(1.0),
        );
        self.rss_rows(
            who,
            &format!("{} classes, after the storm", c.classes),
            (storm.rss_after_kib, storm.anon_after_kib),
            RSS_KIB,
        );
        self.keep(who, "status storm p99", storm_p99);
    }

    pub fn scaling(&mut self, bins: &Binaries, s: &ScalingFigure) {
        let who = bins.label.as_str();
        let few = ms(s.few.1) / s.tasks as f64;
        let many = ms(s.many.1) / s.tasks as f64;
        self.row(
            who,
            &format!(
                "emit per task, {} tasks + {} idle classes",
                s.tasks, s.many.0
            ),
            format!("{many:.3} ms"),
            format!("+ {} idle: {few:.3} ms", s.few.0),
            many / few,
            Some(LINEAR),
        );
        self.keep(who, &format!("emit {} + {} idle", s.tasks, s.many.0), many);
        self.rss_rows(
            who,
            &format!("{} classes, idle", s.tasks + s.many.0),
            (s.rss_many_kib, s.anon_many_kib),
            RSS_MANY_KIB,
        );
    }

    pub fn reexec(&mut self, bins: &Binaries, r: &ReexecFigure) {
        let who = bins.label.as_str();
        let pause = ms(r.pause);
        self.row(
            who,
            &format!(
                "re-exec pause, {} instances ({} survived)",
                r.instances, r.survivors
            ),
            format!("{pause:.1} ms"),
            format!("target {REEXEC_MS:.0} ms"),
            pause / REEXEC_MS,
            Some(1.0),
        );
        if r.survivors != r.instances {
            println!(
                "{who:<8} WARNING: {} of {} instances running after the re-exec",
                r.survivors, r.instances
            );
        }
        self.keep(who, "re-exec", pause);
    }

    pub fn run_true(&mut self, bins: &Binaries, r: &RunFigure) {
        let who = bins.label.as_str();
        let run = ms(r.run);
        self.row(
            who,
            &format!("outset run -- true, no jobs (median of {})", r.rounds),
            format!("{run:.1} ms"),
            format!("sh -c true {:.1} ms", ms(r.shell)),
            run / ms(r.shell),
            None,
        );
        self.row(
            who,
            "  against its target",
            format!("{run:.1} ms"),
            format!("target {RUN_TRUE_MS:.0} ms"),
            run / RUN_TRUE_MS,
            Some(1.0),
        );
        self.keep(who, "run", run);
    }

    /// A figure the workload could not produce; `key` names it in the
    /// comparison at the end. A crash is printed as the figure's value.
    pub fn failed(&mut self, bins: &Binaries, what: &str, key: Option<&str>, f: &Failure) {
        let who = bins.label.as_str();
        let (value, detail) = match f {
            Failure::Crashed(e) => ("crashed", e),
            Failure::Failed(e) => ("FAILED", e),
        };
        println!("{who:<8} {what:<46} {value:>11}  {detail}");
        if let Some(key) = key {
            let lost = if value == "crashed" {
                "crashed"
            } else {
                "failed"
            };
            self.lost.push((who.to_string(), key.to_string(), lost));
        }
        if who == "outset" {
            self.missed += 1;
        }
    }

    /// Outset against Upstart where both ran, then the tally.
    pub fn summary(&self) {
        let theirs = |key: &str| {
            self.values
                .iter()
                .find(|(w, k, _)| w == "upstart" && k == key)
                .map(|v| v.2)
        };
        for (who, key, ours) in &self.values {
            if who != "outset" {
                continue;
            }
            if let Some(up) = theirs(key) {
                let factor = up / ours;
                let target = if key.starts_with("emit") {
                    format!("≥ {BEAT_UPSTART:.0}: {}", verdict(BEAT_UPSTART, factor))
                } else {
                    String::new()
                };
                println!("upstart/outset {key:<32} {factor:>7.2}x  {target}");
            } else if let Some((_, _, lost)) = self
                .lost
                .iter()
                .find(|(w, k, _)| w == "upstart" && k == key)
            {
                println!("upstart/outset {key:<32} {:>8}  upstart {lost}", "-");
            }
        }
        println!(
            "targets met: {}, missed: {} (outset)",
            self.met, self.missed
        );
    }
}
