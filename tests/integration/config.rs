//! The configuration contract: the example parses, bad files name every problem.

use crate::common::bin;
use std::path::Path;
use tideline::config::{Config, Overrides};

#[test]
fn the_example_config_parses_with_every_section() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let c = Config::from_toml(&text, "config/example.toml", &Overrides::default()).unwrap();
    assert_eq!(c.locations.len(), 1);
    assert_eq!(c.storage.max_connections, 8);
    assert_eq!(c.import.batch_rows, 20_000);
    assert_eq!(c.pipeline.languages.len(), 12);
    assert!(c.pipeline.sentiment_adapt);
    assert_eq!(c.pipeline.sentiment_adapt_cron, "0 30 3 * * *");
    let own = tideline::model::Identity::new(tideline::model::IdentityKind::Phone, "+49301234567");
    assert!(c.identity.guard.blocks(&own));
}

#[test]
fn the_demo_config_parses() {
    let c = crate::common::demo_config();
    assert_eq!(c.locations.len(), 5);
}

#[test]
fn a_file_with_only_one_section_is_valid() {
    Config::from_toml("[import]\nbatch_rows = 10\n", "t", &Overrides::default()).unwrap();
    let c = Config::from_toml(
        "[identity]\nblocked = [\"shop@example.org\"]\n",
        "t",
        &Overrides::default(),
    )
    .unwrap();
    let shop =
        tideline::model::Identity::new(tideline::model::IdentityKind::Email, "shop@example.org");
    assert!(c.identity.guard.blocks(&shop));
}

#[test]
fn config_check_reports_every_problem_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[storage]\nmax_connections = 0\n[log]\nformat = \"yaml\"\n[pipeline]\nsentiment_adapt_cron = \"nightly\"\n[identity]\nblocked = [\"shared inbox\"]\n[[location]]\nid = \"x\"\ntimezone = \"Berlin\"\n",
    )
    .unwrap();
    let out = bin()
        .arg("--config")
        .arg(&bad)
        .args(["config", "check"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "5 problem(s)",
        "identity.blocked",
        "pipeline.sentiment_adapt_cron",
        "storage.max_connections",
        "log.format",
        "timezone",
        "fix:",
    ] {
        assert!(err.contains(needle), "missing {needle}: {err}");
    }
}

#[test]
fn secrets_from_files_must_be_private_and_never_print() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("db_url");
    std::fs::write(&secret, "postgres://app:hunter2@127.0.0.1:1/x\n").unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!("[storage]\ndatabase_url_file = \"{}\"\n", secret.display()),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = Config::load(Some(&cfg), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("chmod 600"), "{e}");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let c = Config::load(Some(&cfg), &Overrides::default()).unwrap();
    assert!(!format!("{c:?}").contains("hunter2"));
    // A connection failure names the host but not the password.
    let out = bin()
        .arg("--config")
        .arg(&cfg)
        .args(["summary"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("hunter2"), "{err}");
    assert!(err.contains("app:***@127.0.0.1"), "{err}");
}
