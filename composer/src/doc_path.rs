//! Where a value sits in a compose document, written the way errors show
//! it: `services.web.ports[1]`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Segment {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct DocPath(Vec<Segment>);

impl DocPath {
    pub fn root() -> DocPath {
        DocPath(Vec::new())
    }

    /// This path followed by a mapping key.
    pub fn key(&self, key: &str) -> DocPath {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_string()));
        DocPath(segments)
    }

    /// This path followed by a sequence index.
    pub fn index(&self, index: usize) -> DocPath {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        DocPath(segments)
    }

    pub fn push_key(&mut self, key: &str) {
        self.0.push(Segment::Key(key.to_string()));
    }

    pub fn push_index(&mut self, index: usize) {
        self.0.push(Segment::Index(index));
    }

    pub fn pop(&mut self) {
        self.0.pop();
    }

    pub fn segments(&self) -> &[Segment] {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether this path matches a pattern of dot-separated keys where `*`
    /// stands for any one key or index (`services.*.ports`).
    pub fn matches(&self, pattern: &str) -> bool {
        // Called for every value against every cast pattern: no allocation.
        let mut parts = pattern.split('.');
        let mut segments = self.0.iter();
        loop {
            match (parts.next(), segments.next()) {
                (None, None) => return true,
                (Some(part), Some(segment)) => {
                    let equal = part == "*"
                        || match segment {
                            Segment::Key(key) => key == part,
                            Segment::Index(index) => part.parse() == Ok(*index),
                        };
                    if !equal {
                        return false;
                    }
                }
                _ => return false,
            }
        }
    }
}

impl fmt::Display for DocPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => f.write_str(key)?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_keys_and_indexes() {
        let path = DocPath::root()
            .key("services")
            .key("web")
            .key("ports")
            .index(1);
        assert_eq!(path.to_string(), "services.web.ports[1]");
        assert!(path.matches("services.*.ports.*"));
        assert!(!path.matches("services.*.ports"));
        assert_eq!(DocPath::root().to_string(), "");
    }
}
