//! Build and target platforms (`linux/amd64`, `linux/arm/v7`) and the
//! automatic build arguments BuildKit derives from them (`TARGETPLATFORM`,
//! `TARGETOS`, `TARGETARCH`, `TARGETVARIANT` and the `BUILD*` set).

use std::collections::BTreeMap;
use std::fmt;

/// An OS/architecture[/variant] triple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The machine berth runs on, in OCI's architecture names.
    pub fn host() -> Platform {
        let (architecture, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "aarch64" => ("arm64", None),
            "arm" => ("arm", Some("v7")),
            "x86" => ("386", None),
            "powerpc64" => ("ppc64le", None),
            "s390x" => ("s390x", None),
            "riscv64" => ("riscv64", None),
            other => (other, None),
        };
        Platform {
            os: "linux".to_owned(),
            architecture: architecture.to_owned(),
            variant: variant.map(str::to_owned),
        }
    }

    /// Parses `os/arch[/variant]` (or just `arch`, meaning linux), with
    /// the aliases Docker accepts (`x86_64`, `aarch64`, `armhf`, …).
    pub fn parse(text: &str) -> Result<Platform, String> {
        let lower = text.trim().to_ascii_lowercase();
        let parts: Vec<&str> = lower.split('/').collect();
        let (os, arch, variant) = match parts.as_slice() {
            [arch] if !arch.is_empty() => ("linux", *arch, None),
            [os, arch] if !os.is_empty() && !arch.is_empty() => (*os, *arch, None),
            [os, arch, v] if !os.is_empty() && !arch.is_empty() && !v.is_empty() => {
                (*os, *arch, Some(*v))
            }
            _ => {
                return Err(format!(
                    "invalid platform \"{text}\": use OS/ARCH[/VARIANT], e.g. linux/amd64 or linux/arm/v7"
                ));
            }
        };
        let (arch, default_variant) = match arch {
            "x86_64" | "x86-64" => ("amd64", None),
            "aarch64" => ("arm64", None),
            "armhf" | "armel" | "arm" => ("arm", Some(if arch == "armel" { "v6" } else { "v7" })),
            "i386" | "i686" => ("386", None),
            other => (other, None),
        };
        let variant = match (arch, variant) {
            ("arm64", Some("v8")) => None,
            (_, Some(v)) => Some(v),
            (_, None) => default_variant,
        };
        let known_os = ["linux", "windows", "darwin", "freebsd"];
        if !known_os.contains(&os) {
            return Err(format!(
                "invalid platform \"{text}\": unknown OS \"{os}\" (berth builds linux images)"
            ));
        }
        Ok(Platform {
            os: os.to_owned(),
            architecture: arch.to_owned(),
            variant: variant.map(str::to_owned),
        })
    }

    /// The args BuildKit defines for this platform, with `prefix` `TARGET`
    /// or `BUILD`.
    pub fn args(&self, prefix: &str, out: &mut BTreeMap<String, String>) {
        out.insert(format!("{prefix}PLATFORM"), self.to_string());
        out.insert(format!("{prefix}OS"), self.os.clone());
        out.insert(format!("{prefix}ARCH"), self.architecture.clone());
        out.insert(
            format!("{prefix}VARIANT"),
            self.variant.clone().unwrap_or_default(),
        );
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_platforms_with_aliases() {
        let p = Platform::parse("linux/arm/v7").unwrap();
        assert_eq!(p.to_string(), "linux/arm/v7");
        assert_eq!(
            Platform::parse("x86_64").unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::parse("linux/arm64/v8").unwrap().to_string(),
            "linux/arm64"
        );
        assert_eq!(
            Platform::parse("linux/armhf").unwrap().to_string(),
            "linux/arm/v7"
        );
        assert!(Platform::parse("linux/").is_err());
        assert!(Platform::parse("plan9/amd64").is_err());
    }

    #[test]
    fn derives_args() {
        let mut args = BTreeMap::new();
        Platform::parse("linux/arm/v6")
            .unwrap()
            .args("TARGET", &mut args);
        assert_eq!(args["TARGETPLATFORM"], "linux/arm/v6");
        assert_eq!(args["TARGETARCH"], "arm");
        assert_eq!(args["TARGETVARIANT"], "v6");
        assert_eq!(args["TARGETOS"], "linux");
    }
}
