//! Command-line conventions shared by the client tools: the option
//! parsing, help layout, version text and line wrapping that Upstart's
//! tools got from libnih, so that scripts and people see the same texts.

pub mod help;
pub mod options;
pub mod wrap;
