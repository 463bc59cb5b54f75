//! Aspect tagging: which parts of the experience a text talks about (wait time, staff,
//! price, ...), from keyword lists per language in `data/aspects/` (written for this
//! project). A term is a word, a phrase, or a stem ending in `*`; every term also matches
//! without its diacritics.

use super::lexicon::{Token, fold};
use rustc_hash::FxHashMap as HashMap;
use serde::{Deserialize, Serialize};

macro_rules! aspect_lists {
    ($($code:literal),* $(,)?) => {
        &[$(($code, include_str!(concat!("../../../data/aspects/", $code, ".txt")))),*]
    };
}

const LISTS: &[(&str, &str)] = aspect_lists!(
    "en", "de", "tr", "pl", "hu", "hr", "fr", "es", "it", "nl", "pt", "ro"
);

/// The aspects Tideline tags, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aspect {
    WaitTime,
    Staff,
    Price,
    Quality,
    Cleanliness,
    Delivery,
    Billing,
    App,
}

impl Aspect {
    pub const ALL: [Aspect; 8] = [
        Aspect::WaitTime,
        Aspect::Staff,
        Aspect::Price,
        Aspect::Quality,
        Aspect::Cleanliness,
        Aspect::Delivery,
        Aspect::Billing,
        Aspect::App,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Aspect::WaitTime => "wait_time",
            Aspect::Staff => "staff",
            Aspect::Price => "price",
            Aspect::Quality => "quality",
            Aspect::Cleanliness => "cleanliness",
            Aspect::Delivery => "delivery",
            Aspect::Billing => "billing",
            Aspect::App => "app",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

#[derive(Debug, Default)]
struct Terms {
    /// folded word -> aspect
    words: HashMap<String, Aspect>,
    /// folded stems, longest first
    stems: Vec<(String, Aspect)>,
    /// first folded word -> (folded words, aspect)
    phrases: HashMap<String, Vec<(Vec<String>, Aspect)>>,
}

impl Terms {
    fn parse(text: &str) -> Self {
        let mut t = Terms::default();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((aspect, term)) = line.split_once('\t') else {
                continue;
            };
            let Some(aspect) = Aspect::parse(aspect.trim()) else {
                continue;
            };
            let term = fold(&term.trim().to_lowercase()).replace(['\'', '’'], "");
            if let Some(stem) = term.strip_suffix('*') {
                if stem.chars().count() >= 3 && !stem.contains(' ') {
                    t.stems.push((stem.to_string(), aspect));
                }
                continue;
            }
            let words: Vec<String> = term.split_whitespace().map(str::to_string).collect();
            match words.len() {
                0 => {}
                1 => {
                    t.words.entry(words[0].clone()).or_insert(aspect);
                }
                _ => t
                    .phrases
                    .entry(words[0].clone())
                    .or_default()
                    .push((words, aspect)),
            }
        }
        t.stems.sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
        t
    }

    fn at(&self, folded: &[String], i: usize) -> Option<(Aspect, usize)> {
        if let Some(cands) = self.phrases.get(&folded[i]) {
            for (seq, a) in cands {
                if folded.len() >= i + seq.len()
                    && seq.iter().zip(&folded[i..]).all(|(a, b)| a == b)
                {
                    return Some((*a, seq.len()));
                }
            }
        }
        let w = &folded[i];
        if let Some(a) = self.words.get(w) {
            return Some((*a, 1));
        }
        self.stems
            .iter()
            .find(|(s, _)| w.starts_with(s.as_str()))
            .map(|(_, a)| (*a, 1))
    }
}

/// A mention of an aspect: which token it starts at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mention {
    pub aspect: Aspect,
    pub token: usize,
}

/// The aspect lists of every supported language.
#[derive(Debug)]
pub struct AspectTagger {
    terms: HashMap<&'static str, Terms>,
}

impl Default for AspectTagger {
    fn default() -> Self {
        Self::new()
    }
}

impl AspectTagger {
    pub fn new() -> Self {
        Self {
            terms: LISTS.iter().map(|(c, t)| (*c, Terms::parse(t))).collect(),
        }
    }

    /// Mentions in token order. A language without a list falls back to English, which
    /// many feedback texts mix in ("app", "refund", "delivery").
    pub(crate) fn tag(&self, tokens: &[Token], language: Option<&str>) -> Vec<Mention> {
        let primary = language.and_then(|l| self.terms.get(l));
        let english = self.terms.get("en");
        let folded: Vec<String> = tokens.iter().map(|t| fold(&t.text)).collect();
        let mut out = Vec::new();
        let mut i = 0;
        while i < folded.len() {
            let hit = primary
                .and_then(|t| t.at(&folded, i))
                .or_else(|| english.and_then(|t| t.at(&folded, i)));
            match hit {
                Some((aspect, len)) => {
                    out.push(Mention { aspect, token: i });
                    i += len;
                }
                None => i += 1,
            }
        }
        out
    }
}
