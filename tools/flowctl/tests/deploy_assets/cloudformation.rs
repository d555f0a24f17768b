//! deploy/aws/flowline.yaml: cfn-lint, the design's resources, least-privilege roles.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

use crate::CONSUMERS;
use crate::support::{array_at, repo, run_ok, set, str_at, venv_bin};

/// The template as JSON, decoded by cfn-lint (which understands the short intrinsic tags).
pub(crate) fn cloudformation() -> Value {
    let json = run_ok(
        Command::new(venv_bin("python"))
            .args([
                "-c",
                "import sys, json\nfrom cfnlint.decode import decode\nt, m = decode(sys.argv[1])\nassert not m, m\njson.dump(t, sys.stdout)",
            ])
            .arg(repo().join("deploy/aws/flowline.yaml")),
    );
    serde_json::from_str(&json).expect("template JSON")
}

#[test]
pub(crate) fn cloudformation_template_passes_cfn_lint() {
    // Any finding fails, warnings and informational ones included.
    run_ok(Command::new(venv_bin("cfn-lint")).arg(repo().join("deploy/aws/flowline.yaml")));
}

pub(crate) fn resources_of_type<'a>(t: &'a Value, ty: &str) -> BTreeMap<&'a str, &'a Value> {
    t["Resources"]
        .as_object()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"] == ty)
        .map(|(k, r)| (k.as_str(), &r["Properties"]))
        .collect()
}

/// `${NamePrefix}x` names, as the template spells them with !Sub.
pub(crate) fn prefixed_names(resources: &BTreeMap<&str, &Value>, field: &str) -> BTreeSet<String> {
    resources
        .values()
        .map(|p| {
            str_at(p, &format!("/{field}/Fn::Sub"))
                .strip_prefix("${NamePrefix}")
                .unwrap_or_else(|| panic!("{field} without the prefix: {p}"))
                .to_string()
        })
        .collect()
}

#[test]
pub(crate) fn cloudformation_resources_follow_the_design() {
    let t = cloudformation();
    let streams = resources_of_type(&t, "AWS::Kinesis::Stream");
    let names = prefixed_names(&streams, "Name");
    let expected: BTreeSet<String> = [
        "customers",
        "addresses",
        "sales",
        "orders-enriched",
        "order-metrics",
        "dead-letters",
    ]
    .map(String::from)
    .into();
    assert_eq!(names, expected, "streams");
    for s in streams.values() {
        assert_eq!(s["StreamEncryption"]["EncryptionType"], "KMS");
    }

    let tables = resources_of_type(&t, "AWS::DynamoDB::Table");
    for (logical, p) in &tables {
        assert_eq!(p["BillingMode"], "PAY_PER_REQUEST", "{logical}");
        assert_eq!(p["SSESpecification"]["SSEEnabled"], true, "{logical}");
        let name = str_at(p, "/TableName/Fn::Sub");
        let keys: Vec<(&str, &str)> = array_at(p, "/KeySchema")
            .iter()
            .map(|k| (str_at(k, "/AttributeName"), str_at(k, "/KeyType")))
            .collect();
        let want: &[(&str, &str)] = if name.ends_with("-leases") {
            &[("leaseKey", "HASH")]
        } else {
            &[("pk", "HASH"), ("sk", "RANGE")]
        };
        assert_eq!(keys, want, "{logical} key schema");
        for def in array_at(p, "/AttributeDefinitions") {
            assert_eq!(def["AttributeType"], "S", "{logical}");
        }
    }
    let table_names = prefixed_names(&tables, "TableName");
    let expected: BTreeSet<String> = CONSUMERS
        .iter()
        .map(|a| format!("{a}-leases"))
        .chain(["enrichment-joiner-state".into(), "aggregator-state".into()])
        .collect();
    assert_eq!(table_names, expected, "tables");

    let bucket = resources_of_type(&t, "AWS::S3::Bucket")["LakeBucket"];
    assert!(bucket
        .pointer("/BucketEncryption/ServerSideEncryptionConfiguration/0/ServerSideEncryptionByDefault/SSEAlgorithm")
        .is_some());
    for flag in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(
            bucket["PublicAccessBlockConfiguration"][flag], true,
            "{flag}"
        );
    }
    let tiering = array_at(bucket, "/LifecycleConfiguration/Rules")
        .iter()
        .flat_map(|r| r["Transitions"].as_array().into_iter().flatten())
        .any(|tr| tr["StorageClass"] == "INTELLIGENT_TIERING");
    assert!(tiering, "lifecycle moves objects to Intelligent-Tiering");

    let firehose = resources_of_type(&t, "AWS::KinesisFirehose::DeliveryStream");
    let fh = firehose.values().next().expect("a delivery stream");
    assert_eq!(fh["DeliveryStreamType"], "DirectPut");
    let s3 = &fh["ExtendedS3DestinationConfiguration"];
    assert!(str_at(s3, "/Prefix").starts_with("firehose/"));
    let error_prefix = str_at(s3, "/ErrorOutputPrefix");
    assert!(!error_prefix.is_empty() && !error_prefix.starts_with("firehose/"));

    let domains = resources_of_type(&t, "AWS::OpenSearchService::Domain");
    let d = domains.values().next().expect("an OpenSearch domain");
    assert_eq!(d["EncryptionAtRestOptions"]["Enabled"], true);
    assert_eq!(d["NodeToNodeEncryptionOptions"]["Enabled"], true);
    assert_eq!(d["DomainEndpointOptions"]["EnforceHTTPS"], true);
    assert_eq!(d["AdvancedSecurityOptions"]["Enabled"], true);
}

/// What one role may touch, from its policy statements.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Access {
    read_streams: BTreeSet<String>,
    write_streams: BTreeSet<String>,
    tables: BTreeSet<String>,
    put_prefixes: BTreeSet<String>,
    get_prefixes: BTreeSet<String>,
    firehose: bool,
}

/// Logical ids a resource entry refers to (`!GetAtt X.Arn` or `${X.Arn}` in a `!Sub`).
pub(crate) fn referenced(resource: &Value) -> (String, Option<String>) {
    if let Some(att) = resource.pointer("/Fn::GetAtt/0").and_then(Value::as_str) {
        return (att.to_string(), None);
    }
    let sub = resource
        .pointer("/Fn::Sub")
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("resource is neither GetAtt nor Sub: {resource}"));
    let inner = &sub[sub.find("${").expect("${") + 2..];
    let logical = inner[..inner.find(".Arn}").expect(".Arn}")].to_string();
    let suffix = inner[inner.find('}').expect("}") + 1..]
        .trim_start_matches('/')
        .trim_end_matches('*')
        .to_string();
    (logical, Some(suffix))
}

pub(crate) fn access_of(role: &Value) -> Access {
    let mut a = Access::default();
    for policy in array_at(role, "/Policies") {
        for st in array_at(policy, "/PolicyDocument/Statement") {
            assert_eq!(st["Effect"], "Allow");
            let actions: Vec<&str> = match &st["Action"] {
                Value::String(s) => vec![s.as_str()],
                Value::Array(v) => v.iter().filter_map(Value::as_str).collect(),
                other => panic!("Action {other}"),
            };
            for action in &actions {
                assert!(!action.contains('*'), "wildcard action {action}");
            }
            let resources: Vec<&Value> = match &st["Resource"] {
                Value::Array(v) => v.iter().collect(),
                one => vec![one],
            };
            for r in resources {
                assert_ne!(r, "*", "a statement on every resource");
                let (logical, suffix) = referenced(r);
                let stream = || logical.trim_end_matches("Stream").to_string();
                if actions.contains(&"kinesis:GetRecords")
                    || actions.contains(&"kinesis:SubscribeToShard")
                {
                    a.read_streams.insert(stream());
                } else if actions.contains(&"kinesis:PutRecords") {
                    a.write_streams.insert(stream());
                } else if actions.iter().any(|x| x.starts_with("dynamodb:")) {
                    a.tables.insert(logical.clone());
                } else if actions.contains(&"s3:PutObject") {
                    a.put_prefixes.insert(suffix.expect("object ARN"));
                } else if actions.contains(&"s3:GetObject") {
                    a.get_prefixes.insert(suffix.expect("object ARN"));
                } else if actions.contains(&"s3:ListBucket") {
                    assert!(
                        st["Condition"]["StringLike"]["s3:prefix"].is_array(),
                        "listing is limited by prefix"
                    );
                } else if actions.iter().all(|x| x.starts_with("firehose:")) {
                    assert_eq!(logical, "DeliveryStream");
                    a.firehose = true;
                } else {
                    panic!("unexpected statement {st}");
                }
            }
        }
    }
    a
}

#[test]
pub(crate) fn cloudformation_roles_are_least_privilege_per_service() {
    let t = cloudformation();
    let roles = resources_of_type(&t, "AWS::IAM::Role");
    let all = [
        "Customers",
        "Addresses",
        "Sales",
        "OrdersEnriched",
        "OrderMetrics",
        "DeadLetters",
    ];
    // Who reads and writes what, from DESIGN.md section 1.
    let expected = [
        (
            "ProducerRole",
            "producer",
            Access {
                write_streams: set(&["Customers", "Addresses", "Sales"]),
                put_prefixes: set(&["reference/"]),
                ..Access::default()
            },
        ),
        (
            "EnrichmentJoinerRole",
            "enrichment-joiner",
            Access {
                read_streams: set(&["Customers", "Addresses", "Sales"]),
                write_streams: set(&["OrdersEnriched", "DeadLetters"]),
                tables: set(&["EnrichmentJoinerLeaseTable", "EnrichmentJoinerStateTable"]),
                get_prefixes: set(&["reference/"]),
                ..Access::default()
            },
        ),
        (
            "AggregatorRole",
            "aggregator",
            Access {
                read_streams: set(&["OrdersEnriched"]),
                write_streams: set(&["OrderMetrics", "DeadLetters"]),
                tables: set(&["AggregatorLeaseTable", "AggregatorStateTable"]),
                ..Access::default()
            },
        ),
        (
            "IndexerRole",
            "indexer",
            Access {
                read_streams: set(&["OrdersEnriched", "OrderMetrics"]),
                write_streams: set(&["DeadLetters"]),
                tables: set(&["IndexerLeaseTable"]),
                ..Access::default()
            },
        ),
        (
            "ArchiverRole",
            "archiver",
            Access {
                read_streams: set(&all),
                tables: set(&["ArchiverLeaseTable"]),
                put_prefixes: set(&["raw/", "curated/", "errors/"]),
                firehose: true,
                ..Access::default()
            },
        ),
    ];
    for (logical, service, want) in expected {
        let role = roles
            .get(logical)
            .unwrap_or_else(|| panic!("no role {logical}"));
        assert_eq!(access_of(role), want, "{logical}");
        let trust = str_at(role, "/AssumeRolePolicyDocument/Fn::Sub");
        let trust: Value = serde_json::from_str(trust).expect("trust policy is JSON");
        assert_eq!(
            trust["Statement"][0]["Action"],
            "sts:AssumeRoleWithWebIdentity"
        );
        let sub = &trust["Statement"][0]["Condition"]["StringEquals"]["${EksOidcProvider}:sub"];
        assert_eq!(
            sub,
            &Value::from(format!(
                "system:serviceaccount:${{KubernetesNamespace}}:{service}"
            )),
            "{logical} is assumable only by its own service account"
        );
    }
}
