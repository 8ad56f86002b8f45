"""ADR: Adaptive Data Refinement for vision-language instruction data (engine-free core)."""

__version__ = "0.1.0"
