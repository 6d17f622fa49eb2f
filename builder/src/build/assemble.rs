//! Writing the target stage out as an image: the config blob (with the
//! `--label`s and settled history timestamps), the OCI manifest, and the
//! `-t` names in the store's index.

use berth_runtime::image::{Image, Manifest};
use berth_runtime::store::{Descriptor, Platform as OciPlatform, media};

use super::session::Session;
use super::stage::StageState;
use super::{BuildError, BuildOutcome};

pub fn write_image(session: &Session<'_>, state: &StageState) -> Result<BuildOutcome, BuildError> {
    let mut config = state.config.clone();
    if !session.options.labels.is_empty() {
        config
            .config
            .labels
            .get_or_insert_with(Default::default)
            .extend(session.options.labels.clone());
    }
    settle_history_times(&mut config.history, &crate::time::rfc3339(session.now));
    config.created = config
        .history
        .iter()
        .rev()
        .find_map(|h| h.created.clone())
        .or_else(|| Some(crate::time::rfc3339(session.now)));

    let store = session.store;
    let config_bytes = serde_json::to_vec(&config)
        .map_err(|e| BuildError::Output(format!("cannot encode the image config: {e}")))?;
    let config_digest = store.put_bytes(&config_bytes)?;
    let config_desc = Descriptor::new(
        media::OCI_IMAGE_CONFIG,
        config_digest,
        config_bytes.len() as u64,
    );
    let manifest = Manifest::oci(
        config_desc,
        state.layers.iter().map(|l| l.descriptor.clone()).collect(),
    );
    let manifest_bytes = serde_json::to_vec(&manifest)
        .map_err(|e| BuildError::Output(format!("cannot encode the image manifest: {e}")))?;
    let manifest_digest = store.put_bytes(&manifest_bytes)?;
    let mut manifest_desc = Descriptor::new(
        media::OCI_IMAGE_MANIFEST,
        manifest_digest,
        manifest_bytes.len() as u64,
    );
    manifest_desc.platform = Some(OciPlatform {
        architecture: config.architecture.clone(),
        os: config.os.clone(),
        os_version: None,
        os_features: Vec::new(),
        variant: config.variant.clone(),
        features: Vec::new(),
    });
    for tag in &session.options.tags {
        store.set_name(&tag.to_string(), manifest_desc.clone())?;
    }
    Ok(BuildOutcome {
        image: Image {
            manifest_descriptor: manifest_desc,
            manifest,
            config_digest,
            config,
        },
        id: config_digest,
        layers: state.layers.clone(),
    })
}

/// Steps that made no layer carry no time of their own: they take the
/// time of the step before them (or after, at the start of an image), so a
/// fully cached rebuild, whose layers keep their recorded times, yields the
/// same config and the same image ID.
fn settle_history_times(history: &mut [berth_runtime::image::History], now: &str) {
    let mut last: Option<String> = None;
    for i in 0..history.len() {
        if history[i].created.as_deref().is_some_and(|c| !c.is_empty()) {
            last = history[i].created.clone();
            continue;
        }
        let fill = last.clone().or_else(|| {
            history[i + 1..]
                .iter()
                .find_map(|h| h.created.clone().filter(|c| !c.is_empty()))
        });
        history[i].created = Some(fill.unwrap_or_else(|| now.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_runtime::image::History;

    fn h(created: Option<&str>) -> History {
        History {
            created: created.map(str::to_owned),
            ..History::default()
        }
    }

    #[test]
    fn metadata_steps_take_neighbouring_times() {
        let mut hist = vec![h(None), h(Some("T1")), h(None), h(Some("")), h(Some("T2"))];
        settle_history_times(&mut hist, "NOW");
        let got: Vec<_> = hist.iter().map(|h| h.created.clone().unwrap()).collect();
        assert_eq!(got, vec!["T1", "T1", "T1", "T1", "T2"]);
        let mut only_meta = vec![h(None)];
        settle_history_times(&mut only_meta, "NOW");
        assert_eq!(only_meta[0].created.as_deref(), Some("NOW"));
    }
}
