//! Identity normalization and the exact-match customer resolution of one batch.
//!
//! Pure: the store looks up which identities it already knows and hands them in; this
//! module decides which customer each interaction belongs to.

use crate::model::{Identity, IdentityKind};
use rustc_hash::{FxHashMap, FxHashSet};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Normalizes an email address for matching: trims, drops a `mailto:` prefix and angle
/// brackets, lowercases. Provider-specific rules (dots, plus tags) are not applied.
/// Returns `None` when the text is not an address.
pub fn normalize_email(raw: &str) -> Option<String> {
    let s = raw.trim().trim_matches(|c| c == '<' || c == '>').trim();
    let s = s
        .strip_prefix("mailto:")
        .or_else(|| s.strip_prefix("MAILTO:"))
        .unwrap_or(s);
    // One form per address however it was typed: composed Unicode (NFC), invisible
    // format characters (zero-width space, BOM) dropped, lowercase; an international
    // domain in its ASCII (punycode) form, so `müller.de` and `xn--mller-kva.de` agree.
    use unicode_normalization::UnicodeNormalization;
    let s: String = s
        .nfc()
        .filter(|c| {
            !matches!(
                c,
                '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}' | '\u{00ad}'
            )
        })
        .collect::<String>()
        .to_lowercase();
    let (local, domain) = s.split_once('@')?;
    let ascii_domain;
    let domain = if domain.is_ascii() {
        domain
    } else {
        ascii_domain = idna::domain_to_ascii(domain).ok()?;
        ascii_domain.as_str()
    };
    let s = format!("{local}@{domain}");
    if local.is_empty()
        || domain.len() < 3
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains('@')
        || s.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return None;
    }
    Some(s)
}

/// Country calling codes for the default region of national numbers.
fn calling_code(country: &str) -> Option<(&'static str, bool)> {
    // (code, whether the national trunk prefix `0` is dropped after the country code)
    let c = match country.to_ascii_uppercase().as_str() {
        "US" | "CA" => ("1", false),
        "GB" => ("44", true),
        "IE" => ("353", true),
        "DE" => ("49", true),
        "AT" => ("43", true),
        "CH" => ("41", true),
        "FR" => ("33", true),
        "BE" => ("32", true),
        "NL" => ("31", true),
        "LU" => ("352", false),
        "ES" => ("34", false),
        "PT" => ("351", false),
        "IT" => ("39", false),
        "PL" => ("48", false),
        "CZ" => ("420", false),
        "SK" => ("421", true),
        "HU" => ("36", true),
        "HR" => ("385", true),
        "SI" => ("386", true),
        "RS" => ("381", true),
        "BA" => ("387", true),
        "RO" => ("40", true),
        "BG" => ("359", true),
        "GR" => ("30", false),
        "TR" => ("90", true),
        "DK" => ("45", false),
        "SE" => ("46", true),
        "NO" => ("47", false),
        "FI" => ("358", true),
        "EE" => ("372", false),
        "LV" => ("371", false),
        "LT" => ("370", true),
        "UA" => ("380", true),
        "AU" => ("61", true),
        "NZ" => ("64", true),
        "IN" => ("91", true),
        "JP" => ("81", true),
        "BR" => ("55", true),
        "MX" => ("52", false),
        _ => return None,
    };
    Some(c)
}

/// Normalizes a phone number to E.164 (`+` and 8 to 15 digits).
///
/// International forms (`+49 30 ...`, `0049 30 ...`) need no region; national forms
/// (`030 1234567`) use `default_country` (ISO 3166-1 alpha-2). Excel-mangled values such
/// as `4.91701E+12` are refused rather than guessed.
pub fn normalize_phone(raw: &str, default_country: Option<&str>) -> Option<String> {
    let s = raw.trim();
    if s.is_empty() || s.contains(['e', 'E']) && s.contains('+') && s.contains('.') {
        return None;
    }
    // Cut an extension (`x12`, `ext. 12`, `;ext=12`).
    let s = s.split(['x', 'X', ';', ',']).next().unwrap_or(s);
    let s = s.split("ext").next().unwrap_or(s);
    if s.chars().any(|c| c.is_alphabetic()) {
        return None;
    }
    let plus = s.trim_start().starts_with('+');
    let digits: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
    let e164 = if plus {
        digits
    } else if let Some(rest) = digits.strip_prefix("00") {
        rest.to_string()
    } else {
        let (code, drop_trunk) = calling_code(default_country?)?;
        let national = if drop_trunk {
            digits.strip_prefix('0').unwrap_or(&digits)
        } else {
            &digits
        };
        format!("{code}{national}")
    };
    // A trunk `0` written after the country code (`+49 (0)30 ...`).
    let e164 = strip_bracketed_trunk(raw, e164);
    if !(8..=15).contains(&e164.len()) || e164.starts_with('0') {
        return None;
    }
    Some(format!("+{e164}"))
}

fn strip_bracketed_trunk(raw: &str, digits: String) -> String {
    if let Some(idx) = raw.find("(0)") {
        let before: usize = raw[..idx].chars().filter(|c| c.is_ascii_digit()).count();
        let before = if raw.trim_start().starts_with("00") {
            before.saturating_sub(2)
        } else {
            before
        };
        if before > 0 && before <= digits.len() && digits.as_bytes().get(before) == Some(&b'0') {
            let mut d = digits;
            d.remove(before);
            return d;
        }
    }
    digits
}

/// The stable id of a customer first seen with `identity`.
pub fn customer_id_for(identity: &Identity) -> String {
    let digest = Sha256::digest(identity.key().as_bytes());
    format!("cus_{}", &hex::encode(digest)[..16])
}

/// The outcome of resolving one batch.
#[derive(Debug, Default, PartialEq)]
pub struct Resolution {
    /// For each input item, its customer (None when it carries no strong identity).
    pub assignments: Vec<Option<String>>,
    /// Customers that do not exist yet, with the identity that created them.
    pub new_customers: BTreeMap<String, Identity>,
    /// Identities to record, with their customer.
    pub new_identities: BTreeMap<Identity, String>,
    /// Existing customers to merge: (from, into). Every identity and interaction of `from`
    /// moves to `into`.
    pub merges: Vec<(String, String)>,
    /// Links held back for an operator: (the shared phone, an identity of the record that
    /// would have joined through it). See [`resolve_with`].
    pub suggestions: Vec<(Identity, Identity)>,
    /// Links held back by the size cap: (an identity of one component, one of the other).
    pub capped: Vec<(Identity, Identity)>,
    /// Links held back because an operator split those customers apart.
    pub kept_apart: Vec<(Identity, Identity)>,
}

/// Why a link was held back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Held {
    Size,
    Apart,
}

/// What the store knows of an existing customer, for the household rule.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerFacts {
    pub display_name: Option<String>,
    /// Holds an email or a platform id (a person, not just a number).
    pub anchored: bool,
    /// How many identities the customer has (0: not looked up, counted as 1).
    pub identities: usize,
}

/// A component may hold at most this many identities unless configured otherwise: a
/// person has a few emails, phones and platform ids, not dozens. Past it a link becomes a
/// suggestion, so one shared value (a front desk's phone, a family's address) cannot
/// collapse many people into one.
pub const DEFAULT_MAX_COMPONENT: usize = 20;

/// What the resolver may not join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The size cap (see [`resolve_with`]).
    pub max_component: usize,
    /// Pairs of existing customers an operator split apart (`customers unlink`).
    pub apart: Vec<(String, String)>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_component: DEFAULT_MAX_COMPONENT,
            apart: Vec::new(),
        }
    }
}

/// The first word of a display name, folded: "Anna Müller" and "anna m." agree.
fn first_name(name: &str) -> Option<String> {
    let w = name.split_whitespace().next()?;
    let w: String = w
        .chars()
        .filter(|c| c.is_alphabetic())
        .flat_map(char::to_lowercase)
        .collect();
    (!w.is_empty()).then_some(w)
}

/// Assigns customers by exact equality of strong identities (email, phone, platform ids).
///
/// `items` holds each interaction's identities; `known` maps identities the store already
/// has to their customer. Items that share an identity, directly or through other items,
/// end up with one customer; when that joins several existing customers, they are merged
/// into the smallest id so that the result does not depend on batch order.
pub fn resolve<I: AsRef<[Identity]>>(items: &[I], known: &HashMap<Identity, String>) -> Resolution {
    resolve_with(items, known, &HashMap::new(), &Limits::default())
}

/// [`resolve`] with the household rule: a phone is shared by households and front desks,
/// so a record that carries its own email or platform id does not join, through a phone
/// alone, a component that already belongs to someone with an email or platform id and a
/// different first name. That link becomes a suggestion instead. `facts` describes the
/// existing customers that `known` points to.
///
/// The size cap: a link that would make a component hold more than `limits.max_component`
/// identities (its new identities plus every identity of the existing customers in it)
/// becomes a suggestion too, and so does a link that would join two customers an operator
/// split apart (`limits.apart`).
pub fn resolve_with<I: AsRef<[Identity]>>(
    items: &[I],
    known: &HashMap<Identity, String>,
    facts: &HashMap<String, CustomerFacts>,
    limits: &Limits,
) -> Resolution {
    // Union-find over the strong identities of the batch.
    let mut index: FxHashMap<&Identity, usize> = FxHashMap::default();
    let mut nodes: Vec<&Identity> = Vec::new();
    for ids in items {
        for id in ids.as_ref().iter().filter(|i| i.kind.is_strong()) {
            index.entry(id).or_insert_with(|| {
                nodes.push(id);
                nodes.len() - 1
            });
        }
    }
    let mut parent: Vec<usize> = (0..nodes.len()).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    // Per root: whether it holds a person's email or platform id, and the first names seen.
    let mut anchored: Vec<bool> = nodes
        .iter()
        .map(|id| id.kind != IdentityKind::Phone)
        .collect();
    let mut names: Vec<BTreeSet<String>> = vec![BTreeSet::new(); nodes.len()];
    for (i, id) in nodes.iter().enumerate() {
        if let Some(f) = known.get(*id).and_then(|c| facts.get(c)) {
            anchored[i] |= f.anchored;
            if let Some(n) = f.display_name.as_deref().and_then(first_name) {
                names[i].insert(n);
            }
        }
    }
    // Per root: the existing customers in it and how many new identities it holds.
    let mut customers: Vec<BTreeSet<&String>> = nodes
        .iter()
        .map(|id| known.get(*id).into_iter().collect())
        .collect();
    let mut fresh: Vec<usize> = nodes
        .iter()
        .map(|id| usize::from(!known.contains_key(*id)))
        .collect();
    let size_of = |cs: &BTreeSet<&String>, fresh: usize| -> usize {
        fresh
            + cs.iter()
                .map(|c| facts.get(*c).map_or(1, |f| f.identities.max(1)))
                .sum::<usize>()
    };
    let max_component = limits.max_component.max(2);
    let mut household: Vec<(Identity, Identity)> = Vec::new();
    let mut held: Vec<(Held, Identity, Identity)> = Vec::new();
    let mut union = |parent: &mut Vec<usize>,
                     anchored: &mut Vec<bool>,
                     names: &mut Vec<BTreeSet<String>>,
                     a: usize,
                     b: usize|
     -> Result<(), Held> {
        let (ra, rb) = (find(parent, a), find(parent, b));
        if ra == rb {
            return Ok(());
        }
        let joined: BTreeSet<&String> = customers[ra].union(&customers[rb]).copied().collect();
        if limits
            .apart
            .iter()
            .any(|(x, y)| joined.contains(x) && joined.contains(y))
        {
            return Err(Held::Apart);
        }
        if size_of(&joined, fresh[ra] + fresh[rb]) > max_component {
            return Err(Held::Size);
        }
        parent[ra] = rb;
        anchored[rb] |= anchored[ra];
        let moved = std::mem::take(&mut names[ra]);
        names[rb].extend(moved);
        customers[rb] = joined;
        fresh[rb] += fresh[ra];
        Ok(())
    };
    for ids in items {
        let ids = ids.as_ref();
        let name = ids
            .iter()
            .find(|i| i.kind == IdentityKind::Name)
            .and_then(|i| first_name(&i.value));
        let strong: Vec<&Identity> = ids.iter().filter(|i| i.kind.is_strong()).collect();
        let anchors: Vec<usize> = strong
            .iter()
            .filter(|i| i.kind != IdentityKind::Phone)
            .map(|i| index[*i])
            .collect();
        let phones: Vec<usize> = strong
            .iter()
            .filter(|i| i.kind == IdentityKind::Phone)
            .map(|i| index[*i])
            .collect();
        for w in anchors.windows(2) {
            if let Err(h) = union(&mut parent, &mut anchored, &mut names, w[0], w[1]) {
                held.push((h, nodes[w[0]].clone(), nodes[w[1]].clone()));
            }
        }
        match anchors.first() {
            None => {
                for w in phones.windows(2) {
                    if let Err(h) = union(&mut parent, &mut anchored, &mut names, w[0], w[1]) {
                        held.push((h, nodes[w[0]].clone(), nodes[w[1]].clone()));
                    }
                }
            }
            Some(&a) => {
                for &p in &phones {
                    let (ra, rp) = (find(&mut parent, a), find(&mut parent, p));
                    if ra == rp {
                        continue;
                    }
                    let conflict = anchored[rp]
                        && name
                            .as_ref()
                            .is_some_and(|n| !names[rp].is_empty() && !names[rp].contains(n));
                    if conflict {
                        household.push((nodes[p].clone(), nodes[a].clone()));
                    } else if let Err(h) = union(&mut parent, &mut anchored, &mut names, a, p) {
                        held.push((h, nodes[p].clone(), nodes[a].clone()));
                    }
                }
            }
        }
        if let (Some(n), Some(&first)) = (name, anchors.first().or(phones.first())) {
            let r = find(&mut parent, first);
            names[r].insert(n);
        }
    }
    // Existing customers and the smallest identity per component.
    let mut existing: FxHashMap<usize, BTreeSet<String>> = FxHashMap::default();
    let mut smallest: FxHashMap<usize, &Identity> = FxHashMap::default();
    for (i, id) in nodes.iter().enumerate() {
        let root = find(&mut parent, i);
        if let Some(c) = known.get(*id) {
            existing.entry(root).or_default().insert(c.clone());
        }
        let e = smallest.entry(root).or_insert(id);
        if *id < *e {
            *e = id;
        }
    }
    let mut out = Resolution::default();
    let mut customer_of_root: FxHashMap<usize, String> = FxHashMap::default();
    let mut roots: Vec<usize> = smallest.keys().copied().collect();
    roots.sort_unstable();
    for root in roots {
        let customer = match existing.get(&root) {
            Some(set) => {
                let mut it = set.iter();
                let into = it.next().expect("non-empty").clone();
                for from in it {
                    out.merges.push((from.clone(), into.clone()));
                }
                into
            }
            None => {
                let seed = smallest[&root];
                let id = customer_id_for(seed);
                out.new_customers.insert(id.clone(), seed.clone());
                id
            }
        };
        customer_of_root.insert(root, customer);
    }
    for (i, id) in nodes.iter().enumerate() {
        let root = find(&mut parent, i);
        let customer = &customer_of_root[&root];
        if known.get(*id) != Some(customer) {
            out.new_identities.insert((*id).clone(), customer.clone());
        }
    }
    out.assignments = items
        .iter()
        .map(|ids| {
            let ids = ids.as_ref();
            // The record belongs with its email or platform id; a phone held back by the
            // household rule does not decide.
            ids.iter()
                .find(|i| i.kind.is_strong() && i.kind != IdentityKind::Phone)
                .or_else(|| ids.iter().find(|i| i.kind == IdentityKind::Phone))
                .map(|i| customer_of_root[&find(&mut parent, index[i])].clone())
        })
        .collect();
    household.sort();
    household.dedup();
    held.sort();
    held.dedup();
    out.suggestions = household;
    out.capped = held
        .iter()
        .filter(|h| h.0 == Held::Size)
        .map(|h| (h.1.clone(), h.2.clone()))
        .collect();
    out.kept_apart = held
        .into_iter()
        .filter(|h| h.0 == Held::Apart)
        .map(|h| (h.1, h.2))
        .collect();
    out
}

/// An identity blocked unless configured otherwise when it would join more than this many
/// otherwise separate customers (`identity.max_customers_per_identity`).
pub const DEFAULT_MAX_CUSTOMERS_PER_IDENTITY: usize = 5;

/// An identity that would join too many people: a shared inbox nobody listed, a front
/// desk's phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedIdentity {
    pub identity: Identity,
    /// How many otherwise separate customers it would have joined.
    pub customers: usize,
    /// How many records of the batch carry it.
    pub records: usize,
}

/// The existing customers a batch would extend: a record carries one of their identities
/// beside an identity that is not theirs. Their history takes part in
/// [`shared_identities`] when they are large.
pub fn extended_customers<I: AsRef<[Identity]>>(
    items: &[I],
    known: &HashMap<Identity, String>,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for ids in items {
        let strong: Vec<&Identity> = ids.as_ref().iter().filter(|i| i.kind.is_strong()).collect();
        for x in &strong {
            let Some(c) = known.get(*x) else { continue };
            if strong.iter().any(|y| known.get(*y) != Some(c)) {
                out.insert(c.clone());
            }
        }
    }
    out
}

/// The identities of a batch that would join more than `max` otherwise separate
/// customers, sorted.
///
/// "Otherwise separate": the components the batch's records and the store's customers
/// (`known`) form without the suspect identities. An identity is suspect when it appears
/// beside more than `max` distinct other customers or identities; `exempt` (identities an
/// operator unblocked) never is. A person's own email and phone, seen together on many
/// records, form one component and are not blocked.
pub fn shared_identities<I: AsRef<[Identity]>>(
    items: &[I],
    known: &HashMap<Identity, String>,
    max: usize,
    exempt: &std::collections::HashSet<Identity>,
) -> Vec<SharedIdentity> {
    let max = max.max(1);
    // Suspects: what each identity appears beside, by customer when known.
    // What an identity is seen beside: the customer it belongs to, else itself.
    #[derive(PartialEq, Eq, Hash)]
    enum Label<'a> {
        Customer(&'a str),
        Identity(&'a Identity),
    }
    fn label<'a>(known: &'a HashMap<Identity, String>, id: &'a Identity) -> Label<'a> {
        match known.get(id) {
            Some(c) => Label::Customer(c.as_str()),
            None => Label::Identity(id),
        }
    }
    let mut beside: FxHashMap<&Identity, (FxHashSet<Label>, usize)> = FxHashMap::default();
    let mut strong: Vec<&Identity> = Vec::new();
    for ids in items {
        strong.clear();
        strong.extend(ids.as_ref().iter().filter(|i| i.kind.is_strong()));
        for x in &strong {
            let e = beside.entry(x).or_default();
            e.1 += 1;
            for y in &strong {
                if x != y {
                    e.0.insert(label(known, y));
                }
            }
        }
    }
    let suspects: BTreeSet<&Identity> = beside
        .iter()
        .filter(|(id, (set, _))| set.len() + usize::from(known.contains_key(**id)) > max)
        .map(|(id, _)| *id)
        .filter(|id| !exempt.contains(*id))
        .collect();
    if suspects.is_empty() {
        return Vec::new();
    }
    // Components without the suspects: records join their identities, customers theirs.
    let mut index: HashMap<&Identity, usize> = HashMap::new();
    let mut parent: Vec<usize> = Vec::new();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    fn join(p: &mut [usize], a: usize, b: usize) {
        let (ra, rb) = (find(p, a), find(p, b));
        if ra != rb {
            p[ra] = rb;
        }
    }
    let mut by_customer: HashMap<&String, usize> = HashMap::new();
    for ids in items {
        let mut first: Option<usize> = None;
        for id in ids.as_ref().iter().filter(|i| i.kind.is_strong()) {
            if suspects.contains(id) {
                continue;
            }
            let i = *index.entry(id).or_insert_with(|| {
                parent.push(parent.len());
                parent.len() - 1
            });
            if let Some(c) = known.get(id) {
                match by_customer.get(c) {
                    Some(&j) => join(&mut parent, i, j),
                    None => {
                        by_customer.insert(c, i);
                    }
                }
            }
            match first {
                Some(f) => join(&mut parent, f, i),
                None => first = Some(i),
            }
        }
    }
    let mut out = Vec::new();
    for x in suspects {
        let mut groups: BTreeSet<String> = BTreeSet::new();
        if let Some(c) = known.get(x) {
            match by_customer.get(c) {
                Some(&j) => {
                    groups.insert(find(&mut parent, j).to_string());
                }
                None => {
                    groups.insert(format!("customer\u{0}{c}"));
                }
            }
        }
        for ids in items {
            let ids = ids.as_ref();
            if !ids.contains(x) {
                continue;
            }
            for y in ids.iter().filter(|i| i.kind.is_strong()) {
                if let Some(&j) = index.get(y) {
                    groups.insert(find(&mut parent, j).to_string());
                }
            }
        }
        if groups.len() > max {
            out.push(SharedIdentity {
                identity: x.clone(),
                customers: groups.len(),
                records: beside[x].1,
            });
        }
    }
    out
}

/// Identities that must never join people: shared inboxes (`info@`, `noreply@`), the
/// business's own addresses and numbers, a test account. A blocked identity stays in the
/// raw record and joins nobody.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityGuard {
    values: std::collections::HashSet<Identity>,
    local_parts: std::collections::HashSet<String>,
}

/// Local parts that name a shared inbox rather than a person, blocked unless the
/// configuration says otherwise.
pub const DEFAULT_BLOCKED_LOCAL_PARTS: &[&str] = &[
    "noreply",
    "no-reply",
    "no_reply",
    "donotreply",
    "do-not-reply",
    "mailer-daemon",
    "postmaster",
    "info",
    "support",
    "help",
    "contact",
    "service",
];

impl IdentityGuard {
    /// Builds the guard from configured values: emails, phones in E.164 (`+4930...`), or
    /// platform ids written `platform:<id>`. Returns the values it could not read.
    pub fn new(blocked: &[String], local_parts: &[String]) -> (Self, Vec<String>) {
        let mut g = Self {
            local_parts: local_parts
                .iter()
                .map(|l| l.trim().to_lowercase())
                .collect(),
            ..Self::default()
        };
        let bad = g.block(blocked);
        (g, bad)
    }

    /// Blocks more values (as [`IdentityGuard::new`] reads them); returns those it could
    /// not read.
    pub fn block(&mut self, blocked: &[String]) -> Vec<String> {
        let mut bad = Vec::new();
        for v in blocked {
            let v = v.trim();
            let id = if v.contains('@') {
                normalize_email(v).map(|e| Identity::new(crate::model::IdentityKind::Email, e))
            } else if let Some(p) = v.strip_prefix("platform:") {
                (!p.is_empty()).then(|| Identity::new(crate::model::IdentityKind::Platform, p))
            } else if v.starts_with('+') || v.starts_with("00") {
                normalize_phone(v, None)
                    .map(|p| Identity::new(crate::model::IdentityKind::Phone, p))
            } else {
                None
            };
            match id {
                Some(id) => {
                    self.values.insert(id);
                }
                None => bad.push(v.to_string()),
            }
        }
        bad
    }

    /// Whether `id` must not join anyone.
    pub fn blocks(&self, id: &Identity) -> bool {
        if self.values.contains(id) {
            return true;
        }
        id.kind == crate::model::IdentityKind::Email
            && id
                .value
                .split_once('@')
                .is_some_and(|(local, _)| self.local_parts.contains(local))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::IdentityKind;

    fn email(s: &str) -> Identity {
        Identity::new(IdentityKind::Email, s)
    }
    fn phone(s: &str) -> Identity {
        Identity::new(IdentityKind::Phone, s)
    }

    #[test]
    fn export_spellings_of_one_phone_agree() {
        for raw in [
            "+49 30 1000042",
            "0301000042",
            "0049301000042",
            "+49 (30) 1000042",
        ] {
            assert_eq!(
                normalize_phone(raw, Some("DE")).as_deref(),
                Some("+49301000042"),
                "{raw}"
            );
        }
    }

    #[test]
    fn the_guard_blocks_shared_inboxes_and_configured_values() {
        let locals: Vec<String> = DEFAULT_BLOCKED_LOCAL_PARTS
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (g, bad) = IdentityGuard::new(
            &[
                " Orders@Harbor-Crumb.example ".into(),
                "+49 30 1234567".into(),
                "platform:zendesk_user:1".into(),
                "not an identity".into(),
            ],
            &locals,
        );
        assert_eq!(bad, ["not an identity"]);
        assert!(g.blocks(&email("orders@harbor-crumb.example")));
        assert!(g.blocks(&email("noreply@shop.example")));
        assert!(g.blocks(&email("info@anything.example")));
        assert!(!g.blocks(&email("ana.info@shop.example")));
        assert!(g.blocks(&phone("+49301234567")));
        assert!(g.blocks(&Identity::new(IdentityKind::Platform, "zendesk_user:1")));
        assert!(!g.blocks(&phone("+49301234568")));
    }

    #[test]
    fn emails_are_trimmed_and_lowercased_but_not_folded() {
        assert_eq!(
            normalize_email("  Ana.Kovac@Example.COM "),
            Some("ana.kovac@example.com".into())
        );
        assert_eq!(
            normalize_email("<mailto:x+tag@ex.org>"),
            Some("x+tag@ex.org".into())
        );
        assert_eq!(normalize_email("not an email"), None);
        assert_eq!(normalize_email("a@b"), None);
        // Unicode: decomposed and composed letters agree, invisible characters go, an
        // international domain takes its ASCII form; dots and tags stay (no provider rules).
        let composed = normalize_email("J\u{00f6}rg@M\u{00fc}ller.de").unwrap();
        assert_eq!(composed, "j\u{00f6}rg@xn--mller-kva.de");
        assert_eq!(
            normalize_email("jo\u{0308}rg@mu\u{0308}ller.de").as_deref(),
            Some(composed.as_str())
        );
        assert_eq!(
            normalize_email("j\u{00f6}rg@xn--mller-kva.de").as_deref(),
            Some(composed.as_str())
        );
        assert_eq!(
            normalize_email("ana\u{200b}@example.com\u{feff}").as_deref(),
            Some("ana@example.com")
        );
        assert_eq!(
            normalize_email("a.n.a+x@gmail.com").as_deref(),
            Some("a.n.a+x@gmail.com")
        );
    }

    #[test]
    fn phones_become_e164() {
        for raw in [
            "+49 30 1234567",
            "+49301234567",
            "0049 30 1234567",
            "030 1234567",
            "+49 (0)30 1234567",
        ] {
            assert_eq!(
                normalize_phone(raw, Some("DE")),
                Some("+49301234567".into()),
                "{raw}"
            );
        }
        assert_eq!(
            normalize_phone("+48 22 123 45 67", None),
            Some("+48221234567".into())
        );
        assert_eq!(normalize_phone("030 1234567", None), None);
        assert_eq!(normalize_phone("4.91701E+12", Some("DE")), None);
        assert_eq!(normalize_phone("call me", Some("DE")), None);
    }

    #[test]
    fn customers_a_batch_would_extend() {
        let e = |v: &str| Identity::new(IdentityKind::Email, v);
        let known: HashMap<Identity, String> = [
            (e("a@x.org"), "cus_a".to_string()),
            (e("a2@x.org"), "cus_a".to_string()),
            (e("b@x.org"), "cus_b".to_string()),
        ]
        .into();
        // Own identities together extend nobody; a new one or another customer's does.
        let items = vec![
            vec![e("a@x.org"), e("a2@x.org")],
            vec![e("b@x.org"), e("new@x.org")],
        ];
        let out = extended_customers(&items, &known);
        assert_eq!(out.into_iter().collect::<Vec<_>>(), ["cus_b"]);
        let items = vec![vec![e("a@x.org"), e("b@x.org")]];
        assert_eq!(extended_customers(&items, &known).len(), 2);
    }

    #[test]
    fn shared_identities_join_within_a_batch() {
        let items = vec![
            vec![email("a@x.org")],
            vec![email("a@x.org"), phone("+491111111111")],
            vec![phone("+491111111111")],
            vec![email("b@x.org")],
            vec![Identity::new(IdentityKind::Name, "Ana")],
        ];
        let r = resolve(&items, &HashMap::new());
        assert_eq!(r.assignments[0], r.assignments[1]);
        assert_eq!(r.assignments[1], r.assignments[2]);
        assert_ne!(r.assignments[0], r.assignments[3]);
        assert_eq!(r.assignments[4], None);
        assert_eq!(r.new_customers.len(), 2);
        assert!(r.merges.is_empty());
    }

    #[test]
    fn joining_two_known_customers_merges_into_the_smallest_id() {
        let mut known = HashMap::new();
        known.insert(email("a@x.org"), "cus_b".to_string());
        known.insert(phone("+491111111111"), "cus_a".to_string());
        let items = vec![vec![email("a@x.org"), phone("+491111111111")]];
        let r = resolve(&items, &known);
        assert_eq!(r.assignments, vec![Some("cus_a".to_string())]);
        assert_eq!(r.merges, vec![("cus_b".to_string(), "cus_a".to_string())]);
        assert!(r.new_customers.is_empty());
    }

    #[test]
    fn customer_ids_do_not_depend_on_order() {
        let a = resolve(&[vec![email("z@x.org"), email("a@x.org")]], &HashMap::new());
        let b = resolve(&[vec![email("a@x.org"), email("z@x.org")]], &HashMap::new());
        assert_eq!(a.assignments, b.assignments);
    }

    #[test]
    fn an_identity_on_more_than_n_separate_customers_is_blocked() {
        let shared = email("noreply@shop.example");
        let none = std::collections::HashSet::new();
        // Eight people, each with their own email, all beside one shop address.
        let items: Vec<Vec<Identity>> = (0..8)
            .map(|i| vec![email(&format!("p{i}@x.org")), shared.clone()])
            .collect();
        let out = shared_identities(&items, &HashMap::new(), 5, &none);
        assert_eq!(
            out,
            vec![SharedIdentity {
                identity: shared.clone(),
                customers: 8,
                records: 8
            }]
        );
        // Five are not more than five.
        assert!(shared_identities(&items[..5], &HashMap::new(), 5, &none).is_empty());
        // A known customer counts as one more.
        let mut known = HashMap::new();
        known.insert(shared.clone(), "cus_z".to_string());
        assert_eq!(
            shared_identities(&items[..5], &known, 5, &none)[0].customers,
            6
        );
        // An operator's unblock exempts it.
        let exempt = std::collections::HashSet::from([shared.clone()]);
        assert!(shared_identities(&items, &HashMap::new(), 5, &exempt).is_empty());
        // One person's phone beside their own eight addresses, which their customer
        // already joins: one customer, not blocked.
        let ph = phone("+4930111222");
        let mut known = HashMap::new();
        let own: Vec<Vec<Identity>> = (0..8)
            .map(|i| {
                let e = email(&format!("me{i}@x.org"));
                known.insert(e.clone(), "cus_me".to_string());
                vec![e, ph.clone()]
            })
            .collect();
        assert!(shared_identities(&own, &known, 5, &none).is_empty());
        // ... and beside eight addresses that another record joins without it.
        let mut chained = own.clone();
        chained.push((0..8).map(|i| email(&format!("me{i}@x.org"))).collect());
        assert!(shared_identities(&chained, &HashMap::new(), 5, &none).is_empty());
    }

    #[test]
    fn the_size_cap_turns_a_collapsing_link_into_suggestions() {
        // A front-desk phone on thirty records, each with its own email and no name:
        // without the cap they would all become one customer.
        let desk = Identity::new(IdentityKind::Phone, "+4930555000");
        let items: Vec<Vec<Identity>> = (0..30)
            .map(|i| vec![email(&format!("p{i:02}@x.org")), desk.clone()])
            .collect();
        let limits = Limits {
            max_component: 5,
            apart: vec![],
        };
        let r = resolve_with(&items, &HashMap::new(), &HashMap::new(), &limits);
        let mut customers: Vec<&String> = r.assignments.iter().flatten().collect();
        customers.sort();
        customers.dedup();
        assert!(customers.len() >= 30 / 4, "{}", customers.len());
        assert!(!r.capped.is_empty());
        // No component holds more than five identities.
        let mut per: HashMap<&String, usize> = HashMap::new();
        for c in r.new_identities.values() {
            *per.entry(c).or_default() += 1;
        }
        assert!(per.values().all(|&n| n <= 5), "{per:?}");
        // With the default cap the same records stay apart only where the cap binds.
        let loose = resolve(&items[..3], &HashMap::new());
        assert!(loose.capped.is_empty());
    }
}
