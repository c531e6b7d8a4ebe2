//! The loop's fixed mio tokens, in one place so that no two sources share
//! one (a shared token sends one source's readiness to the other's
//! handler). Tokens from [`FIRST_DYNAMIC`] on are handed out per status
//! pipe and log pty.

use mio::Token;

/// The signalfd.
pub const SIGNAL: Token = Token(0);
/// inotify on the job directories.
pub const INOTIFY: Token = Token(1);
/// The control plane's waker.
pub const WAKER: Token = Token(2);
/// The `expect notify` socket.
pub const NOTIFY: Token = Token(3);
/// Standard output can take more (job output on stdout).
pub const STDOUT: Token = Token(4);
/// The first token handed out per descriptor.
pub const FIRST_DYNAMIC: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_tokens_are_distinct_and_below_the_dynamic_ones() {
        let fixed = [SIGNAL, INOTIFY, WAKER, NOTIFY, STDOUT];
        for (i, a) in fixed.iter().enumerate() {
            assert!(a.0 < FIRST_DYNAMIC);
            for b in fixed.iter().skip(i + 1) {
                assert_ne!(a, b);
            }
        }
    }
}
