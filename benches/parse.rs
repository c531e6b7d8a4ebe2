//! Parse throughput over the real-world job-file corpus.
//!
//! `cargo bench --bench parse` times `parse_job` over every `.conf` file and,
//! in the same run and over the same bytes, a baseline pass that only splits
//! each file into lines and whitespace-separated words. The ratio of the two
//! is what to compare between machines and commits; the absolute numbers
//! depend on the machine. Nothing here asserts anything about time.
//!
//! The corpus is `$OUTSET_CORPUS/jobs` or `$OUTSET_CORPUS` itself (whichever
//! holds the `.conf` files), else `../shared/corpus/jobs` beside the crate.
//! `OUTSET_BENCH_SECS` sets the time spent on each measurement (default 1.5).
//!
//! Run without `--bench` (as `cargo test --all-targets` does), it makes one
//! pass of each as a smoke test and prints no timings.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use outset::config::{parse_job, ClassDefaults};

struct JobFile {
    name: String,
    path: String,
    text: String,
}

fn corpus_dir() -> PathBuf {
    match std::env::var_os("OUTSET_CORPUS") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            let jobs = dir.join("jobs");
            if jobs.is_dir() {
                jobs
            } else {
                dir
            }
        }
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/jobs"),
    }
}

fn load(dir: &Path) -> Result<Vec<JobFile>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "conf") && p.is_file())
        .collect();
    paths.sort();
    let mut files = Vec::with_capacity(paths.len());
    for p in paths {
        let bytes = std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let name = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        files.push(JobFile {
            name,
            path: p.display().to_string(),
            text: String::from_utf8_lossy(&bytes).into_owned(),
        });
    }
    Ok(files)
}

/// The least a parser has to do: look at every byte, find lines and words,
/// and keep them. Returns a count so the work cannot be skipped.
fn baseline_pass(files: &[JobFile]) -> usize {
    let mut n = 0;
    for f in files {
        let lines: Vec<Vec<&str>> = black_box(&f.text)
            .lines()
            .map(|line| line.split_whitespace().collect())
            .collect();
        n += black_box(lines).len();
    }
    n
}

/// `parse_job` over every file. Returns how many parsed, for the same reason.
fn parse_pass(files: &[JobFile], defaults: &ClassDefaults) -> usize {
    let mut ok = 0;
    for f in files {
        let r = parse_job(
            black_box(&f.name),
            black_box(&f.path),
            black_box(&f.text),
            defaults,
        );
        ok += usize::from(black_box(r).is_ok());
    }
    ok
}

struct Measurement {
    passes: u32,
    elapsed: Duration,
}

impl Measurement {
    fn per_pass(&self) -> f64 {
        self.elapsed.as_secs_f64() / f64::from(self.passes)
    }
}

/// Run `pass` repeatedly for about `target`: a warm-up pass, a calibration
/// from it, then one timed batch.
fn measure(target: Duration, mut pass: impl FnMut() -> usize) -> Measurement {
    let start = Instant::now();
    black_box(pass());
    let one = start.elapsed().max(Duration::from_micros(1));
    let passes = (target.as_secs_f64() / one.as_secs_f64()).clamp(1.0, 1e7) as u32;
    let start = Instant::now();
    for _ in 0..passes {
        black_box(pass());
    }
    Measurement {
        passes,
        elapsed: start.elapsed(),
    }
}

fn report(label: &str, m: &Measurement, files: usize, bytes: usize) {
    let t = m.per_pass();
    println!(
        "{label:<9} {:>7} passes in {:>6.3} s  {:>9.3} ms/pass  {:>10.0} files/s  {:>8.2} MB/s",
        m.passes,
        m.elapsed.as_secs_f64(),
        t * 1e3,
        files as f64 / t,
        bytes as f64 / t / 1e6,
    );
}

fn main() -> ExitCode {
    let bench_mode = std::env::args().any(|a| a == "--bench");
    let dir = corpus_dir();
    if !dir.is_dir() {
        eprintln!(
            "parse bench: job-file corpus not found at {}\n\
             set OUTSET_CORPUS to the corpus (a directory of .conf files, or one holding jobs/)",
            dir.display()
        );
        return ExitCode::FAILURE;
    }
    let files = match load(&dir) {
        Ok(files) => files,
        Err(e) => {
            eprintln!("parse bench: cannot read the corpus: {e}");
            return ExitCode::FAILURE;
        }
    };
    if files.is_empty() {
        eprintln!("parse bench: no .conf files in {}", dir.display());
        return ExitCode::FAILURE;
    }

    let bytes: usize = files.iter().map(|f| f.text.len()).sum();
    let defaults = ClassDefaults::default();
    let parsed = parse_pass(&files, &defaults);
    println!(
        "corpus: {} ({} .conf files, {} bytes; {} parse, {} are rejected)",
        dir.display(),
        files.len(),
        bytes,
        parsed,
        files.len() - parsed
    );
    if !bench_mode {
        baseline_pass(&files);
        println!("smoke run only (no timings); use `cargo bench --bench parse`");
        return ExitCode::SUCCESS;
    }

    let secs = std::env::var("OUTSET_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(1.5);
    let target = Duration::from_secs_f64(secs);

    let base = measure(target, || baseline_pass(&files));
    report("baseline", &base, files.len(), bytes);
    let parse = measure(target, || parse_pass(&files, &defaults));
    report("parse_job", &parse, files.len(), bytes);
    println!(
        "ratio parse/baseline: {:.2}x the time per pass",
        parse.per_pass() / base.per_pass()
    );
    ExitCode::SUCCESS
}
