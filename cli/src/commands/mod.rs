//! One module per subcommand.

pub mod build;
pub mod images;
pub mod inspect;
pub mod prune;
pub mod rmi;
pub mod tag;
