//! `berth login` and `berth logout`: check credentials against a registry
//! and keep them where `docker login` does (Docker's `config.json`, or the
//! credential helper it names), so both tools share them.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use berth_registry::RegistryError;
use berth_registry::auth::{Credentials, DockerConfig, Secret};
use clap::Args;

use crate::registry::RegistryArgs;

/// Log in to a registry (Docker Hub when SERVER is omitted).
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// User name.
    #[arg(short, long)]
    username: Option<String>,

    /// Password. Prefer --password-stdin: arguments are visible to other
    /// users of the machine.
    #[arg(short, long)]
    password: Option<String>,

    /// Read the password from standard input.
    #[arg(long)]
    password_stdin: bool,

    #[command(flatten)]
    registry: RegistryArgs,

    /// The registry, e.g. registry.example or localhost:5000.
    #[arg(value_name = "SERVER")]
    server: Option<String>,
}

/// Log out from a registry (Docker Hub when SERVER is omitted).
#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry.
    #[arg(value_name = "SERVER")]
    server: Option<String>,
}

/// `https://index.docker.io/v1/` → `docker.io`; `http://h:5000/` → `h:5000`.
fn host_of(server: Option<&str>) -> String {
    let s = server.unwrap_or("docker.io").trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or(s).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".into()
        }
        _ => host,
    }
}

pub fn login(args: LoginArgs) -> Result<ExitCode> {
    let host = host_of(args.server.as_deref());
    let Some(username) = args.username.clone().filter(|u| !u.is_empty()) else {
        bail!("login {host}: a user name is required (pass -u USER --password-stdin)");
    };
    let password = match (&args.password, args.password_stdin) {
        (Some(_), true) => bail!("--password and --password-stdin are mutually exclusive"),
        (Some(p), false) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            p.clone()
        }
        (None, true) => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the password from standard input")?;
            text.trim_end_matches(['\n', '\r']).to_owned()
        }
        (None, false) => {
            if std::io::stdin().is_terminal() {
                bail!(
                    "login {host}: pass the password with --password-stdin (berth does not prompt)"
                );
            }
            bail!("login {host}: no password given (pipe it in with --password-stdin)");
        }
    };
    if password.is_empty() {
        bail!("login {host}: the password is empty");
    }
    let creds = Credentials {
        username,
        secret: Secret::Password(password),
    };
    let client = args.registry.client_with(creds.clone())?;
    match client.check_login(&host) {
        Ok(()) => {}
        Err(RegistryError::Unauthorized { .. }) => {
            bail!("login {host}: incorrect username or password")
        }
        Err(e) => return Err(e).with_context(|| format!("login {host}")),
    }
    let mut config = DockerConfig::load_default()?;
    config.store(&host, &creds)?;
    config.save()?;
    if config.helper_for(&host).is_none() {
        eprintln!(
            "WARNING! Your password is stored unencrypted in {}.",
            config.path().display()
        );
    }
    println!("Login Succeeded");
    Ok(ExitCode::SUCCESS)
}

pub fn logout(args: LogoutArgs) -> Result<ExitCode> {
    let host = host_of(args.server.as_deref());
    let mut config = DockerConfig::load_default()?;
    if config.erase(&host)? {
        config.save()?;
        println!("Removing login credentials for {host}");
    } else {
        println!("Not logged in to {host}");
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn server_names() {
        assert_eq!(super::host_of(None), "docker.io");
        assert_eq!(
            super::host_of(Some("https://index.docker.io/v1/")),
            "docker.io"
        );
        assert_eq!(
            super::host_of(Some("http://127.0.0.1:5000/")),
            "127.0.0.1:5000"
        );
        assert_eq!(super::host_of(Some("Reg.Example")), "reg.example");
    }
}
