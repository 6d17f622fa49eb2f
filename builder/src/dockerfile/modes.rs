//! `--chmod` values: octal (`0755`) or symbolic (`u+x,go-w`) modes.

use std::fmt;

/// A validated `--chmod` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    /// Absolute permission bits, at most 0o7777.
    Octal(u32),
    /// Symbolic clauses, applied to each file's existing mode.
    Symbolic(Vec<SymbolicClause>),
}

/// One `who op perms` clause of a symbolic mode, e.g. `go-w`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolicClause {
    /// Bit mask of the affected classes (user 0o4700, group 0o2070, other
    /// 0o1007); empty `who` means all.
    pub who: u32,
    pub op: char,
    pub perms: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --chmod={value}: {reason} (use octal like 0755 or symbolic like u+x,go-w)")]
pub struct ChmodError {
    pub value: String,
    pub reason: String,
}

impl Chmod {
    pub fn parse(value: &str) -> Result<Chmod, ChmodError> {
        let fail = |reason: &str| ChmodError {
            value: value.to_string(),
            reason: reason.to_string(),
        };
        if value.is_empty() {
            return Err(fail("empty mode"));
        }
        if value.bytes().all(|b| b.is_ascii_digit()) {
            let bits = u32::from_str_radix(value, 8).map_err(|_| fail("octal digits are 0-7"))?;
            if bits > 0o7777 {
                return Err(fail("octal modes go up to 7777"));
            }
            return Ok(Chmod::Octal(bits));
        }
        let mut clauses = Vec::new();
        for clause in value.split(',') {
            let op_at = clause
                .find(['+', '-', '='])
                .ok_or_else(|| fail("each clause needs +, - or ="))?;
            let (who_text, rest) = clause.split_at(op_at);
            let mut who = 0;
            for c in who_text.chars() {
                who |= match c {
                    'u' => 0o4700,
                    'g' => 0o2070,
                    'o' => 0o1007,
                    'a' => 0o7777,
                    _ => return Err(fail("who must be made of u, g, o, a")),
                };
            }
            let mut chars = rest.chars();
            let op = chars.next().unwrap_or('=');
            let perms: String = chars.collect();
            if perms.contains(['+', '-', '=']) {
                return Err(fail("separate clauses with commas"));
            }
            if !perms
                .chars()
                .all(|c| matches!(c, 'r' | 'w' | 'x' | 'X' | 's' | 't'))
            {
                return Err(fail("permissions must be made of r, w, x, X, s, t"));
            }
            clauses.push(SymbolicClause {
                who: if who == 0 { 0o7777 } else { who },
                op,
                perms,
            });
        }
        Ok(Chmod::Symbolic(clauses))
    }

    /// The mode a file with `current` mode gets (`is_dir` for `X`).
    pub fn apply(&self, current: u32, is_dir: bool) -> u32 {
        let clauses = match self {
            Chmod::Octal(bits) => return *bits,
            Chmod::Symbolic(c) => c,
        };
        let mut mode = current & 0o7777;
        for c in clauses {
            let mut bits = 0;
            for p in c.perms.chars() {
                bits |= match p {
                    'r' => 0o444,
                    'w' => 0o222,
                    'x' => 0o111,
                    'X' if is_dir || mode & 0o111 != 0 => 0o111,
                    's' => 0o6000,
                    't' => 0o1000,
                    _ => 0,
                };
            }
            let bits = bits & c.who;
            mode = match c.op {
                '+' => mode | bits,
                '-' => mode & !bits,
                _ => (mode & !c.who) | bits,
            };
        }
        mode
    }
}

impl fmt::Display for Chmod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Chmod::Octal(bits) => write!(f, "{bits:04o}"),
            Chmod::Symbolic(clauses) => {
                for (i, c) in clauses.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    let who: String = [('u', 0o4700), ('g', 0o2070), ('o', 0o1007)]
                        .iter()
                        .filter(|(_, m)| c.who & m == *m)
                        .map(|(w, _)| *w)
                        .collect();
                    write!(f, "{who}{}{}", c.op, c.perms)?;
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_and_symbolic() {
        assert_eq!(Chmod::parse("0755"), Ok(Chmod::Octal(0o755)));
        assert!(Chmod::parse("0789").is_err());
        assert!(Chmod::parse("77777").is_err());
        assert!(Chmod::parse("u+q").is_err());
        assert!(Chmod::parse("rwx").is_err());
        let m = Chmod::parse("u+x,go-w").unwrap();
        assert_eq!(m.apply(0o666, false), 0o744);
        assert_eq!(Chmod::parse("a=r").unwrap().apply(0o777, false), 0o444);
        assert_eq!(Chmod::parse("+X").unwrap().apply(0o644, true), 0o755);
        assert_eq!(Chmod::parse("+X").unwrap().apply(0o644, false), 0o644);
    }
}
