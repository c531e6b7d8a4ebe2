//! runlevel: print the previous and current runlevel.

use std::process::ExitCode;

fn main() -> ExitCode {
    let file = std::env::args()
        .nth(1)
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
        println!("unknown");
        return ExitCode::from(1);
    }
    println!("{prev} {cur}");
    ExitCode::SUCCESS
}
