//! Which interpolated strings become numbers or booleans, and how.
//!
//! YAML gives `replicas: ${N}` a string once `${N}` is substituted, but the
//! schema wants an integer there; compose converts such values after
//! interpolation. [`COMPOSE_CASTS`] lists the paths where it does.

use std::fmt;

use crate::yaml::Value;

/// The type an interpolated string is converted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cast {
    Int,
    Float,
    Bool,
}

impl Cast {
    /// The converted value, or `None` when `text` is not of this type.
    pub fn apply(self, text: &str) -> Option<Value> {
        match self {
            Cast::Int => text.parse().ok().map(Value::Int),
            // NaN and infinities parse but mean nothing in a compose file.
            Cast::Float => text
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Value::Float),
            Cast::Bool => match text.to_ascii_lowercase().as_str() {
                "true" | "yes" | "y" | "on" => Some(Value::Bool(true)),
                "false" | "no" | "n" | "off" => Some(Value::Bool(false)),
                _ => None,
            },
        }
    }
}

/// The type's name in compose's messages (`invalid boolean: maybe`).
impl fmt::Display for Cast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Cast::Int => "integer",
            Cast::Float => "number",
            Cast::Bool => "boolean",
        })
    }
}

/// Paths (see [`crate::doc_path::DocPath::matches`]) whose string values are
/// converted after interpolation: the compose-spec schema fields typed
/// integer, number or boolean. Left out on purpose, because their strings
/// carry meaning the loader parses later: ports (`"8000-8010"`), sizes
/// (`mem_limit: 512m`, `shm_size`, `tmpfs.size`, blkio rates), file modes
/// (`"0440"` is octal), durations (`cpu_rt_period: 400ms`), GPU/device
/// counts (`all`), `provenance`/`sbom` (`mode=max`) and free-form maps
/// (labels, environment, build args, driver options, sysctls).
pub const COMPOSE_CASTS: &[(&str, Cast)] = &[
    // services: numbers
    ("services.*.blkio_config.weight", Cast::Int),
    ("services.*.blkio_config.weight_device.*.weight", Cast::Int),
    ("services.*.build.ulimits.*", Cast::Int),
    ("services.*.build.ulimits.*.hard", Cast::Int),
    ("services.*.build.ulimits.*.soft", Cast::Int),
    ("services.*.cpu_count", Cast::Int),
    ("services.*.cpu_percent", Cast::Int),
    ("services.*.cpu_period", Cast::Int),
    ("services.*.cpu_quota", Cast::Int),
    ("services.*.cpu_shares", Cast::Int),
    ("services.*.cpus", Cast::Float),
    (
        "services.*.deploy.placement.max_replicas_per_node",
        Cast::Int,
    ),
    ("services.*.deploy.replicas", Cast::Int),
    ("services.*.deploy.resources.limits.cpus", Cast::Float),
    ("services.*.deploy.resources.limits.pids", Cast::Int),
    ("services.*.deploy.resources.reservations.cpus", Cast::Float),
    (
        "services.*.deploy.resources.reservations.generic_resources.*.discrete_resource_spec.value",
        Cast::Int,
    ),
    ("services.*.deploy.restart_policy.max_attempts", Cast::Int),
    (
        "services.*.deploy.rollback_config.max_failure_ratio",
        Cast::Float,
    ),
    ("services.*.deploy.rollback_config.parallelism", Cast::Int),
    (
        "services.*.deploy.update_config.max_failure_ratio",
        Cast::Float,
    ),
    ("services.*.deploy.update_config.parallelism", Cast::Int),
    ("services.*.healthcheck.retries", Cast::Int),
    ("services.*.mem_swappiness", Cast::Int),
    ("services.*.networks.*.gw_priority", Cast::Int),
    ("services.*.networks.*.priority", Cast::Int),
    ("services.*.oom_score_adj", Cast::Int),
    ("services.*.pids_limit", Cast::Int),
    ("services.*.scale", Cast::Int),
    ("services.*.ulimits.*", Cast::Int),
    ("services.*.ulimits.*.hard", Cast::Int),
    ("services.*.ulimits.*.soft", Cast::Int),
    // services: booleans
    ("services.*.attach", Cast::Bool),
    ("services.*.build.no_cache", Cast::Bool),
    ("services.*.build.privileged", Cast::Bool),
    ("services.*.build.pull", Cast::Bool),
    ("services.*.depends_on.*.required", Cast::Bool),
    ("services.*.depends_on.*.restart", Cast::Bool),
    ("services.*.develop.watch.*.exec.privileged", Cast::Bool),
    ("services.*.develop.watch.*.initial_sync", Cast::Bool),
    ("services.*.env_file.*.required", Cast::Bool),
    ("services.*.healthcheck.disable", Cast::Bool),
    ("services.*.init", Cast::Bool),
    ("services.*.oom_kill_disable", Cast::Bool),
    ("services.*.post_start.*.privileged", Cast::Bool),
    ("services.*.pre_start.*.per_replica", Cast::Bool),
    ("services.*.pre_start.*.privileged", Cast::Bool),
    ("services.*.pre_stop.*.privileged", Cast::Bool),
    ("services.*.privileged", Cast::Bool),
    ("services.*.read_only", Cast::Bool),
    ("services.*.stdin_open", Cast::Bool),
    ("services.*.tty", Cast::Bool),
    ("services.*.use_api_socket", Cast::Bool),
    ("services.*.volumes.*.bind.create_host_path", Cast::Bool),
    ("services.*.volumes.*.read_only", Cast::Bool),
    ("services.*.volumes.*.volume.nocopy", Cast::Bool),
    // top-level resources
    ("networks.*.attachable", Cast::Bool),
    ("networks.*.enable_ipv4", Cast::Bool),
    ("networks.*.enable_ipv6", Cast::Bool),
    ("networks.*.external", Cast::Bool),
    ("networks.*.internal", Cast::Bool),
    ("volumes.*.external", Cast::Bool),
    ("secrets.*.external", Cast::Bool),
    ("configs.*.external", Cast::Bool),
    ("models.*.context_size", Cast::Int),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(Cast::Int.apply("-3"), Some(Value::Int(-3)));
        assert_eq!(Cast::Int.apply("3.0"), None);
        assert_eq!(Cast::Int.apply(" 3"), None);
        assert_eq!(Cast::Float.apply("0.5"), Some(Value::Float(0.5)));
        assert_eq!(Cast::Float.apply("2"), Some(Value::Float(2.0)));
        assert_eq!(Cast::Float.apply("NaN"), None);
        for yes in ["true", "True", "YES", "y", "on"] {
            assert_eq!(Cast::Bool.apply(yes), Some(Value::Bool(true)), "{yes}");
        }
        for no in ["false", "FALSE", "No", "n", "off"] {
            assert_eq!(Cast::Bool.apply(no), Some(Value::Bool(false)), "{no}");
        }
        assert_eq!(Cast::Bool.apply("1"), None);
    }

    #[test]
    fn patterns_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        assert!(COMPOSE_CASTS.iter().all(|(p, _)| seen.insert(*p)));
    }
}
