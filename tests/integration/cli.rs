//! The command contract other checks depend on, through the real binary.

use crate::common::{bin, samples};
use std::path::Path;

fn ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn with_db(db: &Path) -> std::process::Command {
    let mut c = bin();
    c.arg("--config")
        .arg(samples().join("tideline.toml"))
        .arg("--database-url")
        .arg(format!("sqlite://{}", db.display()));
    c
}

#[test]
fn demo_writes_a_database_a_summary_and_timelines() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let text = ok(&bin().arg("demo").arg("--out").arg(&out).output().unwrap());
    for needle in [
        "Berlin Mitte",
        "Warszawa Centrum",
        "NPS",
        "Customer cus_",
        "Quarantine",
        "confirmed down   location:warsaw-centrum:sentiment",
    ] {
        assert!(
            text.contains(needle),
            "missing {needle} in demo output:\n{text}"
        );
    }
    for f in [
        "tideline.db",
        "report.html",
        "report.csv",
        "report.json",
        "summary.md",
        "summary.json",
        "quarantine.json",
        "changes.txt",
        "changes.json",
        "demo.txt",
    ] {
        assert!(out.join(f).exists(), "{f} missing");
    }
    // The reputation report: every store, its sections, and the portfolio in the output.
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    for needle in [
        "Portfolio",
        "Warszawa Centrum",
        "Reviews waiting for an answer",
        "When satisfaction changed",
        "<svg",
    ] {
        assert!(html.contains(needle), "report.html lacks {needle}");
    }
    assert!(!html.contains("<script"), "no script in the report");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["locations"].as_array().unwrap().len(), 5);
    assert!(text.contains("Reputation report, "), "{text}");
    let timelines = std::fs::read_dir(out.join("timelines")).unwrap().count();
    assert!(timelines >= 6, "{timelines}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary.as_array().unwrap().len(), 5, "five stores");
    let q: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("quarantine.json")).unwrap())
            .unwrap();
    assert_eq!(
        q.as_array().unwrap().len(),
        4,
        "the four malformed sample records"
    );

    // Running the demo again starts from a fresh database and gives the same counts.
    let again = ok(&bin().arg("demo").arg("--out").arg(&out).output().unwrap());
    let counts = |t: &str| {
        t.lines()
            .find(|l| l.contains("interactions from"))
            .map(String::from)
    };
    assert_eq!(counts(&text), counts(&again));
}

#[test]
fn import_timeline_and_quarantine_commands() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    let text = ok(&with_db(&db)
        .args(["import", "--preset", "zendesk-csv"])
        .arg(samples().join("zendesk_tickets.csv"))
        .output()
        .unwrap());
    assert!(
        text.contains("read 90, inserted 88, updated 0, unchanged 0, quarantined 2"),
        "{text}"
    );
    let json = ok(&with_db(&db)
        .args(["import", "--preset", "delighted-json", "--format", "json"])
        .arg(samples().join("delighted_responses.json"))
        .output()
        .unwrap());
    let r: serde_json::Value = serde_json::from_str(&json).unwrap();
    for k in ["read", "inserted", "updated", "unchanged", "quarantined"] {
        assert!(r[k].is_u64(), "{k} in {json}");
    }

    // Timeline by email, with odd case and spaces, in the JSON contract.
    let t = ok(&with_db(&db)
        .args(["timeline", " Ana.Kovac@Example.com ", "--format", "json"])
        .output()
        .unwrap());
    let t: serde_json::Value = serde_json::from_str(&t).unwrap();
    assert!(t["customer_id"].as_str().unwrap().starts_with("cus_"));
    assert!(
        t["identities"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["kind"] == "email")
    );
    let items = t["interactions"].as_array().unwrap();
    assert!(items.len() >= 2, "{t}");
    let keys = [
        "id",
        "source",
        "kind",
        "external_id",
        "occurred_at",
        "location",
        "text",
        "language",
        "stars",
        "nps",
        "csat",
        "ces",
        "sentiment",
    ];
    for i in items {
        for k in keys {
            assert!(i.get(k).is_some(), "{k} missing in {i}");
        }
    }
    let times: Vec<&str> = items
        .iter()
        .map(|i| i["occurred_at"].as_str().unwrap())
        .collect();
    let mut sorted = times.clone();
    sorted.sort();
    assert_eq!(times, sorted, "time order");
    let sources: std::collections::HashSet<&str> = items
        .iter()
        .map(|i| i["source"].as_str().unwrap())
        .collect();
    assert!(
        sources.len() >= 2,
        "one customer across sources: {sources:?}"
    );

    // The same customer by phone, and by customer id, in a table.
    let phone = t["identities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "phone")
        .map(|i| i["value"].as_str().unwrap().to_string());
    if let Some(phone) = phone {
        let by_phone = ok(&with_db(&db)
            .args(["timeline", &phone, "--format", "json"])
            .output()
            .unwrap());
        let by_phone: serde_json::Value = serde_json::from_str(&by_phone).unwrap();
        assert_eq!(by_phone["customer_id"], t["customer_id"]);
    }
    let table = ok(&with_db(&db)
        .args(["timeline", t["customer_id"].as_str().unwrap()])
        .output()
        .unwrap());
    assert!(table.contains("when (UTC)"), "{table}");

    let unknown = with_db(&db)
        .args(["timeline", "nobody@example.com"])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no customer is known"));

    let q = ok(&with_db(&db)
        .args(["quarantine", "list", "--format", "json"])
        .output()
        .unwrap());
    let q: serde_json::Value = serde_json::from_str(&q).unwrap();
    let q = q.as_array().unwrap();
    assert_eq!(q.len(), 3);
    for item in q {
        assert!(
            item["origin"].is_string() && item["line"].is_u64() && item["raw"].is_string(),
            "{item}"
        );
        assert!(
            item["field"].is_string() && item["expected"].is_string(),
            "{item}"
        );
    }
    let replay = ok(&with_db(&db)
        .args(["quarantine", "replay"])
        .output()
        .unwrap());
    assert!(
        replay.contains("replayed 3: imported 0, still failing 3"),
        "{replay}"
    );
    let id = q[0]["id"].as_i64().unwrap().to_string();
    let d = ok(&with_db(&db)
        .args(["quarantine", "dismiss", &id])
        .output()
        .unwrap());
    assert!(d.contains("dismissed 1"));

    let s = ok(&with_db(&db)
        .args(["summary", "--format", "json"])
        .output()
        .unwrap());
    let s: serde_json::Value = serde_json::from_str(&s).unwrap();
    assert_eq!(s.as_array().unwrap().len(), 5);
}

#[test]
fn the_daemon_starts_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let child = bin()
        .arg("--data-dir")
        .arg(dir.path())
        .arg("run")
        .env("TIDELINE_CONFIG", samples().join("tideline.toml"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let db = dir.path().join("tideline.db");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !db.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "no database after 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("Tideline serving.") && log.contains("Stopped."),
        "{log}"
    );
    // Not a terminal: the log lines are JSON.
    let first = log.lines().next().unwrap();
    assert!(
        serde_json::from_str::<serde_json::Value>(first).is_ok(),
        "{first}"
    );
}

#[test]
fn score_reads_jsonl_and_writes_one_line_per_text_in_order() {
    use std::io::Write;
    let mut child = bin()
        .arg("score")
        .arg("--lang-hint")
        .arg("de")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let input = concat!(
        "{\"id\": \"1\", \"text\": \"Das Essen war kalt und der Kellner unfreundlich.\"}\n",
        "{\"id\": \"2\", \"text\": \"Absolutely loved it, the staff were wonderful!\", \"lang\": \"en\"}\n",
        "{\"id\": \"3\", \"text\": \"Super!\"}\n",
        "{\"id\": \"4\", \"text\": \"Jedzenie bylo zimne, a dostawa spozniona o godzine.\"}\n",
    );
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let text = ok(&child.wait_with_output().unwrap());
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["id"], (i + 1).to_string());
        let mut keys: Vec<&str> = l.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "aspects",
                "confidence",
                "id",
                "label",
                "lang",
                "lang_confidence",
                "sentiment"
            ]
        );
        let s = l["sentiment"].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&s));
    }
    assert_eq!(lines[0]["lang"], "de");
    assert_eq!(lines[0]["label"], "negative");
    assert!(
        lines[0]["aspects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["aspect"] == "staff"),
        "{}",
        lines[0]
    );
    assert_eq!(lines[1]["lang"], "en");
    assert_eq!(lines[1]["lang_confidence"], 1.0);
    assert_eq!(lines[1]["label"], "positive");
    assert_eq!(lines[2]["lang"], "de", "too short: the hint applies");
    assert_eq!(lines[2]["label"], "positive");
    assert_eq!(lines[3]["lang"], "pl");
    assert_eq!(lines[3]["label"], "negative");
    let aspects: Vec<&str> = lines[3]["aspects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["aspect"].as_str().unwrap())
        .collect();
    assert!(aspects.contains(&"delivery"), "{aspects:?}");
}

#[test]
fn score_marks_bad_lines_in_place_and_fails() {
    use std::io::Write;
    let mut child = bin()
        .arg("score")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"id\": 1, \"text\": \"fine\"}\n{\"id\": 2, \"txt\": \"typo\"}\n[1,2]\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[1]["id"], 2);
    assert_eq!(lines[1]["line"], 2);
    assert!(lines[2]["error"].is_string());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("stdin line 2"), "{stderr}");
    assert!(stderr.contains("2 line(s) could not be scored"), "{stderr}");
}

#[test]
fn sentiment_train_and_status_report_held_out_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("t.db");
    ok(&with_db(&db)
        .arg("import")
        .arg(samples().join("reviews.csv"))
        .arg("--preset")
        .arg("generic-csv")
        .arg("--mapping")
        .arg(samples().join("reviews.mapping.toml"))
        .output()
        .unwrap());
    let text = ok(&with_db(&db).args(["sentiment", "train"]).output().unwrap());
    assert!(text.contains("held-out accuracy: built-in"), "{text}");
    let status = ok(&with_db(&db).args(["sentiment", "status"]).output().unwrap());
    assert!(status.contains("model in use: tideline-sent-"), "{status}");
    assert!(status.contains("+site."), "{status}");
    let json = ok(&with_db(&db)
        .args(["sentiment", "status", "--format", "json"])
        .output()
        .unwrap());
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["runs"].as_array().unwrap().len(), 1);
    assert!(v["runs"][0]["held_out"].as_u64().is_some());
}

#[test]
fn detect_reads_observations_and_writes_the_contract() {
    use std::io::Write;
    let mut input = String::new();
    for i in 0..80 {
        let v = if i < 50 { 10.0 } else { 30.0 } + (i % 4) as f64;
        input.push_str(&format!(
            "{{\"series\": \"s1\", \"t\": {i}, \"value\": {v}}}\n"
        ));
        if i == 5 {
            input.push_str("{\"series\": \"s1\", \"t\": 6, \"value\": \"high\"}\n");
        }
    }
    for (mode, kind) in [("offline", "real"), ("online", "real")] {
        let mut child = bin()
            .args(["detect", "--mode", mode, "--kind", kind])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success(), "a bad line makes the run fail");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(stderr.contains("stdin line 7: field `value`"), "{stderr}");
        let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "{mode}: {lines:?}");
        let c = &lines[0];
        for key in [
            "series",
            "index",
            "t",
            "direction",
            "before",
            "after",
            "confidence",
            "status",
        ] {
            assert!(c.get(key).is_some(), "{mode}: {key} missing in {c}");
        }
        assert_eq!(c["index"], 50, "{mode}");
        assert_eq!(c["direction"], "up");
    }
}

#[test]
fn customers_show_and_erase_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    ok(&bin().arg("demo").arg("--out").arg(&out).output().unwrap());
    let db = out.join("tideline.db");
    let shown = ok(&with_db(&db)
        .arg("--data-dir")
        .arg(&out)
        .args([
            "customers",
            "show",
            "burak.sahin@example.net",
            "--format",
            "json",
        ])
        .output()
        .unwrap());
    let v: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert!(v["interactions"].as_u64().unwrap() >= 5, "{v}");
    assert!(v["identities"].as_array().unwrap().len() >= 3);

    // Without --yes nothing happens.
    let refused = with_db(&db)
        .arg("--data-dir")
        .arg(&out)
        .args(["customers", "erase", "burak.sahin@example.net"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--yes"));
    let erased = ok(&with_db(&db)
        .arg("--data-dir")
        .arg(&out)
        .args(["customers", "erase", "burak.sahin@example.net", "--yes"])
        .output()
        .unwrap());
    assert!(erased.contains("erased customer cus_"), "{erased}");
    let gone = with_db(&db)
        .arg("--data-dir")
        .arg(&out)
        .args(["customers", "show", "burak.sahin@example.net"])
        .output()
        .unwrap();
    assert!(!gone.status.success(), "the customer is gone");
}
