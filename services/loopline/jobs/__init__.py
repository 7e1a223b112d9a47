"""Jobs the CLI and the CronJobs run: each composes features, model and registry."""
