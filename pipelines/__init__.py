"""Engine code: the Spark statistics job, the Beam pipelines and the `adr` command line."""
