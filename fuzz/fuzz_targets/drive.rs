//! Shared by the state-import targets: run an engine assembled from a
//! payload through the daemon's ordinary inputs, with a `Sys` that spawns
//! nothing, kills nothing and answers every spawn with a fresh fake pid.

use outset::job::{Engine, Errno, ExitStatus, Level, SpawnError, SpawnRequest, Sys};

/// Pretends to do what the engine asks.
pub struct NullSys {
    next_pid: i32,
}

impl Sys for NullSys {
    fn spawn(&mut self, _req: &SpawnRequest) -> Result<i32, SpawnError> {
        self.next_pid += 1;
        Ok(self.next_pid)
    }
    fn kill(&mut self, _pid: i32, _signal: i32, _group: bool) -> Result<(), Errno> {
        Ok(())
    }
    fn log(&mut self, _level: Level, message: String) {
        std::hint::black_box(message);
    }
}

/// Every pid the engine supervises.
fn pids(engine: &Engine) -> Vec<i32> {
    engine
        .slots
        .values()
        .flat_map(|s| s.instances.values())
        .flat_map(|i| i.pids.values().copied())
        .filter(|&p| p > 0)
        .collect()
}

/// What the loop would do next with a restored engine: run the queue,
/// fire timers far in the future, see every process exit, emit an event,
/// write the re-exec payload, and finally stop everything. None of it may
/// panic.
pub fn drive(mut engine: Engine) {
    let mut sys = NullSys { next_pid: 1 << 22 };
    engine.set_time(1);
    engine.run_queue(&mut sys);
    let _ = engine.next_deadline();
    engine.set_time(u64::MAX / 4);
    engine.fire_timers(&mut sys);
    engine.run_queue(&mut sys);
    for (n, pid) in pids(&engine).into_iter().enumerate() {
        if engine.spawn_pending(pid) {
            engine.spawn_ok(&mut sys, pid);
        }
        let status = if n % 2 == 0 {
            ExitStatus::Exited(n as i32 % 3)
        } else {
            ExitStatus::Signaled(15)
        };
        engine.child_exited(&mut sys, pid, status);
        engine.run_queue(&mut sys);
    }
    engine.emit("fuzz-event", vec!["A=1".to_string()]);
    engine.run_queue(&mut sys);
    // Written into a re-exec payload as the daemon writes it.
    let payload = outset::reexec::export(&outset::reexec::ExportInput {
        engine: &engine,
        sources: &[],
        handover: &outset::reexec::Handover::default(),
        daemon: serde_json::Value::Null,
        bus_address: None,
    });
    let _ = serde_json::to_string(&payload);
    engine.no_respawn = true;
    engine.stop_all(&mut sys);
    engine.run_queue(&mut sys);
    for pid in pids(&engine) {
        engine.child_exited(&mut sys, pid, ExitStatus::Signaled(9));
        engine.run_queue(&mut sys);
    }
}
