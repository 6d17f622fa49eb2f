//! The project model printed as `docker compose config` prints it.
//!
//! Printed values are compose input again, and compose input is
//! interpolated: every `$` in a value is printed as `$$`, so that reading
//! the output back gives the same project (keys are never interpolated and
//! are printed as they are).

use crate::model::Project;

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("{0}")]
    Yaml(#[from] serde_saphyr::SerializeError),
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}

/// The project as YAML, sequences indented under their key as compose
/// prints them.
pub fn yaml(project: &Project) -> Result<String, RenderError> {
    let mut options = serde_saphyr::SerializerOptions::default();
    options.compact_list_indent = false;
    Ok(serde_saphyr::to_string_with_options(
        &escaped(project)?,
        options,
    )?)
}

/// The project as indented JSON, ending with a newline.
pub fn json(project: &Project) -> Result<String, RenderError> {
    let mut text = serde_json::to_string_pretty(&escaped(project)?)?;
    text.push('\n');
    Ok(text)
}

fn escaped(project: &Project) -> Result<serde_json::Value, RenderError> {
    let mut value = serde_json::to_value(project)?;
    escape_dollars(&mut value);
    Ok(value)
}

fn escape_dollars(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(text) if text.contains('$') => *text = text.replace('$', "$$"),
        Value::Array(items) => items.iter_mut().for_each(escape_dollars),
        Value::Object(map) => map.values_mut().for_each(escape_dollars),
        _ => {}
    }
}
