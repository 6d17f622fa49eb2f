//! `WWW-Authenticate` challenges (RFC 7235): which scheme a registry wants
//! and, for bearer tokens, where to get one.

/// What a registry asked for in its 401 answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// HTTP basic authentication with the user's credentials.
    Basic,
    /// A token from `realm`, for `service`, covering `scope` if the registry
    /// named one.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
}

/// Reads the first challenge berth can answer from a `WWW-Authenticate`
/// value; `None` when it names only schemes berth does not speak.
pub fn parse(header: &str) -> Option<Challenge> {
    let mut rest = header.trim();
    while !rest.is_empty() {
        let (scheme, after) = split_token(rest);
        let (params, next) = parse_params(after);
        match scheme.to_ascii_lowercase().as_str() {
            "basic" => return Some(Challenge::Basic),
            "bearer" => {
                let get = |k: &str| {
                    params
                        .iter()
                        .find(|(name, _)| name.eq_ignore_ascii_case(k))
                        .map(|(_, v)| v.clone())
                };
                if let Some(realm) = get("realm") {
                    return Some(Challenge::Bearer {
                        realm,
                        service: get("service"),
                        scope: get("scope"),
                    });
                }
            }
            _ => {}
        }
        rest = next.trim_start_matches([',', ' ']);
    }
    None
}

fn split_token(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let end = s
        .find(|c: char| c.is_whitespace() || c == ',')
        .unwrap_or(s.len());
    (&s[..end], &s[end..])
}

/// Parses `k=v, k="quoted, v"` pairs until the next scheme starts (a token
/// not followed by `=`). Returns the pairs and the unparsed rest.
fn parse_params(mut s: &str) -> (Vec<(String, String)>, &str) {
    let mut out = Vec::new();
    loop {
        let trimmed = s.trim_start_matches([' ', ',', '\t']);
        let Some(eq) = trimmed.find('=') else {
            return (out, trimmed);
        };
        let name = &trimmed[..eq];
        if name.is_empty() || name.contains([' ', ',', '"']) {
            // A new scheme (`Basic realm=...` after a bearer challenge).
            return (out, trimmed);
        }
        let value_part = &trimmed[eq + 1..];
        let (value, after) = if let Some(quoted) = value_part.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, escaped)) = chars.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    _ => value.push(c),
                }
            }
            (value, &quoted[end.min(quoted.len())..])
        } else {
            let end = value_part.find([',', ' ']).unwrap_or(value_part.len());
            (value_part[..end].to_owned(), &value_part[end..])
        };
        out.push((name.to_owned(), value));
        s = after;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_with_quoted_params() {
        let c = parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull,push""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/alpine:pull,push".into()),
            })
        );
    }

    #[test]
    fn basic_and_case() {
        assert_eq!(
            parse(r#"basic realm="basic-realm""#),
            Some(Challenge::Basic)
        );
    }

    #[test]
    fn unknown_then_bearer() {
        let c = parse(r#"Negotiate, Bearer realm="http://127.0.0.1:1/t""#);
        assert!(matches!(c, Some(Challenge::Bearer { .. })), "{c:?}");
    }

    #[test]
    fn bearer_without_realm_is_unusable() {
        assert_eq!(parse(r#"Bearer service="x""#), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn escaped_quote() {
        let c = parse(r#"Bearer realm="http://a/\"b\"""#);
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: r#"http://a/"b""#.into(),
                service: None,
                scope: None
            })
        );
    }
}
