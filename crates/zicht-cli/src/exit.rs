//! How `zicht` ends: its exit codes, as docs/cli.md lists them. An error that carries one of
//! these ([`Exit`]) ends the command with it; every other error ends it with 1.

use std::fmt;

/// The command line was not one zicht takes (clap's own code for its errors too).
pub const USAGE: u8 = 2;
/// A federated question was asked and no region answered it.
pub const NONE_ANSWERED: u8 = 3;
/// Some regions did not answer and `--require-all` was given.
pub const PARTIAL: u8 = 4;

/// An error that ends the command with `code`.
#[derive(Debug)]
pub struct Exit {
    /// The exit code.
    pub code: u8,
    message: String,
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

/// An error ending the command with `code`.
pub fn with(code: u8, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Exit {
        code,
        message: message.into(),
    })
}

/// A usage error (exit 2): the command line asks for something zicht does not take.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    with(USAGE, message)
}

/// The exit code of a failed command.
pub fn code_of(error: &anyhow::Error) -> u8 {
    error.downcast_ref::<Exit>().map_or(1, |exit| exit.code)
}
