//! `USER` resolution, as runc (and so Docker and BuildKit) does it, from the
//! text of the image's `/etc/passwd` and `/etc/group`.
//!
//! - The user part is a name or a uid; empty means uid 0. A passwd entry
//!   matching the name, or the uid, gives the uid, the primary gid and the
//!   home. A numeric uid with no entry runs as that uid, gid 0, home `/`;
//!   an unknown name is an error.
//! - An explicit group (a name or a gid, from `/etc/group`) replaces the
//!   primary gid, and then there are no supplementary groups.
//! - Without one, the supplementary groups are every `/etc/group` entry
//!   listing the user's name.

use std::fs;
use std::io;

/// Who the command runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: String,
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

/// The largest id runc accepts (ids are signed 32-bit in some interfaces).
const MAX_ID: u64 = i32::MAX as u64;

/// Resolves `spec` against the given file contents (`None`: the file does
/// not exist, which is the same as empty).
pub(crate) fn resolve(
    spec: &str,
    passwd: Option<&str>,
    group: Option<&str>,
) -> Result<ExecUser, String> {
    let (user_arg, group_arg) = match spec.split_once(':') {
        Some((u, g)) => (u, g),
        None => (spec, ""),
    };
    let user_arg = if user_arg.is_empty() { "0" } else { user_arg };
    let uid_arg = parse_id(user_arg)?;

    let users = passwd.map(parse_passwd).unwrap_or_default();
    let found = users
        .iter()
        .find(|u| u.name == user_arg || uid_arg == Some(u.uid));
    let (mut user, name) = match (found, uid_arg) {
        (Some(u), _) => (
            ExecUser {
                uid: u.uid,
                gid: u.gid,
                groups: Vec::new(),
                home: u.home.to_owned(),
            },
            Some(u.name),
        ),
        (None, Some(uid)) => (
            ExecUser {
                uid,
                gid: 0,
                groups: Vec::new(),
                home: "/".to_owned(),
            },
            None,
        ),
        (None, None) => {
            return Err(format!(
                "unable to find user {user_arg}: no matching entries in passwd file"
            ));
        }
    };
    if user.home.is_empty() {
        user.home = "/".to_owned();
    }

    let groups = group.map(parse_group).unwrap_or_default();
    if !group_arg.is_empty() {
        let gid_arg = parse_id(group_arg)?;
        let found = groups
            .iter()
            .find(|g| g.name == group_arg || gid_arg == Some(g.gid));
        user.gid = match (found, gid_arg) {
            (Some(g), _) => g.gid,
            (None, Some(gid)) => gid,
            (None, None) => {
                return Err(format!(
                    "unable to find group {group_arg}: no matching entries in group file"
                ));
            }
        };
    } else if let Some(name) = name {
        for g in groups.iter().filter(|g| g.members.contains(&name)) {
            if !user.groups.contains(&g.gid) {
                user.groups.push(g.gid);
            }
        }
    }
    Ok(user)
}

/// Reads the image's files (from the current root) and resolves `spec`.
pub(crate) fn lookup(spec: &str) -> Result<ExecUser, String> {
    let passwd = read_optional("/etc/passwd")?;
    let group = read_optional("/etc/group")?;
    resolve(spec, passwd.as_deref(), group.as_deref())
}

fn read_optional(path: &str) -> Result<Option<String>, String> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {path}: {}", super::sys::describe(&e))),
    }
}

/// `Some(id)` for an all-digit argument, `None` for a name; an error for a
/// number out of range.
fn parse_id(arg: &str) -> Result<Option<u32>, String> {
    if arg.is_empty() || !arg.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match arg.parse::<u64>() {
        Ok(id) if id <= MAX_ID => Ok(Some(id as u32)),
        _ => Err(format!("uids and gids must be in range 0-{MAX_ID}: {arg}")),
    }
}

/// Lines that are blank, comments, or NIS markers (`+`, `-`) are not
/// entries; neither is a line whose ids are not numbers.
fn entries(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(['#', '+', '-']))
        .map(|l| l.split(':').collect())
}

fn parse_passwd(text: &str) -> Vec<PasswdEntry<'_>> {
    entries(text)
        .filter_map(|f| {
            Some(PasswdEntry {
                name: f.first()?,
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).copied().unwrap_or(""),
            })
        })
        .collect()
}

fn parse_group(text: &str) -> Vec<GroupEntry<'_>> {
    entries(text)
        .filter_map(|f| {
            Some(GroupEntry {
                name: f.first()?,
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|m| !m.is_empty())
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        # a comment\n\
        app:x:1000:1001:App:/home/app:/bin/sh\n\
        nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
        nohome:x:1200:1200::\n";
    const GROUP: &str = "root:x:0:\n\
        wheel:x:10:root,app\n\
        app:x:1001:\n\
        docker:x:999:app\n\
        staff:x:50:\n\
        wheel2:x:11: app , root\n";

    fn r(spec: &str) -> Result<ExecUser, String> {
        resolve(spec, Some(PASSWD), Some(GROUP))
    }

    #[test]
    fn empty_is_root_with_its_groups() {
        let u = r("").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (0, 0, "/root"));
        assert_eq!(u.groups, vec![10, 11]);
        assert_eq!(r("root").unwrap(), u);
        assert_eq!(r("0").unwrap(), u);
    }

    #[test]
    fn name_gives_primary_gid_home_and_supplementary_groups() {
        let u = r("app").unwrap();
        assert_eq!(u.uid, 1000);
        assert_eq!(u.gid, 1001);
        assert_eq!(u.home, "/home/app");
        assert_eq!(u.groups, vec![10, 999, 11]);
        assert_eq!(r("1000").unwrap(), u);
    }

    #[test]
    fn explicit_group_replaces_gid_and_drops_supplementary_groups() {
        let u = r("app:staff").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 50));
        assert!(u.groups.is_empty());
        let u = r("app:4242").unwrap();
        assert_eq!(u.gid, 4242);
        let u = r("app:").unwrap();
        assert_eq!(u.gid, 1001);
        assert_eq!(u.groups, vec![10, 999, 11]);
    }

    #[test]
    fn numeric_ids_without_entries() {
        let u = r("4000").unwrap();
        assert_eq!(
            u,
            ExecUser {
                uid: 4000,
                gid: 0,
                groups: vec![],
                home: "/".into()
            }
        );
        let u = r("1000:1000").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1000, 1000, "/home/app"));
        let u = resolve("1000:1000", None, None).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (1000, 1000, "/"));
        assert_eq!(r("nohome").unwrap().home, "/");
    }

    #[test]
    fn unknown_names_are_errors() {
        assert_eq!(
            r("ghost").unwrap_err(),
            "unable to find user ghost: no matching entries in passwd file"
        );
        assert_eq!(
            resolve("app", None, None).unwrap_err(),
            "unable to find user app: no matching entries in passwd file"
        );
        assert_eq!(
            r("app:ghosts").unwrap_err(),
            "unable to find group ghosts: no matching entries in group file"
        );
        assert!(r("99999999999").unwrap_err().contains("range"));
    }
}
