//! Typed instructions: each [`Node`] becomes an [`Instruction`] with its
//! flags read and its arguments checked the way BuildKit checks them.
//! Values stay unexpanded: variables are substituted when the build runs,
//! with the environment of that point in the stage.

use super::ast::Node;
use super::error::DockerfileError;
use super::flags::{FlagKind, Flags, parse_flags};
use super::heredoc::Heredoc;
use super::modes::Chmod;
use std::time::Duration;

/// One instruction with the source lines it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    pub kind: InstructionKind,
    pub start_line: usize,
    pub end_line: usize,
    /// The logical source line, for progress display and history.
    pub original: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstructionKind {
    From(From),
    Run(Run),
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    Copy(Copy),
    Add(Add),
    Env(Vec<KeyValue>),
    Label(Vec<KeyValue>),
    Arg(Vec<ArgDecl>),
    Expose(Vec<String>),
    Volume(Vec<String>),
    User(String),
    Workdir(String),
    Shell(Vec<String>),
    StopSignal(String),
    Healthcheck(Healthcheck),
    Onbuild(Box<Instruction>),
    Maintainer(String),
}

/// Exec form (JSON array) or shell form (one string run through SHELL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandLine {
    Exec(Vec<String>),
    Shell(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct From {
    pub image: String,
    pub platform: Option<String>,
    /// The stage name from `AS name`, lower-cased as BuildKit does.
    pub alias: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub command: CommandLine,
    pub heredocs: Vec<Heredoc>,
    pub mounts: Vec<String>,
    pub network: Option<String>,
    pub security: Option<String>,
}

/// A COPY/ADD source: a path or URL, or an inline heredoc file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Path(String),
    Heredoc(Heredoc),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    pub sources: Vec<Source>,
    pub dest: String,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<Chmod>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Add {
    pub sources: Vec<Source>,
    pub dest: String,
    pub chown: Option<String>,
    pub chmod: Option<Chmod>,
    pub link: bool,
    pub checksum: Option<String>,
    pub keep_git_dir: bool,
    /// `--unpack`: None means "archives from the context are unpacked,
    /// archives from URLs are not" (BuildKit's default).
    pub unpack: Option<bool>,
    pub exclude: Vec<String>,
}

/// ENV or LABEL pair, both still raw (quotes and variables unprocessed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    /// Written in the legacy `KEY value` form.
    pub legacy: bool,
}

/// `ARG name` or `ARG name=default` (default still raw).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDecl {
    pub name: String,
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: disable any check inherited from the base.
    None,
    Check {
        test: CommandLine,
        interval: Option<Duration>,
        timeout: Option<Duration>,
        start_period: Option<Duration>,
        start_interval: Option<Duration>,
        retries: Option<u32>,
    },
}

/// Flags each instruction accepts (BuildKit's set).
fn allowed_flags(keyword: &str) -> &'static [(&'static str, FlagKind)] {
    use FlagKind::*;
    match keyword {
        "from" => &[("platform", String)],
        "run" => &[("mount", List), ("network", String), ("security", String)],
        "copy" => &[
            ("from", String),
            ("chown", String),
            ("chmod", String),
            ("link", Bool),
            ("parents", Bool),
            ("exclude", List),
        ],
        "add" => &[
            ("chown", String),
            ("chmod", String),
            ("link", Bool),
            ("checksum", String),
            ("keep-git-dir", Bool),
            ("unpack", Bool),
            ("exclude", List),
        ],
        "healthcheck" => &[
            ("interval", String),
            ("timeout", String),
            ("start-period", String),
            ("start-interval", String),
            ("retries", String),
        ],
        _ => &[],
    }
}

/// Every instruction keyword, lower case.
pub const KEYWORDS: [&str; 18] = [
    "add",
    "arg",
    "cmd",
    "copy",
    "entrypoint",
    "env",
    "expose",
    "from",
    "healthcheck",
    "label",
    "maintainer",
    "onbuild",
    "run",
    "shell",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

impl Instruction {
    /// Types one parsed node.
    pub fn from_node(node: &Node) -> Result<Instruction, DockerfileError> {
        let fail = |msg: String| DockerfileError::new(node.start_line, node.end_line, msg);
        let keyword = node.keyword.to_ascii_lowercase();
        let upper = keyword.to_ascii_uppercase();
        let unknown = || {
            let err = fail(format!("unknown instruction {:?}", node.keyword));
            match super::suggest::closest(&keyword, KEYWORDS) {
                Some(s) => err.with_hint(format!("did you mean {}?", s.to_ascii_uppercase())),
                None => err,
            }
        };
        // Checked before the flags, whose meaning depends on the keyword.
        if !KEYWORDS.contains(&keyword.as_str()) {
            return Err(unknown());
        }
        let flags = parse_flags(&upper, &node.flags, allowed_flags(&keyword)).map_err(fail)?;
        let args = &node.args;
        let command = || -> CommandLine {
            if node.json {
                CommandLine::Exec(args.clone())
            } else {
                CommandLine::Shell(args.first().cloned().unwrap_or_default())
            }
        };
        let one_arg = |what: &str| -> Result<String, DockerfileError> {
            match args.as_slice() {
                [a] if !a.is_empty() => Ok(a.clone()),
                _ => Err(fail(format!(
                    "{upper} requires exactly one argument: {what}"
                ))),
            }
        };
        let at_least_one = |example: &str| -> Result<(), DockerfileError> {
            if args.is_empty() {
                Err(fail(format!("{upper} requires at least one argument"))
                    .with_hint(format!("e.g. {example}")))
            } else {
                Ok(())
            }
        };

        let kind = match keyword.as_str() {
            "from" => InstructionKind::From(parse_from(args, &flags).map_err(fail)?),
            "run" => {
                if args.is_empty() && node.heredocs.is_empty() {
                    return Err(
                        fail("RUN requires a command".into()).with_hint("e.g. RUN make install")
                    );
                }
                let network = flags.string("network").map(str::to_string);
                if let Some(n) = &network
                    && !n.contains('$')
                    && !matches!(n.as_str(), "default" | "none" | "host")
                {
                    return Err(fail(format!("unsupported --network={n}"))
                        .with_hint("use default, none or host"));
                }
                let security = flags.string("security").map(str::to_string);
                if let Some(s) = &security
                    && !matches!(s.as_str(), "sandbox" | "insecure")
                {
                    return Err(fail(format!("unsupported --security={s}"))
                        .with_hint("use sandbox or insecure"));
                }
                let mounts = flags.list("mount");
                for m in &mounts {
                    super::mounts::check_mount_spec(m).map_err(fail)?;
                }
                InstructionKind::Run(Run {
                    command: command(),
                    heredocs: node.heredocs.clone(),
                    mounts,
                    network,
                    security,
                })
            }
            "cmd" => InstructionKind::Cmd(command()),
            "entrypoint" => InstructionKind::Entrypoint(command()),
            "copy" | "add" => {
                let (sources, dest) = copy_operands(node).map_err(fail)?;
                let chmod = flags
                    .string("chmod")
                    .map(|c| Chmod::parse(c).map_err(|e| fail(e.to_string())))
                    .transpose()?;
                let chown = flags.string("chown").map(str::to_string);
                let exclude = flags.list("exclude");
                if keyword == "copy" {
                    let from = flags.string("from").map(str::to_string);
                    if from.as_deref() == Some("") {
                        return Err(fail(
                            "--from needs a stage name, a stage index or an image".into(),
                        ));
                    }
                    InstructionKind::Copy(Copy {
                        sources,
                        dest,
                        from,
                        chown,
                        chmod,
                        link: flags.bool("link"),
                        parents: flags.bool("parents"),
                        exclude,
                    })
                } else {
                    let checksum = flags.string("checksum").map(str::to_string);
                    if let Some(sum) = &checksum
                        && !sum.contains('$')
                    {
                        check_checksum(sum).map_err(fail)?;
                    }
                    InstructionKind::Add(Add {
                        sources,
                        dest,
                        chown,
                        chmod,
                        link: flags.bool("link"),
                        checksum,
                        keep_git_dir: flags.bool("keep-git-dir"),
                        unpack: flags.opt_bool("unpack"),
                        exclude,
                    })
                }
            }
            "env" | "label" => {
                let example = if keyword == "env" {
                    "ENV NAME=value"
                } else {
                    "LABEL org.opencontainers.image.title=app"
                };
                at_least_one(example)?;
                let pairs = args
                    .chunks(3)
                    .map(|c| KeyValue {
                        key: c.first().cloned().unwrap_or_default(),
                        value: c.get(1).cloned().unwrap_or_default(),
                        legacy: c.get(2).is_some_and(String::is_empty),
                    })
                    .collect::<Vec<_>>();
                if let Some(kv) = pairs.iter().find(|kv| kv.key.is_empty()) {
                    return Err(fail(format!(
                        "{upper} names cannot be blank (near {:?})",
                        format!("={}", kv.value)
                    )));
                }
                if keyword == "env" {
                    InstructionKind::Env(pairs)
                } else {
                    InstructionKind::Label(pairs)
                }
            }
            "arg" => {
                at_least_one("ARG VERSION=1.0")?;
                let mut decls = Vec::new();
                for word in args {
                    let (name, default) = match word.split_once('=') {
                        Some((n, v)) => (n, Some(v.to_string())),
                        None => (word.as_str(), None),
                    };
                    if name.is_empty() {
                        return Err(fail(format!("ARG names cannot be blank (in {word:?})")));
                    }
                    decls.push(ArgDecl {
                        name: name.to_string(),
                        default,
                    });
                }
                InstructionKind::Arg(decls)
            }
            "expose" => {
                at_least_one("EXPOSE 8080/tcp")?;
                for port in args.iter().filter(|p| !p.contains('$')) {
                    check_port(port).map_err(fail)?;
                }
                InstructionKind::Expose(args.clone())
            }
            "volume" => {
                at_least_one("VOLUME /data")?;
                if args.iter().any(|v| v.trim().is_empty()) {
                    return Err(fail("VOLUME paths cannot be empty".into()));
                }
                InstructionKind::Volume(args.clone())
            }
            "user" => InstructionKind::User(one_arg("USER name[:group]")?),
            "workdir" => InstructionKind::Workdir(one_arg("WORKDIR /path")?),
            "maintainer" => InstructionKind::Maintainer(one_arg("MAINTAINER name")?),
            "stopsignal" => {
                let sig = one_arg("STOPSIGNAL SIGTERM")?;
                if !sig.contains('$') {
                    check_signal(&sig).map_err(fail)?;
                }
                InstructionKind::StopSignal(sig)
            }
            "shell" => {
                if !node.json {
                    return Err(
                        fail("SHELL requires the arguments to be in JSON form".into())
                            .with_hint("e.g. SHELL [\"/bin/bash\", \"-c\"]"),
                    );
                }
                if args.is_empty() {
                    return Err(fail("SHELL requires at least one argument".into()));
                }
                InstructionKind::Shell(args.clone())
            }
            "healthcheck" => {
                InstructionKind::Healthcheck(parse_healthcheck(node, &flags).map_err(fail)?)
            }
            "onbuild" => {
                let Some(sub) = &node.sub else {
                    return Err(fail("ONBUILD requires an instruction to run later".into())
                        .with_hint("e.g. ONBUILD COPY . /app"));
                };
                let inner = sub.keyword.to_ascii_lowercase();
                if matches!(inner.as_str(), "onbuild" | "from" | "maintainer") {
                    return Err(fail(format!(
                        "{} isn't allowed as an ONBUILD trigger",
                        inner.to_ascii_uppercase()
                    )));
                }
                InstructionKind::Onbuild(Box::new(Instruction::from_node(sub)?))
            }
            _ => return Err(unknown()),
        };
        Ok(Instruction {
            kind,
            start_line: node.start_line,
            end_line: node.end_line,
            original: node.original.clone(),
        })
    }
}

fn parse_from(args: &[String], flags: &Flags) -> Result<From, String> {
    let (image, alias) = match args {
        [image] => (image, None),
        [image, kw, name] if kw.eq_ignore_ascii_case("as") => {
            (image, Some(name.to_ascii_lowercase()))
        }
        [] => {
            return Err(
                "FROM requires an image: FROM IMAGE[:TAG] [AS NAME] (or FROM scratch)".into(),
            );
        }
        _ => {
            return Err("FROM requires either one or three arguments: FROM IMAGE [AS NAME]".into());
        }
    };
    if let Some(name) = &alias
        && !valid_stage_name(name)
    {
        return Err(format!(
            "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
        ));
    }
    Ok(From {
        image: image.clone(),
        platform: flags.string("platform").map(str::to_string),
        alias,
    })
}

/// BuildKit's rule: a letter, then letters, digits, `-`, `_` or `.`.
pub fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
}

/// Splits COPY/ADD arguments into sources and destination, turning
/// `<<NAME` words into their heredoc bodies.
fn copy_operands(node: &Node) -> Result<(Vec<Source>, String), String> {
    let keyword = node.keyword.to_ascii_uppercase();
    let Some((dest, sources)) = node.args.split_last() else {
        return Err(format!(
            "{keyword} requires at least two arguments: {keyword} SOURCE... DEST"
        ));
    };
    if sources.is_empty() {
        return Err(format!(
            "{keyword} requires at least two arguments, but only the destination {dest:?} was given: {keyword} SOURCE... DEST"
        ));
    }
    // Heredoc words stand for their bodies, which the parser attached in
    // the same order.
    let mut heredocs = node.heredocs.iter().peekable();
    let sources = sources
        .iter()
        .map(|s| {
            let is_heredoc =
                !node.json && matches!(super::heredoc::parse_heredoc_word(s), Ok(Some(_)));
            match heredocs.next_if(|_| is_heredoc) {
                Some(h) => Source::Heredoc(h.clone()),
                None => Source::Path(s.clone()),
            }
        })
        .collect();
    Ok((sources, dest.clone()))
}

fn check_checksum(sum: &str) -> Result<(), String> {
    let Some((algo, hex)) = sum.split_once(':') else {
        return Err(format!(
            "invalid --checksum {sum:?}: expected ALGORITHM:HEX, e.g. sha256:…"
        ));
    };
    let want = match algo {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => {
            return Err(format!(
                "unsupported --checksum algorithm {algo:?}: use sha256, sha384 or sha512"
            ));
        }
    };
    if hex.len() != want
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!(
            "invalid --checksum {sum:?}: {algo} needs {want} lowercase hex digits"
        ));
    }
    Ok(())
}

/// `PORT`, `PORT/PROTO` or `START-END[/PROTO]`, as `docker` accepts them.
fn check_port(spec: &str) -> Result<(), String> {
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto),
        None => (spec, "tcp"),
    };
    if !matches!(proto.to_ascii_lowercase().as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!(
            "invalid protocol in EXPOSE {spec:?}: use tcp, udp or sctp"
        ));
    }
    let port = |p: &str| p.parse::<u16>().ok();
    let ok = match ports.split_once('-') {
        Some((a, b)) => matches!((port(a), port(b)), (Some(a), Some(b)) if a <= b),
        None => port(ports).is_some(),
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid port in EXPOSE {spec:?}: expected PORT[/PROTO] or START-END[/PROTO], ports 0-65535"
        ))
    }
}

/// Signal names Linux knows (with or without `SIG`), or numbers.
fn check_signal(sig: &str) -> Result<(), String> {
    const NAMES: [&str; 31] = [
        "ABRT", "ALRM", "BUS", "CHLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
        "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP",
        "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH",
    ];
    if sig.parse::<u8>().is_ok_and(|n| n > 0) {
        return Ok(());
    }
    let upper = sig.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let realtime = name
        .strip_prefix("RTMIN")
        .or_else(|| name.strip_prefix("RTMAX"))
        .is_some_and(|r| r.is_empty() || r.trim_start_matches(['+', '-']).parse::<u8>().is_ok());
    if NAMES.contains(&name) || realtime {
        Ok(())
    } else {
        Err(format!(
            "invalid STOPSIGNAL {sig:?}: use a signal name like SIGTERM or a number"
        ))
    }
}

fn parse_healthcheck(node: &Node, flags: &Flags) -> Result<Healthcheck, String> {
    let Some(kind) = node.args.first() else {
        return Err("HEALTHCHECK requires CMD or NONE: HEALTHCHECK [OPTIONS] CMD command".into());
    };
    match kind.to_ascii_uppercase().as_str() {
        "NONE" => {
            if node.args.len() > 1 || !node.flags.is_empty() {
                return Err("HEALTHCHECK NONE takes no arguments or flags".into());
            }
            Ok(Healthcheck::None)
        }
        "CMD" => {
            let rest = &node.args[1..];
            if rest.is_empty() {
                return Err("missing command after HEALTHCHECK CMD".into());
            }
            let test = if node.json {
                CommandLine::Exec(rest.to_vec())
            } else {
                CommandLine::Shell(rest.join(" "))
            };
            let duration = |name: &str| -> Result<Option<Duration>, String> {
                let Some(text) = flags.string(name) else {
                    return Ok(None);
                };
                let d = parse_go_duration(text).map_err(|e| format!("--{name}={text}: {e}"))?;
                if !d.is_zero() && d < Duration::from_millis(1) {
                    return Err(format!("--{name}={text} cannot be less than 1ms"));
                }
                Ok(Some(d))
            };
            let retries = flags
                .string("retries")
                .map(|r| {
                    r.parse::<u32>()
                        .map_err(|_| format!("--retries={r}: expected a whole number ≥ 0"))
                })
                .transpose()?;
            Ok(Healthcheck::Check {
                test,
                interval: duration("interval")?,
                timeout: duration("timeout")?,
                start_period: duration("start-period")?,
                start_interval: duration("start-interval")?,
                retries,
            })
        }
        other => Err(format!(
            "unknown type {other:?} in HEALTHCHECK (try CMD or NONE)"
        )),
    }
}

/// Go's `time.ParseDuration` format (`1m30s`, `500ms`, `1.5h`), which
/// Docker uses for HEALTHCHECK options. Negative durations are rejected.
pub fn parse_go_duration(text: &str) -> Result<Duration, String> {
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() || text.starts_with('-') {
        return Err("expected a duration like 30s, 1m30s or 500ms".into());
    }
    let text = text.strip_prefix('+').unwrap_or(text);
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..num_len].parse().map_err(|_| {
            format!("invalid duration {text:?}: expected a duration like 30s, 1m30s or 500ms")
        })?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("missing unit in duration {text:?} (e.g. 30s)")),
            u => {
                return Err(format!(
                    "unknown unit {u:?} in duration {text:?}: use ns, us, ms, s, m or h"
                ));
            }
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|_| format!("duration {text:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse_go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("0"), Ok(Duration::ZERO));
        assert!(parse_go_duration("5").is_err());
        assert!(parse_go_duration("5x").is_err());
        assert!(parse_go_duration("-1s").is_err());
    }

    #[test]
    fn ports_and_signals() {
        assert!(check_port("80").is_ok());
        assert!(check_port("8000-8010/udp").is_ok());
        assert!(check_port("80/xyz").is_err());
        assert!(check_port("99999").is_err());
        assert!(check_signal("SIGTERM").is_ok());
        assert!(check_signal("kill").is_ok());
        assert!(check_signal("9").is_ok());
        assert!(check_signal("SIGRTMIN+3").is_ok());
        assert!(check_signal("SIGFOO").is_err());
    }

    #[test]
    fn heredoc_words_become_inline_sources() {
        let df =
            crate::dockerfile::parse(b"FROM scratch\nCOPY <<A b <<-'C' /dest/\nx\nA\n\ty\nC\n")
                .unwrap();
        let InstructionKind::Copy(copy) = Instruction::from_node(&df.nodes[1]).unwrap().kind else {
            panic!("not a COPY");
        };
        assert_eq!(copy.dest, "/dest/");
        assert!(
            matches!(&copy.sources[0], Source::Heredoc(h) if h.name == "A" && h.content == "x\n")
        );
        assert_eq!(copy.sources[1], Source::Path("b".into()));
        assert!(
            matches!(&copy.sources[2], Source::Heredoc(h) if h.name == "C" && h.chomp && !h.expand)
        );
    }

    #[test]
    fn stage_names() {
        assert!(valid_stage_name("build-env_1.x"));
        assert!(!valid_stage_name("1build"));
        assert!(!valid_stage_name("a/b"));
    }
}
