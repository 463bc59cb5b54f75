//! The domain types every layer shares: the interaction record, identities, locations.
//!
//! These types carry no behaviour beyond small conversions; the pipeline builds them,
//! the store persists them and the outputs read them back.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a customer said or did. Stored as lowercase snake_case text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InteractionKind {
    Review,
    Reply,
    Mention,
    Ticket,
    TicketComment,
    SurveyResponse,
}

impl InteractionKind {
    /// Written by the customer (not the business's reply or an agent's comment).
    pub fn written_by_customer(self) -> bool {
        matches!(
            self,
            Self::Review | Self::Mention | Self::Ticket | Self::SurveyResponse
        )
    }

    pub const ALL: [InteractionKind; 6] = [
        Self::Review,
        Self::Reply,
        Self::Mention,
        Self::Ticket,
        Self::TicketComment,
        Self::SurveyResponse,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Review => "review",
            Self::Reply => "reply",
            Self::Mention => "mention",
            Self::Ticket => "ticket",
            Self::TicketComment => "ticket_comment",
            Self::SurveyResponse => "survey_response",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s.trim())
    }
}

impl fmt::Display for InteractionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of an identifier that names a person.
///
/// `Email` and `Phone` are normalized (lowercase; E.164). `Platform` ids are
/// namespaced by platform (`zendesk_user`, `delighted_person`, ...). `Name` is a
/// weak hint that never joins customers on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityKind {
    Email,
    Phone,
    Platform,
    Name,
    /// One interaction's own anchor (`item:source:external_id`), given to a customer-written
    /// record that carries no email, phone or platform id but a display name (a Google
    /// review), so that it has a customer of its own: name suggestions can point at it,
    /// `customers link` can join it to a person, and the link survives re-syncs because
    /// the anchor follows the merge like any identity. Unique per record, so it never
    /// joins two records by itself.
    Item,
}

impl IdentityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Phone => "phone",
            Self::Platform => "platform",
            Self::Name => "name",
            Self::Item => "item",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "email" => Some(Self::Email),
            "phone" => Some(Self::Phone),
            "platform" => Some(Self::Platform),
            "name" => Some(Self::Name),
            "item" => Some(Self::Item),
            _ => None,
        }
    }

    /// Strong identities join customers deterministically.
    pub fn is_strong(self) -> bool {
        !matches!(self, Self::Name)
    }

    /// Identifies a person wherever it appears (email, phone, platform id), as opposed to
    /// a display name or one record's own anchor.
    pub fn is_personal(self) -> bool {
        matches!(self, Self::Email | Self::Phone | Self::Platform)
    }
}

/// One identifier of a person, already normalized.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identity {
    pub kind: IdentityKind,
    pub value: String,
}

impl Identity {
    pub fn new(kind: IdentityKind, value: impl Into<String>) -> Self {
        Self {
            kind,
            value: value.into(),
        }
    }

    /// `kind:value`, the stable text form used in hashes, customer ids and storage.
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind.as_str(), self.value)
    }

    /// The anchor of one customer-written record without contact details
    /// ([`IdentityKind::Item`]).
    pub fn item(source: &str, external_id: &str) -> Self {
        Self::new(IdentityKind::Item, format!("{source}:{external_id}"))
    }

    /// The inverse of [`Identity::key`].
    pub fn from_key(key: &str) -> Option<Self> {
        let (kind, value) = key.split_once(':')?;
        Some(Self::new(IdentityKind::parse(kind)?, value))
    }
}

/// A sentiment judgement of one text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sentiment {
    /// In [-1, 1].
    pub score: f64,
    pub label: SentimentLabel,
    /// In [0, 1].
    pub confidence: f64,
    pub model: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SentimentLabel {
    Negative,
    Neutral,
    Positive,
}

impl SentimentLabel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Negative => "negative",
            Self::Neutral => "neutral",
            Self::Positive => "positive",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "negative" => Some(Self::Negative),
            "neutral" => Some(Self::Neutral),
            "positive" => Some(Self::Positive),
            _ => None,
        }
    }
}

/// A CSAT answer on its declared scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Csat {
    pub value: f64,
    /// The declared scale, e.g. `1-5` or `good/bad`.
    pub scale: String,
    /// Whether the answer counts as satisfied under the scale's threshold.
    pub satisfied: bool,
}

/// A CES answer on its declared scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ces {
    pub value: f64,
    /// `1-7` (CES 2.0, higher is easier) or `1-5-reversed` (original CES, lower is easier).
    pub scale: String,
    /// Whether the answer agrees that the task was easy (5-7 on 1-7).
    pub agrees: bool,
}

/// The normalized interaction as the pipeline produces it and the store keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interaction {
    /// The connector instance (`zendesk`, `reviews-csv`, ...).
    pub source: String,
    /// Unique per source.
    pub external_id: String,
    pub kind: InteractionKind,
    /// For replies and comments: the external id of what they answer.
    pub parent_external_id: Option<String>,
    /// UTC milliseconds since the epoch.
    pub occurred_at_ms: i64,
    pub updated_at_ms: Option<i64>,
    pub location_id: Option<String>,
    pub author_name: Option<String>,
    /// Strong and weak identities of the author, normalized.
    pub identities: Vec<Identity>,
    /// The original text (never a machine translation).
    pub text: Option<String>,
    pub language: Option<String>,
    pub language_confidence: Option<f64>,
    pub stars: Option<f64>,
    pub nps: Option<i64>,
    pub csat: Option<Csat>,
    pub ces: Option<Ces>,
    /// Ticket status or survey type, as the source says it.
    pub status: Option<String>,
    pub sentiment: Option<Sentiment>,
    /// Aspects the text talks about, with the sentiment toward each where it is clear.
    #[serde(default)]
    pub aspects: Vec<crate::pipeline::sentiment::AspectScore>,
    pub url: Option<String>,
    /// The source record as read (CSV row or JSON object).
    pub raw: String,
    /// Hash of the normalized source content; an edit changes it.
    pub content_hash: String,
}

/// A location (store, branch) as configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub id: String,
    pub name: String,
    /// IANA time zone name.
    pub timezone: String,
    /// ISO 3166-1 alpha-2; default region for phone numbers.
    pub country: Option<String>,
    /// ISO 639-1; fallback for texts too short to detect.
    pub language: Option<String>,
    pub aliases: Vec<String>,
}
