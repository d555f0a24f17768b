// figment::Jail closures return figment::Error, which is large by design.
#![allow(clippy::result_large_err)]

use std::time::Duration;

use figment::Jail;
use serde::{Deserialize, Serialize};

use super::*;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
struct Demo {
    sink: Sink,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
struct Sink {
    url: String,
    batch_size: u32,
    #[serde(with = "humantime_serde")]
    interval: Duration,
}

impl Default for Sink {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:9200".into(),
            batch_size: 1000,
            interval: Duration::from_secs(1),
        }
    }
}

impl ServiceConfig for Demo {
    fn validate(&self, problems: &mut Problems) {
        problems.check(
            self.sink.batch_size > 0,
            "sink.batch_size",
            "must be at least 1",
        );
        problems.check(
            self.sink.url.starts_with("http"),
            "sink.url",
            "must be an http(s) URL",
        );
    }

    fn env_aliases() -> &'static [(&'static str, &'static str)] {
        &[("DEMO_SINK_URL_ALIAS", "sink.url")]
    }
}

fn load_demo(file: Option<&str>) -> Result<(RuntimeSettings, Demo), ConfigError> {
    load::<Demo>("demo-svc", 9101, file.map(Path::new))
}

#[test]
fn defaults_apply_without_file_or_env() {
    Jail::expect_with(|_| {
        let (runtime, demo) = load_demo(None).unwrap();
        assert_eq!(runtime.admin.port, 9101);
        assert_eq!(runtime.admin.bind.to_string(), "127.0.0.1");
        assert_eq!(runtime.shutdown.drain_timeout, Duration::from_secs(30));
        assert_eq!(demo, Demo::default());
        Ok(())
    });
}

#[test]
fn file_overrides_defaults_and_env_overrides_file() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "svc.toml",
            r#"
            [admin]
            port = 9999
            [shutdown]
            drain_timeout = "5s"
            [sink]
            batch_size = 10
            interval = "250ms"
            "#,
        )?;
        jail.set_env("DEMO_SVC_SINK__BATCH_SIZE", "20");
        let (runtime, demo) = load_demo(Some("svc.toml")).unwrap();
        assert_eq!(runtime.admin.port, 9999);
        assert_eq!(runtime.shutdown.drain_timeout, Duration::from_secs(5));
        assert_eq!(demo.sink.batch_size, 20, "env wins over the file");
        assert_eq!(demo.sink.interval, Duration::from_millis(250));
        assert_eq!(
            demo.sink.url, "http://127.0.0.1:9200",
            "untouched default stays"
        );
        Ok(())
    });
}

#[test]
fn alias_sets_a_setting_and_the_prefixed_form_wins() {
    Jail::expect_with(|jail| {
        jail.set_env("DEMO_SINK_URL_ALIAS", "http://alias:9200");
        assert_eq!(load_demo(None).unwrap().1.sink.url, "http://alias:9200");
        jail.set_env("DEMO_SVC_SINK__URL", "http://prefixed:9200");
        assert_eq!(load_demo(None).unwrap().1.sink.url, "http://prefixed:9200");
        Ok(())
    });
}

#[test]
fn bad_type_names_the_setting_and_the_variable() {
    Jail::expect_with(|jail| {
        jail.set_env("DEMO_SVC_ADMIN__PORT", "not-a-port");
        let err = load_demo(None).unwrap_err().to_string();
        assert!(err.contains("admin.port"), "{err}");
        assert!(err.contains("DEMO_SVC_ADMIN__PORT"), "{err}");
        Ok(())
    });
}

#[test]
fn all_validation_problems_are_reported_together() {
    Jail::expect_with(|jail| {
        jail.set_env("DEMO_SVC_SINK__BATCH_SIZE", "0");
        jail.set_env("DEMO_SVC_SINK__URL", "ftp://x");
        jail.set_env("DEMO_SVC_SHUTDOWN__DRAIN_TIMEOUT", "0s");
        let err = load_demo(None).unwrap_err();
        assert_eq!(err.problems.len(), 3, "{err}");
        let text = err.to_string();
        for setting in ["sink.batch_size", "sink.url", "shutdown.drain_timeout"] {
            assert!(text.contains(setting), "{text}");
        }
        Ok(())
    });
}

#[test]
fn unknown_settings_are_rejected_with_their_source() {
    Jail::expect_with(|jail| {
        jail.create_file("svc.toml", "[sink]\nbatchsize = 3\n")?;
        jail.set_env("DEMO_SVC_ADMN__PORT", "1");
        let err = load_demo(Some("svc.toml")).unwrap_err().to_string();
        assert!(err.contains("sink.batchsize: unknown setting"), "{err}");
        assert!(err.contains("svc.toml"), "{err}");
        assert!(err.contains("admn"), "{err}");
        assert!(err.contains("DEMO_SVC_ADMN__PORT"), "{err}");
        Ok(())
    });
}

#[test]
fn missing_file_is_an_error_naming_it() {
    Jail::expect_with(|_| {
        let err = load_demo(Some("nope.toml")).unwrap_err().to_string();
        assert!(err.contains("--config nope.toml"), "{err}");
        Ok(())
    });
}

#[test]
fn malformed_toml_is_reported_not_panicked() {
    Jail::expect_with(|jail| {
        jail.create_file("svc.toml", "[sink\nbatch_size = ")?;
        let err = load_demo(Some("svc.toml")).unwrap_err().to_string();
        assert!(err.contains("svc.toml"), "{err}");
        Ok(())
    });
}

#[test]
fn bad_duration_is_reported() {
    Jail::expect_with(|jail| {
        jail.set_env("DEMO_SVC_SINK__INTERVAL", "soon");
        let err = load_demo(None).unwrap_err().to_string();
        assert!(err.contains("sink.interval"), "{err}");
        Ok(())
    });
}

#[test]
fn env_prefix_is_derived_from_the_service_name() {
    assert_eq!(env_prefix("enrichment-joiner"), "ENRICHMENT_JOINER_");
    assert_eq!(env_prefix("indexer"), "INDEXER_");
}
