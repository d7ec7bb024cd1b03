//! The migration subcommands (`preflight`, `tracker`, `bulk`, `apply-dirty`,
//! `status`, `verify`, `control`, `migrate`): each turns its parsed
//! arguments into calls on the actors crate and prints the outcome, as text
//! for a person or as one JSON object (`--json`) for a program.

pub mod bulk;
pub mod control;
pub mod migrate;
mod output;
pub mod preflight;
mod progress;
pub mod status;
mod step;
pub mod tracker;
pub mod verify;
