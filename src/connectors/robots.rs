//! robots.txt as RFC 9309 defines it: a pure parser and matcher, no IO.
//!
//! - A group starts with one or more `user-agent` lines; the rules after them belong to
//!   every agent named. A `user-agent` line after a rule starts a new group. Rules before
//!   any `user-agent` line belong to no group and are ignored.
//! - The crawler obeys the groups whose agent matches its product token
//!   (case-insensitively; several matching groups are combined), else the `*` groups, else
//!   nothing is disallowed.
//! - The rule with the longest matching pattern (in octets) wins; between an `allow` and a
//!   `disallow` of the same length, `allow` wins. `*` matches any run of characters and a
//!   final `$` anchors the end of the path. An empty `disallow` is no rule.
//! - Paths are compared after percent-encoding normalization: octets outside ASCII are
//!   encoded, encoded unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded, hex digits
//!   are upper case.
//! - `/robots.txt` itself is always allowed. Only the first 500 KiB are parsed (the RFC's
//!   minimum). A BOM, CRLF line ends, comments and unknown lines are accepted.
//!
//! `Crawl-delay` is not in the RFC; it is read as the common extension (seconds, the
//! value of the matching group).

/// The size of robots.txt a crawler must parse at least (RFC 9309 section 2.5).
pub const PARSE_LIMIT: usize = 500 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Disallow,
}

/// One `allow` or `disallow` line of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub verdict: Verdict,
    /// The pattern as written (for messages).
    pub pattern: String,
    /// The pattern normalized for matching.
    normalized: String,
    /// The line it was read from (1-based).
    pub line: usize,
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let key = match self.verdict {
            Verdict::Allow => "Allow",
            Verdict::Disallow => "Disallow",
        };
        write!(f, "`{key}: {}` (line {})", self.pattern, self.line)
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
struct Group {
    /// The product tokens named by the group's `user-agent` lines, lower case.
    agents: Vec<String>,
    rules: Vec<Rule>,
    crawl_delay: Option<f64>,
}

/// A parsed robots.txt.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Robots {
    groups: Vec<Group>,
}

/// What robots.txt says about one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// The rule that decided; `None`: no rule matched (allowed).
    pub rule: Option<Rule>,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.verdict == Verdict::Allow
    }
}

/// The token a `user-agent` value names: its leading run of `A-Za-z_-` characters
/// (`ExampleBot/1.2` names `examplebot`), lower case; `*` stays `*`.
fn agent_token(value: &str) -> String {
    let v = value.trim();
    if v.starts_with('*') {
        return "*".to_string();
    }
    v.chars()
        .take_while(|c| c.is_ascii_alphabetic() || *c == '_' || *c == '-')
        .collect::<String>()
        .to_ascii_lowercase()
}

impl Robots {
    /// An empty file: everything allowed.
    pub fn allow_all() -> Robots {
        Robots::default()
    }

    /// Everything disallowed (robots.txt unreachable or answering 5xx).
    pub fn disallow_all() -> Robots {
        Robots {
            groups: vec![Group {
                agents: vec!["*".to_string()],
                rules: vec![Rule {
                    verdict: Verdict::Disallow,
                    pattern: "/".to_string(),
                    normalized: "/".to_string(),
                    line: 0,
                }],
                crawl_delay: None,
            }],
        }
    }

    /// Parses the text of a robots.txt. Never fails: unreadable lines are ignored.
    pub fn parse(text: &str) -> Robots {
        let mut text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.len() > PARSE_LIMIT {
            let mut end = PARSE_LIMIT;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text = &text[..end];
        }
        let mut groups: Vec<Group> = Vec::new();
        // Whether the current group has had a rule line (a user-agent then starts anew).
        let mut in_rules = true;
        for (number, raw_line) in lines(text) {
            let line = raw_line.split('#').next().unwrap_or("");
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let key = key.trim().to_ascii_lowercase();
            let value = value.trim();
            match key.as_str() {
                "user-agent" => {
                    if in_rules || groups.is_empty() {
                        groups.push(Group::default());
                        in_rules = false;
                    }
                    let token = agent_token(value);
                    if !token.is_empty()
                        && let Some(g) = groups.last_mut()
                    {
                        g.agents.push(token);
                    }
                }
                "allow" | "disallow" => {
                    in_rules = true;
                    let Some(g) = groups.last_mut() else {
                        continue; // a rule before any user-agent
                    };
                    if value.is_empty() {
                        continue; // `disallow:` allows everything; `allow:` says nothing
                    }
                    let verdict = if key == "allow" {
                        Verdict::Allow
                    } else {
                        Verdict::Disallow
                    };
                    g.rules.push(Rule {
                        verdict,
                        pattern: value.to_string(),
                        normalized: normalize(value),
                        line: number,
                    });
                }
                "crawl-delay" => {
                    in_rules = true;
                    if let Some(g) = groups.last_mut()
                        && let Ok(secs) = value.parse::<f64>()
                        && secs.is_finite()
                        && secs >= 0.0
                    {
                        g.crawl_delay = Some(secs);
                    }
                }
                // sitemap and anything else: not part of a group's rules.
                _ => {}
            }
        }
        Robots { groups }
    }

    /// The groups that apply to `token`: those naming it, else those naming `*`.
    fn groups_for(&self, token: &str) -> Vec<&Group> {
        let token = agent_token(token);
        let named: Vec<&Group> = self
            .groups
            .iter()
            .filter(|g| g.agents.contains(&token))
            .collect();
        if !named.is_empty() {
            return named;
        }
        self.groups
            .iter()
            .filter(|g| g.agents.iter().any(|a| a == "*"))
            .collect()
    }

    /// Whether the crawler with product token `token` may fetch `path` (the URL's path and
    /// query, e.g. `/reviews?page=2`).
    pub fn check(&self, token: &str, path: &str) -> Decision {
        let path = if path.is_empty() { "/" } else { path };
        if path == "/robots.txt" {
            return Decision {
                verdict: Verdict::Allow,
                rule: None,
            };
        }
        let path = normalize(path);
        let mut best: Option<&Rule> = None;
        for g in self.groups_for(token) {
            for r in &g.rules {
                if !matches(&r.normalized, &path) {
                    continue;
                }
                let better = match best {
                    None => true,
                    Some(b) => {
                        r.normalized.len() > b.normalized.len()
                            || (r.normalized.len() == b.normalized.len()
                                && r.verdict == Verdict::Allow
                                && b.verdict == Verdict::Disallow)
                    }
                };
                if better {
                    best = Some(r);
                }
            }
        }
        match best {
            Some(r) => Decision {
                verdict: r.verdict,
                rule: Some(r.clone()),
            },
            None => Decision {
                verdict: Verdict::Allow,
                rule: None,
            },
        }
    }

    /// The `Crawl-delay` of the groups that apply to `token` (the largest if several say).
    pub fn crawl_delay(&self, token: &str) -> Option<f64> {
        self.groups_for(token)
            .iter()
            .filter_map(|g| g.crawl_delay)
            .reduce(f64::max)
    }
}

/// The lines of `text` with their 1-based numbers; `\n`, `\r\n` and `\r` end a line.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut rest = text;
    let mut number = 0;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        number += 1;
        let end = rest.find(['\n', '\r']).unwrap_or(rest.len());
        let line = &rest[..end];
        let after = &rest[end..];
        rest = if let Some(r) = after.strip_prefix("\r\n") {
            r
        } else if after.is_empty() {
            after
        } else {
            &after[1..]
        };
        Some((number, line))
    })
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Percent-encoding normalization of a path or pattern: non-ASCII octets and controls
/// encoded, encoded unreserved characters decoded, escapes in upper case.
pub fn normalize(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let hex = |c: u8| (c as char).to_digit(16);
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            let v = (h * 16 + l) as u8;
            if is_unreserved(v) {
                out.push(v as char);
            } else {
                out.push_str(&format!("%{v:02X}"));
            }
            i += 3;
            continue;
        }
        if !(0x21..0x80).contains(&c) {
            out.push_str(&format!("%{c:02X}"));
        } else {
            out.push(c as char);
        }
        i += 1;
    }
    out
}

/// Whether `pattern` (normalized; `*` any run, final `$` the end) matches the start of
/// `path` (normalized).
fn matches(pattern: &str, path: &str) -> bool {
    let (pattern, anchored) = match pattern.strip_suffix('$') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    let parts: Vec<&str> = pattern.split('*').collect();
    let p = path.as_bytes();
    // The first part is a prefix of the path.
    let first = parts[0].as_bytes();
    if !p.starts_with(first) {
        return false;
    }
    if parts.len() == 1 {
        return !anchored || p.len() == first.len();
    }
    let mut pos = first.len();
    let last = parts.len() - 1;
    for (k, part) in parts.iter().enumerate().skip(1) {
        let part = part.as_bytes();
        if k == last && anchored {
            // The last part must end the path, at or after `pos`.
            return p.len() >= pos + part.len() && p.ends_with(part);
        }
        match find(&p[pos..], part) {
            Some(at) => pos += at + part.len(),
            None => return false,
        }
    }
    true
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(r: &Robots, agent: &str, path: &str) -> bool {
        r.check(agent, path).allowed()
    }

    /// RFC 9309 section 5.1 (the simple example), read by several crawlers.
    #[test]
    fn rfc_simple_example() {
        let r = Robots::parse(
            "User-Agent: *\nDisallow: *.gif$\nDisallow: /example/\nAllow: /publications/\n\n\
             User-Agent: foobot\nDisallow:/\nAllow:/example/page.html\nAllow:/example/allowed.gif\n\n\
             User-Agent: barbot\nUser-Agent: bazbot\nDisallow: /example/page.html\n\n\
             User-Agent: quxbot\n\nEOF\n",
        );
        // foobot: only its group.
        assert!(!allowed(&r, "foobot", "/"));
        assert!(!allowed(&r, "foobot", "/publications/"));
        assert!(allowed(&r, "foobot", "/example/page.html"));
        assert!(allowed(&r, "foobot", "/example/allowed.gif"));
        assert!(!allowed(&r, "FooBot", "/example/other.gif"));
        // barbot and bazbot share a group.
        for bot in ["barbot", "bazbot"] {
            assert!(!allowed(&r, bot, "/example/page.html"));
            assert!(allowed(&r, bot, "/example/"));
            assert!(allowed(&r, bot, "/x.gif"));
        }
        // quxbot: an empty group allows everything (not the * group).
        assert!(allowed(&r, "quxbot", "/example/"));
        assert!(allowed(&r, "quxbot", "/a.gif"));
        // Anyone else: the * group.
        assert!(!allowed(&r, "otherbot", "/example/"));
        assert!(!allowed(&r, "otherbot", "/images/a.gif"));
        assert!(allowed(&r, "otherbot", "/images/a.gif?x=1"));
        assert!(allowed(&r, "otherbot", "/publications/"));
        assert!(allowed(&r, "otherbot", "/"));
    }

    /// RFC 9309 section 5.2: the longest match wins.
    #[test]
    fn rfc_longest_match() {
        let r = Robots::parse(
            "User-Agent: foobot\nAllow: /example/page/\nDisallow: /example/page/disallowed.gif\n",
        );
        assert!(allowed(&r, "foobot", "/example/page/"));
        assert!(allowed(&r, "foobot", "/example/page/ok.gif"));
        let d = r.check("foobot", "/example/page/disallowed.gif");
        assert!(!d.allowed());
        assert_eq!(d.rule.unwrap().pattern, "/example/page/disallowed.gif");
        assert!(allowed(&r, "foobot", "/elsewhere"));
    }

    /// Section 2.2.2: allow wins a tie of equal length.
    #[test]
    fn allow_wins_ties_and_order_does_not_matter() {
        for text in [
            "user-agent: a\ndisallow: /page\nallow: /page\n",
            "user-agent: a\nallow: /page\ndisallow: /page\n",
            "user-agent: a\ndisallow: /p*e\nallow: /pa*e\n",
        ] {
            assert!(allowed(&Robots::parse(text), "a", "/page"), "{text}");
        }
        let r = Robots::parse("user-agent: a\ndisallow: /page$\nallow: /pag\n");
        assert!(!allowed(&r, "a", "/page"));
        assert!(allowed(&r, "a", "/pages"));
    }

    /// Section 2.2.1: groups of the same agent are combined; agents match case-insensitively
    /// by product token; a rule before any user-agent line is ignored.
    #[test]
    fn groups_combine_and_agents_are_tokens() {
        let r = Robots::parse(
            "disallow: /orphan\nuser-agent: ExampleBot\ndisallow: /foo\ndisallow: /bar\n\n\
             user-agent: examplebot/2.1\ndisallow: /baz\n\nuser-agent: *\ndisallow: /\n",
        );
        for p in ["/foo", "/bar", "/baz/x"] {
            assert!(!allowed(&r, "EXAMPLEBOT", p), "{p}");
        }
        assert!(allowed(&r, "examplebot", "/orphan"));
        assert!(allowed(&r, "examplebot", "/qux"));
        assert!(!allowed(&r, "tideline", "/qux"));
        // Blank lines between user-agent lines keep them in one group.
        let r = Robots::parse("user-agent: a\n\nuser-agent: b\ndisallow: /x\n");
        assert!(!allowed(&r, "a", "/x") && !allowed(&r, "b", "/x"));
    }

    /// Section 2.2.3: `*` and `$`.
    #[test]
    fn wildcards_and_end_anchors() {
        let r = Robots::parse(
            "user-agent: *\ndisallow: /*.php$\ndisallow: /private*/data\nallow: /$\ndisallow: /fish*\n",
        );
        assert!(!allowed(&r, "x", "/index.php"));
        assert!(!allowed(&r, "x", "/a/b/index.php"));
        assert!(allowed(&r, "x", "/index.php?x=1"));
        assert!(allowed(&r, "x", "/index.php5"));
        assert!(!allowed(&r, "x", "/private-2/data"));
        assert!(!allowed(&r, "x", "/private/x/data/y"));
        assert!(allowed(&r, "x", "/private/x/dat"));
        assert!(allowed(&r, "x", "/"));
        assert!(!allowed(&r, "x", "/fish"));
        assert!(!allowed(&r, "x", "/fishheads/yummy.html"));
        assert!(allowed(&r, "x", "/Fish.asp"));
        assert!(matches("/a*$", "/a/b"));
        assert!(matches("*", "/anything"));
        assert!(!matches("/a$", "/ab"));
        assert!(matches("/a**b", "/axxb"));
    }

    /// Section 2.2.2: percent-encoding normalization of patterns and paths.
    #[test]
    fn percent_encoding_is_normalized() {
        assert_eq!(normalize("/foo/bar/ツ"), "/foo/bar/%E3%83%84");
        assert_eq!(normalize("/foo/bar/%e3%83%84"), "/foo/bar/%E3%83%84");
        assert_eq!(normalize("/foo/bar/%62%61%7A"), "/foo/bar/baz");
        assert_eq!(normalize("/a%2Fb"), "/a%2Fb");
        assert_eq!(normalize("/100%"), "/100%");
        let r = Robots::parse("user-agent: *\ndisallow: /foo/bar/ツ\ndisallow: /%62az\n");
        assert!(!allowed(&r, "x", "/foo/bar/%E3%83%84"));
        assert!(!allowed(&r, "x", "/foo/bar/%e3%83%84/more"));
        assert!(!allowed(&r, "x", "/baz"));
        assert!(!allowed(&r, "x", "/%62%61%7a"));
        assert!(allowed(&r, "x", "/foo/bar/"));
    }

    /// Comments, a BOM, CRLF, odd spacing and case of keys, unknown lines, sitemaps.
    #[test]
    fn the_file_format_is_read_leniently() {
        let text = "\u{feff}# robots for acme\r\nUser-Agent : Tideline # us\r\nDISALLOW:/private # keep out\r\n\
                    Sitemap: https://acme.example/sitemap.xml\r\nnonsense line\r\nfoo: bar\r\n\
                    Crawl-delay: 2.5\r\nAllow:   /private/ok   \r\n";
        let r = Robots::parse(text);
        assert!(!allowed(&r, "tideline", "/private"));
        assert!(allowed(&r, "tideline", "/private/ok"));
        assert!(allowed(&r, "tideline", "/public"));
        assert_eq!(r.crawl_delay("Tideline"), Some(2.5));
        let d = r.check("tideline", "/private/x");
        assert_eq!(d.rule.as_ref().unwrap().line, 3);
        assert_eq!(d.rule.unwrap().to_string(), "`Disallow: /private` (line 3)");
        // Another agent: no group names it and there is no * group.
        assert!(allowed(&r, "otherbot", "/private"));
        assert_eq!(r.crawl_delay("otherbot"), None);
        // Old Mac line ends.
        let r = Robots::parse("user-agent: *\rdisallow: /x\r");
        assert!(!allowed(&r, "a", "/x"));
    }

    #[test]
    fn empty_disallow_allows_and_robots_txt_is_always_allowed() {
        let r = Robots::parse("user-agent: *\ndisallow:\n");
        assert!(allowed(&r, "a", "/anything"));
        let r = Robots::disallow_all();
        assert!(!allowed(&r, "a", "/"));
        assert!(!allowed(&r, "a", ""));
        assert!(allowed(&r, "a", "/robots.txt"));
        assert!(allowed(&Robots::allow_all(), "a", "/x"));
        assert!(allowed(&Robots::parse(""), "a", "/x"));
    }

    #[test]
    fn only_the_first_500_kib_are_parsed() {
        let mut text = String::from("user-agent: *\n");
        while text.len() < PARSE_LIMIT {
            text.push_str("# padding padding padding padding padding padding\n");
        }
        text.push_str("disallow: /late\n");
        let r = Robots::parse(&text);
        assert!(allowed(&r, "a", "/late"));
        // A multi-byte character across the limit does not panic.
        let text = format!("{}ツツツ", "x".repeat(PARSE_LIMIT - 1));
        let _ = Robots::parse(&text);
    }
}
