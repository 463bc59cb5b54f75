//! Synthetic exports for benchmarks and tests: a Zendesk-style UI CSV export of any size,
//! with multi-line quoted descriptions in twelve languages and a chosen share of
//! malformed rows. Deterministic for a given seed.
//!
//! The sentences below were written for this project.

pub mod stored;
pub mod streams;

use std::io::{self, Write};

const CLAUSES: &[(&str, &[&str])] = &[
    (
        "en",
        &[
            "My order arrived two hours late and the soup was cold",
            "The staff at the counter were friendly and quick",
            "I was charged twice for the same coffee, please refund me",
            "Thanks for sorting out the delivery so fast",
            "The app keeps crashing when I try to pay with my card",
            "Honestly the best croissants I have had in this city",
        ],
    ),
    (
        "de",
        &[
            "Meine Bestellung kam mit einer Stunde Verspätung und das Essen war kalt",
            "Die Mitarbeiterin an der Kasse war sehr freundlich und hat mir geholfen",
            "Ich habe zweimal bezahlt und warte immer noch auf die Rückerstattung",
            "Der Kuchen war frisch und der Kaffee hat wirklich gut geschmeckt",
            "Leider wurde die falsche Bestellung geliefert, das ist nicht das erste Mal",
        ],
    ),
    (
        "tr",
        &[
            "Siparişim çok geç geldi ve yemekler soğuktu",
            "Kasadaki çalışanlar çok güler yüzlüydü, teşekkür ederim",
            "Aynı kahve için iki kez ödeme aldınız, lütfen iade edin",
            "Tatlılar taze ve lezzetliydi, kesinlikle tekrar geleceğim",
            "Kurye kaba davrandı ve paketi kapıda bıraktı",
        ],
    ),
    (
        "pl",
        &[
            "Zamówienie przyszło z godzinnym opóźnieniem i jedzenie było zimne",
            "Obsługa przy kasie była bardzo miła i pomocna",
            "Zapłaciłem dwa razy za tę samą kawę, proszę o zwrot pieniędzy",
            "Ciasto było świeże, a kawa naprawdę dobra",
            "Kurier był niegrzeczny i zostawił paczkę pod drzwiami",
        ],
    ),
    (
        "hu",
        &[
            "A rendelésem egy órát késett és az étel hideg volt",
            "A pultnál dolgozók nagyon kedvesek és gyorsak voltak",
            "Kétszer vonták le ugyanazt a kávét, kérem a visszatérítést",
            "A sütemény friss volt és a kávé nagyon finom",
            "A futár udvariatlan volt és az ajtó előtt hagyta a csomagot",
        ],
    ),
    (
        "hr",
        &[
            "Narudžba je stigla sat vremena kasnije i hrana je bila hladna",
            "Osoblje na blagajni bilo je vrlo ljubazno i brzo",
            "Dvaput ste mi naplatili istu kavu, molim povrat novca",
            "Kolač je bio svjež, a kava stvarno dobra",
            "Dostavljač je bio nepristojan i ostavio je paket ispred vrata",
        ],
    ),
    (
        "fr",
        &[
            "Ma commande est arrivée avec une heure de retard et le repas était froid",
            "Le personnel au comptoir était très aimable et rapide",
            "On m'a débité deux fois le même café, merci de me rembourser",
        ],
    ),
    (
        "es",
        &[
            "Mi pedido llegó con una hora de retraso y la comida estaba fría",
            "El personal de la caja fue muy amable y rápido",
            "Me cobraron dos veces el mismo café, por favor devuélvanme el dinero",
        ],
    ),
    (
        "it",
        &[
            "Il mio ordine è arrivato con un'ora di ritardo e il cibo era freddo",
            "Il personale alla cassa è stato molto gentile e veloce",
            "Mi avete addebitato due volte lo stesso caffè, vorrei un rimborso",
        ],
    ),
    (
        "nl",
        &[
            "Mijn bestelling kwam een uur te laat en het eten was koud",
            "Het personeel aan de kassa was erg vriendelijk en snel",
            "Ik heb twee keer betaald voor dezelfde koffie, graag terugbetalen",
        ],
    ),
    (
        "pt",
        &[
            "O meu pedido chegou com uma hora de atraso e a comida estava fria",
            "O pessoal da caixa foi muito simpático e rápido",
            "Cobraram-me duas vezes o mesmo café, por favor façam o reembolso",
        ],
    ),
    (
        "ro",
        &[
            "Comanda mea a ajuns cu o oră întârziere și mâncarea era rece",
            "Personalul de la casă a fost foarte amabil și rapid",
            "Mi-ați încasat de două ori aceeași cafea, vă rog să îmi returnați banii",
        ],
    ),
];

const STORES: &[&str] = &[
    "store_berlin",
    "store_istanbul",
    "store_warsaw",
    "store_budapest",
    "store_zagreb",
];

/// A small deterministic generator (xorshift64*), enough for test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// How a synthetic row was made, so tests know what to expect.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SynthStats {
    pub rows: u64,
    pub good: u64,
    /// (physical line, field) of every malformed row.
    pub bad: Vec<(u64, &'static str)>,
}

pub const ZENDESK_HEADER: &str = "Id,Requester,Requester email,Requester phone,Subject,Description,Status,Priority,Via,Tags,Store [list],Created at,Updated at,Solved at,Satisfaction Score,Satisfaction Comment";

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Writes a Zendesk-style CSV export of `rows` tickets (CRLF, multi-line quoted cells);
/// every `bad_every`-th row (if non-zero) is malformed in one of three ways: an impossible
/// date, a missing id, or a satisfaction score that is not a rating.
pub fn zendesk_csv<W: Write>(
    mut w: W,
    rows: u64,
    bad_every: u64,
    seed: u64,
) -> io::Result<SynthStats> {
    let mut rng = Rng::new(seed);
    let mut stats = SynthStats::default();
    write!(w, "\u{feff}{ZENDESK_HEADER}\r\n")?;
    let mut line: u64 = 2;
    let customers = (rows / 5).max(10);
    for n in 0..rows {
        let id = 100_000 + n;
        let (lang, clauses) = CLAUSES[rng.below(CLAUSES.len() as u64) as usize];
        let subject = clauses[rng.below(clauses.len() as u64) as usize];
        let parts = 1 + rng.below(3);
        let mut description = String::new();
        for p in 0..parts {
            if p > 0 {
                description.push_str(if rng.below(2) == 0 { ".\r\n\r\n" } else { ", " });
            }
            description.push_str(clauses[rng.below(clauses.len() as u64) as usize]);
        }
        description.push('.');
        if rng.below(10) == 0 {
            description.push_str(" She said \"we are sorry\", nothing else.");
        }
        let cust = rng.below(customers);
        let email = format!("customer{cust}@example.com");
        let phone = if rng.below(2) == 0 {
            format!("+49 30 {:07}", 1_000_000 + cust)
        } else {
            String::new()
        };
        let day = 1 + rng.below(28);
        let month = 1 + rng.below(6);
        let hour = rng.below(24);
        let minute = rng.below(60);
        let mut created = format!("2026-{month:02}-{day:02} {hour:02}:{minute:02}:00");
        let updated = format!(
            "2026-{month:02}-{day:02} {:02}:{minute:02}:30",
            (hour + 1) % 24
        );
        let mut id_text = id.to_string();
        let mut score =
            ["Good", "Bad", "Offered", "Unoffered", ""][rng.below(5) as usize].to_string();
        let bad = bad_every > 0 && n % bad_every == bad_every - 1;
        if bad {
            let field = match (n / bad_every) % 3 {
                0 => {
                    created = format!("31/02/2026 25:{minute:02}");
                    "occurred_at"
                }
                1 => {
                    id_text.clear();
                    "external_id"
                }
                _ => {
                    score = "excellent".into();
                    "csat"
                }
            };
            stats.bad.push((line, field));
        } else {
            stats.good += 1;
        }
        let store = STORES[rng.below(STORES.len() as u64) as usize];
        let row = [
            id_text,
            format!("Customer {cust}"),
            email,
            phone,
            quote(subject),
            quote(&description),
            ["Open", "Pending", "Solved", "Closed"][rng.below(4) as usize].to_string(),
            "Normal".into(),
            "Email".into(),
            format!("lang_{lang} delivery"),
            store.into(),
            created,
            updated,
            String::new(),
            score,
            String::new(),
        ];
        let text = row.join(",");
        line += 1 + text.matches('\n').count() as u64;
        write!(w, "{text}\r\n")?;
        stats.rows += 1;
    }
    w.flush()?;
    Ok(stats)
}

/// A generated world of people for the identity-resolution benchmark: every record carries
/// some of its author's identities, written the way exports write them (case changes,
/// spaces, `mailto:`, national and international phone formats), plus the traps: typos,
/// shared inboxes, the shop's own number, households sharing a phone, and many people
/// with the same display name.
#[derive(Debug, Default)]
pub struct IdentityWorld {
    pub records: Vec<crate::pipeline::SourceRecord>,
    /// The person behind each record.
    pub person: Vec<u32>,
    pub people: u32,
}

/// The shop's own phone in the generated world; the benchmark blocks it in config.
pub const WORLD_SHOP_PHONE: &str = "+49 30 5550100";

pub fn identity_world(people: u32, interactions: u64, seed: u64) -> IdentityWorld {
    use crate::pipeline::Field;
    const FIRST: &[&str] = &[
        "Anna", "Ben", "Clara", "David", "Elif", "Felix", "Greta", "Hakan", "Ida", "Jonas",
        "Kasia", "Lukas", "Marta", "Noah", "Olga", "Piotr", "Rita", "Stefan", "Tomasz", "Ute",
        "Vera", "Wojtek", "Zeynep", "Ana", "Ivan", "Lea", "Mia", "Emre", "Jan", "Eva",
    ];
    const LAST: &[&str] = &[
        "Müller",
        "Schmidt",
        "Kovač",
        "Nowak",
        "Yılmaz",
        "Horváth",
        "Weber",
        "Kaya",
        "Novak",
        "Fischer",
        "Wagner",
        "Demir",
        "Tóth",
        "Babić",
        "Kowalski",
        "Becker",
        "Szabó",
        "Şahin",
        "Hoffmann",
        "Lewandowska",
    ];
    const DOMAINS: &[&str] = &[
        "mail.example",
        "post.example",
        "web.example",
        "inbox.example",
    ];
    let mut rng = Rng::new(seed);
    struct Person {
        name: String,
        emails: Vec<String>,
        phone: Option<String>,
        handles: Vec<String>,
    }
    let mut persons: Vec<Person> = Vec::with_capacity(people as usize);
    let mut household: Option<String> = None;
    for p in 0..people {
        let first = FIRST[rng.below(FIRST.len() as u64) as usize];
        let last = LAST[rng.below(LAST.len() as u64) as usize];
        let n_emails = 1 + usize::from(rng.below(4) == 0);
        let emails = (0..n_emails)
            .map(|k| {
                format!(
                    "{}.{}{}{}@{}",
                    first.to_lowercase(),
                    crate::pipeline::sentiment::lexicon::fold(&last.to_lowercase()),
                    p,
                    if k == 0 { "" } else { ".work" },
                    DOMAINS[rng.below(DOMAINS.len() as u64) as usize]
                )
            })
            .collect();
        // One person in 300 shares a household phone with the person before.
        let phone = if rng.below(300) == 0 && household.is_some() {
            household.clone()
        } else if rng.below(2) == 0 {
            Some(format!("+49 30 {:07}", 1_000_000 + p))
        } else {
            None
        };
        household = phone.clone();
        let mut handles = Vec::new();
        if rng.below(2) == 0 {
            handles.push(format!("zendesk_user:{}", 10_000 + p));
        }
        if rng.below(4) == 0 {
            handles.push(format!("bluesky:did:plc:{:x}", 0xabc000 + u64::from(p)));
        }
        // The full name, written as reviewers and requesters write it: sometimes in
        // lower case, sometimes without its accents.
        persons.push(Person {
            name: format!("{first} {last}"),
            emails,
            phone,
            handles,
        });
    }
    let mut w = IdentityWorld {
        people,
        ..Default::default()
    };
    let spell_email = |e: &str, rng: &mut Rng| -> String {
        match rng.below(10) {
            0 => e.to_uppercase(),
            1 => format!("  {e} "),
            2 => format!("mailto:{e}"),
            3 => {
                let (l, d) = e.split_once('@').expect("an address");
                format!("{}@{}", l, d.to_uppercase())
            }
            _ => e.to_string(),
        }
    };
    let spell_phone = |p: &str, rng: &mut Rng| -> String {
        let digits: String = p.chars().filter(char::is_ascii_digit).collect();
        let national = &digits[2..];
        match rng.below(4) {
            0 => format!("0{national}"),
            1 => format!("00{digits}"),
            2 => format!("+{} ({}) {}", &digits[..2], &national[..2], &national[2..]),
            _ => p.to_string(),
        }
    };
    for n in 0..interactions {
        // Each person's first record carries all of their identities (a CRM contact, a
        // survey with the profile); later ones a random part of them.
        let (p, full) = if n < u64::from(people) {
            (n as u32, true)
        } else {
            (rng.below(u64::from(people)) as u32, false)
        };
        let person = &persons[p as usize];
        let mut r = crate::pipeline::SourceRecord {
            origin: "world".into(),
            line: Some(n + 1),
            raw: "{}".into(),
            ..Default::default()
        };
        r.set(Field::ExternalId, "id", format!("w{n}"));
        // Spread over half a year, so that a name's records are days or months apart.
        let at = 1_767_225_600 + rng.below(180 * 86_400) as i64;
        let at = chrono::DateTime::from_timestamp(at, 0).unwrap_or_default();
        r.set(
            Field::OccurredAt,
            "at",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
        r.set(Field::Location, "store", "berlin-mitte");
        let name = match rng.below(10) {
            0 => person.name.to_lowercase(),
            1 => crate::pipeline::sentiment::lexicon::fold(&person.name),
            _ => person.name.clone(),
        };
        r.set(Field::Name, "name", name);
        let kind = if full { 0 } else { rng.below(4) };
        match kind {
            // a ticket: an email, sometimes the phone, the requester id
            0 | 1 => {
                let e = if full {
                    &person.emails[0]
                } else {
                    &person.emails[rng.below(person.emails.len() as u64) as usize]
                };
                let mut e = spell_email(e, &mut rng);
                // one email in 200 carries a typo: a different identity, same person
                if !full && rng.below(200) == 0 {
                    e = e.replacen('.', "", 1);
                }
                // one ticket in 30 comes from a shared inbox instead
                if !full && rng.below(30) == 0 {
                    e = format!("info@company{}.example", rng.below(20));
                }
                r.set(Field::Email, "email", e);
                if let Some(ph) = &person.phone
                    && (full || rng.below(3) == 0)
                {
                    r.set(Field::Phone, "phone", spell_phone(ph, &mut rng));
                }
                if full || rng.below(2) == 0 {
                    r.platform_ids.extend(person.handles.iter().cloned());
                }
                if full && kind == 0 {
                    for e in person.emails.iter().skip(1) {
                        // the second address arrives on its own record with the first
                        let mut r2 = r.clone();
                        r2.fields.remove(&Field::ExternalId);
                        r2.set(Field::ExternalId, "id", format!("w{n}b"));
                        r2.fields.remove(&Field::Email);
                        r2.set(Field::Email, "email", spell_email(e, &mut rng));
                        w.records.push(r2);
                        w.person.push(p);
                    }
                }
            }
            // a call logged with the shop's own number by mistake, plus the customer's
            2 => {
                if let Some(ph) = &person.phone {
                    r.set(Field::Phone, "phone", spell_phone(ph, &mut rng));
                } else {
                    r.set(Field::Phone, "phone", WORLD_SHOP_PHONE);
                    r.platform_ids.extend(person.handles.iter().cloned());
                }
            }
            // a review with the display name only, or a mention with a handle
            _ => {
                if let Some(h) = person.handles.last()
                    && rng.below(2) == 0
                {
                    r.platform_ids.push(h.clone());
                }
            }
        }
        w.records.push(r);
        w.person.push(p);
    }
    w
}
