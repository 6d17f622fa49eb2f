//! Which merge policy applies where: the table of per-path exceptions to
//! "mappings merge, sequences append, scalars are replaced".
//!
//! The table follows compose-go's override rules (the reference Docker
//! Compose uses), extended to the other fields whose schema allows two
//! syntaxes, so that a short form met by a long form never fails to merge.

use crate::doc_path::DocPath;

/// How two values at one path combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    /// Mappings merge key by key, sequences append (without exact
    /// duplicates), the override replaces a scalar.
    Default,
    /// Like [`Rule::Default`], but when the two sides use different forms
    /// (a string against a list or mapping) the override wins: the schema
    /// allows both, so the override restated the value in another syntax.
    EitherForm,
    /// The override replaces the base whole, even a sequence or mapping.
    Replace,
    /// `KEY=VALUE` list or mapping, merged by key: a later value for a key
    /// replaces the earlier one in place.
    KeyValue,
    /// `extra_hosts`: host/address pairs; a host may have several
    /// addresses, so pairs are unioned rather than keyed by host.
    ExtraHosts,
    /// A string or a list of entries; a string is a one-entry list, and
    /// lists append.
    StringOrList,
    /// A list of names or a mapping from name to options; a listed name
    /// stands for `name: <defaults>`.
    NameMap(NameDefaults),
    /// `build`: a string is `{context: <string>}`.
    Build,
    /// `logging`: options merge only when both sides name the same driver.
    Logging,
    /// `networks.*.ipam.config`: entries are matched by `subnet`.
    IpamConfig,
}

/// What a name listed in short syntax means in mapping form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameDefaults {
    /// `networks`, `models`: `name: null`.
    Null,
    /// `depends_on`: `name: {condition: service_started, required: true}`.
    DependsOn,
}

/// Patterns are matched in order; the first match wins.
const RULES: &[(&str, Rule)] = &[
    ("services.*.command", Rule::Replace),
    ("services.*.entrypoint", Rule::Replace),
    ("services.*.healthcheck.test", Rule::Replace),
    // compose-go replaces ulimit entries (`nproc: 10` over `nproc: {soft:
    // 1, hard: 2}` and the other way round); the cases check it.
    ("services.*.ulimits.*", Rule::Replace),
    ("services.*.build.ulimits.*", Rule::Replace),
    // `file` and `service` name one target together: merging them key by
    // key could pair one file's `file` with another file's `service`.
    ("services.*.extends", Rule::Replace),
    // Runtime flags are one command line, like `command`.
    ("models.*.runtime_flags", Rule::Replace),
    ("services.*.environment", Rule::KeyValue),
    ("services.*.labels", Rule::KeyValue),
    ("services.*.annotations", Rule::KeyValue),
    ("services.*.sysctls", Rule::KeyValue),
    ("services.*.build.args", Rule::KeyValue),
    ("services.*.build.labels", Rule::KeyValue),
    ("services.*.build.additional_contexts", Rule::KeyValue),
    ("services.*.build.ssh", Rule::KeyValue),
    ("services.*.deploy.labels", Rule::KeyValue),
    ("networks.*.labels", Rule::KeyValue),
    ("volumes.*.labels", Rule::KeyValue),
    ("secrets.*.labels", Rule::KeyValue),
    ("configs.*.labels", Rule::KeyValue),
    ("services.*.extra_hosts", Rule::ExtraHosts),
    ("services.*.build.extra_hosts", Rule::ExtraHosts),
    ("services.*.dns", Rule::StringOrList),
    ("services.*.dns_opt", Rule::StringOrList),
    ("services.*.dns_search", Rule::StringOrList),
    ("services.*.env_file", Rule::StringOrList),
    ("services.*.label_file", Rule::StringOrList),
    ("services.*.tmpfs", Rule::StringOrList),
    ("services.*.networks", Rule::NameMap(NameDefaults::Null)),
    ("services.*.models", Rule::NameMap(NameDefaults::Null)),
    (
        "services.*.depends_on",
        Rule::NameMap(NameDefaults::DependsOn),
    ),
    ("services.*.build", Rule::Build),
    ("services.*.logging", Rule::Logging),
    ("networks.*.ipam.config", Rule::IpamConfig),
    ("services.*.gpus", Rule::EitherForm),
    ("services.*.provider.options.*", Rule::EitherForm),
    ("networks.*.external", Rule::EitherForm),
    ("volumes.*.external", Rule::EitherForm),
    ("secrets.*.external", Rule::EitherForm),
    ("configs.*.external", Rule::EitherForm),
];

pub(crate) fn rule_for(path: &DocPath) -> Rule {
    RULES
        .iter()
        .find(|(pattern, _)| path.matches(pattern))
        .map_or(Rule::Default, |(_, rule)| *rule)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(dotted: &str) -> DocPath {
        dotted
            .split('.')
            .fold(DocPath::root(), |path, key| path.key(key))
    }

    #[test]
    fn finds_the_rule_for_a_path() {
        assert_eq!(rule_for(&path("services.web.command")), Rule::Replace);
        assert_eq!(rule_for(&path("services.web.environment")), Rule::KeyValue);
        assert_eq!(
            rule_for(&path("services.web.ulimits.nofile")),
            Rule::Replace
        );
        assert_eq!(rule_for(&path("services.web.image")), Rule::Default);
        assert_eq!(rule_for(&path("x-web.command")), Rule::Default);
        assert_eq!(
            rule_for(&path("services.web.depends_on")),
            Rule::NameMap(NameDefaults::DependsOn)
        );
    }
}
