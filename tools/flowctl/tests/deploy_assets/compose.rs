//! docker-compose.yml and localstack/compose-init.sh.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::SERVICES;
use crate::fake_http::FakeHttp;
use crate::support::{
    array_at, is_executable, repo, run_ok, str_at, temp_dir, venv_bin, write_executable, yaml_file,
};

/// The compose model after Docker Compose itself resolved anchors, merges and paths.
pub(crate) fn compose_model() -> Value {
    let root = repo();
    let compose = venv_bin("docker-compose");
    run_ok(Command::new(&compose).current_dir(&root).args([
        "-f",
        "docker-compose.yml",
        "config",
        "--quiet",
    ]));
    let json = run_ok(Command::new(&compose).current_dir(&root).args([
        "-f",
        "docker-compose.yml",
        "config",
        "--format",
        "json",
    ]));
    serde_json::from_str(&json).expect("compose config JSON")
}

#[test]
pub(crate) fn compose_file_is_valid_and_wires_the_five_services() {
    let root = repo();
    run_ok(
        Command::new(venv_bin("check-jsonschema"))
            .args(["--builtin-schema", "vendor.compose-spec"])
            .arg(root.join("docker-compose.yml")),
    );
    let model = compose_model();
    let services = model["services"].as_object().expect("services");

    for (name, svc) in services {
        assert!(
            svc.get("image").is_some() || svc.get("build").is_some(),
            "compose service {name} has neither image nor build"
        );
        // Every file or directory mounted from the repository exists.
        for vol in svc["volumes"].as_array().into_iter().flatten() {
            if vol["type"] == "bind" {
                let source = Path::new(str_at(vol, "/source"));
                assert!(
                    source.exists(),
                    "{name} mounts {} which does not exist",
                    source.display()
                );
            }
        }
    }

    for (name, port) in SERVICES {
        let svc = &services
            .get(name)
            .unwrap_or_else(|| panic!("compose has no service {name}"));
        assert!(
            svc.get("build").is_some(),
            "{name} is built from the Dockerfile"
        );
        assert_eq!(
            str_at(svc, "/command/0"),
            name,
            "{name}: the command names the binary"
        );
        let test: Vec<&str> = array_at(svc, "/healthcheck/test")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            test.iter()
                .any(|t| t.contains(&format!("localhost:{port}/health"))),
            "{name}: health check does not probe /health on {port}: {test:?}"
        );
        let env = svc["environment"].as_object().expect("environment");
        for var in [
            "AWS_REGION",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_ENDPOINT_URL",
        ] {
            assert!(env.contains_key(var), "{name}: {var} is not set");
        }
        assert_eq!(env["AWS_ENDPOINT_URL"], "http://localstack:4566", "{name}");
        assert_eq!(
            str_at(svc, "/depends_on/bootstrap/condition"),
            "service_completed_successfully",
            "{name} starts after the bootstrap"
        );
        let ports = array_at(svc, "/ports");
        assert!(
            ports
                .iter()
                .all(|p| p["host_ip"] == "127.0.0.1" && p["target"] == port),
            "{name}: admin port {port} published on 127.0.0.1 only: {ports:?}"
        );
    }
    assert_eq!(
        services["indexer"]["environment"]["OPENSEARCH_URL"],
        "http://opensearch:9200"
    );
    assert_eq!(
        str_at(&services["indexer"], "/depends_on/opensearch/condition"),
        "service_healthy"
    );
    let replicas = services["archiver"]
        .pointer("/deploy/replicas")
        .and_then(Value::as_u64)
        .expect("archiver deploy.replicas");
    assert!(replicas >= 2, "the archiver shows running several copies");

    // The bootstrap job runs localstack/compose-init.sh once LocalStack and OpenSearch are up.
    let bootstrap = &services["bootstrap"];
    let script = str_at(bootstrap, "/command/0");
    let mounted = array_at(bootstrap, "/volumes")
        .iter()
        .find(|v| v["target"] == script)
        .expect("the bootstrap command is a mounted script");
    assert!(
        mounted["source"]
            .as_str()
            .is_some_and(|s| s.ends_with("localstack/compose-init.sh"))
    );
    assert!(is_executable(&root.join("localstack/compose-init.sh")));
    for dep in ["localstack", "opensearch"] {
        assert_eq!(
            str_at(bootstrap, &format!("/depends_on/{dep}/condition")),
            "service_healthy"
        );
    }

    // Grafana loads the dashboards from where its provisioning file says they are.
    let provider = yaml_file("deploy/grafana/provisioning/dashboards/flowline.yml");
    let path = str_at(&provider, "/providers/0/options/path");
    let grafana_mounts = array_at(&services["grafana"], "/volumes");
    let dashboards = grafana_mounts
        .iter()
        .find(|v| v["target"] == path)
        .unwrap_or_else(|| panic!("grafana mounts nothing at {path}"));
    assert!(str_at(dashboards, "/source").ends_with("deploy/grafana/dashboards"));
    let datasource = yaml_file("deploy/grafana/provisioning/datasources/prometheus.yml");
    let url = str_at(&datasource, "/datasources/0/url");
    assert!(
        services.contains_key(url.trim_start_matches("http://").split(':').next().unwrap()),
        "the Grafana data source {url} is not a compose service"
    );
}

#[test]
pub(crate) fn compose_init_waits_for_localstack_then_bootstraps() {
    // LocalStack reports firehose only on the third poll.
    let localstack = FakeHttp::start(|req, index| {
        assert_eq!(req.target, "/_localstack/health");
        let firehose = if index >= 2 {
            "available"
        } else {
            "initializing"
        };
        (
            200,
            format!(
                r#"{{"services": {{"kinesis": "running", "dynamodb": "available", "s3": "available", "firehose": "{firehose}"}}}}"#
            ),
        )
    });
    let bin = temp_dir("init");
    let args_file = bin.path().join("args");
    write_executable(
        &bin.path().join("flowctl"),
        &format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\n",
            args_file.display()
        ),
    );
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    run_ok(
        Command::new("sh")
            .arg(repo().join("localstack/compose-init.sh"))
            .env("PATH", path)
            .env("AWS_ENDPOINT_URL", localstack.url())
            .env("BOOTSTRAP_SHARDS", "3")
            .env("BOOTSTRAP_STREAM_SHARDS", "sales=4 orders-enriched=2"),
    );
    assert_eq!(
        localstack.requests().len(),
        3,
        "polled until all four were up"
    );
    let args = std::fs::read_to_string(&args_file).expect("flowctl ran");
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        [
            "bootstrap",
            "--shards",
            "3",
            "--index-replicas",
            "0",
            "--wait",
            "60s",
            "--stream-shards",
            "sales=4",
            "--stream-shards",
            "orders-enriched=2"
        ]
    );
}
