//! Language detection: a cheap first pass over function words and letters that only one
//! language uses, and `lingua` when the first pass is not sure. Texts too short to judge
//! take the declared language (the source's or the location's) instead of a guess.
//!
//! The word lists in `data/stopwords/` were written for this project.

use lingua::{IsoCode639_1, Language, LanguageDetector as Lingua, LanguageDetectorBuilder};
use rustc_hash::FxHashMap as HashMap;
use std::str::FromStr;

macro_rules! stopwords {
    ($($code:literal),* $(,)?) => {
        &[$(($code, include_str!(concat!("../../data/stopwords/", $code, ".txt")))),*]
    };
}

const STOPWORDS: &[(&str, &str)] = stopwords!(
    "en", "de", "tr", "pl", "hu", "hr", "fr", "es", "it", "nl", "pt", "ro"
);

/// Letters that, among the supported languages, only one language writes.
const UNIQUE_LETTERS: &[(char, &str)] = &[
    ('ß', "de"),
    ('ğ', "tr"),
    ('ı', "tr"),
    ('ş', "tr"),
    ('İ', "tr"),
    ('ł', "pl"),
    ('ń', "pl"),
    ('ś', "pl"),
    ('ź', "pl"),
    ('ż', "pl"),
    ('ą', "pl"),
    ('ę', "pl"),
    ('ő', "hu"),
    ('ű', "hu"),
    ('đ', "hr"),
    ('ć', "hr"),
    ('č', "hr"),
    ('ñ', "es"),
    ('ã', "pt"),
    ('õ', "pt"),
    ('ă', "ro"),
    ('ț', "ro"),
    ('ș', "ro"),
    ('œ', "fr"),
    ('ÿ', "fr"),
];

/// The model reads at most this many characters: its cost grows with the text, its
/// accuracy does not beyond a couple of sentences.
const MODEL_SAMPLE_CHARS: usize = 240;

/// The first `max` characters of `text`, cut at a word boundary when there is one.
fn sample(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        None => text,
        Some((end, next)) => {
            let head = &text[..end];
            if next.is_whitespace() {
                return head;
            }
            match head.rfind(char::is_whitespace) {
                Some(cut) if cut >= end / 2 => &head[..cut],
                _ => head,
            }
        }
    }
}

/// How a language was decided, for measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Too short or no letters: the declared language, if any.
    Declared,
    /// The cheap pass was sure.
    Fast,
    /// lingua decided.
    Model,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub language: Option<String>,
    pub confidence: Option<f64>,
    pub method: Method,
}

pub struct LanguageDetector {
    lingua: Lingua,
    /// word -> bit set of language indexes
    words: HashMap<&'static str, u16>,
    codes: Vec<&'static str>,
    min_chars: usize,
}

impl std::fmt::Debug for LanguageDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LanguageDetector")
            .field("languages", &self.codes)
            .field("min_chars", &self.min_chars)
            .finish()
    }
}

impl LanguageDetector {
    /// Builds a detector for the given ISO 639-1 codes (unknown codes are ignored; config
    /// validation reports them).
    pub fn new(languages: &[String], min_chars: usize) -> Self {
        let mut codes = Vec::new();
        let mut lingua_langs = Vec::new();
        for (code, _) in STOPWORDS {
            if languages.iter().any(|l| l == code)
                && let Ok(iso) = IsoCode639_1::from_str(code)
            {
                codes.push(*code);
                lingua_langs.push(Language::from_iso_code_639_1(&iso));
            }
        }
        if lingua_langs.len() < 2 {
            // lingua needs two candidates; English is a harmless second.
            if !codes.contains(&"en") {
                codes.push("en");
                lingua_langs.push(Language::English);
            } else {
                codes.push("de");
                lingua_langs.push(Language::German);
            }
        }
        let mut words: HashMap<&'static str, u16> = HashMap::default();
        for (i, code) in codes.iter().enumerate() {
            let list = STOPWORDS
                .iter()
                .find(|(c, _)| c == code)
                .map(|(_, l)| *l)
                .unwrap_or("");
            for w in list.lines().map(str::trim) {
                if w.is_empty() || w.starts_with('#') {
                    continue;
                }
                *words.entry(w).or_default() |= 1 << i;
            }
        }
        let lingua = LanguageDetectorBuilder::from_languages(&lingua_langs).build();
        Self {
            lingua,
            words,
            codes,
            min_chars,
        }
    }

    pub fn languages(&self) -> &[&'static str] {
        &self.codes
    }

    /// Detects the language of `text`; `declared` is the source's or location's language.
    pub fn detect(&self, text: &str, declared: Option<&str>) -> Detection {
        let declared_only = || Detection {
            language: declared.map(str::to_string),
            confidence: None,
            method: Method::Declared,
        };
        let letters = text.chars().filter(|c| c.is_alphabetic()).count();
        if letters < self.min_chars {
            return declared_only();
        }
        if let Some(d) = self.fast(text) {
            return d;
        }
        let values = self
            .lingua
            .compute_language_confidence_values(sample(text, MODEL_SAMPLE_CHARS));
        let Some((lang, conf)) = values.first().copied() else {
            return declared_only();
        };
        if conf <= 0.0 {
            return declared_only();
        }
        // Short texts where lingua hesitates are better served by what the source declares.
        if conf < 0.5 && letters < 40 && declared.is_some() {
            return declared_only();
        }
        Detection {
            language: Some(lang.iso_code_639_1().to_string().to_lowercase()),
            confidence: Some((conf * 1000.0).round() / 1000.0),
            method: Method::Model,
        }
    }

    /// The cheap pass: counts function words of each language and letters only one language
    /// writes. Answers only with a clear margin; otherwise `None` (ask the model).
    fn fast(&self, text: &str) -> Option<Detection> {
        let mut counts = [0u32; 16];
        let mut tokens = 0u32;
        for tok in text
            .split(|c: char| !(c.is_alphabetic() || c == '\''))
            .filter(|t| !t.is_empty())
        {
            tokens += 1;
            let lower;
            let t = if tok.chars().any(char::is_uppercase) {
                lower = tok.to_lowercase();
                lower.as_str()
            } else {
                tok
            };
            if let Some(mask) = self.words.get(t) {
                for (i, c) in counts.iter_mut().enumerate().take(self.codes.len()) {
                    if mask & (1 << i) != 0 {
                        *c += 2;
                    }
                }
            }
        }
        for ch in text.chars().filter(|c| !c.is_ascii()) {
            if let Some((_, code)) = UNIQUE_LETTERS.iter().find(|(c, _)| *c == ch)
                && let Some(i) = self.codes.iter().position(|c| c == code)
            {
                counts[i] += 1;
            }
        }
        let mut order: Vec<usize> = (0..self.codes.len()).collect();
        order.sort_by_key(|i| std::cmp::Reverse(counts[*i]));
        let (best, second) = (counts[order[0]], counts[order[1]]);
        // At least three function words' worth of evidence, three times the runner-up,
        // and a fair share of the tokens; or, in a short text, two function words of one
        // language and no evidence for any other.
        let clear = best >= 6 && best >= 3 * second.max(1) && best * 6 >= tokens;
        let short_and_alone = best >= 4 && second == 0 && tokens <= 12;
        if clear || short_and_alone {
            Some(Detection {
                language: Some(self.codes[order[0]].to_string()),
                confidence: Some(0.9),
                method: Method::Fast,
            })
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<String> {
        crate::config::SUPPORTED_LANGUAGES
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    #[test]
    fn detects_common_feedback_languages() {
        let d = LanguageDetector::new(&all(), 12);
        let cases = [
            (
                "The coffee was great but the service was really slow today.",
                "en",
            ),
            (
                "Der Kaffee war sehr gut, aber die Bedienung war leider unfreundlich.",
                "de",
            ),
            (
                "Siparişim çok geç geldi ve yemekler soğuktu, hiç memnun kalmadım.",
                "tr",
            ),
            (
                "Zamówienie przyszło bardzo późno i jedzenie było zimne.",
                "pl",
            ),
            ("A kávé nagyon finom volt, de a kiszolgálás lassú.", "hu"),
            ("Kava je bila odlična, ali usluga je bila jako spora.", "hr"),
        ];
        for (text, want) in cases {
            assert_eq!(
                d.detect(text, None).language.as_deref(),
                Some(want),
                "{text}"
            );
        }
    }

    #[test]
    fn the_model_sample_ends_on_a_word_boundary() {
        assert_eq!(sample("short", 240), "short");
        assert_eq!(sample("ab cd ef", 5), "ab cd");
        assert_eq!(sample("ab cd ef", 4), "ab");
        assert_eq!(sample("żółć żółć", 6), "żółć");
        assert_eq!(sample("abcdefgh", 4), "abcd");
    }

    #[test]
    fn short_texts_take_the_declared_language() {
        let d = LanguageDetector::new(&all(), 12);
        let r = d.detect("Super!", Some("de"));
        assert_eq!(r.language.as_deref(), Some("de"));
        assert_eq!(r.method, Method::Declared);
        assert_eq!(d.detect("👍👍", None).language, None);
    }
}
