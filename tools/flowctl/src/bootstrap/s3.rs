use anyhow::bail;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use aws_smithy_types::error::display::DisplayErrorContext;
use flowline_aws::AwsClients;

use super::Outcome;

/// Creates the bucket unless this account already owns it.
pub async fn ensure_bucket(aws: &AwsClients, name: &str) -> anyhow::Result<Outcome> {
    // Look first: in us-east-1, CreateBucket on a bucket we own succeeds silently.
    if aws.s3.head_bucket().bucket(name).send().await.is_ok() {
        return Ok(Outcome::Exists);
    }
    let region = aws.region();
    let mut request = aws.s3.create_bucket().bucket(name);
    // us-east-1 is the one region that must not be named as a location constraint.
    if region != "us-east-1" {
        request = request.create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from(region.as_str()))
                .build(),
        );
    }
    match request.send().await {
        Ok(_) => Ok(Outcome::Created),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_bucket_already_owned_by_you()) =>
        {
            Ok(Outcome::Exists)
        }
        Err(e) => bail!("creating bucket {name}: {}", DisplayErrorContext(e)),
    }
}
