"""Values shared by fixtures and tests: the fake secrets that must never appear in output."""

S3_KEY_ID = "cascade-test-key-id"
S3_SECRET = "cascade-test-s3-secret-value"
PG_PASSWORD = "cascade-test-pg-password"
NS_API_SECRET = "cascade-test-nightscout-secret"


def s3_client(endpoint: str):
    """A boto3 S3 client for moto's server with the test keys."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_KEY_ID,
        aws_secret_access_key=S3_SECRET,
        region_name="us-east-1",
    )
