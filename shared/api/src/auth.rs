//! The admin token: generated into the work directory on first start, required for writes
//! (and for reading secrets) except over plain HTTP from this machine.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom, SystemRandom};

/// The file, inside the work directory, that holds the admin token.
pub const TOKEN_FILE: &str = "admin-token";

#[derive(Clone)]
pub struct AdminToken(String);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(..)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("no randomness available from the operating system")]
    Random,
    #[error("{0}: the token file is empty")]
    Empty(PathBuf),
}

impl AdminToken {
    pub fn new(value: impl Into<String>) -> Self {
        AdminToken(value.into())
    }

    /// Reads `<work_dir>/admin-token`, creating it (mode 0600) with 32 random bytes on first use.
    pub fn load_or_create(work_dir: &Path) -> Result<Self, TokenError> {
        let path = work_dir.join(TOKEN_FILE);
        let io = |source| TokenError::Io {
            path: path.clone(),
            source,
        };
        match fs::read_to_string(&path) {
            Ok(text) => {
                let token = text.trim();
                if token.is_empty() {
                    return Err(TokenError::Empty(path));
                }
                return Ok(AdminToken(token.to_string()));
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(io(err)),
        }
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| TokenError::Random)?;
        let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        fs::create_dir_all(work_dir).map_err(io)?;
        let tmp = path.with_extension("tmp");
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        file.write_all(token.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        fs::rename(&tmp, &path).map_err(io)?;
        tracing::info!(path = %path.display(), "generated the admin token");
        Ok(AdminToken(token))
    }

    /// Compares in constant time, so the token cannot be guessed byte by byte from timings.
    pub fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }

    pub fn value(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let first = AdminToken::load_or_create(dir.path()).unwrap();
        let second = AdminToken::load_or_create(dir.path()).unwrap();
        assert_eq!(first.value(), second.value());
        assert_eq!(first.value().len(), 64);
        assert!(first.matches(second.value()));
        assert!(!first.matches("nope"));
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir.path().join(TOKEN_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
