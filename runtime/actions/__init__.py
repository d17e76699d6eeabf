"""Action runners: Python functions, Spark (session and spark-submit), SQL and loads."""
