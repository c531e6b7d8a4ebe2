//! How a process definition becomes an argv (process-spawning.md §1).

/// Characters that make an `exec` line go through the shell.
const SHELL_CHARS: &str = "~`!$^&*()=|\\{}[];\"'<>?";

/// What to execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub argv: Vec<String>,
    /// A multi-line script to feed on fd 9 once exec succeeded.
    pub script: Option<String>,
}

pub fn build_command(text: &str, script: bool) -> Command {
    if !script && !text.contains(|c| SHELL_CHARS.contains(c)) {
        return Command {
            argv: text
                .split([' ', '\t', '\r', '\n'])
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect(),
            script: None,
        };
    }
    let body = if script {
        text.to_string()
    } else {
        format!("exec {text}")
    };
    // Single-line: no LF, or only LFs after the first one.
    let single = match body.split_once('\n') {
        None => true,
        Some((_, rest)) => rest.bytes().all(|b| b == b'\n'),
    };
    if single {
        let line = body.split('\n').next().unwrap_or_default().to_string();
        Command {
            argv: vec![
                "/bin/sh".into(),
                "-e".into(),
                "-c".into(),
                line,
                "/bin/sh".into(),
            ],
            script: None,
        }
    } else {
        Command {
            argv: vec!["/bin/sh".into(), "-e".into(), "/proc/self/fd/9".into()],
            script: Some(body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(text: &str, script: bool) -> Vec<String> {
        build_command(text, script).argv
    }

    #[test]
    fn shell_selection() {
        assert_eq!(argv("/bin/true", false), ["/bin/true"]);
        assert_eq!(argv("/bin/echo a   b", false), ["/bin/echo", "a", "b"]);
        assert_eq!(
            argv("echo $HOME", false),
            ["/bin/sh", "-e", "-c", "exec echo $HOME", "/bin/sh"]
        );
        assert_eq!(
            argv("a -b --c=d", false)[0],
            "/bin/sh",
            "= forces the shell"
        );
        assert_eq!(argv("run /x,y:z@w+1%2", false), ["run", "/x,y:z@w+1%2"]);
        assert_eq!(
            argv("echo hi\n\n", true),
            ["/bin/sh", "-e", "-c", "echo hi", "/bin/sh"]
        );
        let c = build_command("echo a\necho b\n", true);
        assert_eq!(c.argv, ["/bin/sh", "-e", "/proc/self/fd/9"]);
        assert_eq!(c.script.as_deref(), Some("echo a\necho b\n"));
    }
}
