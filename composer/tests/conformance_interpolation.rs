//! Runs every case of the compose conformance data's
//! `expected/interpolation.json` (transcribed from compose-go's template and
//! interpolation tests) against berth's interpolation, and checks
//! `COMPOSE_CASTS` against the compose-spec schema.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use berth_composer::doc_path::DocPath;
use berth_composer::interpolation::{
    COMPOSE_CASTS, Cast, TemplateError, interpolate_tree, substitute,
};
use berth_composer::yaml::Node;
use serde_json::Value as J;

mod support;

use support::{DATA, Group, report};

fn load(relative: &str) -> J {
    let path = format!("{DATA}/{relative}");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn env_of(json: &J) -> HashMap<String, String> {
    json.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn str_field<'a>(case: &'a J, key: &str) -> Option<&'a str> {
    case.get(key).and_then(J::as_str)
}

fn check_template_case(case: &J, env: &HashMap<String, String>) -> Result<(), String> {
    let template = str_field(case, "template").ok_or("case without template")?;
    let result = substitute(template, &|name| env.get(name).cloned());
    if let Some(expected) = str_field(case, "expected") {
        return match result {
            Ok(got) if got == expected => Ok(()),
            other => Err(format!("expected {expected:?}, got {other:?}")),
        };
    }
    let err = match result {
        Ok(got) => return Err(format!("expected an error, got {got:?}")),
        Err(err) => err,
    };
    if let Some(part) = str_field(case, "errorContains")
        && !err.to_string().contains(part)
    {
        return Err(format!(
            "error {:?} does not contain {part:?}",
            err.to_string()
        ));
    }
    if str_field(case, "errorKind") == Some("MissingRequired") {
        let TemplateError::MissingRequired { variable, reason } = &err else {
            return Err(format!("expected MissingRequired, got {err:?}"));
        };
        if let Some(want) = str_field(case, "errorVariable")
            && want != variable
        {
            return Err(format!("variable {variable:?}, expected {want:?}"));
        }
        if let Some(want) = str_field(case, "errorReason")
            && want != reason
        {
            return Err(format!("reason {reason:?}, expected {want:?}"));
        }
    }
    Ok(())
}

/// The operator is observable through what `${inner}` gives with the
/// variable unset, empty and set: the six operators differ in at least one
/// of the three, and the text after the operator shows where it was split.
fn check_operator_case(case: &J) -> Result<(), String> {
    let inner = str_field(case, "inner").ok_or("case without inner")?;
    let op = str_field(case, "operator").ok_or("case without operator")?;
    let name = "VARNAME";
    let rest = inner
        .strip_prefix(name)
        .and_then(|r| r.strip_prefix(op))
        .ok_or("inner does not start with VARNAME and the operator")?;
    let missing = || {
        Err(TemplateError::MissingRequired {
            variable: name.to_string(),
            reason: rest.to_string(),
        })
    };
    let ok = |s: &str| Ok(s.to_string());
    // (unset, empty, set to "v")
    let expected: [Result<String, TemplateError>; 3] = match op {
        ":-" => [ok(rest), ok(rest), ok("v")],
        "-" => [ok(rest), ok(""), ok("v")],
        ":?" => [missing(), missing(), ok("v")],
        "?" => [missing(), ok(""), ok("v")],
        ":+" => [ok(""), ok(""), ok(rest)],
        "+" => [ok(""), ok(rest), ok(rest)],
        other => return Err(format!("unknown operator {other:?}")),
    };
    let template = format!("${{{inner}}}");
    for (value, want) in [None, Some(""), Some("v")].into_iter().zip(expected) {
        let got = substitute(&template, &|n| {
            (n == name).then_some(value).flatten().map(str::to_string)
        });
        if got != want {
            return Err(format!(
                "with VARNAME={value:?}: expected {want:?}, got {got:?}"
            ));
        }
    }
    Ok(())
}

fn cast_named(name: &str) -> Option<Cast> {
    match name {
        "int" => Some(Cast::Int),
        "float" => Some(Cast::Float),
        "bool" => Some(Cast::Bool),
        _ => None,
    }
}

fn check_tree_case(case: &J) -> Result<(), String> {
    let env = env_of(&case["env"]);
    let mut casts = Vec::new();
    for (pattern, name) in case
        .get("typeCasts")
        .and_then(J::as_object)
        .into_iter()
        .flatten()
    {
        let cast = name
            .as_str()
            .and_then(cast_named)
            .ok_or_else(|| format!("unknown cast {name}"))?;
        casts.push((pattern.as_str(), cast));
    }
    let mut tree = Node::from_json(&case["input"]);
    let result = interpolate_tree(&mut tree, &|n| env.get(n).cloned(), &casts);
    match (result, case.get("expected"), str_field(case, "errorEquals")) {
        (Ok(()), Some(expected), _) if tree.to_json() == *expected => Ok(()),
        (Ok(()), Some(expected), _) => Err(format!("expected {expected}, got {}", tree.to_json())),
        (Err(err), _, Some(want)) if err.to_string() == want => Ok(()),
        (Err(err), _, Some(want)) => Err(format!("error {:?}, expected {want:?}", err.to_string())),
        (result, _, _) => Err(format!("unexpected outcome {result:?}")),
    }
}

/// `test` is placed at `myservice.environment.TESTVAR`.
fn check_string_case(case: &J, env: &HashMap<String, String>) -> Result<(), String> {
    let test = str_field(case, "test").ok_or("case without test")?;
    let input = serde_json::json!({"myservice": {"environment": {"TESTVAR": test}}});
    let mut tree = Node::from_json(&input);
    let result = interpolate_tree(&mut tree, &|n| env.get(n).cloned(), &[]);
    if let Some(expected) = str_field(case, "expected") {
        let want = serde_json::json!({"myservice": {"environment": {"TESTVAR": expected}}});
        return match result {
            Ok(()) if tree.to_json() == want => Ok(()),
            Ok(()) => Err(format!("expected {expected:?}, got {}", tree.to_json())),
            Err(err) => Err(format!("unexpected error {err}")),
        };
    }
    let reason = str_field(case, "errorReason").ok_or("error case without errorReason")?;
    let want = format!(
        "error while interpolating myservice.environment.TESTVAR: \
         required variable FOO is missing a value: {reason}"
    );
    match result {
        Err(err) if err.to_string() == want => Ok(()),
        Err(err) => Err(format!("error {:?}, expected {want:?}", err.to_string())),
        Ok(()) => Err(format!("expected an error, got {}", tree.to_json())),
    }
}

fn strings(json: &J) -> Vec<String> {
    json.as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn check_path_case(case: &J) -> Result<(), String> {
    let path = strings(&case["path"])
        .iter()
        .fold(DocPath::root(), |path, key| path.key(key));
    let pattern = strings(&case["pattern"]).join(".");
    let want = case["matches"].as_bool().ok_or("case without matches")?;
    match path.matches(&pattern) {
        got if got == want => Ok(()),
        got => Err(format!("{path} vs {pattern}: got {got}")),
    }
}

fn cases<'a>(json: &'a J, pointer: &str) -> &'a [J] {
    json.pointer(pointer)
        .and_then(J::as_array)
        .map(Vec::as_slice)
        .unwrap_or_else(|| panic!("no array at {pointer}"))
}

#[test]
fn interpolation_conformance() {
    let data = load("expected/interpolation.json");

    let mut template = Group::new("template");
    let env = env_of(&data["template"]["env"]);
    for case in cases(&data, "/template/cases") {
        template.check(&case["template"], check_template_case(case, &env));
    }

    let mut operators = Group::new("operatorChoice");
    for case in cases(&data, "/operatorChoice/cases") {
        operators.check(&case["inner"], check_operator_case(case));
    }

    let mut tree = Group::new("tree");
    for (i, case) in cases(&data, "/interpolation/cases").iter().enumerate() {
        tree.check(format!("case {i}"), check_tree_case(case));
    }

    let mut string_cases = Group::new("stringCases");
    // The description gives withEnv the environment of the tree cases.
    let with_env = env_of(&data["interpolation"]["cases"][0]["env"]);
    for (pointer, env) in [
        ("/interpolation/stringCases/unsetEnv", HashMap::new()),
        ("/interpolation/stringCases/withEnv", with_env),
    ] {
        for case in cases(&data, pointer) {
            string_cases.check(&case["test"], check_string_case(case, &env));
        }
    }

    let mut paths = Group::new("pathMatching");
    for (i, case) in cases(&data, "/interpolation/pathMatching/cases")
        .iter()
        .enumerate()
    {
        paths.check(format!("case {i}"), check_path_case(case));
    }

    report(
        "interpolation conformance",
        &[template, operators, tree, string_cases, paths],
    );
}

/// Schema fields typed integer/number/boolean that are deliberately not in
/// `COMPOSE_CASTS`, because their string form carries meaning (see the
/// constant's documentation).
const LEFT_AS_STRINGS: &[&str] = &[
    // free-form maps and lists of scalars
    "configs.*.labels.*",
    "networks.*.driver_opts.*",
    "networks.*.labels.*",
    "secrets.*.driver_opts.*",
    "secrets.*.labels.*",
    "volumes.*.driver_opts.*",
    "volumes.*.labels.*",
    "services.*.annotations.*",
    "services.*.build.additional_contexts.*",
    "services.*.build.args.*",
    "services.*.build.labels.*",
    "services.*.build.ssh.*",
    "services.*.deploy.labels.*",
    "services.*.deploy.resources.reservations.devices.*.options.*",
    "services.*.develop.watch.*.exec.environment.*",
    "services.*.environment.*",
    "services.*.expose.*",
    "services.*.gpus.*.options.*",
    "services.*.group_add.*",
    "services.*.labels.*",
    "services.*.logging.options.*",
    "services.*.networks.*.driver_opts.*",
    "services.*.post_start.*.environment.*",
    "services.*.pre_start.*.environment.*",
    "services.*.pre_stop.*.environment.*",
    "services.*.provider.options.*",
    "services.*.provider.options.*.*",
    "services.*.sysctls.*",
    "services.*.volumes.*.volume.labels.*",
    // ports: ranges and host:container forms
    "services.*.ports.*",
    "services.*.ports.*.published",
    "services.*.ports.*.target",
    // sizes with units
    "services.*.blkio_config.device_read_bps.*.rate",
    "services.*.blkio_config.device_read_iops.*.rate",
    "services.*.blkio_config.device_write_bps.*.rate",
    "services.*.blkio_config.device_write_iops.*.rate",
    "services.*.build.shm_size",
    "services.*.mem_limit",
    "services.*.mem_reservation",
    "services.*.memswap_limit",
    "services.*.shm_size",
    "services.*.volumes.*.tmpfs.size",
    // octal file modes
    "services.*.build.secrets.*.mode",
    "services.*.configs.*.mode",
    "services.*.secrets.*.mode",
    "services.*.volumes.*.tmpfs.mode",
    // durations
    "services.*.cpu_rt_period",
    "services.*.cpu_rt_runtime",
    // `all`, `mode=max`
    "services.*.deploy.resources.reservations.devices.*.count",
    "services.*.gpus.*.count",
    "services.*.build.provenance",
    "services.*.build.sbom",
];

/// Every path of the schema whose `type` names integer, number or boolean,
/// with those type names (`*` for pattern/additional properties and items).
fn typed_schema_fields(schema: &J) -> BTreeMap<String, BTreeSet<String>> {
    fn walk(
        node: &J,
        defs: &J,
        path: &mut Vec<String>,
        seen: &mut Vec<String>,
        out: &mut BTreeMap<String, BTreeSet<String>>,
    ) {
        if let Some(name) = node
            .get("$ref")
            .and_then(J::as_str)
            .and_then(|r| r.rsplit('/').next())
            && !seen.iter().any(|s| s == name)
        {
            seen.push(name.to_string());
            walk(&defs[name], defs, path, seen, out);
            seen.pop();
        }
        for key in ["oneOf", "anyOf", "allOf"] {
            for branch in node.get(key).and_then(J::as_array).into_iter().flatten() {
                walk(branch, defs, path, seen, out);
            }
        }
        let types: Vec<&str> = match node.get("type") {
            Some(J::String(t)) => vec![t.as_str()],
            Some(J::Array(ts)) => ts.iter().filter_map(J::as_str).collect(),
            _ => Vec::new(),
        };
        for t in types {
            if matches!(t, "integer" | "number" | "boolean") {
                out.entry(path.join(".")).or_default().insert(t.to_string());
            }
        }
        let mut child = |key: &str, value: &J, path: &mut Vec<String>| {
            path.push(key.to_string());
            walk(value, defs, path, seen, out);
            path.pop();
        };
        for (key, value) in node
            .get("properties")
            .and_then(J::as_object)
            .into_iter()
            .flatten()
        {
            child(key, value, path);
        }
        let patterns = node.get("patternProperties").and_then(J::as_object);
        for (pattern, value) in patterns.into_iter().flatten() {
            if !pattern.starts_with("^x-") {
                child("*", value, path);
            }
        }
        for key in ["additionalProperties", "items"] {
            if let Some(value @ J::Object(_)) = node.get(key) {
                child("*", value, path);
            }
        }
    }
    let defs = schema.get("$defs").unwrap_or(&schema["definitions"]);
    let mut out = BTreeMap::new();
    walk(schema, defs, &mut Vec::new(), &mut Vec::new(), &mut out);
    out
}

#[test]
fn compose_casts_cover_the_typed_schema_fields() {
    // compose-go's copy is the maintained schema (it has `pre_start`).
    let schema = load("compose-go/schema/compose-spec.json");
    let fields = typed_schema_fields(&schema);
    let mut problems = Vec::new();
    for &(pattern, cast) in COMPOSE_CASTS {
        let accepted: &[&str] = match cast {
            Cast::Int => &["integer", "number"],
            Cast::Float => &["number"],
            Cast::Bool => &["boolean"],
        };
        match fields.get(pattern) {
            Some(types) if accepted.iter().any(|t| types.contains(*t)) => {}
            Some(types) => problems.push(format!("{pattern}: {cast:?} but schema says {types:?}")),
            None => problems.push(format!("{pattern}: not a typed schema field")),
        }
    }
    for field in fields.keys() {
        let cast = COMPOSE_CASTS.iter().any(|(p, _)| p == field);
        let left = LEFT_AS_STRINGS.contains(&field.as_str());
        if cast == left {
            problems.push(format!("{field}: cast={cast}, left as string={left}"));
        }
    }
    println!(
        "COMPOSE_CASTS: {} cast, {} left as strings, {} typed schema fields",
        COMPOSE_CASTS.len(),
        LEFT_AS_STRINGS.len(),
        fields.len()
    );
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn compose_casts_turn_typed_fields_into_values() {
    let yaml = "services:\n  web:\n    deploy:\n      replicas: \"${N}\"\n    \
                read_only: \"${RO}\"\n    cpus: \"${C}\"\n";
    let mut doc = berth_composer::yaml::parse_documents(yaml)
        .expect("valid yaml")
        .remove(0);
    let env = |n: &str| match n {
        "N" => Some("3".to_string()),
        "RO" => Some("true".to_string()),
        "C" => Some("0.5".to_string()),
        _ => None,
    };
    interpolate_tree(&mut doc, &env, COMPOSE_CASTS).expect("interpolates");
    assert_eq!(
        doc.to_json(),
        serde_json::json!({"services": {"web": {
            "deploy": {"replicas": 3}, "read_only": true, "cpus": 0.5
        }}})
    );
}
