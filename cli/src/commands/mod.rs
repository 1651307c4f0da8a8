//! One module per subcommand.

pub mod apply;
pub mod delete;
pub mod generate;
pub mod get;
pub mod input;
pub mod inspect;
pub mod inspect_dataplane;
pub mod inspect_mesh;
pub mod validate;
