//! lapctl's one error type and its exit codes. `main` prints an error once, as
//! `lapctl: error: …` on stderr, and exits with the code the error names.

use lapwing_core::engine::EngineError;
use lapwing_machine::MachineError;
use lapwing_secrets::SecretError;

/// Exit codes, stable for scripts (listed in `lapctl --help` and the user guide).
pub mod exit {
    pub const OK: u8 = 0;
    /// A runtime error (one line on stderr).
    pub const ERROR: u8 = 1;
    /// The command line asks for something that cannot be done (clap uses 2 as well).
    pub const USAGE: u8 = 2;
    /// `activate` ran but a product is not activated (no answer, refused, nothing to send).
    pub const NOT_ACTIVATED: u8 = 3;
    /// A license key failed its local check (length, character, check characters).
    pub const BAD_KEY: u8 = 4;
    /// The keyring is locked, missing or refused access.
    pub const KEYRING: u8 = 5;
    /// `doctor` found a problem.
    pub const DOCTOR_PROBLEM: u8 = 6;
    /// `key set` kept the key as pending: no server has accepted it yet, and the previous
    /// key (with its grant) stays in effect.
    pub const KEY_PENDING: u8 = 7;
    /// `deactivate` was answered with an ordinary grant: the server did not release the
    /// seat, and the activation stays (the server's Notice says why, if it gave one).
    pub const DEACTIVATE_KEPT: u8 = 8;
    /// `deactivate` got no answer: nothing was changed (`--anyway` deactivates here only).
    pub const DEACTIVATE_UNANSWERED: u8 = 9;
    /// `sunset import` refused the grant (unreadable, another product's, or a signature
    /// not by the product's server key): nothing was changed.
    pub const SUNSET_REFUSED: u8 = 10;
}

/// Everything that can stop a lapctl command. Not activated (3), a doctor's problem (6) and a
/// key kept pending (7) are answers, not errors: their commands print in full and return the
/// code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Machine(#[from] MachineError),
    /// Arguments clap accepts but that cannot be used together or parsed further.
    #[error("{0}")]
    Usage(String),
    /// A license key refused by its local check; the message may list the likely right keys.
    #[error("{0}")]
    BadKey(String),
    #[error("{0}")]
    Runtime(String),
    /// Writing the output failed (a closed pipe never gets here: see `output::Quiet`).
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Engine(EngineError::Key(_)) | Self::BadKey(_) => exit::BAD_KEY,
            Self::Engine(EngineError::Secrets(e))
                if !matches!(e, SecretError::InvalidProductId { .. }) =>
            {
                exit::KEYRING
            }
            Self::Engine(EngineError::Sunset { .. }) => exit::SUNSET_REFUSED,
            // A HOST:PORT that does not parse: `server set` and `activate --server` alike.
            Self::Usage(_) | Self::Engine(EngineError::Server(_)) => exit::USAGE,
            Self::Engine(_) | Self::Machine(_) | Self::Runtime(_) | Self::Output(_) => exit::ERROR,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_names_its_documented_exit_code() {
        let cases = [
            (CliError::Usage("give a product id or --all".into()), 2),
            (CliError::BadKey("the key was not stored".into()), 4),
            (
                CliError::Engine(EngineError::Key(lap_proto::LicenseKeyError::Check)),
                4,
            ),
            (
                CliError::Engine(EngineError::Secrets(SecretError::NoSessionBus {
                    address: None,
                })),
                5,
            ),
            (
                CliError::Engine(EngineError::Secrets(SecretError::InvalidProductId {
                    id: "X".into(),
                })),
                1,
            ),
            (CliError::Engine(EngineError::UnknownProduct("x".into())), 1),
            (
                CliError::Engine(EngineError::Server("bad HOST:PORT".into())),
                2,
            ),
            (CliError::Runtime("JSON".into()), 1),
            (
                CliError::Engine(EngineError::Sunset {
                    id: "acme".into(),
                    reason: "its signature is not by this product's server key".into(),
                }),
                10,
            ),
            (CliError::Output(std::io::Error::other("disk full")), 1),
        ];
        for (error, code) in cases {
            assert_eq!(error.exit_code(), code, "{error}");
        }
    }
}
