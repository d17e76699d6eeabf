"""Outputs and inputs on object storage (S3, GCS, HDFS): URLs, stores behind fsspec, and their settings."""
