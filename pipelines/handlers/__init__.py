"""Beam RunInference model handlers, one per model family (diffusion, captioning, LLM, detection)."""
