//! Reading `-f FILE|-` arguments.

use std::io::Read;

use anyhow::Context;

/// The text of a file, or of standard input for `-`.
pub fn read(source: &str) -> anyhow::Result<String> {
    if source == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading standard input")?;
        Ok(text)
    } else {
        std::fs::read_to_string(source).with_context(|| format!("reading {source}"))
    }
}

/// How to refer to the input in messages.
pub fn display_name(source: &str) -> &str {
    if source == "-" { "<stdin>" } else { source }
}
