//! cgroup support: the job side of a cgroup manager (cgroups.md). init
//! never talks to the manager; the spawn helper computes the job's cgroup
//! paths and makes the manager calls before it execs the job.

pub mod client;
pub mod manager;
pub mod path;
pub mod sequence;
