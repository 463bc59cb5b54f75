//! A lexicon sentiment scorer that handles what feedback is made of: phrases that mean
//! more than their words ("thank you for nothing", "cold beer"), negation, intensifiers,
//! contrast ("great, but ..."), emojis, and words typed without diacritics.
//!
//! The lexicons in `data/lexicon/` were written for this project.

use crate::model::{Sentiment, SentimentLabel};
use rustc_hash::FxHashMap as HashMap;

macro_rules! lexicons {
    ($($code:literal),* $(,)?) => {
        &[$(($code, include_str!(concat!("../../data/lexicon/", $code, ".txt")))),*]
    };
}

const LEXICONS: &[(&str, &str)] = lexicons!(
    "en", "de", "tr", "pl", "hu", "hr", "fr", "es", "it", "nl", "pt", "ro"
);
const EMOJI: &str = include_str!("../../data/lexicon/emoji.txt");

/// The model name stored with every score; bump it when the lexicons or rules change.
pub const MODEL_VERSION: &str = "tideline-lexicon-0.1";

#[derive(Debug, Default)]
struct Lexicon {
    words: HashMap<String, f64>,
    folded: HashMap<String, f64>,
    /// First token -> (token sequence, weight), longest first.
    phrases: HashMap<String, Vec<(Vec<String>, f64)>>,
    negators: HashMap<String, ()>,
    intensifiers: HashMap<String, f64>,
    contrast: HashMap<String, ()>,
}

impl Lexicon {
    fn parse(text: &str) -> Self {
        let mut lx = Lexicon::default();
        let mut section = "";
        for line in text.lines() {
            let line = line.trim_end_matches('\r');
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if trimmed.starts_with('[') && trimmed.ends_with(']') {
                section = match trimmed {
                    "[words]" => "words",
                    "[phrases]" => "phrases",
                    "[negators]" => "negators",
                    "[intensifiers]" => "intensifiers",
                    "[diminishers]" => "diminishers",
                    "[contrast]" => "contrast",
                    _ => "",
                };
                continue;
            }
            let mut parts = line.split('\t');
            // Apostrophes are dropped the way the tokenizer drops them (`don't` -> `dont`).
            let term = parts
                .next()
                .unwrap_or("")
                .trim()
                .to_lowercase()
                .replace(['\'', '’'], "");
            let weight = parts.next().and_then(|w| w.trim().parse::<f64>().ok());
            if term.is_empty() {
                continue;
            }
            match (section, weight) {
                ("words", Some(w)) => {
                    lx.folded.entry(fold(&term)).or_insert(w);
                    lx.words.insert(term, w);
                }
                ("phrases", Some(w)) => {
                    let toks: Vec<String> = tokenize(&term).into_iter().map(|t| t.text).collect();
                    if let Some(first) = toks.first().cloned() {
                        lx.phrases.entry(first).or_default().push((toks, w));
                    }
                }
                ("negators", _) => {
                    lx.negators.insert(term, ());
                }
                ("intensifiers" | "diminishers", Some(w)) => {
                    lx.intensifiers.insert(term, w);
                }
                ("contrast", _) => {
                    lx.contrast.insert(term, ());
                }
                _ => {}
            }
        }
        for v in lx.phrases.values_mut() {
            v.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
        }
        lx
    }
}

/// Strips diacritics the way a phone keyboard without them would type the word.
pub fn fold(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' | 'ą' | 'ă' => 'a',
            'ç' | 'ć' | 'č' => 'c',
            'ď' | 'đ' => 'd',
            'é' | 'è' | 'ê' | 'ë' | 'ę' | 'ě' => 'e',
            'ğ' => 'g',
            'í' | 'ì' | 'î' | 'ï' | 'ı' => 'i',
            'ł' | 'ľ' => 'l',
            'ñ' | 'ń' | 'ň' => 'n',
            'ó' | 'ò' | 'ô' | 'ö' | 'õ' | 'ő' => 'o',
            'ř' => 'r',
            'ś' | 'š' | 'ş' | 'ș' => 's',
            'ť' | 'ț' => 't',
            'ú' | 'ù' | 'û' | 'ü' | 'ű' | 'ů' => 'u',
            'ý' | 'ÿ' => 'y',
            'ź' | 'ż' | 'ž' => 'z',
            'ß' => 's',
            other => other,
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
struct Token {
    text: String,
    /// Ends a clause (`.`, `!`, `?`, `;`) after this token.
    clause_end: bool,
    exclaim: bool,
}

fn is_emoji(c: char) -> bool {
    matches!(c as u32, 0x1F300..=0x1FAFF | 0x2600..=0x27BF | 0x2B50)
}

const EMOTICONS: &[&str] = &[
    ":-)", ":)", ":-(", ":(", ":d", ":-d", "xd", ";)", ";-)", ":/", ":-/", "<3", ":'(", ":p",
    ":-p", ":o", ":|", "=)", "=(", "^^", "-_-", ":*",
];

fn tokenize(text: &str) -> Vec<Token> {
    let lower = text.to_lowercase();
    let mut out: Vec<Token> = Vec::new();
    let mut cur = String::new();
    let flush = |cur: &mut String, out: &mut Vec<Token>| {
        if !cur.is_empty() {
            out.push(Token {
                text: std::mem::take(cur),
                clause_end: false,
                exclaim: false,
            });
        }
    };
    let bytes = lower.as_str();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        let may_start_emoticon = matches!(
            rest.as_bytes()[0],
            b':' | b';' | b'x' | b'<' | b'=' | b'^' | b'-'
        );
        if may_start_emoticon && let Some(e) = EMOTICONS.iter().find(|e| rest.starts_with(**e)) {
            // Only a free-standing emoticon, not `:d` inside `http://d...`.
            let prev_ok = i == 0 || !bytes[..i].ends_with(|c: char| c.is_alphanumeric());
            let next_ok = !rest[e.len()..].starts_with(|c: char| c.is_alphanumeric());
            if prev_ok && next_ok && cur.is_empty() {
                out.push(Token {
                    text: e.to_string(),
                    clause_end: false,
                    exclaim: false,
                });
                i += e.len();
                continue;
            }
        }
        let c = rest.chars().next().expect("non-empty");
        let len = c.len_utf8();
        if c.is_alphanumeric() || c == '\'' || c == '’' {
            if c != '\'' && c != '’' {
                cur.push(c);
            }
        } else {
            flush(&mut cur, &mut out);
            if is_emoji(c) {
                out.push(Token {
                    text: c.to_string(),
                    clause_end: false,
                    exclaim: false,
                });
            } else if matches!(c, '.' | '!' | '?' | ';' | '\n')
                && let Some(last) = out.last_mut()
            {
                last.clause_end = true;
                if c == '!' {
                    last.exclaim = true;
                }
            }
        }
        i += len;
    }
    flush(&mut cur, &mut out);
    out
}

/// Scores texts in the languages it has lexicons for; others get emoji-only scores.
#[derive(Debug)]
pub struct SentimentScorer {
    lexicons: HashMap<&'static str, Lexicon>,
    emoji: Lexicon,
}

impl Default for SentimentScorer {
    fn default() -> Self {
        Self::new()
    }
}

impl SentimentScorer {
    pub fn new() -> Self {
        Self {
            lexicons: LEXICONS
                .iter()
                .map(|(code, text)| (*code, Lexicon::parse(text)))
                .collect(),
            emoji: Lexicon::parse(EMOJI),
        }
    }

    /// Scores `text` written in `language` (ISO 639-1). Returns `None` for empty text.
    pub fn score(&self, text: &str, language: Option<&str>) -> Option<Sentiment> {
        let tokens = tokenize(text);
        if tokens.is_empty() {
            return None;
        }
        let lx = language
            .and_then(|l| self.lexicons.get(l))
            .or_else(|| self.lexicons.get("en"));
        let empty = Lexicon::default();
        let lx = lx.unwrap_or(&empty);

        // Clause by clause: (sum, hits, after_contrast)
        let mut clauses: Vec<(f64, u32, bool)> = vec![(0.0, 0, false)];
        let mut negate_left = 0u8;
        let mut boost = 1.0f64;
        let mut i = 0;
        while i < tokens.len() {
            let t = &tokens[i];
            let mut consumed = 1;
            let mut value: Option<f64> = None;
            if let Some(cands) = lx.phrases.get(&t.text) {
                for (seq, w) in cands {
                    if i + seq.len() <= tokens.len()
                        && seq
                            .iter()
                            .zip(&tokens[i..])
                            .all(|(a, b)| *a == b.text || *a == fold(&b.text))
                    {
                        value = Some(*w);
                        consumed = seq.len();
                        // A phrase carries its own polarity: no negation on top.
                        negate_left = 0;
                        break;
                    }
                }
            }
            let text_tok = &t.text;
            if value.is_none() {
                if lx.contrast.contains_key(text_tok) {
                    clauses.push((0.0, 0, true));
                    negate_left = 0;
                    boost = 1.0;
                    i += 1;
                    continue;
                }
                if lx.negators.contains_key(text_tok) {
                    negate_left = 3;
                    i += 1;
                    continue;
                }
                if let Some(m) = lx.intensifiers.get(text_tok) {
                    boost *= m;
                    i += 1;
                    continue;
                }
                value = lx
                    .words
                    .get(text_tok)
                    .or_else(|| self.emoji.words.get(text_tok))
                    .or_else(|| {
                        if text_tok.is_ascii() {
                            lx.folded.get(text_tok.as_str())
                        } else {
                            lx.folded.get(&fold(text_tok))
                        }
                    })
                    .copied();
                if let Some(v) = value.as_mut()
                    && negate_left > 0
                {
                    *v *= -0.6;
                    negate_left = 0;
                }
            }
            let last = &tokens[i + consumed - 1];
            if let Some(mut v) = value {
                v *= boost;
                if last.exclaim {
                    v *= 1.15;
                }
                let c = clauses.last_mut().expect("one clause");
                c.0 += v;
                c.1 += 1;
                boost = 1.0;
            }
            negate_left = negate_left.saturating_sub(1);
            if last.clause_end {
                negate_left = 0;
                boost = 1.0;
            }
            i += consumed;
        }

        // After a contrast word the later clause dominates.
        let n = clauses.len();
        let mut total = 0.0;
        let mut hits = 0;
        for (k, (sum, h, _)) in clauses.iter().enumerate() {
            let weight = if n > 1 {
                if k == n - 1 { 1.5 } else { 0.5 }
            } else {
                1.0
            };
            total += sum * weight;
            hits += h;
        }
        let score = (total / 3.0).tanh();
        let score = (score * 1000.0).round() / 1000.0;
        let label = if score >= 0.15 {
            SentimentLabel::Positive
        } else if score <= -0.15 {
            SentimentLabel::Negative
        } else {
            SentimentLabel::Neutral
        };
        let evidence = 1.0 - (-(hits as f64) / 2.0).exp();
        let confidence = if hits == 0 {
            0.3
        } else {
            0.4 + 0.5 * evidence * (0.5 + score.abs() / 2.0)
        };
        Some(Sentiment {
            score,
            label,
            confidence: (confidence * 1000.0).round() / 1000.0,
            model: MODEL_VERSION.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(s: &SentimentScorer, text: &str, lang: &str) -> SentimentLabel {
        s.score(text, Some(lang)).unwrap().label
    }

    #[test]
    fn feedback_patterns() {
        let s = SentimentScorer::new();
        use SentimentLabel::*;
        assert_eq!(label(&s, "Great coffee, friendly staff!", "en"), Positive);
        assert_eq!(
            label(&s, "The food was great but the service ruined it.", "en"),
            Negative
        );
        assert_eq!(label(&s, "Thank you for nothing.", "en"), Negative);
        assert_eq!(label(&s, "Die Pizza war nicht schlecht.", "de"), Positive);
        assert_eq!(
            label(&s, "Das Essen war kalt und der Fahrer unhöflich.", "de"),
            Negative
        );
        assert_eq!(
            label(&s, "Dostawa spóźniona, jedzenie zimne 😡", "pl"),
            Negative
        );
        assert_eq!(label(&s, "👍👍", "en"), Positive);
    }

    #[test]
    fn missing_diacritics_still_score() {
        let s = SentimentScorer::new();
        let a = s
            .score("Jedzenie było zimne i niesmaczne", Some("pl"))
            .unwrap();
        let b = s
            .score("Jedzenie bylo zimne i niesmaczne", Some("pl"))
            .unwrap();
        assert_eq!(a.label, SentimentLabel::Negative);
        assert_eq!(b.label, SentimentLabel::Negative);
    }
}
