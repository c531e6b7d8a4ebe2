//! The loop every bridge runs in: a `mio::Poll` over the bridge's own
//! sources (inotify, sockets, netlink) and a waker through which the link
//! to init reports job changes and finished events.

use std::os::fd::OwnedFd;
use std::process::ExitCode;
use std::sync::mpsc;
use std::sync::Arc;

use mio::{Events, Poll, Registry, Token, Waker};

use super::link::{self, Emit, Emitter, Serves, Update};
use super::log::WARN;
use super::options::Common;
use super::wanted::Wanted;
use crate::bridge_log;

/// The waker's token; bridges use any other.
pub const LINK: Token = Token(0);

/// One bridge's logic.
pub trait Bridge {
    /// The events (by name) whose `start on` / `stop on` matches concern
    /// this bridge.
    const SERVES: Serves;

    /// Set up sources that do not depend on jobs (a listening socket, a
    /// netlink socket, a thread of its own).
    fn start(&mut self, _ctx: &mut Ctx) -> std::io::Result<()> {
        Ok(())
    }

    /// The jobs' matches of the bridge's events changed (all of them).
    fn jobs(&mut self, wanted: &[Wanted], ctx: &mut Ctx);

    /// A source of the bridge is ready.
    fn ready(&mut self, _token: Token, _ctx: &mut Ctx) {}

    /// An event emitted with [`Ctx::emit_waiting`] has finished.
    fn finished(&mut self, _tag: u64, _ctx: &mut Ctx) {}
}

/// What a bridge may do from the loop.
pub struct Ctx<'a> {
    pub registry: &'a Registry,
    emitter: &'a Emitter,
    next_tag: &'a mut u64,
}

impl Ctx<'_> {
    pub fn emit(&mut self, name: &str, env: Vec<String>) {
        self.emitter.emit(name, env);
    }

    /// Emit, attaching `file`, and hear of the event's end through
    /// [`Bridge::finished`] with the returned tag.
    pub fn emit_waiting(&mut self, name: &str, env: Vec<String>, file: Option<OwnedFd>) -> u64 {
        *self.next_tag += 1;
        let tag = *self.next_tag;
        crate::bridge_log!(super::log::DEBUG, "emit {name} {}", env.join(" "));
        let _ = self.emitter.0.unbounded_send(Emit {
            name: name.to_string(),
            env,
            wait: true,
            file,
            tag,
        });
        tag
    }

    /// A handle for the bridge's own threads.
    pub fn emitter(&self) -> Emitter {
        self.emitter.clone()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Options(#[from] super::options::OptionsError),
    #[error(transparent)]
    Daemon(#[from] super::daemon::DaemonError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// SIGTERM ends a bridge with status 0, as Upstart's bridges did: it
/// holds nothing that needs putting away, and init's stop of its job is
/// then an ordinary end, not a death by signal.
extern "C" fn end_on_term(_: libc::c_int) {
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(0) }
}

/// Run `bridge` until killed; the exit status of the program.
pub fn main<B: Bridge>(common: &Common, bridge: B) -> ExitCode {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let term = SigAction::new(
        SigHandler::Handler(end_on_term),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only calls _exit.
    if let Err(e) = unsafe { sigaction(Signal::SIGTERM, &term) } {
        bridge_log!(WARN, "unable to handle SIGTERM: {e}");
    }
    common.set_log_level();
    match run(common, bridge) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            bridge_log!(WARN, "{e}");
            ExitCode::FAILURE
        }
    }
}

fn run<B: Bridge>(common: &Common, mut bridge: B) -> Result<(), RunError> {
    let address = common.init_address()?;
    if common.daemon {
        super::daemon::daemonise()?;
    }
    let mut poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), LINK)?);
    let (updates_tx, updates) = mpsc::channel();
    let (emits_tx, emits) = futures_channel::mpsc::unbounded();
    link::spawn(address, B::SERVES, updates_tx, waker, emits)?;
    let emitter = Emitter(emits_tx);
    let mut next_tag = 0;
    macro_rules! ctx {
        () => {
            Ctx {
                registry: poll.registry(),
                emitter: &emitter,
                next_tag: &mut next_tag,
            }
        };
    }
    bridge.start(&mut ctx!())?;
    let mut events = Events::with_capacity(64);
    loop {
        if let Err(e) = poll.poll(&mut events, None) {
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e.into());
        }
        let tokens: Vec<Token> = events.iter().map(|e| e.token()).collect();
        for token in tokens {
            if token != LINK {
                bridge.ready(token, &mut ctx!());
                continue;
            }
            while let Ok(u) = updates.try_recv() {
                match u {
                    Update::Jobs(w) => bridge.jobs(&w, &mut ctx!()),
                    Update::Done(tag) => bridge.finished(tag, &mut ctx!()),
                }
            }
        }
    }
}
