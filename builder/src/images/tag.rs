//! `berth tag SOURCE TARGET`: another name for an image already stored.

use berth_registry::reference::Reference;
use berth_runtime::store::{Store, media};

use super::{ImagesError, entries, select};

/// Names the image `source` (a name or ID) also `target` (a reference,
/// default tag `latest`), replacing what `target` named before. The new name
/// points at exactly what the source's name points at, so a multi-platform
/// index stays one.
pub fn tag(store: &Store, source: &str, target: &str) -> Result<(), ImagesError> {
    // Check the target first: a typo in it should not depend on the source.
    let target_ref = Reference::parse(target)?;
    if target_ref.digest().is_some() {
        return Err(ImagesError::DigestTarget {
            target: target.to_owned(),
        });
    }
    let target_ref = target_ref.with_default_tag();

    let entries = entries(store)?;
    let selection = select(&entries, source)?;
    let Some(entry) = selection.positions.first().map(|&i| &entries[i]) else {
        return Err(ImagesError::NotFound {
            name: source.to_owned(),
        });
    };
    let mut descriptor = entry.descriptor.clone();
    descriptor.annotations.remove(media::REF_NAME_ANNOTATION);
    store.set_name(&target_ref.to_string(), descriptor)?;
    Ok(())
}
