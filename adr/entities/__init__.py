"""Entity extractors, one per perspective; see registry.PERSPECTIVES."""
