//! Issue 10 acceptance: CRM sync against the fake HubSpot, Salesforce and webhook receiver
//! of `crm_fakes.rs`, which check every request's documented shape and answer 429s, 500s
//! and stalls (applied, answered after the client's timeout) at random. After the drain
//! every interaction is in each CRM exactly once, on the right contact, contacts are not
//! duplicated, the outbox is empty and only the deliberately invalid record is parked;
//! SIGKILLs during delivery change none of that; an erasure becomes deletes; a wrong token
//! stops the sink without touching its items or printing the token; `--dry-run` sends
//! nothing.

use crate::common::{self, TestDb};
use crate::crm_fakes::{Faults, HubSpot, Salesforce, Webhook};
use crate::{fakes, on_both_backends};
use base64::Engine;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tideline::config::{Config, Overrides};
use tideline::connectors::files::Preset;
use tideline::ingest::{self, ImportOptions};
use tideline::model::IdentityKind;
use tideline::sinks::crm::{self, SyncOptions};
use tideline::store::interaction_key;
use tokio_util::sync::CancellationToken;

const HS_TOKEN: &str = "pat-na1-hs-s3cret-token";
const SF_TOKEN: &str = "00Dsf!s3cret-session";
/// Text that the fakes refuse as a validation error.
const MARKER: &str = "REJECT-ME";
const SOURCE: &str = "crmtest";

fn webhook_secret() -> String {
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(b"tideline-webhook-test-key-32byte")
    )
}

const MAPPING: &str = r#"
format = "csv"
kind = "review"
[fields]
external_id = "id"
location = "store"
name = "name"
email = "email"
phone = "phone"
stars = "stars"
text = "text"
occurred_at = "at"
"#;

/// One CSV row.
struct Row {
    id: String,
    name: String,
    email: String,
    phone: String,
    stars: u8,
    text: String,
    day: u32,
}

fn csv_cell(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn csv(rows: &[Row]) -> String {
    let mut out = String::from("id,store,name,email,phone,stars,text,at\n");
    for r in rows {
        out.push_str(&format!(
            "{},berlin-mitte,{},{},{},{},{},2026-10-{:02}T10:{:02}:00Z\n",
            r.id,
            csv_cell(&r.name),
            r.email,
            r.phone,
            r.stars,
            csv_cell(&r.text),
            r.day,
            r.stars as u32 * 7 % 60
        ));
    }
    out
}

/// Eight customers with three reviews each, one with an upper-case email, three people
/// known only by phone, one review with the reject marker, one hostile, one long review
/// of characters HTML escaping makes longer.
fn seed_rows() -> Vec<Row> {
    let mut rows = Vec::new();
    let texts = [
        "Great coffee, friendly staff.",
        "The cake was stale and the room was cold.",
        "Okay, nothing special.",
    ];
    for c in 1..=8 {
        for k in 0..3 {
            rows.push(Row {
                id: format!("r{c}-{k}"),
                name: format!("Ana Customer{c}"),
                email: format!("c{c}@example.org"),
                phone: String::new(),
                stars: [5, 1, 3][k],
                text: format!("{} (visit {k} of customer {c})", texts[k]),
                day: (c * 3 + k as u32) % 28 + 1,
            });
        }
    }
    for k in 0..2 {
        rows.push(Row {
            id: format!("mixed-{k}"),
            name: "Mia Mixed".into(),
            email: "Mia.Mixed@Example.ORG".into(),
            phone: String::new(),
            stars: 4,
            text: format!("Mixed case email, visit {k}."),
            day: 3 + k,
        });
    }
    for p in 0..3 {
        rows.push(Row {
            id: format!("phone-{p}"),
            name: format!("Pavel Phone{p}"),
            email: String::new(),
            phone: format!("+49 30 1234 56{p}"),
            stars: 2,
            text: "Only a phone number.".into(),
            day: 10 + p,
        });
    }
    rows.push(Row {
        id: "bad-1".into(),
        name: "Rita Rejected".into(),
        email: "rejected@example.org".into(),
        phone: String::new(),
        stars: 1,
        text: format!("This one carries {MARKER} so the CRM refuses it."),
        day: 20,
    });
    rows.push(Row {
        id: "hostile-1".into(),
        name: "<b>Eve</b>".into(),
        email: "eve@example.org".into(),
        phone: String::new(),
        stars: 1,
        text: "<script>alert('x')</script><img src=x onerror=alert(1)> & \"quotes\"".into(),
        day: 21,
    });
    rows.push(Row {
        id: "long-1".into(),
        name: "Lars Long".into(),
        email: "long@example.org".into(),
        phone: String::new(),
        stars: 2,
        // 29,000 characters that HTML escaping turns into 4 or 5 each.
        text: "<&".repeat(14_500),
        day: 22,
    });
    rows
}

/// Files for one test: the fakes' secrets and the config pointing at them.
struct Setup {
    hs: HubSpot,
    sf: Salesforce,
    wh: Webhook,
    config: Config,
    config_path: PathBuf,
    source_dir: PathBuf,
}

fn sink_common() -> &'static str {
    "timeout_secs = 1\nlease_secs = 4\nretry_initial_ms = 10\nretry_max_secs = 1\nmax_attempts = 30\n"
}

fn config_text(db: &TestDb, hs: &HubSpot, sf: &Salesforce, wh: &Webhook) -> String {
    let dir = db.dir.path();
    let hs_token = fakes::secret_file(dir, "hs_token", HS_TOKEN);
    let sf_token = fakes::secret_file(dir, "sf_token", SF_TOKEN);
    let wh_secret = fakes::secret_file(dir, "wh_secret", &webhook_secret());
    let common = sink_common();
    format!(
        r#"
[storage]
database_url = "{db_url}"
data_dir = "{data_dir}"
[pipeline]
sentiment_adapt = false
[[location]]
id = "berlin-mitte"
timezone = "Europe/Berlin"
country = "DE"

[[crm.sink]]
name = "hubspot"
kind = "hubspot"
base_url = "{hs_url}"
token_file = "{hs_token}"
batch_size = 10
{common}
[[crm.sink]]
name = "salesforce"
kind = "salesforce"
instance_url = "{sf_url}"
token_file = "{sf_token}"
object = "Task"
external_id_field = "Tideline_Id__c"
batch_size = 10
{common}
[[crm.sink]]
name = "webhook"
kind = "webhook"
url = "{wh_url}"
secret_file = "{wh_secret}"
{common}"#,
        db_url = db.url.expose(),
        data_dir = dir.display(),
        hs_url = hs.url,
        hs_token = hs_token.display(),
        sf_url = sf.url,
        sf_token = sf_token.display(),
        wh_url = wh.url,
        wh_secret = wh_secret.display(),
    )
}

/// Starts the three fakes with `faults` (the HubSpot one also with its rolling limit) and
/// writes the config.
async fn setup(db: &TestDb, faults: Faults) -> Setup {
    let hs = HubSpot::start(
        HS_TOKEN,
        Faults {
            max_per_window: Some(6),
            window: Duration::from_millis(500),
            seed: faults.seed + 1,
            ..faults.clone()
        },
    )
    .await;
    let sf = Salesforce::start(
        SF_TOKEN,
        Faults {
            seed: faults.seed + 2,
            ..faults.clone()
        },
    )
    .await;
    let wh = Webhook::start(
        &webhook_secret(),
        None,
        Faults {
            seed: faults.seed + 3,
            ..faults
        },
    )
    .await;
    let text = config_text(db, &hs, &sf, &wh);
    let config_path = db.dir.path().join("tideline.toml");
    std::fs::write(&config_path, &text).unwrap();
    let config = Config::from_toml(&text, "tideline.toml", &Overrides::default()).unwrap();
    let source_dir = db.dir.path().join("imports");
    std::fs::create_dir_all(&source_dir).unwrap();
    std::fs::write(source_dir.join("m.toml"), MAPPING).unwrap();
    Setup {
        hs,
        sf,
        wh,
        config,
        config_path,
        source_dir,
    }
}

async fn import(db: &TestDb, s: &Setup, name: &str, rows: &[Row]) {
    let path = s.source_dir.join(name);
    std::fs::write(&path, csv(rows)).unwrap();
    let opts = ImportOptions {
        path,
        preset: Preset::GenericCsv,
        mapping: Some(s.source_dir.join("m.toml")),
        source: Some(SOURCE.to_string()),
        location: None,
        timezone: None,
    };
    let r = ingest::import_file(
        db.store.as_ref(),
        common::analyzer(&s.config),
        &s.config,
        &opts,
    )
    .await
    .unwrap();
    assert_eq!(r.quarantined, 0, "{r:?}");
}

/// What the store holds: each interaction's key, its customer's email (lower case) if
/// any, and its text.
#[derive(Debug, Clone)]
struct Expected {
    /// The store's id (what `crm parked` names).
    id: i64,
    key: String,
    external_id: String,
    email: Option<String>,
    text: String,
}

async fn expected(db: &TestDb) -> Vec<Expected> {
    let all = db.store.interactions_after(0, 10_000).await.unwrap();
    let mut out = Vec::new();
    for s in all {
        let customer = match &s.customer_id {
            Some(c) => db.store.customer(c).await.unwrap(),
            None => None,
        };
        let email = customer.and_then(|c| {
            c.identities
                .iter()
                .filter(|i| i.kind == IdentityKind::Email)
                .map(|i| i.value.to_lowercase())
                .min()
        });
        out.push(Expected {
            id: s.id,
            key: interaction_key(&s.interaction.source, &s.interaction.external_id),
            external_id: s.interaction.external_id.clone(),
            email,
            text: s.interaction.text.clone().unwrap_or_default(),
        });
    }
    out
}

async fn status(db: &TestDb, sink: &str) -> tideline::store::CrmSinkStatus {
    db.store
        .crm_status()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.sink == sink)
        .unwrap_or_else(|| panic!("sink {sink} is not registered"))
}

/// Runs `crm::sync` on every sink until nothing is pending (at most 20 runs).
async fn drain(db: &TestDb, config: &Config) {
    let sinks = crm::select(config, None).unwrap();
    let opts = SyncOptions {
        wait_for_retries: Duration::from_secs(10),
        ..Default::default()
    };
    let stop = CancellationToken::new();
    for round in 0..20 {
        let runs = crm::sync(db.store.as_ref(), config, &sinks, &opts, &stop)
            .await
            .unwrap();
        for r in &runs {
            assert!(r.stopped.is_none(), "round {round}: {r}");
        }
        if runs
            .iter()
            .all(|r| r.status.as_ref().is_some_and(|s| s.pending == 0))
        {
            return;
        }
    }
    panic!("the outbox did not drain in 20 runs");
}

/// The entity keys (store ids) `crm parked` lists for a sink.
async fn parked_keys(db: &TestDb, sink: &str) -> BTreeSet<String> {
    db.store
        .crm_parked(Some(sink), 100)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.entity_key)
        .collect()
}

/// Every assertion of a drained state: each interaction with an email in HubSpot and
/// Salesforce once, on its contact; every interaction at the webhook; contacts once;
/// outbox empty; only the marked record parked; no violation.
async fn assert_drained(db: &TestDb, s: &Setup, exp: &[Expected]) {
    let rejected: BTreeSet<String> = exp
        .iter()
        .filter(|e| e.text.contains(MARKER))
        .map(|e| e.key.clone())
        .collect();
    assert_eq!(rejected.len(), 1);
    let rejected_ids: BTreeSet<String> = exp
        .iter()
        .filter(|e| e.text.contains(MARKER))
        .map(|e| e.id.to_string())
        .collect();
    let with_email: BTreeMap<String, &Expected> = exp
        .iter()
        .filter(|e| e.email.is_some() && !rejected.contains(&e.key))
        .map(|e| (e.key.clone(), e))
        .collect();
    let emails: BTreeSet<String> = exp.iter().filter_map(|e| e.email.clone()).collect();
    assert!(with_email.len() >= 28, "{}", with_email.len());

    // HubSpot.
    assert!(s.hs.violations().is_empty(), "{:#?}", s.hs.violations());
    let contacts = s.hs.contacts();
    assert_eq!(
        contacts.keys().cloned().collect::<BTreeSet<_>>(),
        emails,
        "HubSpot contacts"
    );
    let notes = s.hs.notes();
    assert_eq!(
        notes.keys().cloned().collect::<BTreeSet<_>>(),
        with_email.keys().cloned().collect::<BTreeSet<_>>(),
        "HubSpot notes"
    );
    for (key, note) in &notes {
        let email = with_email[key].email.as_ref().unwrap();
        let want = BTreeSet::from([contacts[email].id.clone()]);
        assert_eq!(note.contacts, want, "note {key} ({email})");
        let body = &note.properties["hs_note_body"];
        assert!(
            !body.contains("<script") && !body.contains("<img") && !body.contains("<b>"),
            "{body}"
        );
    }
    let hostile = exp.iter().find(|e| e.external_id == "hostile-1").unwrap();
    assert!(
        notes[&hostile.key].properties["hs_note_body"].contains("&lt;script&gt;"),
        "{}",
        notes[&hostile.key].properties["hs_note_body"]
    );

    // Salesforce.
    assert!(s.sf.violations().is_empty(), "{:#?}", s.sf.violations());
    let sf_contacts = s.sf.contacts();
    let sf_emails: Vec<String> = sf_contacts.iter().map(|c| c.email.to_lowercase()).collect();
    assert_eq!(
        sf_emails.iter().cloned().collect::<BTreeSet<_>>(),
        emails,
        "Salesforce contacts"
    );
    assert_eq!(
        sf_emails.len(),
        emails.len(),
        "a Salesforce contact was created twice: {sf_emails:?}"
    );
    let records = s.sf.records();
    assert_eq!(
        records.keys().cloned().collect::<BTreeSet<_>>(),
        with_email.keys().cloned().collect::<BTreeSet<_>>(),
        "Salesforce records"
    );
    for (key, r) in &records {
        let email = with_email[key].email.as_ref().unwrap();
        let contact = sf_contacts
            .iter()
            .find(|c| c.email.eq_ignore_ascii_case(email))
            .unwrap();
        assert_eq!(r.sobject, "Task");
        assert_eq!(r.fields["WhoId"], contact.id.as_str(), "record {key}");
    }

    // Webhook: every interaction (also those without an email), each once.
    assert!(s.wh.violations().is_empty(), "{:#?}", s.wh.violations());
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for e in s.wh.events() {
        if e.kind == "interaction.upserted" {
            *seen
                .entry(e.body["data"]["key"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
    }
    let all: BTreeSet<String> = exp
        .iter()
        .filter(|e| !rejected.contains(&e.key))
        .map(|e| e.key.clone())
        .collect();
    assert_eq!(seen.keys().cloned().collect::<BTreeSet<_>>(), all);
    assert!(seen.values().all(|&n| n == 1), "{seen:?}");

    // The outboxes.
    for sink in ["hubspot", "salesforce", "webhook"] {
        let st = status(db, sink).await;
        assert_eq!((st.pending, st.parked), (0, 1), "{sink}: {st:?}");
        assert_eq!(parked_keys(db, sink).await, rejected_ids, "{sink}");
    }
}

async fn crm_sync_delivers_every_interaction_once_through_faults(db: TestDb) {
    let s = setup(&db, Faults::chaos(42).reject(MARKER)).await;
    import(&db, &s, "first.csv", &seed_rows()).await;
    let started = Instant::now();
    drain(&db, &s.config).await;
    eprintln!("first drain: {:?}", started.elapsed());
    let exp = expected(&db).await;
    assert_drained(&db, &s, &exp).await;
    // The faults did happen (a fake with few requests may draw none of some kind).
    let inj = [s.hs.injected(), s.sf.injected(), s.wh.injected()];
    let sum = |f: fn(&crate::crm_fakes::Injected) -> usize| inj.iter().map(f).sum::<usize>();
    assert!(
        sum(|i| i.too_many) > 0 && sum(|i| i.internal) > 0 && sum(|i| i.stalls) > 0,
        "{inj:?}"
    );
    assert!(inj.iter().all(|i| i.rejected > 0), "{inj:?}");

    // New and edited interactions arrive with a later import: queued with the data, sent
    // by the next sync; an edit updates the same records.
    let notes_before = s.hs.notes();
    let mut more = vec![Row {
        id: "late-1".into(),
        name: "Ana Customer1".into(),
        email: "c1@example.org".into(),
        phone: String::new(),
        stars: 4,
        text: "Came back, better now.".into(),
        day: 27,
    }];
    let mut edited = seed_rows().into_iter().find(|r| r.id == "r2-1").unwrap();
    edited.text = "Edited: the cake was fine after all.".into();
    edited.stars = 4;
    more.push(edited);
    import(&db, &s, "second.csv", &more).await;
    drain(&db, &s.config).await;
    let exp = expected(&db).await;
    let r21 = exp.iter().find(|e| e.external_id == "r2-1").unwrap();
    let notes = s.hs.notes();
    assert_eq!(notes.len(), notes_before.len() + 1);
    assert_eq!(notes[&r21.key].id, notes_before[&r21.key].id);
    assert!(
        notes[&r21.key].properties["hs_note_body"].contains("Edited: the cake"),
        "{:?}",
        notes[&r21.key]
    );
    assert!(
        s.sf.records()[&r21.key].fields["Description"]
            .as_str()
            .unwrap()
            .contains("Edited: the cake")
    );
    // The webhook got the new version as a new event; the rest is as before.
    let versions =
        s.wh.events()
            .iter()
            .filter(|e| e.body["data"]["key"] == r21.key.as_str())
            .count();
    assert_eq!(versions, 2);
    let rejected = exp.iter().find(|e| e.text.contains(MARKER)).unwrap();
    for sink in ["hubspot", "salesforce", "webhook"] {
        let st = status(&db, sink).await;
        assert_eq!((st.pending, st.parked), (0, 1), "{sink}: {st:?}");
        assert_eq!(
            parked_keys(&db, sink).await,
            BTreeSet::from([rejected.id.to_string()])
        );
    }
    for v in [s.hs.violations(), s.sf.violations(), s.wh.violations()] {
        assert!(v.is_empty(), "{v:#?}");
    }
}

/// `tideline crm sync --sink NAME` killed with SIGKILL `rounds` times, each a different
/// while after its first request to the fake, then run to the end twice.
async fn kill_crm_sync(cfg: &Path, sink: &str, requests: &AtomicUsize, rounds: u64) {
    'rounds: for round in 0..rounds {
        let mut child = common::bin()
            .arg("--config")
            .arg(cfg)
            .args(["crm", "sync", "--sink", sink])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let seen = requests.load(Ordering::SeqCst);
        let started = Instant::now();
        while requests.load(Ordering::SeqCst) == seen {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{sink} round {round}: no request"
            );
            if let Some(status) = child.try_wait().unwrap() {
                // Nothing was due: an earlier round delivered the rest, or what it held is
                // still leased to a killed run. The runs to the end below check the drain.
                assert!(
                    status.success(),
                    "{sink} round {round}: failed ({status}) before its first request"
                );
                break 'rounds;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis((round * 97 + 30) % 400)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    for _ in 0..2 {
        let out = common::bin()
            .arg("--config")
            .arg(cfg)
            .args(["crm", "sync", "--sink", sink, "--wait-secs", "30"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{sink}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

async fn crm_sync_killed_mid_delivery_still_delivers_once(db: TestDb) {
    let s = setup(&db, Faults::chaos(7).reject(MARKER)).await;
    import(&db, &s, "first.csv", &seed_rows()).await;
    // The three sinks' processes are killed side by side (as a daemon and a manual run
    // would share the database).
    let (hs_hits, sf_hits, wh_hits) = (s.hs.hits(), s.sf.hits(), s.wh.hits());
    tokio::join!(
        kill_crm_sync(&s.config_path, "hubspot", &hs_hits, 5),
        kill_crm_sync(&s.config_path, "salesforce", &sf_hits, 5),
        kill_crm_sync(&s.config_path, "webhook", &wh_hits, 5),
    );
    let exp = expected(&db).await;
    assert_drained(&db, &s, &exp).await;
}

async fn erasure_is_sent_as_deletes(db: TestDb) {
    // Faults on the requests after the contacts (a 500, a 429) are covered: the contact
    // is remembered as Tideline's before the rest of the batch. Not covered, by design: a
    // contact whose creating request lost its answer (a stall) is later only found, and
    // an erasure then keeps it (it might have existed before), so no faults here.
    let s = setup(&db, Faults::none().reject(MARKER)).await;
    s.hs.set_faults(Faults::none().reject(MARKER));
    import(&db, &s, "first.csv", &seed_rows()).await;
    drain(&db, &s.config).await;
    let exp = expected(&db).await;
    let theirs: BTreeSet<String> = exp
        .iter()
        .filter(|e| e.email.as_deref() == Some("c3@example.org"))
        .map(|e| e.key.clone())
        .collect();
    assert_eq!(theirs.len(), 3);
    let hs_contact = s.hs.contacts()["c3@example.org"].clone();
    let hs_notes: BTreeSet<String> =
        s.hs.notes()
            .iter()
            .filter(|(k, _)| theirs.contains(*k))
            .map(|(_, n)| n.id.clone())
            .collect();
    let sf_contact =
        s.sf.contacts()
            .into_iter()
            .find(|c| c.email == "c3@example.org")
            .unwrap();
    let sf_records: BTreeSet<String> =
        s.sf.records()
            .iter()
            .filter(|(k, _)| theirs.contains(*k))
            .map(|(_, r)| r.id.clone())
            .collect();
    let notes_before = s.hs.notes().len();

    let out = common::bin()
        .arg("--config")
        .arg(&s.config_path)
        .args(["customers", "erase", "c3@example.org", "--yes"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drain(&db, &s.config).await;

    // HubSpot: their notes archived, the contact Tideline created GDPR-deleted.
    let archived: BTreeSet<String> = s.hs.archived().into_iter().collect();
    assert!(hs_notes.is_subset(&archived), "{hs_notes:?} {archived:?}");
    let notes = s.hs.notes();
    assert_eq!(notes.len(), notes_before - 3);
    assert!(theirs.iter().all(|k| !notes.contains_key(k)));
    // The contact Tideline created is GDPR-deleted too, although the batch that created it
    // was refused (the reject marker) and split: HubSpot says `new` only the first time,
    // and the runner keeps what the target learned before the batch failed.
    assert_eq!(s.hs.gdpr_deleted(), vec![hs_contact.id.clone()]);

    // Salesforce: their records and the contact deleted.
    let deleted: BTreeSet<String> = s.sf.deleted().into_iter().collect();
    assert!(sf_records.is_subset(&deleted), "{sf_records:?} {deleted:?}");
    assert!(deleted.contains(&sf_contact.id), "{deleted:?}");
    assert!(theirs.iter().all(|k| !s.sf.records().contains_key(k)));

    // Webhook: one interaction.deleted per interaction and a customer.erased, whose data
    // holds no email or text of theirs.
    let events = s.wh.events();
    let deleted_keys: BTreeSet<String> = events
        .iter()
        .filter(|e| e.kind == "interaction.deleted")
        .map(|e| e.body["data"]["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(deleted_keys, theirs);
    let erased: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "customer.erased")
        .collect();
    assert_eq!(erased.len(), 1, "{erased:?}");
    for e in events
        .iter()
        .filter(|e| e.kind != "interaction.upserted" && e.kind != "change.detected")
    {
        let text = e.body.to_string();
        assert!(
            !text.contains("c3@example.org") && !text.contains("customer 3"),
            "{text}"
        );
    }
    for v in [s.hs.violations(), s.sf.violations(), s.wh.violations()] {
        assert!(v.is_empty(), "{v:#?}");
    }
    for sink in ["hubspot", "salesforce", "webhook"] {
        assert_eq!(status(&db, sink).await.pending, 0, "{sink}");
    }
}

async fn wrong_token_stops_the_sink_and_dry_run_sends_nothing(db: TestDb) {
    let s = setup(&db, Faults::none()).await;
    import(&db, &s, "first.csv", &seed_rows()).await;
    let total = expected(&db).await.len() as i64;

    // Before any sync: the dry run sends nothing and says the history goes first.
    let out = common::bin()
        .arg("--config")
        .arg(&s.config_path)
        .args(["crm", "sync", "--dry-run"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("hubspot") && text.contains("nothing was sent"),
        "{text}"
    );
    assert_eq!(s.hs.total() + s.sf.total() + s.wh.total(), 0);

    // The CRMs want other tokens: each run stops on its first request, naming its sink,
    // without the token, and the items stay as they were.
    s.hs.set_token(Some("pat-na1-rotated"));
    s.sf.set_token(Some("00D-rotated"));
    let out = common::bin()
        .arg("--config")
        .arg(&s.config_path)
        .args(["crm", "sync", "--sink", "hubspot"])
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("hubspot") && all.contains("401"), "{all}");
    assert!(!all.contains(HS_TOKEN), "{all}");
    assert_eq!(s.hs.count("POST /crm/v3/objects/contacts/batch/upsert"), 1);
    assert!(s.hs.notes().is_empty() && s.hs.contacts().is_empty());

    let sinks = crm::select(&s.config, Some("salesforce")).unwrap();
    let runs = crm::sync(
        db.store.as_ref(),
        &s.config,
        &sinks,
        &SyncOptions::default(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let stopped = runs[0].stopped.clone().expect("the run stops");
    assert!(!stopped.contains(SF_TOKEN), "{stopped}");
    assert!(runs[0].to_string().contains("salesforce"), "{}", runs[0]);
    assert_eq!(s.sf.total(), 1);
    for sink in ["hubspot", "salesforce"] {
        let st = status(&db, sink).await;
        assert_eq!(
            (st.pending, st.parked, st.delivered),
            (total, 0, 0),
            "{sink}: {st:?}"
        );
        assert!(
            st.last_error
                .as_deref()
                .is_some_and(|e| !e.contains(HS_TOKEN) && !e.contains(SF_TOKEN)),
            "{st:?}"
        );
    }
    let items = db.store.crm_lease("hubspot", 100, None).await.unwrap();
    assert!(items.iter().all(|i| i.attempts == 0), "{items:?}");

    // Now registered: the dry run lists what would go, and still sends nothing.
    let before = (s.hs.total(), s.sf.total(), s.wh.total());
    let out = common::bin()
        .arg("--config")
        .arg(&s.config_path)
        .args(["crm", "sync", "--dry-run", "--limit", "3"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("hubspot (hubspot): {total} item(s) pending")),
        "{text}"
    );
    assert!(text.contains("upsert interaction"), "{text}");
    assert!(
        !text.contains(HS_TOKEN) && !text.contains(SF_TOKEN),
        "{text}"
    );
    assert_eq!((s.hs.total(), s.sf.total(), s.wh.total()), before);
    assert_eq!(status(&db, "hubspot").await.pending, total);

    // The right tokens again: everything goes.
    s.hs.set_token(Some(HS_TOKEN));
    s.sf.set_token(Some(SF_TOKEN));
    drain(&db, &s.config).await;
    for sink in ["hubspot", "salesforce", "webhook"] {
        let st = status(&db, sink).await;
        assert_eq!((st.pending, st.parked), (0, 0), "{sink}: {st:?}");
    }
    for v in [s.hs.violations(), s.sf.violations(), s.wh.violations()] {
        assert!(v.is_empty(), "{v:#?}");
    }
}

on_both_backends!(
    crm_sync_delivers_every_interaction_once_through_faults,
    crm_sync_killed_mid_delivery_still_delivers_once,
    erasure_is_sent_as_deletes,
    wrong_token_stops_the_sink_and_dry_run_sends_nothing,
);
