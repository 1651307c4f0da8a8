//! `Secret` (per mesh) and `GlobalSecret` (control-plane wide): opaque base64 data.

use base64::Engine;

model! {
    pub struct SecretSpec {
        /// Base64-encoded bytes.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub data: String,
    }
}

impl SecretSpec {
    pub fn from_bytes(bytes: &[u8]) -> Self {
        SecretSpec {
            data: base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }

    pub fn bytes(&self) -> Result<Vec<u8>, base64::DecodeError> {
        base64::engine::general_purpose::STANDARD.decode(&self.data)
    }
}
