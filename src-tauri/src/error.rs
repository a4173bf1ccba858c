//! The one error every command rejects with: `{ kind, message }` (COMMANDS.md). Messages are
//! one sentence for a person and never hold a secret: the engine's errors never include a key,
//! and input that could be a key is never echoed here.

use lapwing_core::engine::EngineError;
use lapwing_secrets::SecretError;
use serde::ser::SerializeStruct as _;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    #[error("no product {0:?} is installed")]
    UnknownProduct(String),
    #[error("{0}")]
    BadKey(String),
    #[error("{0}")]
    BadServer(String),
    #[error("{0}")]
    PolicyLocked(String),
    #[error("{0}")]
    Keyring(String),
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    Engine(String),
}

impl CommandError {
    /// The `kind` word the front end switches on.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UnknownProduct(_) => "unknown-product",
            Self::BadKey(_) => "bad-key",
            Self::BadServer(_) => "bad-server",
            Self::PolicyLocked(_) => "policy-locked",
            Self::Keyring(_) => "keyring",
            Self::InvalidInput(_) => "invalid-input",
            Self::Engine(_) => "engine",
        }
    }
}

impl serde::Serialize for CommandError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("CommandError", 2)?;
        s.serialize_field("kind", self.kind())?;
        s.serialize_field("message", &self.to_string())?;
        s.end()
    }
}

impl From<EngineError> for CommandError {
    fn from(e: EngineError) -> Self {
        match e {
            EngineError::UnknownProduct(id) => Self::UnknownProduct(id),
            EngineError::Key(e) => Self::BadKey(format!("the key was not stored: {e}")),
            EngineError::Server(message) => Self::BadServer(message),
            e @ EngineError::PolicyLocked(_) => Self::PolicyLocked(e.to_string()),
            EngineError::Secrets(e @ SecretError::InvalidProductId { .. }) => {
                Self::InvalidInput(e.to_string())
            }
            EngineError::Secrets(e) => Self::Keyring(e.to_string()),
            e => Self::Engine(e.to_string()),
        }
    }
}

impl From<tauri::Error> for CommandError {
    fn from(e: tauri::Error) -> Self {
        Self::Engine(format!("the window could not be opened: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_serialize_to_kind_and_message() {
        let value =
            serde_json::to_value(CommandError::UnknownProduct("nope".into())).expect("serializes");
        assert_eq!(
            value,
            serde_json::json!({"kind": "unknown-product", "message": "no product \"nope\" is installed"})
        );
    }

    #[test]
    fn engine_errors_map_to_their_kinds() {
        let cases: [(EngineError, &str); 5] = [
            (EngineError::UnknownProduct("x".into()), "unknown-product"),
            (
                EngineError::Key(lap_proto::LicenseKeyError::Check),
                "bad-key",
            ),
            (EngineError::Server("bad".into()), "bad-server"),
            (EngineError::PolicyLocked("a:1".into()), "policy-locked"),
            (
                EngineError::Secrets(SecretError::InvalidProductId { id: "X".into() }),
                "invalid-input",
            ),
        ];
        for (error, kind) in cases {
            assert_eq!(CommandError::from(error).kind(), kind);
        }
    }
}
