//! Resources from YAML for the zone's unit tests.

/// The one resource `yaml` describes; panics when it is not valid (a broken fixture).
pub(crate) fn resource(yaml: &str) -> atoll_model::Resource {
    atoll_model::parse_documents(yaml)
        .remove(0)
        .outcome
        .expect("a valid fixture")
}
