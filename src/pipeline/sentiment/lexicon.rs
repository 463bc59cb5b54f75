//! The rule layer of the sentiment scorer: lexicons plus the rules feedback needs, namely
//! phrases that mean more than their words ("thank you for nothing", "cold beer"),
//! negation, intensifiers, contrast ("great, but ..."), emojis, and words typed without
//! diacritics. It turns a text into [`Signals`]: a rule score, the counts behind it, and the
//! token stream (with negation scopes and clauses) the linear model reads.
//!
//! Lexicons, in order of precedence: `data/lexicon/<lang>.txt`, `data/lexicon/ext/<lang>.txt`
//! and `emoji.txt` (written for this project), then `data/lexicon/thirdparty/` (AFINN translations, VADER for English,
//! the Emoji Sentiment Ranking; licences in that folder's `LICENSES.md`).

use rustc_hash::FxHashMap as HashMap;

macro_rules! lexicons {
    ($($code:literal),* $(,)?) => {
        &[$((
            $code,
            include_str!(concat!("../../../data/lexicon/", $code, ".txt")),
            include_str!(concat!("../../../data/lexicon/ext/", $code, ".txt")),
            include_str!(concat!("../../../data/lexicon/thirdparty/afinn-", $code, ".txt")),
        )),*]
    };
}

/// (language, project lexicon, project extension, translated AFINN)
const LEXICONS: &[(&str, &str, &str, &str)] = lexicons!(
    "en", "de", "tr", "pl", "hu", "hr", "fr", "es", "it", "nl", "pt", "ro"
);
const VADER_EN: &str = include_str!("../../../data/lexicon/thirdparty/vader-en.txt");
const EMOJI: &str = include_str!("../../../data/lexicon/emoji.txt");
const EMOJI_RANKING: &str = include_str!("../../../data/lexicon/thirdparty/emoji-ranking.txt");

/// Languages with a lexicon.
pub fn languages() -> impl Iterator<Item = &'static str> {
    LEXICONS.iter().map(|(code, _, _, _)| *code)
}

/// Where a lexicon weight came from; the model learns how far to trust each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// The project's own lists.
    Own = 0,
    /// Third-party lists (translated AFINN, VADER, the emoji ranking).
    ThirdParty = 1,
    /// A word matched by its beginning only.
    Stem = 2,
}

#[derive(Debug, Default)]
pub(crate) struct Lexicon {
    words: HashMap<String, (f64, Origin)>,
    folded: HashMap<String, (f64, Origin)>,
    /// Word beginnings (the word less its last one or two letters) -> weight, for
    /// inflected forms the lists do not spell out ("buen" from "bueno").
    stems: HashMap<String, f64>,
    /// First token -> (token sequence, weight), longest first.
    phrases: HashMap<String, Vec<(Vec<String>, f64)>>,
    negators: HashMap<String, ()>,
    intensifiers: HashMap<String, f64>,
    contrast: HashMap<String, ()>,
}

impl Lexicon {
    /// Adds the entries of `text`; entries already present (from a lexicon of higher
    /// precedence) are kept.
    fn merge(&mut self, text: &str, origin: Origin) {
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
                    // A multi-word entry in a word list is a phrase.
                    if term.contains(' ') {
                        self.add_phrase(&term, w);
                        continue;
                    }
                    self.folded.entry(fold(&term)).or_insert((w, origin));
                    self.words.entry(term).or_insert((w, origin));
                }
                ("phrases", Some(w)) => self.add_phrase(&term, w),
                ("negators", _) => {
                    self.negators.insert(term, ());
                }
                ("intensifiers" | "diminishers", Some(w)) => {
                    self.intensifiers.entry(term).or_insert(w);
                }
                ("contrast", _) => {
                    self.contrast.insert(term, ());
                }
                _ => {}
            }
        }
        for v in self.phrases.values_mut() {
            v.sort_by_key(|(t, _)| std::cmp::Reverse(t.len()));
        }
    }

    fn add_phrase(&mut self, term: &str, w: f64) {
        let toks: Vec<String> = tokenize(term).into_iter().map(|t| t.text).collect();
        if let Some(first) = toks.first().cloned() {
            let list = self.phrases.entry(first).or_default();
            if !list.iter().any(|(t, _)| *t == toks) {
                list.push((toks, w));
            }
        }
    }

    /// Every listed word with its weight.
    pub(crate) fn entries(&self) -> Vec<(String, f64)> {
        self.words
            .iter()
            .map(|(w, (v, _))| (w.clone(), *v))
            .collect()
    }

    /// Derives the stems once every list is merged. A stem shared by words of opposite
    /// polarity is dropped.
    fn build_stems(&mut self) {
        let mut stems: HashMap<String, f64> = HashMap::default();
        let mut conflicts: Vec<String> = Vec::new();
        for (w, (v, _)) in &self.folded {
            let chars: Vec<char> = w.chars().collect();
            if chars.len() < 5 || !chars.iter().all(|c| c.is_alphabetic()) {
                continue;
            }
            for cut in 1..=2 {
                if chars.len() - cut < 4 {
                    break;
                }
                let stem: String = chars[..chars.len() - cut].iter().collect();
                match stems.get(&stem) {
                    Some(old) if old.signum() != v.signum() => conflicts.push(stem),
                    Some(old) if old.abs() >= v.abs() => {}
                    _ => {
                        stems.insert(stem, *v);
                    }
                }
            }
        }
        for c in conflicts {
            stems.remove(&c);
        }
        self.stems = stems;
    }

    fn word(&self, tok: &str) -> Option<(f64, Origin)> {
        if let Some(hit) = self.words.get(tok) {
            return Some(*hit);
        }
        let folded = if tok.is_ascii() {
            std::borrow::Cow::Borrowed(tok)
        } else {
            std::borrow::Cow::Owned(fold(tok))
        };
        if let Some(hit) = self.folded.get(folded.as_ref()) {
            return Some(*hit);
        }
        // An inflected form: the token, or the token less up to three letters, is the
        // beginning of a listed word.
        let chars: Vec<(usize, char)> = folded.char_indices().collect();
        if chars.len() < 4 || !chars.iter().all(|(_, c)| c.is_alphabetic()) {
            return None;
        }
        for cut in 0..=3usize {
            if chars.len() - cut < 4 {
                break;
            }
            let end = if cut == 0 {
                folded.len()
            } else {
                chars[chars.len() - cut].0
            };
            if let Some(v) = self.stems.get(&folded[..end]) {
                return Some((*v * 0.7, Origin::Stem));
            }
        }
        None
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
            'ť' | 'ț' | 'ţ' => 't',
            'ú' | 'ù' | 'û' | 'ü' | 'ű' | 'ů' => 'u',
            'ý' | 'ÿ' => 'y',
            'ź' | 'ż' | 'ž' => 'z',
            'ß' => 's',
            other => other,
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    /// Lowercased; letters repeated three times or more cut to two ("goood" -> "good").
    pub text: String,
    /// Ends a clause (`.`, `!`, `?`, `;`) after this token.
    pub clause_end: bool,
    pub exclaim: bool,
    /// Written with a letter repeated three or more times, or in capitals.
    pub emphasis: bool,
    /// Byte offset in the text where the token starts.
    pub start: usize,
}

impl Token {
    /// A token that stands for itself: a link or handle placeholder, an emoticon, an emoji.
    fn symbol(text: impl Into<String>, start: usize) -> Self {
        Token {
            text: text.into(),
            clause_end: false,
            exclaim: false,
            emphasis: false,
            start,
        }
    }
}

fn is_emoji(c: char) -> bool {
    matches!(c as u32, 0x1F300..=0x1FAFF | 0x2600..=0x27BF | 0x2B50)
        && !matches!(c as u32, 0x1F3FB..=0x1F3FF)
}

const EMOTICONS: &[&str] = &[
    ":-)", ":)", ":-(", ":(", ":d", ":-d", "xd", ";)", ";-)", ":/", ":-/", "<3", ":'(", ":p",
    ":-p", ":o", ":|", "=)", "=(", "^^", "-_-", ":*", ":))", ":((",
];

/// Placeholder tokens for links and user handles: their content says nothing of sentiment.
pub(crate) const URL_TOKEN: &str = "_url_";
pub(crate) const USER_TOKEN: &str = "_user_";

/// The word being read by [`tokenize`].
#[derive(Default)]
struct Word {
    text: String,
    start: usize,
    letters: usize,
    upper: usize,
    repeated: bool,
}

impl Word {
    /// Ends the word (if any) and hands it to `out`.
    fn flush(&mut self, out: &mut Vec<Token>) {
        let w = std::mem::take(self);
        if !w.text.is_empty() {
            out.push(Token {
                emphasis: (w.letters >= 3 && w.upper == w.letters) || w.repeated,
                ..Token::symbol(w.text, w.start)
            });
        }
    }
}

pub(crate) fn tokenize(text: &str) -> Vec<Token> {
    let mut out: Vec<Token> = Vec::new();
    let mut cur = Word::default();
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let first = rest.as_bytes()[0];
        if cur.text.is_empty()
            && (rest.starts_with("http://")
                || rest.starts_with("https://")
                || rest.starts_with("www."))
        {
            let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
            out.push(Token::symbol(URL_TOKEN, i));
            i += end;
            continue;
        }
        if first == b'@'
            && cur.text.is_empty()
            && rest[1..].starts_with(|c: char| c.is_alphanumeric() || c == '_')
        {
            let end = rest[1..]
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'))
                .map_or(rest.len(), |e| e + 1);
            out.push(Token::symbol(USER_TOKEN, i));
            i += end;
            continue;
        }
        let may_start_emoticon =
            matches!(first, b':' | b';' | b'x' | b'X' | b'<' | b'=' | b'^' | b'-');
        if may_start_emoticon && cur.text.is_empty() {
            let lower_head: String = rest.chars().take(4).collect::<String>().to_lowercase();
            if let Some(e) = EMOTICONS
                .iter()
                .filter(|e| lower_head.starts_with(**e))
                .max_by_key(|e| e.len())
            {
                // Only a free-standing emoticon, not `:d` inside `http://d...`.
                let prev_ok = i == 0 || !text[..i].ends_with(|c: char| c.is_alphanumeric());
                let next_ok = !rest[e.len()..].starts_with(|c: char| c.is_alphanumeric());
                if prev_ok && next_ok {
                    out.push(Token::symbol(e.to_string(), i));
                    i += e.len();
                    continue;
                }
            }
        }
        let c = rest.chars().next().expect("non-empty");
        let len = c.len_utf8();
        if c.is_alphanumeric() {
            if cur.text.is_empty() {
                cur.start = i;
            }
            if c.is_alphabetic() {
                cur.letters += 1;
                if c.is_uppercase() {
                    cur.upper += 1;
                }
            }
            for l in c.to_lowercase() {
                // Cut runs of a letter at two: "sooooo" -> "soo", "goood" -> "good".
                let mut tail = cur.text.chars().rev();
                if c.is_alphabetic() && tail.next() == Some(l) && tail.next() == Some(l) {
                    cur.repeated = true;
                    continue;
                }
                cur.text.push(l);
            }
        } else if c == '\'' || c == '’' {
            // `don't` -> `dont`
        } else {
            cur.flush(&mut out);
            if is_emoji(c) {
                out.push(Token::symbol(c.to_string(), i));
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
    cur.flush(&mut out);
    out
}

/// One clause of a text: the part before or after a contrast word or a sentence end.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Clause {
    /// Token range `[start, end)`.
    pub start: usize,
    pub end: usize,
    /// Sum of the weights of the cues in the clause.
    pub sum: f64,
    pub hits: u32,
    /// Starts with a contrast word ("but", "aber", "ale").
    pub after_contrast: bool,
}

/// What the rule layer saw in one text.
#[derive(Debug, Clone, Default)]
pub struct Signals {
    pub(crate) tokens: Vec<Token>,
    /// Per token: inside the scope of a negator.
    pub(crate) negated: Vec<bool>,
    /// Per token: the lexicon weight it contributed (after negation), if any.
    pub(crate) weights: Vec<Option<f64>>,
    pub clauses: Vec<Clause>,
    /// The rule score in [-1, 1]; later clauses after a contrast weigh more.
    pub score: f64,
    pub hits: u32,
    pub positive: f64,
    pub negative: f64,
    pub negations: u32,
    pub emoji_positive: f64,
    pub emoji_negative: f64,
    pub exclaims: u32,
    pub questions: u32,
    pub emphasis: u32,
    /// Positive and negative sums by [`Origin`].
    pub(crate) by_origin: [[f64; 2]; 3],
}

/// Rule-based scoring over the lexicons of every supported language.
#[derive(Debug)]
pub struct Rules {
    lexicons: HashMap<&'static str, Lexicon>,
    emoji: Lexicon,
    empty: Lexicon,
}

impl Default for Rules {
    fn default() -> Self {
        Self::new()
    }
}

impl Rules {
    pub fn new() -> Self {
        let lexicons = LEXICONS
            .iter()
            .map(|(code, own, ext, afinn)| {
                let mut lx = Lexicon::default();
                lx.merge(own, Origin::Own);
                lx.merge(ext, Origin::Own);
                if *code == "en" {
                    lx.merge(VADER_EN, Origin::ThirdParty);
                }
                lx.merge(afinn, Origin::ThirdParty);
                lx.build_stems();
                (*code, lx)
            })
            .collect();
        let mut emoji = Lexicon::default();
        emoji.merge(EMOJI, Origin::Own);
        emoji.merge(EMOJI_RANKING, Origin::ThirdParty);
        Self {
            lexicons,
            emoji,
            empty: Lexicon::default(),
        }
    }

    pub(crate) fn lexicon(&self, language: Option<&str>) -> &Lexicon {
        language
            .and_then(|l| self.lexicons.get(l))
            .unwrap_or(&self.empty)
    }

    /// Reads `text` written in `language` (ISO 639-1). Without a language, or in one without
    /// a lexicon, the text is read with the lexicon that recognises most of its words (a
    /// "great!" too short to detect is still positive).
    pub fn analyse(&self, text: &str, language: Option<&str>) -> Signals {
        if let Some(lx) = language.and_then(|l| self.lexicons.get(l)) {
            return self.analyse_with(text, lx);
        }
        let mut best: Option<Signals> = None;
        for code in languages() {
            let s = self.analyse_with(text, &self.lexicons[code]);
            if best.as_ref().is_none_or(|b| s.hits > b.hits) {
                best = Some(s);
            }
        }
        best.unwrap_or_else(|| self.analyse_with(text, &self.empty))
    }

    fn analyse_with(&self, text: &str, lx: &Lexicon) -> Signals {
        let tokens = tokenize(text);
        let n = tokens.len();
        let mut s = Signals {
            negated: vec![false; n],
            weights: vec![None; n],
            ..Signals::default()
        };
        s.questions = text.matches('?').count() as u32;
        s.clauses.push(Clause::default());
        let mut negate_left = 0u8;
        let mut boost = 1.0f64;
        let mut i = 0;
        while i < n {
            let t = &tokens[i];
            if t.emphasis {
                s.emphasis += 1;
            }
            if t.exclaim {
                s.exclaims += 1;
            }
            let mut consumed = 1;
            let mut value: Option<f64> = None;
            let mut origin = Origin::Own;
            let mut is_emoji = false;
            if let Some(cands) = lx
                .phrases
                .get(&t.text)
                .or_else(|| lx.phrases.get(&fold(&t.text)))
            {
                for (seq, w) in cands {
                    if i + seq.len() <= n
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
            let tok = t.text.as_str();
            if value.is_none() {
                if lx.contrast.contains_key(tok) {
                    let c = s.clauses.last_mut().expect("one clause");
                    c.end = i;
                    s.clauses.push(Clause {
                        start: i,
                        end: i,
                        after_contrast: true,
                        ..Clause::default()
                    });
                    negate_left = 0;
                    boost = 1.0;
                    i += 1;
                    continue;
                }
                if lx.negators.contains_key(tok) {
                    negate_left = 3;
                    s.negations += 1;
                    i += 1;
                    continue;
                }
                if let Some(m) = lx.intensifiers.get(tok) {
                    boost *= m;
                    i += 1;
                    continue;
                }
                let mut hit = lx.word(tok);
                if hit.is_none() {
                    hit = self.emoji.word(tok);
                    is_emoji = hit.is_some();
                }
                if let Some((v, o)) = hit {
                    value = Some(v);
                    origin = o;
                }
                if negate_left > 0 {
                    s.negated[i] = true;
                    if let Some(v) = value.as_mut() {
                        *v *= -0.6;
                        negate_left = 0;
                    }
                }
            }
            let last = &tokens[i + consumed - 1];
            if let Some(mut v) = value {
                v *= boost;
                if last.exclaim || t.emphasis {
                    v *= 1.15;
                }
                let c = s.clauses.last_mut().expect("one clause");
                c.sum += v;
                c.hits += 1;
                s.hits += 1;
                if v > 0.0 {
                    s.positive += v;
                    if is_emoji {
                        s.emoji_positive += v;
                    }
                } else {
                    s.negative -= v;
                    if is_emoji {
                        s.emoji_negative -= v;
                    }
                }
                s.weights[i] = Some(v);
                s.by_origin[origin as usize][usize::from(v < 0.0)] += v.abs();
                boost = 1.0;
            }
            negate_left = negate_left.saturating_sub(1);
            i += consumed;
            if last.clause_end {
                negate_left = 0;
                boost = 1.0;
                if i < n {
                    let c = s.clauses.last_mut().expect("one clause");
                    c.end = i;
                    s.clauses.push(Clause {
                        start: i,
                        end: i,
                        ..Clause::default()
                    });
                }
            }
        }
        if let Some(c) = s.clauses.last_mut() {
            c.end = n;
        }

        // After a contrast word the clause that follows dominates what came before it.
        let mut total = 0.0;
        for (k, c) in s.clauses.iter().enumerate() {
            let next_contrasts = s.clauses.get(k + 1).is_some_and(|c| c.after_contrast);
            let weight = if next_contrasts {
                0.5
            } else if c.after_contrast {
                1.5
            } else {
                1.0
            };
            total += c.sum * weight;
        }
        s.score = (total / 3.0).tanh();
        s.tokens = tokens;
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_cut_repeats_and_hide_links_and_handles() {
        let t: Vec<String> = tokenize("Sooooo GOOOD @bob_1 see https://t.co/x1 :)")
            .into_iter()
            .map(|t| t.text)
            .collect();
        assert_eq!(t, ["soo", "good", USER_TOKEN, "see", URL_TOKEN, ":)"]);
        assert!(tokenize("GREAT")[0].emphasis);
    }

    #[test]
    fn contrast_makes_the_later_clause_count() {
        let r = Rules::new();
        let s = r.analyse("The food was great but the service ruined it.", Some("en"));
        assert!(s.score < 0.0, "{}", s.score);
        assert_eq!(s.clauses.len(), 2);
        let s = r.analyse("Slow start, but in the end they were great.", Some("en"));
        assert!(s.score > 0.0, "{}", s.score);
    }

    #[test]
    fn negation_flips_and_marks_scope() {
        let r = Rules::new();
        let s = r.analyse("Die Pizza war nicht schlecht", Some("de"));
        assert!(s.score > 0.0);
        let s = r.analyse("Das war nicht der Fahrer", Some("de"));
        assert!(s.negated[3] && !s.negated[1]);
        let s = r.analyse("wcale nie najgorzej", Some("pl"));
        assert!(s.score >= 0.0, "{}", s.score);
    }
}
