//! runlevel: print the previous and current runlevel.

use std::process::ExitCode;

use outset::cli::{help, options};

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().collect();
    let parsed = match options::parse(&argv, &[], false) {
        Ok(p) => p,
        Err(options::Stop::Help) => {
            let page = help::Page {
                usage: Some("[UTMP]"),
                synopsis: Some("Output previous and current runlevel."),
                help: Some(
                    "The system /var/run/utmp file is used unless the alternate file UTMP is \
                     given.\n",
                ),
                ..Default::default()
            };
            print!("{}", help::page("runlevel", &page, &[]));
            return ExitCode::SUCCESS;
        }
        Err(options::Stop::Version) => {
            print!("{}", help::version("runlevel"));
            return ExitCode::SUCCESS;
        }
        Err(options::Stop::Error(msg)) => {
            eprintln!("runlevel: {msg}");
            eprintln!("Try `runlevel --help' for more information.");
            return ExitCode::from(1);
        }
    };
    // -q leaves only errors, as with Upstart.
    let quiet = parsed
        .given
        .iter()
        .rev()
        .find_map(|(l, _)| match *l {
            "quiet" => Some(true),
            "verbose" | "debug" => Some(false),
            _ => None,
        })
        .unwrap_or(false);
    let say = |line: &str| {
        if !quiet {
            println!("{line}");
        }
    };
    let file = parsed
        .args
        .first()
        .cloned()
        .unwrap_or_else(outset::utmp::utmp_path);
    let (prev, cur) = match std::env::var("RUNLEVEL") {
        Ok(cur) => {
            let prev = std::env::var("PREVLEVEL")
                .ok()
                .and_then(|p| p.chars().next())
                .unwrap_or('N');
            (prev, cur.chars().next().unwrap_or('N'))
        }
        Err(_) => match outset::utmp::read_runlevel(&file) {
            Ok(Some(levels)) => levels,
            Ok(None) => ('N', 'N'),
            Err(e) => {
                eprintln!("runlevel: {e}");
                return ExitCode::from(1);
            }
        },
    };
    if cur == 'N' {
        say("unknown");
        return ExitCode::from(1);
    }
    say(&format!("{prev} {cur}"));
    ExitCode::SUCCESS
}
