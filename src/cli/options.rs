//! Option parsing with the rules of Upstart's tools: options may come
//! anywhere among the arguments (`--` ends them), short options group
//! (`-gr`), an option's value is the rest of its group (`-iEV`), the text
//! after `=` (`--dest=NAME`) or the next argument that is not an option,
//! and long options must be spelt out in full.

/// One option a command accepts.
#[derive(Debug, Clone, Copy)]
pub struct Opt {
    pub short: Option<char>,
    pub long: &'static str,
    /// The value's name in help texts; `None` for a flag.
    pub arg: Option<&'static str>,
    /// `None` keeps the option out of the help text.
    pub help: Option<&'static str>,
}

/// The options every command has, after its own.
pub const DEFAULT_OPTIONS: &[Opt] = &[
    Opt {
        short: Some('q'),
        long: "quiet",
        arg: None,
        help: Some("reduce output to errors only"),
    },
    Opt {
        short: Some('v'),
        long: "verbose",
        arg: None,
        help: Some("increase output to include informational messages"),
    },
    Opt {
        short: None,
        long: "debug",
        arg: None,
        help: None,
    },
    Opt {
        short: None,
        long: "help",
        arg: None,
        help: Some("display this help and exit"),
    },
    Opt {
        short: None,
        long: "version",
        arg: None,
        help: Some("output version information and exit"),
    },
];

/// Why parsing stopped early.
#[derive(Debug, PartialEq, Eq)]
pub enum Stop {
    /// `--help` was given: show the help and exit 0.
    Help,
    /// `--version` was given.
    Version,
    /// A usage error, worded like `invalid option: -Z` (without the
    /// program name).
    Error(String),
}

/// What was given: options by long name in order (with their values), and
/// the other arguments.
#[derive(Debug, Default)]
pub struct Parsed {
    pub given: Vec<(&'static str, Option<String>)>,
    pub args: Vec<String>,
}

impl Parsed {
    pub fn has(&self, long: &str) -> bool {
        self.given.iter().any(|(l, _)| *l == long)
    }

    /// The last value given for `long`.
    pub fn value(&self, long: &str) -> Option<&str> {
        self.given
            .iter()
            .rev()
            .find(|(l, _)| *l == long)
            .and_then(|(_, v)| v.as_deref())
    }
}

struct Ctx<'a> {
    argv: &'a [String],
    opts: Vec<Opt>,
    arg: usize,
    /// The last argument taken as an option's value.
    nonopt: usize,
    /// The `--` (or, with `break_nonopt`, the first argument) after
    /// which nothing is an option; 0 while there is none.
    optend: usize,
    out: Parsed,
}

/// Parse `argv` (its first element, the program or command name, is
/// skipped) against `opts` plus [`DEFAULT_OPTIONS`]. With `break_nonopt`
/// the first non-option argument ends the options (it names a command).
pub fn parse(argv: &[String], opts: &[Opt], break_nonopt: bool) -> Result<Parsed, Stop> {
    let mut ctx = Ctx {
        argv,
        opts: opts.iter().chain(DEFAULT_OPTIONS).copied().collect(),
        arg: 1,
        nonopt: 0,
        optend: 0,
        out: Parsed::default(),
    };
    while let Some(arg) = argv.get(ctx.arg) {
        let past_end = ctx.optend != 0 && ctx.arg > ctx.optend;
        if !arg.starts_with('-') || arg == "-" || past_end {
            if ctx.arg > ctx.nonopt {
                ctx.out.args.push(arg.clone());
                if break_nonopt {
                    ctx.optend = ctx.arg;
                }
            }
        } else if let Some(long) = arg.strip_prefix("--") {
            if long.is_empty() {
                ctx.optend = ctx.arg;
            } else {
                ctx.long(long)?;
            }
        } else {
            ctx.short(arg)?;
        }
        ctx.arg += 1;
    }
    Ok(ctx.out)
}

impl Ctx<'_> {
    fn short(&mut self, arg: &str) -> Result<(), Stop> {
        let group = arg.get(1..).unwrap_or_default();
        for (at, c) in group.char_indices() {
            let Some(opt) = self.opts.iter().find(|o| o.short == Some(c)).copied() else {
                return Err(Stop::Error(format!("invalid option: -{c}")));
            };
            let rest = group.get(at + c.len_utf8()..).unwrap_or_default();
            if opt.arg.is_some() && at == 0 && !rest.is_empty() {
                self.out.given.push((opt.long, Some(rest.to_string())));
                return Ok(());
            }
            self.handle(opt)?;
        }
        Ok(())
    }

    fn long(&mut self, body: &str) -> Result<(), Stop> {
        let (name, value) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (body, None),
        };
        let Some(opt) = self.opts.iter().find(|o| o.long == name).copied() else {
            return Err(Stop::Error(format!("invalid option: --{body}")));
        };
        match (value, opt.arg) {
            (Some(v), Some(_)) => {
                self.out.given.push((opt.long, Some(v.to_string())));
                Ok(())
            }
            (Some(_), None) => Err(Stop::Error(format!("unexpected argument: --{body}"))),
            (None, _) => self.handle(opt),
        }
    }

    /// An option without an attached value: `--help` and `--version` stop
    /// at once, an option with a value takes the next non-option argument.
    fn handle(&mut self, opt: Opt) -> Result<(), Stop> {
        match opt.long {
            "help" => return Err(Stop::Help),
            "version" => return Err(Stop::Version),
            _ => {}
        }
        if opt.arg.is_none() {
            self.out.given.push((opt.long, None));
            return Ok(());
        }
        match self.next_nonopt() {
            Some(v) => {
                self.out.given.push((opt.long, Some(v)));
                Ok(())
            }
            None => Err(Stop::Error(format!(
                "missing argument: {}",
                self.argv
                    .get(self.arg)
                    .map(String::as_str)
                    .unwrap_or_default()
            ))),
        }
    }

    fn next_nonopt(&mut self) -> Option<String> {
        self.nonopt = self.nonopt.max(self.arg);
        loop {
            self.nonopt += 1;
            let arg = self.argv.get(self.nonopt)?;
            if !arg.starts_with('-') || (self.optend != 0 && self.nonopt > self.optend) {
                return Some(arg.clone());
            }
            if arg == "--" {
                self.optend = self.nonopt;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTS: &[Opt] = &[
        Opt {
            short: Some('g'),
            long: "global",
            arg: None,
            help: None,
        },
        Opt {
            short: Some('i'),
            long: "ignore-events",
            arg: Some("LIST"),
            help: None,
        },
    ];

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options_anywhere_values_and_errors() {
        let p = parse(
            &argv(&["x", "a", "-gi", "e1", "b", "--", "-c"]),
            OPTS,
            false,
        )
        .expect("parses");
        assert_eq!(p.args, ["a", "b", "-c"]);
        assert!(p.has("global"));
        assert_eq!(p.value("ignore-events"), Some("e1"));
        let p = parse(&argv(&["x", "-ie2", "--ignore-events=e3"]), OPTS, false).expect("parses");
        assert_eq!(p.value("ignore-events"), Some("e3"));
        assert_eq!(
            parse(&argv(&["x", "-gZ"]), OPTS, false).err(),
            Some(Stop::Error("invalid option: -Z".into()))
        );
        assert_eq!(
            parse(&argv(&["x", "--glob"]), OPTS, false).err(),
            Some(Stop::Error("invalid option: --glob".into()))
        );
        assert_eq!(
            parse(&argv(&["x", "--global=1"]), OPTS, false).err(),
            Some(Stop::Error("unexpected argument: --global=1".into()))
        );
        assert_eq!(
            parse(&argv(&["x", "-i"]), OPTS, false).err(),
            Some(Stop::Error("missing argument: -i".into()))
        );
        let p = parse(&argv(&["x", "cmd", "-Z"]), &[], true).expect("stops at cmd");
        assert_eq!(p.args, ["cmd", "-Z"]);
    }
}
