//! `--chown` values: `user[:group]` by number or by name, names looked up
//! in the destination image's `/etc/passwd` and `/etc/group`, as BuildKit
//! does. A user given without a group uses the same number as the group.

/// A resolved owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// Why a `--chown` value could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerError(pub String);

/// Resolves `spec` (`1000`, `1000:1000`, `app`, `app:staff`, `:staff` is
/// not allowed). `passwd`/`group` are the image's files, when present.
pub fn resolve(spec: &str, passwd: Option<&str>, group: Option<&str>) -> Result<Owner, OwnerError> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() || grp.is_some_and(str::is_empty) {
        return Err(OwnerError(format!(
            "invalid --chown \"{spec}\": use USER[:GROUP], by name or number"
        )));
    }
    let uid = match user.parse::<u32>() {
        Ok(n) => n,
        Err(_) => lookup(passwd, user).ok_or_else(|| {
            OwnerError(format!(
                "unknown user \"{user}\" in --chown: it is not in the image's /etc/passwd (use a numeric UID, or add the user in an earlier step)"
            ))
        })?,
    };
    let gid = match grp {
        None => uid,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup(group, g).ok_or_else(|| {
                OwnerError(format!(
                    "unknown group \"{g}\" in --chown: it is not in the image's /etc/group (use a numeric GID, or add the group in an earlier step)"
                ))
            })?,
        },
    };
    Ok(Owner { uid, gid })
}

/// The id (third field) of `name` in a passwd- or group-format file.
fn lookup(file: Option<&str>, name: &str) -> Option<u32> {
    file?.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name).then_some(())?;
        fields.nth(1)?.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nstaff:x:50:\napp:x:1001:\n";

    #[test]
    fn numbers_and_names() {
        let r = |s| resolve(s, Some(PASSWD), Some(GROUP));
        assert_eq!(r("10").unwrap(), Owner { uid: 10, gid: 10 });
        assert_eq!(r("10:20").unwrap(), Owner { uid: 10, gid: 20 });
        assert_eq!(
            r("app").unwrap(),
            Owner {
                uid: 1000,
                gid: 1000
            }
        );
        assert_eq!(r("app:staff").unwrap(), Owner { uid: 1000, gid: 50 });
        assert_eq!(r("0:app").unwrap(), Owner { uid: 0, gid: 1001 });
        assert!(r("nobody").unwrap_err().0.contains("/etc/passwd"));
        assert!(r("app:wheel").unwrap_err().0.contains("/etc/group"));
        assert!(r(":staff").is_err());
        assert!(resolve("app", None, None).is_err());
    }
}
