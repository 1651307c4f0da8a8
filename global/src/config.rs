//! The global's options: the common control-plane options plus its own (the table the
//! configuration reference is generated from).

use atoll_config::Opt;
use atoll_runtime::options::COMMON_OPTIONS;

/// Options only the global has.
pub const GLOBAL_OPTIONS: &[Opt] = &[];

pub fn options() -> Vec<Opt> {
    COMMON_OPTIONS
        .iter()
        .chain(GLOBAL_OPTIONS)
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn configuration_reference_is_current() {
        let doc = include_str!("../../docs/configuration.md");
        let table = atoll_config::markdown_table(&super::options());
        assert!(
            doc.contains(&table),
            "docs/configuration.md is out of date: paste the output of `atoll-global options` into its global section"
        );
    }
}
