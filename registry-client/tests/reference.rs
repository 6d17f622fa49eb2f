//! Image references as users write them: each valid one with every accessor
//! and both printed forms, each invalid one with the message it gets, and
//! properties (never a panic, the full form parses back to itself).

use berth_registry::reference::{Reference, ReferenceError};
use proptest::prelude::*;

/// `sha256` of the empty string: a real digest, 64 lowercase hex digits.
const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

fn sha256() -> String {
    format!("sha256:{HEX}")
}

/// One valid input and what it must become.
struct Valid {
    input: String,
    display: String,
    familiar: String,
    registry: &'static str,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// Builds a [`Valid`]; `@D` in any string stands for the sha256 digest.
fn ok(
    input: &str,
    display: &str,
    familiar: &str,
    registry: &'static str,
    repository: &str,
    tag: Option<&str>,
    digest: Option<&str>,
) -> Valid {
    let d = |s: &str| s.replace("@D", &format!("@{}", sha256()));
    Valid {
        input: d(input),
        display: d(display),
        familiar: d(familiar),
        registry,
        repository: repository.to_string(),
        tag: tag.map(str::to_string),
        digest: digest.map(|s| if s == "D" { sha256() } else { s.to_string() }),
    }
}

#[rustfmt::skip]
fn valid_cases() -> Vec<Valid> {
    let long_tag = "t".repeat(128);
    let path_255 = "a".repeat(247); // "library/" + 247 = 255
    let org_255 = format!("org/{}", "b".repeat(251));
    let hex63 = &HEX[..63];
    let sha512 = format!("sha512:{}", "ab".repeat(64));
    let sha384 = format!("sha384:{}", "cd".repeat(48));
    let blake3 = format!("blake3:{HEX}");
    let multi = format!("sha256+b64u:{}", &HEX[..40]);
    let upper_hex_other = format!("foo:{}", HEX.to_uppercase());
    vec![
        // Docker Hub official images, every way of writing them.
        ok("alpine", "docker.io/library/alpine", "alpine", "docker.io", "library/alpine", None, None),
        ok("alpine:3.19", "docker.io/library/alpine:3.19", "alpine:3.19", "docker.io", "library/alpine", Some("3.19"), None),
        ok("library/alpine", "docker.io/library/alpine", "alpine", "docker.io", "library/alpine", None, None),
        ok("docker.io/alpine", "docker.io/library/alpine", "alpine", "docker.io", "library/alpine", None, None),
        ok("docker.io/library/alpine", "docker.io/library/alpine", "alpine", "docker.io", "library/alpine", None, None),
        ok("index.docker.io/library/alpine", "docker.io/library/alpine", "alpine", "docker.io", "library/alpine", None, None),
        ok("index.docker.io/alpine:edge", "docker.io/library/alpine:edge", "alpine:edge", "docker.io", "library/alpine", Some("edge"), None),
        ok("docker.io/library/alpine:latest@D", "docker.io/library/alpine:latest@D", "alpine:latest@D", "docker.io", "library/alpine", Some("latest"), Some("D")),
        ok("alpine@D", "docker.io/library/alpine@D", "alpine@D", "docker.io", "library/alpine", None, Some("D")),
        ok("app:1@D", "docker.io/library/app:1@D", "app:1@D", "docker.io", "library/app", Some("1"), Some("D")),
        // Docker Hub user repositories.
        ok("org/app", "docker.io/org/app", "org/app", "docker.io", "org/app", None, None),
        ok("docker.io/org/app:1", "docker.io/org/app:1", "org/app:1", "docker.io", "org/app", Some("1"), None),
        ok("org/team/app", "docker.io/org/team/app", "org/team/app", "docker.io", "org/team/app", None, None),
        // `library/` stays when more components follow it.
        ok("docker.io/library/a/b", "docker.io/library/a/b", "library/a/b", "docker.io", "library/a/b", None, None),
        // localhost, with and without a port.
        ok("localhost/app", "localhost/app", "localhost/app", "localhost", "app", None, None),
        ok("localhost:5000/app:1", "localhost:5000/app:1", "localhost:5000/app:1", "localhost:5000", "app", Some("1"), None),
        ok("localhost:5000/app:1@D", "localhost:5000/app:1@D", "localhost:5000/app:1@D", "localhost:5000", "app", Some("1"), Some("D")),
        // Without a `/`, `localhost` is an image name and `:5000` its tag.
        ok("localhost", "docker.io/library/localhost", "localhost", "docker.io", "library/localhost", None, None),
        ok("localhost:5000", "docker.io/library/localhost:5000", "localhost:5000", "docker.io", "library/localhost", Some("5000"), None),
        ok("example.com", "docker.io/library/example.com", "example.com", "docker.io", "library/example.com", None, None),
        // IP addresses.
        ok("127.0.0.1:5000/org/app@D", "127.0.0.1:5000/org/app@D", "127.0.0.1:5000/org/app@D", "127.0.0.1:5000", "org/app", None, Some("D")),
        ok("1.2.3.4/app", "1.2.3.4/app", "1.2.3.4/app", "1.2.3.4", "app", None, None),
        ok("[::1]:5000/app", "[::1]:5000/app", "[::1]:5000/app", "[::1]:5000", "app", None, None),
        ok("[::1]/app", "[::1]/app", "[::1]/app", "[::1]", "app", None, None),
        ok("[2001:DB8::1]:443/org/app:v2", "[2001:DB8::1]:443/org/app:v2", "[2001:DB8::1]:443/org/app:v2", "[2001:DB8::1]:443", "org/app", Some("v2"), None),
        // Other registries.
        ok("ghcr.io/org/sub/app", "ghcr.io/org/sub/app", "ghcr.io/org/sub/app", "ghcr.io", "org/sub/app", None, None),
        ok("example.com/app", "example.com/app", "example.com/app", "example.com", "app", None, None),
        ok("example:5000/app", "example:5000/app", "example:5000/app", "example:5000", "app", None, None),
        ok("my-registry.example.com:8443/team/app:2024.01", "my-registry.example.com:8443/team/app:2024.01", "my-registry.example.com:8443/team/app:2024.01", "my-registry.example.com:8443", "team/app", Some("2024.01"), None),
        ok("xn--n3h.com/myimage", "xn--n3h.com/myimage", "xn--n3h.com/myimage", "xn--n3h.com", "myimage", None, None),
        ok("registry-1.docker.io/library/alpine", "registry-1.docker.io/library/alpine", "registry-1.docker.io/library/alpine", "registry-1.docker.io", "library/alpine", None, None),
        // Registries may have uppercase; only the exact `docker.io` is Hub.
        ok("UPPER.io/app", "UPPER.io/app", "UPPER.io/app", "UPPER.io", "app", None, None),
        ok("Docker.io/app", "Docker.io/app", "Docker.io/app", "Docker.io", "app", None, None),
        // Docker takes an uppercase first component as a registry host.
        ok("Foo/bar", "Foo/bar", "Foo/bar", "Foo", "bar", None, None),
        // Separators.
        ok("a__b", "docker.io/library/a__b", "a__b", "docker.io", "library/a__b", None, None),
        ok("a--b", "docker.io/library/a--b", "a--b", "docker.io", "library/a--b", None, None),
        ok("a---b", "docker.io/library/a---b", "a---b", "docker.io", "library/a---b", None, None),
        ok("a_b.c-d", "docker.io/library/a_b.c-d", "a_b.c-d", "docker.io", "library/a_b.c-d", None, None),
        ok("a", "docker.io/library/a", "a", "docker.io", "library/a", None, None),
        ok("0", "docker.io/library/0", "0", "docker.io", "library/0", None, None),
        ok("a/b/c/d/e", "docker.io/a/b/c/d/e", "a/b/c/d/e", "docker.io", "a/b/c/d/e", None, None),
        // Tags keep their case and may start with `_`.
        ok("app:Latest", "docker.io/library/app:Latest", "app:Latest", "docker.io", "library/app", Some("Latest"), None),
        ok("app:_x", "docker.io/library/app:_x", "app:_x", "docker.io", "library/app", Some("_x"), None),
        ok("app:v1.2.3-rc.1_b", "docker.io/library/app:v1.2.3-rc.1_b", "app:v1.2.3-rc.1_b", "docker.io", "library/app", Some("v1.2.3-rc.1_b"), None),
        ok(&format!("app:{long_tag}"), &format!("docker.io/library/app:{long_tag}"), &format!("app:{long_tag}"), "docker.io", "library/app", Some(&long_tag), None),
        // Digests of other algorithms.
        ok(&format!("app@{sha512}"), &format!("docker.io/library/app@{sha512}"), &format!("app@{sha512}"), "docker.io", "library/app", None, Some(&sha512)),
        ok(&format!("app@{sha384}"), &format!("docker.io/library/app@{sha384}"), &format!("app@{sha384}"), "docker.io", "library/app", None, Some(&sha384)),
        ok(&format!("app@{blake3}"), &format!("docker.io/library/app@{blake3}"), &format!("app@{blake3}"), "docker.io", "library/app", None, Some(&blake3)),
        ok(&format!("app@{multi}"), &format!("docker.io/library/app@{multi}"), &format!("app@{multi}"), "docker.io", "library/app", None, Some(&multi)),
        ok(&format!("app@{upper_hex_other}"), &format!("docker.io/library/app@{upper_hex_other}"), &format!("app@{upper_hex_other}"), "docker.io", "library/app", None, Some(&upper_hex_other)),
        // Hex that is not exactly an image ID is a name.
        ok(hex63, &format!("docker.io/library/{hex63}"), hex63, "docker.io", &format!("library/{hex63}"), None, None),
        ok(&format!("{HEX}:1"), &format!("docker.io/library/{HEX}:1"), &format!("{HEX}:1"), "docker.io", &format!("library/{HEX}"), Some("1"), None),
        // The longest repositories allowed.
        ok(&path_255, &format!("docker.io/library/{path_255}"), &path_255, "docker.io", &format!("library/{path_255}"), None, None),
        ok(&org_255, &format!("docker.io/{org_255}"), &org_255, "docker.io", &org_255, None, None),
    ]
}

#[test]
fn valid_references() {
    let cases = valid_cases();
    assert!(cases.len() >= 50, "{} valid cases", cases.len());
    for case in &cases {
        let r = Reference::parse(&case.input)
            .unwrap_or_else(|e| panic!("{:?} should parse, got: {e}", case.input));
        assert_eq!(r.to_string(), case.display, "Display of {:?}", case.input);
        assert_eq!(
            r.familiar(),
            case.familiar,
            "familiar() of {:?}",
            case.input
        );
        assert_eq!(
            r.registry(),
            case.registry,
            "registry() of {:?}",
            case.input
        );
        assert_eq!(
            r.repository(),
            case.repository,
            "repository() of {:?}",
            case.input
        );
        assert_eq!(r.tag(), case.tag.as_deref(), "tag() of {:?}", case.input);
        assert_eq!(
            r.digest(),
            case.digest.as_deref(),
            "digest() of {:?}",
            case.input
        );
        assert_eq!(r.name(), format!("{}/{}", case.registry, case.repository));
        // The full form parses back to the same reference.
        assert_eq!(
            Reference::parse(&case.display).as_ref(),
            Ok(&r),
            "{:?}",
            case.display
        );
        let via_from_str: Reference = case.input.parse().expect("FromStr agrees with parse");
        assert_eq!(via_from_str, r);
    }
}

/// One invalid input and the message it must get. A message ending in `…`
/// is compared as a prefix.
#[rustfmt::skip]
fn invalid_cases() -> Vec<(String, String)> {
    let e = |input: &str, msg: &str| (input.to_string(), msg.to_string());
    let upper_hex = HEX.to_uppercase();
    let too_long = "a".repeat(248);
    let org_too_long = format!("org/{}", "b".repeat(252));
    vec![
        e("", "invalid reference format \"\": the reference is empty; name an image, e.g. alpine:3.20"),
        e("Alpine", "invalid reference format \"Alpine\": repository name must be lowercase (did you mean \"alpine\"?)"),
        // A `:` before the first `/` makes that part a registry.
        e("alpine:Latest/x", "invalid reference format \"alpine:Latest/x\": registry \"alpine:Latest\" is not a valid host: port \"Latest\" is not a number"),
        e("docker.io/Org/App:1", "invalid reference format \"docker.io/Org/App:1\": repository name must be lowercase (did you mean \"docker.io/org/app:1\"?)"),
        e("UPPER.io/App", "invalid reference format \"UPPER.io/App\": repository name must be lowercase (did you mean \"UPPER.io/app\"?)"),
        // Lowercased it is an image ID: no suggestion.
        e(&upper_hex, &format!("invalid reference format \"{upper_hex}\": repository name must be lowercase")),
        e("ÄPP", "invalid reference format \"ÄPP\": repository name must be lowercase"),
        e("app:", "invalid reference format \"app:\": tag is empty; remove the \":\" or write a tag after it"),
        e("ghcr.io/org/app:", "invalid reference format \"ghcr.io/org/app:\": tag is empty…"),
        e(&format!("app:@{}", sha256()), "invalid reference format \"app:@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\": tag is empty…"),
        e(":tag", "invalid reference format \":tag\": the repository name is empty"),
        e(&format!("@{}", sha256()), "invalid reference format \"@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\": the repository name is empty"),
        e("app:tag:tag", "invalid reference format \"app:tag:tag\": invalid tag \"tag:tag\": a reference has at most one tag, and this one has a second \":\""),
        e("app:.x", "invalid reference format \"app:.x\": invalid tag \".x\": a tag must start with a letter, digit or \"_\""),
        e("app:-x", "invalid reference format \"app:-x\": invalid tag \"-x\": a tag must start with a letter, digit or \"_\""),
        e(&format!("app:{}", "t".repeat(129)), &format!("invalid reference format \"app:{}…\" (133 characters): invalid tag \"{}…\" (129 characters): a tag has at most 128 characters, this one has 129", "t".repeat(44), "t".repeat(48))),
        e("app:a b", "invalid reference format \"app:a b\": invalid tag \"a b\": ' ' cannot appear in a tag (letters, digits, \"_\", \".\" and \"-\" only)"),
        e("foo/bar:1/baz", "invalid reference format \"foo/bar:1/baz\": invalid tag \"1/baz\": '/' cannot appear in a tag…"),
        e("app@sha256:short", "invalid reference format \"app@sha256:short\": invalid digest \"sha256:short\": 's' is not a hex digit"),
        e("app@sha256:abc", "invalid reference format \"app@sha256:abc\": invalid digest \"sha256:abc\": a sha256 digest has 64 hex digits, this one has 3"),
        e(&format!("app@sha256:{}", &HEX[..63]), "invalid reference format \"app@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85\": invalid digest…"),
        e(&format!("app@sha256:{upper_hex}"), "invalid reference format \"app@sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855\": invalid digest \"sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855\": a sha256 digest is written in lowercase hex"),
        e(&format!("app@SHA256:{HEX}"), "invalid reference format \"app@SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\": invalid digest \"SHA256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\": digest algorithm \"SHA256\" is not valid…"),
        e(&format!("app@sha512:{HEX}"), "invalid reference format \"app@sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\": invalid digest…"),
        e("app@md5:0123456789abcdef", "invalid reference format \"app@md5:0123456789abcdef\": invalid digest \"md5:0123456789abcdef\": a digest has at least 32 hex digits, this one has 16"),
        e("app@1sha:0123456789abcdef0123456789abcdef", "invalid reference format \"app@1sha:0123456789abcdef0123456789abcdef\": invalid digest \"1sha:0123456789abcdef0123456789abcdef\": digest algorithm \"1sha\" is not valid…"),
        e("app@", "invalid reference format \"app@\": invalid digest \"\": a digest is ALGORITHM:HEX, e.g. sha256: and 64 hex digits"),
        e("app@:abc", "invalid reference format \"app@:abc\": invalid digest \":abc\": the digest algorithm before \":\" is empty"),
        e(&format!("app@{}@x", sha256()), "invalid reference format \"app@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855@x\": invalid digest…"),
        e("-app", "invalid reference format \"-app\": repository name component \"-app\" must start with a lowercase letter or digit"),
        e("app-", "invalid reference format \"app-\": repository name component \"app-\" must end with a lowercase letter or digit"),
        e("_app", "invalid reference format \"_app\": repository name component \"_app\" must start with a lowercase letter or digit"),
        e("app/", "invalid reference format \"app/\": the repository name \"app/\" ends with \"/\"; remove it"),
        e("a//b", "invalid reference format \"a//b\": the repository name \"a//b\" has an empty component (\"//\")"),
        e("/app", "invalid reference format \"/app\": the repository name starts with \"/\""),
        e("a..b", "invalid reference format \"a..b\": \"..\" in \"a..b\" is not a separator: use one \".\", one or two \"_\", or dashes"),
        e("a___b", "invalid reference format \"a___b\": \"___\" in \"a___b\" is not a separator…"),
        e("a_-b", "invalid reference format \"a_-b\": \"_-\" in \"a_-b\" is not a separator…"),
        e("a.-b", "invalid reference format \"a.-b\": \".-\" in \"a.-b\" is not a separator…"),
        e("a b", "invalid reference format \"a b\": ' ' cannot appear in a repository name (lowercase letters, digits and the separators \".\", \"_\", \"__\", \"-\" only)"),
        e("app\n", "invalid reference format \"app\\n\": '\\n' cannot appear in a repository name…"),
        e("org/ap+p", "invalid reference format \"org/ap+p\": '+' cannot appear in a repository name…"),
        e(HEX, &format!("invalid reference format \"{HEX}\": cannot specify 64-byte hexadecimal strings, which look like an image ID; to pin an image by content write NAME@sha256:<hex>")),
        e(&too_long, &format!("invalid reference format \"{}…\" (248 characters): repository name is longer than 255 characters (256)", "a".repeat(48))),
        e(&org_too_long, &format!("invalid reference format \"org/{}…\" (256 characters): repository name is longer than 255 characters (256)", "b".repeat(44))),
        e("localhost/", "invalid reference format \"localhost/\": no repository name after the registry \"localhost\""),
        e("docker.io/", "invalid reference format \"docker.io/\": no repository name after the registry \"docker.io\""),
        e("localhost:abc/app", "invalid reference format \"localhost:abc/app\": registry \"localhost:abc\" is not a valid host: port \"abc\" is not a number"),
        e("localhost:/app", "invalid reference format \"localhost:/app\": registry \"localhost:\" is not a valid host: the port after \":\" is empty"),
        e("host:1:2/app", "invalid reference format \"host:1:2/app\": registry \"host:1:2\" is not a valid host: port \"1:2\" is not a number"),
        // Docker would take this as a path with no registry; nothing can
        // pull from that.
        e("my_registry.local/app", "invalid reference format \"my_registry.local/app\": registry \"my_registry.local\" is not a valid host: '_' cannot appear in a host name (letters, digits, \"-\" and \".\" only)"),
        e("-bad.io/app", "invalid reference format \"-bad.io/app\": registry \"-bad.io\" is not a valid host: host name label \"-bad\" starts or ends with \"-\""),
        e("bad..io/app", "invalid reference format \"bad..io/app\": registry \"bad..io\" is not a valid host: host name \"bad..io\" has an empty label (a leading, trailing or doubled \".\")"),
        e(".io/app", "invalid reference format \".io/app\": registry \".io\" is not a valid host: host name \".io\" has an empty label…"),
        e("[::1/app", "invalid reference format \"[::1/app\": registry \"[::1\" is not a valid host: an IPv6 address opened with \"[\" has no closing \"]\""),
        e("[]:5000/app", "invalid reference format \"[]:5000/app\": registry \"[]:5000\" is not a valid host: the brackets hold no IPv6 address"),
        // Without a `.` or `:` the brackets are read as part of a Hub name.
        e("[]/app", "invalid reference format \"[]/app\": '[' cannot appear in a repository name…"),
        e("[zz::1]:5000/app", "invalid reference format \"[zz::1]:5000/app\": registry \"[zz::1]:5000\" is not a valid host: 'z' cannot appear in a bracketed IPv6 address…"),
        e("[::1]x/app", "invalid reference format \"[::1]x/app\": registry \"[::1]x\" is not a valid host: unexpected \"x\" after the IPv6 address; write [ADDRESS]:PORT"),
        e("[::1]:/app", "invalid reference format \"[::1]:/app\": registry \"[::1]:\" is not a valid host: the port after \":\" is empty"),
        e("app:1.0/x", "invalid reference format \"app:1.0/x\": registry \"app:1.0\" is not a valid host: port \"1.0\" is not a number"),
    ]
}

#[test]
fn invalid_references() {
    let cases = invalid_cases();
    assert!(cases.len() >= 50, "{} invalid cases", cases.len());
    for (input, expected) in &cases {
        let err = match Reference::parse(input) {
            Ok(r) => panic!("{input:?} should be refused, parsed as {r}"),
            Err(e) => e.to_string(),
        };
        assert!(!err.contains('\n'), "one line: {err:?}");
        match expected.strip_suffix('…') {
            Some(prefix) => assert!(
                err.starts_with(prefix),
                "{input:?}:\n got: {err}\nwant: {expected}"
            ),
            None => assert_eq!(&err, expected, "{input:?}"),
        }
    }
}

#[test]
fn error_variants_are_typed() {
    assert_eq!(Reference::parse(""), Err(ReferenceError::Empty));
    assert_eq!(
        Reference::parse("Alpine"),
        Err(ReferenceError::Uppercase {
            input: "Alpine".into(),
            suggestion: Some("alpine".into()),
        })
    );
    assert_eq!(
        Reference::parse("app:"),
        Err(ReferenceError::EmptyTag {
            input: "app:".into()
        })
    );
    assert_eq!(
        Reference::parse(HEX),
        Err(ReferenceError::ImageId { input: HEX.into() })
    );
    assert!(matches!(
        Reference::parse(&"a".repeat(300)),
        Err(ReferenceError::TooLong { length: 308, .. })
    ));
    assert!(matches!(
        Reference::parse("a//b"),
        Err(ReferenceError::Repository { .. })
    ));
    assert!(matches!(
        Reference::parse("a_b.io/x"),
        Err(ReferenceError::Registry { .. })
    ));
    assert!(matches!(
        Reference::parse("app:-"),
        Err(ReferenceError::Tag { .. })
    ));
    assert!(matches!(
        Reference::parse("app@x:y"),
        Err(ReferenceError::Digest { .. })
    ));
}

#[test]
fn default_tag() {
    let plain = Reference::parse("alpine").unwrap().with_default_tag();
    assert_eq!(plain.to_string(), "docker.io/library/alpine:latest");
    assert_eq!(plain.familiar(), "alpine:latest");
    assert_eq!(plain.tag(), Some("latest"));
    let tagged = Reference::parse("alpine:3").unwrap().with_default_tag();
    assert_eq!(tagged.to_string(), "docker.io/library/alpine:3");
    // A digest names the image already: no tag is added.
    let pinned = Reference::parse(&format!("alpine@{}", sha256()))
        .unwrap()
        .with_default_tag();
    assert_eq!(pinned.tag(), None);
    assert_eq!(
        pinned.to_string(),
        format!("docker.io/library/alpine@{}", sha256())
    );
}

#[test]
fn with_tag() {
    let r = Reference::parse("ghcr.io/org/app:1").unwrap();
    let retagged = r.with_tag("2.0-rc_1").unwrap();
    assert_eq!(retagged.to_string(), "ghcr.io/org/app:2.0-rc_1");
    assert_eq!(r.tag(), Some("1"), "the original is left alone");
    let pinned = Reference::parse(&format!("app@{}", sha256())).unwrap();
    assert_eq!(
        pinned.with_tag("v1").unwrap().to_string(),
        format!("docker.io/library/app:v1@{}", sha256()),
        "the digest is kept"
    );
    assert_eq!(
        r.with_tag("x y").unwrap_err().to_string(),
        "invalid tag \"x y\": ' ' cannot appear in a tag (letters, digits, \"_\", \".\" and \"-\" only)"
    );
    assert_eq!(
        r.with_tag("").unwrap_err(),
        ReferenceError::InvalidTag {
            tag: String::new(),
            reason: "the tag is empty".into()
        }
    );
    assert!(r.with_tag(".hidden").is_err());
    assert!(r.with_tag(&"t".repeat(129)).is_err());
    assert!(r.with_tag(&"t".repeat(128)).is_ok());
}

#[test]
fn names() {
    let hub = Reference::parse("alpine:3").unwrap();
    assert_eq!(hub.name(), "docker.io/library/alpine");
    assert_eq!(hub.familiar_name(), "alpine");
    let user = Reference::parse("org/app").unwrap();
    assert_eq!(user.familiar_name(), "org/app");
    let local = Reference::parse("localhost:5000/app:1").unwrap();
    assert_eq!(local.name(), "localhost:5000/app");
    assert_eq!(local.familiar_name(), "localhost:5000/app");
}

#[test]
fn spellings_of_one_image_are_equal() {
    use std::collections::HashSet;
    let spellings = [
        "alpine",
        "library/alpine",
        "docker.io/alpine",
        "docker.io/library/alpine",
        "index.docker.io/alpine",
        "index.docker.io/library/alpine",
    ];
    let set: HashSet<Reference> = spellings.iter().map(|s| s.parse().unwrap()).collect();
    assert_eq!(set.len(), 1);
    assert_ne!(
        Reference::parse("alpine").unwrap(),
        Reference::parse("alpine:latest").unwrap(),
        "an explicit tag is kept apart until with_default_tag"
    );
}

/// Text built from the pieces references are made of, so random strings
/// reach the parser's interesting paths far more often than uniform ones.
fn reference_like() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("alpine".to_string()),
        Just("library".to_string()),
        Just("docker.io".to_string()),
        Just("index.docker.io".to_string()),
        Just("localhost".to_string()),
        Just("ghcr.io".to_string()),
        Just("[::1]".to_string()),
        Just("UPPER".to_string()),
        Just("/".to_string()),
        Just(":".to_string()),
        Just("@".to_string()),
        Just(":5000".to_string()),
        Just("sha256:".to_string()),
        Just(HEX.to_string()),
        Just("__".to_string()),
        Just("--".to_string()),
        Just(".".to_string()),
        "[a-z0-9]{1,4}",
        "[A-Za-z0-9_.-]{1,6}",
        "[ -~]{0,4}",
        any::<String>(),
    ];
    proptest::collection::vec(piece, 0..10).prop_map(|v| v.concat())
}

/// References that are valid by construction, from the grammar's parts.
fn valid_reference() -> impl Strategy<Value = String> {
    let component = "[a-z0-9]{1,4}(([.]|_|__|-{1,3})[a-z0-9]{1,4}){0,2}";
    let registry = prop_oneof![
        Just(String::new()),
        Just("docker.io/".to_string()),
        Just("index.docker.io/".to_string()),
        Just("localhost/".to_string()),
        Just("[::1]:5000/".to_string()),
        "[a-zA-Z0-9]{1,5}(\\.[a-zA-Z0-9]{1,5}){1,2}(:[0-9]{1,5})?/",
    ];
    let path = proptest::collection::vec(component, 1..4).prop_map(|v| v.join("/"));
    let tag = proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}");
    let digest = proptest::option::of("[a-f0-9]{64}");
    (registry, path, tag, digest).prop_map(|(registry, path, tag, digest)| {
        // A first component with a `.` would be read as a registry host,
        // and `_` is not valid in one: name Docker Hub explicitly then.
        let first = path.split('/').next().unwrap_or_default();
        let registry = if registry.is_empty() && path.contains('/') && first.contains('.') {
            "docker.io/".to_string()
        } else {
            registry
        };
        let mut s = format!("{registry}{path}");
        if let Some(tag) = tag {
            s.push(':');
            s.push_str(&tag);
        }
        if let Some(hex) = digest {
            s.push_str("@sha256:");
            s.push_str(&hex);
        }
        s
    })
}

/// Whatever parses, its full form parses back to the same reference, and
/// its familiar form does too when no part of it could be misread as a
/// registry (Docker's familiar form is lossy there, e.g. for a Hub
/// repository named `example.com/app`).
fn round_trips(r: &Reference) -> Result<(), TestCaseError> {
    let full = r.to_string();
    prop_assert_eq!(Reference::parse(&full), Ok(r.clone()), "{}", full);
    let familiar = r.familiar();
    let first = familiar.split('/').next().unwrap_or_default();
    let ambiguous = (familiar.contains('/')
        && (first == "localhost"
            || first.contains(['.', ':'])
            || first.chars().any(char::is_uppercase)))
        // A Hub repository named like an image ID.
        || (familiar.len() == 64 && familiar.bytes().all(|b| b.is_ascii_hexdigit()));
    if r.registry() != "docker.io" || !ambiguous {
        prop_assert_eq!(Reference::parse(&familiar), Ok(r.clone()), "{}", familiar);
    }
    Ok(())
}

/// An independent statement of what Docker accepts, written as regular
/// expressions straight from its reference grammar, to check the scanner
/// against. Returns (registry, repository, tag, digest) or `None`.
mod oracle {
    use regex::Regex;
    use std::sync::LazyLock;

    const COMPONENT: &str = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
    const DOMAIN: &str = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?";

    static REFERENCE: LazyLock<Regex> = LazyLock::new(|| {
        let path = format!("{COMPONENT}(?:/{COMPONENT})*");
        Regex::new(&format!(
            r"^(?:({DOMAIN})/)?({path})(?::([A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}))?(?:@([A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{{32,}}))?$"
        ))
        .unwrap()
    });

    pub fn parse(s: &str) -> Option<(String, String, Option<String>, Option<String>)> {
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        let (domain, remainder) = match s.split_once('/') {
            None => ("docker.io".to_string(), format!("library/{s}")),
            Some(("localhost", rest)) => ("localhost".to_string(), rest.to_string()),
            Some(("index.docker.io", rest)) => ("docker.io".to_string(), rest.to_string()),
            Some((first, rest)) if first.contains(['.', ':']) || first.to_lowercase() != first => {
                (first.to_string(), rest.to_string())
            }
            Some(_) => ("docker.io".to_string(), s.to_string()),
        };
        let remainder = if domain == "docker.io" && !remainder.contains('/') {
            format!("library/{remainder}")
        } else {
            remainder
        };
        let remote = remainder.split(':').next().unwrap_or_default();
        if remote.to_lowercase() != remote {
            return None;
        }
        let full = format!("{domain}/{remainder}");
        let caps = REFERENCE.captures(&full)?;
        // Docker would accept a name whose registry part is no valid host,
        // as a path without registry; berth refuses it (see the module docs).
        let registry = caps.get(1)?.as_str().to_string();
        let repository = caps.get(2)?.as_str().to_string();
        if repository.len() > 255 {
            return None;
        }
        let digest = caps.get(4).map(|m| m.as_str().to_string());
        if let Some(d) = &digest {
            let (algorithm, hex) = d.split_once(':')?;
            let lower_hex = hex.bytes().all(|b| !b.is_ascii_uppercase());
            let ok = match algorithm {
                "sha256" => hex.len() == 64 && lower_hex,
                "sha384" => hex.len() == 96 && lower_hex,
                "sha512" => hex.len() == 128 && lower_hex,
                other => other.to_lowercase() == other,
            };
            if !ok {
                return None;
            }
        }
        Some((
            registry,
            repository,
            caps.get(3).map(|m| m.as_str().to_string()),
            digest,
        ))
    }
}

fn agrees_with_oracle(s: &str) -> Result<(), TestCaseError> {
    let ours = Reference::parse(s).ok().map(|r| {
        (
            r.registry().to_string(),
            r.repository().to_string(),
            r.tag().map(str::to_string),
            r.digest().map(str::to_string),
        )
    });
    prop_assert_eq!(ours, oracle::parse(s), "{:?}", s);
    Ok(())
}

#[test]
fn table_agrees_with_oracle() {
    for case in valid_cases() {
        agrees_with_oracle(&case.input).unwrap();
    }
    for (input, _) in invalid_cases() {
        agrees_with_oracle(&input).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn never_panics_on_arbitrary_strings(s in any::<String>()) {
        if let Ok(r) = Reference::parse(&s) {
            round_trips(&r)?;
        }
    }

    #[test]
    fn reference_like_text(s in reference_like()) {
        match Reference::parse(&s) {
            Ok(r) => round_trips(&r)?,
            Err(e) => prop_assert!(!e.to_string().contains('\n'), "{}", e),
        }
        agrees_with_oracle(&s)?;
    }

    #[test]
    fn grammatical_references(s in valid_reference()) {
        let r = Reference::parse(&s);
        prop_assert!(r.is_ok(), "{:?}: {:?}", s, r);
        if let Ok(r) = r {
            round_trips(&r)?;
        }
        agrees_with_oracle(&s)?;
    }
}
