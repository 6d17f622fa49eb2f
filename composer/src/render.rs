//! The project model printed as `docker compose config` prints it.

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
    Ok(serde_saphyr::to_string_with_options(project, options)?)
}

/// The project as indented JSON, ending with a newline.
pub fn json(project: &Project) -> Result<String, RenderError> {
    let mut text = serde_json::to_string_pretty(project)?;
    text.push('\n');
    Ok(text)
}
