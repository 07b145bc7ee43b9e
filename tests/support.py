"""Values shared by fixtures and tests: the fake secrets that must never appear in output."""

S3_KEY_ID = "cascade-test-key-id"
S3_SECRET = "cascade-test-s3-secret-value"
PG_PASSWORD = "cascade-test-pg-password"
NS_API_SECRET = "cascade-test-nightscout-secret"
