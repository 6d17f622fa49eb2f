//! One module per subcommand.

pub mod build;
pub mod config;
pub mod images;
pub mod inspect;
pub mod login;
pub mod prune;
pub mod pull;
pub mod push;
pub mod rmi;
pub mod tag;
